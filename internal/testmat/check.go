package testmat

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// Gaussian returns an m×n matrix of independent standard normals.
func Gaussian(m, n int, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, 0x6a))
	a := mat.NewDense(m, n, nil)
	raw := a.RawMatrix()
	for i := range raw.Data {
		raw.Data[i] = rng.NormFloat64()
	}
	return a
}

// Strided returns a copy of a held as a view into a larger matrix, so that
// its stride exceeds its number of columns and the neighbouring elements
// hold NaN: any read outside the view poisons the result.
func Strided(a mat.Matrix) *mat.Dense {
	m, n := a.Dims()
	big := mat.NewDense(m+2, n+3, nil)
	for i := 0; i < m+2; i++ {
		for j := 0; j < n+3; j++ {
			big.Set(i, j, math.NaN())
		}
	}
	v := big.Slice(1, m+1, 2, n+2).(*mat.Dense)
	v.Copy(a)
	return v
}

// OrthError returns ‖QᵀQ − I‖_max.
func OrthError(q mat.Matrix) float64 {
	_, k := q.Dims()
	var g mat.Dense
	g.Mul(q.T(), q)
	e := 0.0
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			w := 0.0
			if i == j {
				w = 1
			}
			e = math.Max(e, math.Abs(g.At(i, j)-w))
		}
	}
	return e
}

// OrthErrorF returns ‖QᵀQ − I‖_F, QᵀQ formed in float64 (its rounding is
// at most γ_p·k for a p×k q of near-unit columns).
func OrthErrorF(q mat.Matrix) float64 {
	_, k := q.Dims()
	var g mat.Dense
	g.Mul(q.T(), q)
	for i := 0; i < k; i++ {
		g.Set(i, i, g.At(i, i)-1)
	}
	return mat.Norm(&g, 2)
}

// Float32SketchQR compares the QB of the M×N float32 a that qbTo computes
// on a backend with lowrank.TolerantQRer (tolerant) with the same draw on
// one without (plain), and returns a summary for the test's log and an
// error naming the first bound it breaks. For an input large enough for
// the CPU's CholeskyQR (P·k² ≥ 2²²), the tolerant sketch is orthonormal
// only to ‖QᵀQ − I‖_F ≤ 2⁻²⁴ (skeleton.SketchQR), so its Q must differ
// from the plain one (else the tolerant path was not taken).
//
// Bounds: ‖QᵀQ − I‖_F ≤ 2⁻²⁴ + γ_p·k (QRTol's guarantee, u = 2⁻⁵³) plus
// the rounding of OrthErrorF's float64 QᵀQ, another γ_p·k. The two Q span
// the same space up to the float64 rounding of the pass that one of them
// skips, so the reconstructions Q·(Q₃₂ᵀ·A) differ by at most what the
// non-orthogonality does to QQᵀ (≤ ‖QᵀQ − I‖₂ ≤ 2⁻²⁴) and the float32
// products B = Q₃₂ᵀ·A of each (γ_P·‖A‖_F, Q rounded to float32 and the
// float32 sum): the relative errors differ by at most 2⁻²⁴ + 2·γ_P with
// u = 2⁻²⁴.
func Float32SketchQR(a *lowrank.Dense32, qbTo func(be lowrank.Backend, f *lowrank.Factors) error, tolerant, plain lowrank.Backend) (string, error) {
	qb := func(be lowrank.Backend) (*lowrank.QB, *mat.Dense, error) {
		var f lowrank.Factors
		if err := qbTo(be, &f); err != nil {
			return nil, nil, err
		}
		h, err := f.ToQB(be)
		return h, f.Q.(*mat.Dense), err
	}
	tol, q, err := qb(tolerant)
	if err != nil {
		return "", err
	}
	full, qFull, err := qb(plain)
	if err != nil {
		return "", err
	}
	p, k := q.Dims()
	gamma := func(n int, u float64) float64 { return float64(n) * u / (1 - float64(n)*u) }
	w := mat.NewDense(a.Rows, a.Cols, nil)
	for i := range a.Rows {
		for j := range a.Cols {
			w.Set(i, j, float64(a.Data[i*a.Stride+j]))
		}
	}
	orth, et, ef := OrthErrorF(q), lowrank.RelError(w, tol), lowrank.RelError(w, full)
	sum := fmt.Sprintf("‖QᵀQ − I‖_F = %.2e with the tolerance; relative error %.6g with it, %.6g without", orth, et, ef)
	switch {
	case mat.Equal(q, qFull):
		return sum, errors.New("the tolerant QR was not taken: Q is QR's bit for bit")
	case orth > 0x1p-24+2*gamma(p, 0x1p-53)*float64(k):
		return sum, fmt.Errorf("‖QᵀQ − I‖_F = %g above its bound", orth)
	case math.Abs(et-ef) > 0x1p-24+2*gamma(p, 0x1p-24):
		return sum, fmt.Errorf("relative errors %g and %g differ beyond their bound", et, ef)
	}
	return sum, nil
}

