// Package testmat generates test matrices with exactly known singular
// values, for tests, benchmarks and the comparisons with peers.
//
// Incoherent matrices are A = W_m·[diag(σ); 0]·W_nᵀ where W_p = Π·D·C_p·P
// is the orthonormal DCT-II basis of size p with randomly signed (D) and
// randomly permuted (Π) rows and randomly permuted (P) columns: exactly orthogonal, and incoherent (every
// entry of W_p is at most √(2/p) in magnitude), built with fast cosine
// transforms in O(m·n·log(m·n)) time, so 32768×4096 takes seconds. The
// singular values of A are exactly σ up to rounding (about ε·√(m+n)·σ₁).
// Coherent matrices put the dominant directions on a few coordinates.
package testmat

import (
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/dsp/fourier"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// PowerLaw returns σ_j = (j+1)^−alpha + floor, j = 0..n−1.
func PowerLaw(n int, alpha, floor float64) []float64 {
	s := make([]float64, n)
	for j := range s {
		s[j] = math.Pow(float64(j+1), -alpha) + floor
	}
	return s
}

// Exponential returns σ_j = exp(−rate·j).
func Exponential(n int, rate float64) []float64 {
	s := make([]float64, n)
	for j := range s {
		s[j] = math.Exp(-rate * float64(j))
	}
	return s
}

// RankPlusNoise returns r values 1 followed by n−r values noise: an exact
// rank-r matrix plus a flat noise floor.
func RankPlusNoise(n, r int, noise float64) []float64 {
	s := make([]float64, n)
	for j := range s {
		if j < r {
			s[j] = 1
		} else {
			s[j] = noise
		}
	}
	return s
}

// Flat returns n ones: no low-rank structure at all.
func Flat(n int) []float64 { return RankPlusNoise(n, n, 1) }

// Gap returns σ_j = 1/(j+1) for j < k and ratio/(j+1) beyond: a spectral
// gap of size 1/ratio at k.
func Gap(n, k int, ratio float64) []float64 {
	s := PowerLaw(n, 1, 0)
	for j := k; j < n; j++ {
		s[j] *= ratio
	}
	return s
}

// ActivationLike returns the spectrum used by the benchmarks for
// activation-like matrices: a power law 1/(j+1) plus a noise floor 1e-3.
func ActivationLike(n int) []float64 { return PowerLaw(n, 1, 1e-3) }

// OptimalError returns the Eckart–Young relative Frobenius error of the
// best rank-k approximation of a matrix with singular values sigma:
// sqrt(Σ_{j≥k} σ_j² / Σ_j σ_j²). sigma need not be sorted.
func OptimalError(sigma []float64, k int) float64 {
	s := append([]float64(nil), sigma...)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	var tail, tot float64
	for j, v := range s {
		tot += v * v
		if j >= k {
			tail += v * v
		}
	}
	if tot == 0 {
		return 0
	}
	return math.Sqrt(tail / tot)
}

// basis applies the orthonormal p×p matrix W = Π·D·C to vectors.
type basis struct {
	p    int
	fft  *fourier.QuarterWaveFFT
	sign []float64
	perm []int
	// cperm permutes the columns: W·e_j = Π·D·C·e_{cperm[j]}. Without it
	// the leading singular vectors would be cosines at neighbouring
	// positions, whose restrictions to a few sampled rows are nearly
	// parallel (Chebyshev-like, exponentially ill-conditioned): uniform row
	// sampling would look far worse than on generic incoherent matrices.
	cperm []int
	scl   []float64
	tmp   []float64
	in    []float64
}

func newBasis(p int, rng *rand.Rand) *basis {
	b := &basis{p: p, sign: make([]float64, p), perm: rng.Perm(p), cperm: rng.Perm(p),
		scl: make([]float64, p), tmp: make([]float64, p), in: make([]float64, p)}
	if p > 1 {
		b.fft = fourier.NewQuarterWaveFFT(p)
	}
	for i := range b.sign {
		b.sign[i] = 1
		if rng.IntN(2) == 0 {
			b.sign[i] = -1
		}
		// Orthonormal DCT-II: row i scaled by √(1/p) (i = 0) or √(2/p).
		b.scl[i] = math.Sqrt(2 / float64(p))
	}
	b.scl[0] = math.Sqrt(1 / float64(p))
	return b
}

// apply sets dst = W·x, W = Π·D·C·P. gonum's CosSequence computes 4·M·x
// with M_ik = cos(π·i·(k+½)/p), and C = diag(scl)·M.
func (b *basis) apply(dst, x []float64) {
	if b.p == 1 {
		dst[0] = b.sign[0] * x[0]
		return
	}
	for j, v := range x {
		b.in[b.cperm[j]] = v
	}
	b.fft.CosSequence(b.tmp, b.in)
	for i, v := range b.tmp {
		dst[b.perm[i]] = b.sign[i] * b.scl[i] * v / 4
	}
}

// Incoherent returns the m×n matrix W_m·[diag(σ); 0]·W_nᵀ (see the package
// documentation), with len(sigma) ≤ min(m, n) singular values (the rest 0).
func Incoherent(m, n int, sigma []float64, seed uint64) *mat.Dense {
	if len(sigma) > min(m, n) {
		panic("testmat: more singular values than min(m, n)")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	wm, wn := newBasis(m, rng), newBasis(n, rng)
	a := mat.NewDense(m, n, nil)
	// T = [diag(σ); 0]·W_nᵀ: row j of T is σ_j·(W_n e_j)ᵀ.
	e := make([]float64, n)
	for j, s := range sigma {
		clear(e)
		e[j] = s
		wn.apply(a.RawRowView(j), e)
	}
	// A = W_m·T, column by column.
	col := make([]float64, m)
	out := make([]float64, m)
	for c := 0; c < n; c++ {
		for i := 0; i < m; i++ {
			col[i] = a.At(i, c)
		}
		wm.apply(out, col)
		for i := 0; i < m; i++ {
			a.Set(i, c, out[i])
		}
	}
	return a
}

// Coherent returns U·diag(σ)·Vᵀ with V = I (the right singular vectors are
// coordinate vectors: the dominant directions live on a few columns, like
// LLM outlier channels) and U incoherent. If rows is true, U = I instead
// (dominant directions on a few rows, like attention-sink tokens) and V is
// incoherent.
func Coherent(m, n int, sigma []float64, rows bool, seed uint64) *mat.Dense {
	if len(sigma) > min(m, n) {
		panic("testmat: more singular values than min(m, n)")
	}
	rng := rand.New(rand.NewPCG(seed, 0xc0))
	a := mat.NewDense(m, n, nil)
	if rows {
		wn := newBasis(n, rng)
		e := make([]float64, n)
		for j, s := range sigma {
			clear(e)
			e[j] = s
			wn.apply(a.RawRowView(j), e)
		}
		return a
	}
	wm := newBasis(m, rng)
	e := make([]float64, m)
	out := make([]float64, m)
	for j, s := range sigma {
		clear(e)
		e[j] = s
		wm.apply(out, e)
		for i := 0; i < m; i++ {
			a.Set(i, j, out[i])
		}
	}
	return a
}

// To32 returns a float32 copy of a.
func To32(a mat.Matrix) *lowrank.Dense32 {
	m, n := a.Dims()
	d := lowrank.NewDense32(m, n, nil)
	for i := 0; i < m; i++ {
		row := d.Row(i)
		for j := range row {
			row[j] = float32(a.At(i, j))
		}
	}
	return d
}