// Sigma returns the singular values used by Incoherent for a spectrum
// function applied to min(m, n) values, for convenience in tables.
func Sigma(m, n int, spectrum func(int) []float64) []float64 { return spectrum(min(m, n)) }

// Shape is one case of the property tests of the randomized methods: an
// M×N input (held as a strided view if Strided), rank K, oversampling Over.
type Shape struct {
	M, N, K, Over int
	Strided       bool
}

// PropertyShapes covers tall, wide and square inputs, one row and one
// column, k = 1 and k = min(m, n), ℓ > k, and a strided view.
func PropertyShapes() []Shape {
	return []Shape{
		{60, 40, 5, 0, false}, {40, 60, 5, 5, false}, // tall, wide
		{50, 50, 10, 3, false},                     // square, ℓ > k
		{1, 30, 1, 0, false}, {30, 1, 1, 3, false}, // 1×n, m×1
		{45, 25, 25, 0, false}, {25, 45, 25, 4, false}, // k = min(m, n)
		{80, 30, 1, 2, false}, // k = 1
		{70, 35, 6, 4, true},  // strided view
	}
}

// Input returns an incoherent matrix of s's shape with singular values
// sigma, as a strided view if s asks for one.
func (s Shape) Input(sigma []float64, seed uint64) *mat.Dense {
	a := Incoherent(s.M, s.N, sigma, seed)
	if s.Strided {
		return Strided(a)
	}
	return a
}

// ProjectionResidual returns ‖A − QQᵀA‖_F / ‖A‖_F, Q the first l columns
// of the Q factor of a Householder QR of y (float64, gonum): how much of A
// lies outside the span of y's first l columns.
func ProjectionResidual(a, y mat.Matrix, l int) float64 {
	var qr mat.QR
	qr.Factorize(y)
	var q mat.Dense
	qr.QTo(&q)
	m, _ := y.Dims()
	ql := q.Slice(0, m, 0, l)
	var p, res mat.Dense
	p.Mul(ql.T(), a)
	res.Mul(ql, &p)
	res.Sub(a, &res)
	return mat.Norm(&res, 2) / mat.Norm(a, 2)
}

// FuzzMatrix decodes fuzz input into an m×n matrix (m, n ≤ maxDim): the
// shape comes from the two bytes of shape (1 + byte mod maxDim each), and
// element e from the byte pair (elems[2e], elems[2e+1]), cycling through
// elems (all zeros if it is empty): int8(b0)·2^(8·int8(b1)). The elements
// thus span zero, subnormals, 1e±300 and everything between, signs
// included, with repeats that make rows and columns dependent.
func FuzzMatrix(shape uint16, elems []byte, maxDim int) *mat.Dense {
	m := 1 + int(shape&0xff)%maxDim
	n := 1 + int(shape>>8)%maxDim
	a := mat.NewDense(m, n, nil)
	if len(elems) < 2 {
		return a
	}
	raw := a.RawMatrix()
	for e := range raw.Data {
		p := (2 * e) % (len(elems) - len(elems)%2)
		raw.Data[e] = math.Ldexp(float64(int8(elems[p])), 8*int(int8(elems[p+1])))
	}
	return a
}

// SingularValues returns the singular values of a small a, non-increasing,
// from gonum's unblocked Golub–Kahan SVD (no singular vectors, so none of
// gonum's blocked Householder code runs): the reference for the fuzz
// targets' Eckart–Young checks.
func SingularValues(a mat.Matrix) []float64 {
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDNone) {
		return nil
	}
	return svd.Values(nil)
}

// UniformDraw returns the uniform sampler's draw of l of p rows from seed
// as lowrank.SeededBatcher documents it (sampling.Uniform: math/rand/v2's
// rand.New(rand.NewPCG(seed, seed)) and a partial Fisher–Yates shuffle,
// j = i + IntN(p − i)), written out independently of the sampler, for the
// tests of backends that draw it themselves.
func UniformDraw(seed uint64, p, l int) []int {
	rng := rand.New(rand.NewPCG(seed, seed))
	perm := make([]int, p)
	for i := range perm {
		perm[i] = i
	}
	for i := range l {
		j := i + rng.IntN(p-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:l]
}
