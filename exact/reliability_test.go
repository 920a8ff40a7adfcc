package exact_test

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/exact"
	"github.com/loract/loract/internal/householder"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

var (
	longRun  = flag.Bool("exact.long", false, "run TestTruncatedSVDRankDeficient on 10,000 matrices instead of 300")
	longSeed = flag.Uint64("exact.seed", 2024, "seed of TestTruncatedSVDRankDeficient's matrices")
)

// knownSVD is a test matrix with exactly known singular values (up to the
// rounding of its construction, see rankDeficient).
type knownSVD struct {
	desc  string
	a     *mat.Dense
	sigma []float64 // min(m,n) values, non-increasing, zero beyond the rank
	exact bool      // sigma are the singular values (else only rank and σ₁)
}

// orthonormalRows returns an m×r matrix with orthonormal columns whose
// rows outside a random subset of max(r, m') rows are exactly zero (so
// that the Gram matrices and the Householder vectors of the SVD have exact
// zeros): a householder.QR of a Gaussian m'×r block, scattered.
func orthonormalRows(rng *rand.Rand, m, r int) []float64 {
	x := make([]float64, m*r)
	if r == 0 {
		return x
	}
	mp := m
	if rng.IntN(2) == 0 {
		mp = r + rng.IntN(m-r+1)
	}
	rows := rng.Perm(m)[:mp]
	sort.Ints(rows)
	q := blas64.General{Rows: mp, Cols: r, Stride: r, Data: make([]float64, mp*r)}
	for i := range q.Data {
		q.Data[i] = rng.NormFloat64()
	}
	householder.QR(q, blas64.General{})
	for k, i := range rows {
		copy(x[i*r:(i+1)*r], q.Data[k*r:(k+1)*r])
	}
	return x
}

// randomSpectrum returns r positive non-increasing values with σ₁ = 1 of
// one of several hard kinds: flat (one r-fold value), two levels far
// apart, small integer multiplicities, uniform, geometric over up to 15
// decades.
func randomSpectrum(rng *rand.Rand, r int) ([]float64, string) {
	s := make([]float64, r)
	kind := rng.IntN(5)
	names := [...]string{"flat", "two-level", "multiplicities", "uniform", "geometric"}
	lo := math.Pow(10, -float64(1+rng.IntN(14)))
	decades := 15 * rng.Float64()
	for j := range s {
		switch kind {
		case 0:
			s[j] = 1
		case 1:
			s[j] = 1
			if j >= max(1, r/2) {
				s[j] = lo
			}
		case 2:
			s[j] = float64(1 + rng.IntN(3))
		case 3:
			s[j] = rng.Float64()
		case 4:
			s[j] = math.Pow(10, -decades*float64(j)/float64(max(r-1, 1)))
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	if r > 0 && s[0] > 0 {
		s1 := s[0]
		for j := range s {
			s[j] /= s1
		}
	}
	for j := range s {
		s[j] = max(s[j], 1e-300) // uniform can draw 0: keep the rank exact
	}
	return s, names[kind]
}

// rankDeficient draws a matrix of the property test: shape up to
// maxDim×maxDim (a third of them at most 10×10), rank 0…min(m,n) (half of
// them ≤ 3), either
//   - X·diag(σ)·Yᵀ with X, Y orthonormal with exact zero rows and σ from
//     randomSpectrum: singular values known (exact = true), or
//   - a sum of r outer products u·vᵀ of vectors with exact zeros, Gaussian
//     or small integers (the audit's rank-1 family): rank r known, and
//     σ₁ = ‖u‖·‖v‖ for r = 1.
func rankDeficient(rng *rand.Rand, maxDim int) knownSVD {
	dim := func() int {
		if rng.IntN(3) == 0 {
			return 1 + rng.IntN(min(10, maxDim))
		}
		return 1 + rng.IntN(maxDim)
	}
	m, n := dim(), dim()
	p := min(m, n)
	r := rng.IntN(p + 1)
	if rng.IntN(2) == 0 {
		r = min(p, rng.IntN(4))
	}
	a := mat.NewDense(m, n, nil)
	sigma := make([]float64, p)
	if rng.IntN(4) != 0 {
		x, y := orthonormalRows(rng, m, r), orthonormalRows(rng, n, r)
		s, kind := randomSpectrum(rng, r)
		for i := range m {
			for j := range n {
				var v float64
				for l := range r {
					v += x[i*r+l] * s[l] * y[j*r+l]
				}
				a.Set(i, j, v)
			}
		}
		copy(sigma, s)
		return knownSVD{fmt.Sprintf("%d×%d rank %d %s", m, n, r, kind), a, sigma, true}
	}
	integer := rng.IntN(2) == 0
	vecOf := func(l int) []float64 {
		v := make([]float64, l)
		for i := range v {
			if rng.IntN(3) == 0 {
				continue
			}
			if integer {
				v[i] = float64(rng.IntN(7) - 3)
			} else {
				v[i] = rng.NormFloat64()
			}
		}
		return v
	}
	var s1 float64
	for range r {
		u, v := vecOf(m), vecOf(n)
		var nu, nv float64
		for i := range m {
			nu += u[i] * u[i]
			for j := range n {
				a.Set(i, j, a.At(i, j)+u[i]*v[j])
			}
		}
		for _, x := range v {
			nv += x * x
		}
		s1 = math.Sqrt(nu) * math.Sqrt(nv)
	}
	if r == 1 {
		sigma[0] = s1
	}
	kind := "gaussian"
	if integer {
		kind = "integer"
	}
	return knownSVD{fmt.Sprintf("%d×%d rank ≤ %d outer products (%s)", m, n, r, kind), a, sigma, r <= 1}
}

// checkSVD asserts the properties of the thin SVD f of a (k = min(m,n)),
// against the known singular values c.sigma when c.exact. It returns false
// if any failed.
func checkSVD(t *testing.T, c knownSVD, f *lowrank.SVD, rng *rand.Rand) bool {
	t.Helper()
	a := c.a
	m, n := a.Dims()
	p := min(m, n)
	d := float64(max(m, n))
	ok := true
	got := f.Values(nil)
	na := frob(a)
	s1 := max(na, 0) // σ₁ ≤ ‖A‖_F: the absolute scale of every σ tolerance
	if c.exact {
		s1 = c.sigma[0]
	}
	for j, s := range got {
		ok = assert.False(t, math.IsNaN(s) || math.IsInf(s, 0), "%s: σ_%d = %v", c.desc, j, s) && ok
		ok = assert.GreaterOrEqual(t, s, 0.0, "%s: σ_%d", c.desc, j) && ok
		if j > 0 {
			ok = assert.LessOrEqual(t, s, got[j-1], "%s: σ not non-increasing at %d", c.desc, j) && ok
		}
	}
	// U and V: the rounding of dot products of length max(m,n) plus the
	// O(n·ε) of the Householder-based eigenvectors and completions
	// (TestTruncatedSVDProperties): 4·max(m,n)·ε.
	orthTol := 4 * d * eps
	eu, ev := testmat.OrthError(f.UView()), testmat.OrthError(f.VView())
	ok = assert.LessOrEqual(t, eu, orthTol, "%s: ‖UᵀU − I‖", c.desc) && ok
	ok = assert.LessOrEqual(t, ev, orthTol, "%s: ‖VᵀV − I‖", c.desc) && ok

	// The construction rounds at O(max(m,n)·ε·σ₁) (orthonormality of X and
	// Y to 4·max(m,n)·ε, sums of r terms); the SVD's backward error is
	// ≤ 8·max(m,n)·ε·‖A‖ (the constant of TestTruncatedSVDProperties).
	// Weyl: |σ_j − σ_j,exact| ≤ both, 16·max(m,n)·ε·σ₁.
	tolS := 16 * d * eps * s1
	if c.exact {
		for j := range p {
			ok = assert.InDelta(t, c.sigma[j], got[j], tolS, "%s: σ_%d", c.desc, j) && ok
		}
	} else {
		// Exact rank r = count of non-zero sigma... unknown beyond
		// σ₁: the identity ‖A‖_F² = Σσ_j² (the SVD preserves the
		// Frobenius norm, to its backward error).
		var ss float64
		for _, s := range got {
			ss += s * s
		}
		ok = assert.InDelta(t, na, math.Sqrt(ss), 16*d*eps*na, "%s: √Σσ² vs ‖A‖_F", c.desc) && ok
	}

	// Backward error ‖A − UΣVᵀ‖_F ≤ 16·max(m,n)·ε·‖A‖_F, as in
	// TestTruncatedSVDProperties.
	var rec, diff mat.Dense
	f.Reconstruct(&rec)
	diff.Sub(a, &rec)
	ok = assert.LessOrEqual(t, frob(&diff), 16*d*eps*na, "%s: ‖A − UΣVᵀ‖_F", c.desc) && ok

	// Eckart–Young: no rank-k matrix is closer to A than √(Σ_{j≥k} σ_j²),
	// and the truncated SVD attains it. The computed error differs from
	// the exact error of the exact construction by the rounding of the
	// construction and of forming U_kΣ_kV_kᵀ and the difference, both
	// within the reconstruction budget 16·max(m,n)·ε·‖A‖_F.
	if c.exact && p > 1 {
		k := 1 + rng.IntN(p-1)
		u := mat.DenseCopyOf(f.UView()).Slice(0, m, 0, k)
		v := mat.DenseCopyOf(f.VView()).Slice(0, n, 0, k)
		var us, bk mat.Dense
		us.Apply(func(_, j int, x float64) float64 { return x * got[j] }, u)
		bk.Mul(&us, v.T())
		var dk mat.Dense
		dk.Sub(a, &bk)
		var opt float64
		for _, s := range c.sigma[k:] {
			opt += s * s
		}
		opt = math.Sqrt(opt)
		ek := frob(&dk)
		ok = assert.GreaterOrEqual(t, ek, opt-16*d*eps*na, "%s: rank-%d error below the Eckart–Young optimum", c.desc, k) && ok
		ok = assert.LessOrEqual(t, ek, opt+16*d*eps*na, "%s: rank-%d error above the optimum", c.desc, k) && ok
	}
	return ok
}

// truncatedSVDNoPanic is exact.TruncatedSVD with a panic turned into an
// error, so that a long property run reports every failing matrix.
func truncatedSVDNoPanic(a mat.Matrix, k int) (f *lowrank.SVD, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return exact.TruncatedSVD(a, k)
}

// TestTruncatedSVDRankDeficient is the property test of the reliability
// issue: random rank-deficient matrices, ranks 0…min(m,n), shapes up to
// 200×200, with exact zeros in their factors. 300 matrices by default;
// -exact.long runs the 10,000 (docs/reliability.md records the
// run), -exact.seed draws another set.
func TestTruncatedSVDRankDeficient(t *testing.T) {
	count := 300
	if *longRun {
		count = 10000
	}
	rng := rand.New(rand.NewPCG(*longSeed, 11))
	start := time.Now()
	failed := 0
	for it := range count {
		c := rankDeficient(rng, 200)
		m, n := c.a.Dims()
		f, err := truncatedSVDNoPanic(c.a, min(m, n))
		if !assert.NoError(t, err, "matrix %d: %s", it, c.desc) {
			failed++
			continue
		}
		if !checkSVD(t, c, f, rng) {
			failed++
			t.Logf("matrix %d failed: %s", it, c.desc)
			if failed > 20 {
				t.Fatal("too many failures")
			}
		}
	}
	t.Logf("%d matrices, %d failed, %v", count, failed, time.Since(start))
}

// TestTruncatedSVDReproducers runs the inputs of the audit: the 8×7
// matrix that gave σ = [1e8, NaN, …] with a nil error, the zero matrix
// (rank 0) and a rank-1 matrix, each in both orientations.
func TestTruncatedSVDReproducers(t *testing.T) {
	r87 := mat.NewDense(8, 7, nil)
	r87.SetRow(0, []float64{10, 10, 10, 0, -1, 1, -1})
	r87.SetRow(1, []float64{0.5, 2, -3, 1e8, 3, 7, 1})
	// Its two non-zero rows are orthogonal up to 0.5·10+2·10−3·10−3+7−1 = −2
	// (against norms ≈ 17.4 and 1e8), so σ₁ ≈ 1e8, σ₂ ≈ 17.4, and the rest
	// are zero; σ₁² + σ₂² = ‖A‖_F² and σ₁·σ₂ = √(det of the 2×2 Gram
	// matrix of the rows), both exact identities.
	n1, n2, d12 := 300.0+1+1+1, 0.25+4+9+1e16+9+49+1, -2.0
	gsum, gdet := n1+n2, n1*n2-d12*d12
	disc := math.Sqrt(gsum*gsum - 4*gdet)
	s1sq := (gsum + disc) / 2
	s2sq := gdet / s1sq
	u := []float64{1, -2, 0, 3, 0}
	v := []float64{0.5, 0, -1, 4}
	rank1 := mat.NewDense(5, 4, nil)
	for i := range 5 {
		for j := range 4 {
			rank1.Set(i, j, u[i]*v[j])
		}
	}
	cases := []knownSVD{
		{"8×7 reproducer", r87, []float64{math.Sqrt(s1sq), math.Sqrt(s2sq), 0, 0, 0, 0, 0}, true},
		{"zero 6×4", mat.NewDense(6, 4, nil), make([]float64, 4), true},
		{"zero 1×1", mat.NewDense(1, 1, nil), make([]float64, 1), true},
		{"rank-1 5×4", rank1, []float64{math.Sqrt(14) * math.Sqrt(17.25), 0, 0, 0}, true},
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range cases {
		for _, trans := range []bool{false, true} {
			cc := c
			if trans {
				cc.a = mat.DenseCopyOf(c.a.T())
				cc.desc += "ᵀ"
			}
			t.Run(cc.desc, func(t *testing.T) {
				m, n := cc.a.Dims()
				f, err := exact.TruncatedSVD(cc.a, min(m, n))
				require.NoError(t, err)
				checkSVD(t, cc, f, rng)
			})
		}
	}
}

// scaleBase returns the matrices of the scale tests: Gaussian, graded,
// rank-deficient with zeros, and the 8×7 reproducer.
func scaleBase() []knownSVD {
	rng := rand.New(rand.NewPCG(17, 18))
	var cs []knownSVD
	for len(cs) < 3 {
		c := rankDeficient(rng, 12)
		if m, n := c.a.Dims(); c.exact && min(m, n) > 1 {
			cs = append(cs, c)
		}
	}
	g := mat.NewDense(9, 6, nil)
	for i := range 9 {
		for j := range 6 {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	r87 := mat.NewDense(8, 7, nil)
	r87.SetRow(0, []float64{10, 10, 10, 0, -1, 1, -1})
	r87.SetRow(1, []float64{0.5, 2, -3, 1e8, 3, 7, 1})
	cs = append(cs, knownSVD{desc: "gaussian 9×6", a: g}, knownSVD{desc: "8×7 reproducer", a: r87})
	cs = append(cs, knownSVD{desc: "gaussian 6×9", a: mat.DenseCopyOf(g.T())})
	// Small integers: exact at every scale down to max|a_ij| = 3·2⁻¹⁰⁷⁴.
	ints := mat.NewDense(6, 5, nil)
	for i := range 6 {
		for j := range 5 {
			ints.Set(i, j, float64((i*j+i+2*j)%7-3))
		}
	}
	cs = append(cs, knownSVD{desc: "integers 6×5", a: ints})
	return cs
}

// TestTruncatedSVDScaleInvariance checks TruncatedSVD(2^e·A) =
// 2^e·TruncatedSVD(A) bit for bit — σ scaled, U and V identical — for
// every e from −1070 to 1020 for which 2^e·A is exact (the function scales
// by powers of two, exactly), across the old failure ranges (max|a_ij| in
// [1e-120, 1e-62] ∪ [1e76, 2.6e120] panicked) and subnormal maxima.
func TestTruncatedSVDScaleInvariance(t *testing.T) {
	for _, c := range scaleBase() {
		m, n := c.a.Dims()
		p := min(m, n)
		f0, err := exact.TruncatedSVD(c.a, p)
		require.NoError(t, err, c.desc)
		var amax float64
		for i := range m {
			for j := range n {
				amax = max(amax, math.Abs(c.a.At(i, j)))
			}
		}
		_, ea := math.Frexp(amax)
		tested := 0
		lo, hi := math.Inf(1), 0.0
		for e := -1070 - ea; e <= 1023-ea; e += 7 {
			b := mat.NewDense(m, n, nil)
			exactScale := true
			for i := range m {
				for j := range n {
					x := math.Ldexp(c.a.At(i, j), e)
					if math.Ldexp(x, -e) != c.a.At(i, j) {
						exactScale = false
					}
					b.Set(i, j, x)
				}
			}
			if !exactScale {
				continue
			}
			tested++
			lo, hi = min(lo, math.Ldexp(amax, e)), max(hi, math.Ldexp(amax, e))
			f, err := exact.TruncatedSVD(b, p)
			require.NoError(t, err, "%s ·2^%d", c.desc, e)
			// Both are one rounding of the same σ̂·2^(e − shift), σ̂ the
			// singular value of the scaled copy: equal even where the
			// result is subnormal.
			for j, s := range f.Values(nil) {
				require.Equal(t, math.Ldexp(f0.Values(nil)[j], e), s, "%s ·2^%d σ_%d", c.desc, e, j)
			}
			require.True(t, mat.Equal(f0.UView(), f.UView()), "%s ·2^%d U", c.desc, e)
			require.True(t, mat.Equal(f0.VView(), f.VView()), "%s ·2^%d V", c.desc, e)
		}
		t.Logf("%s: %d exact scalings 2^e, max|a|·2^e from %g to %g", c.desc, tested, lo, hi)
		// The range must include both old failure ranges, and subnormal
		// maxima where the entries have few enough bits (the reproducer).
		require.Greater(t, tested, 250, c.desc)
		require.Less(t, lo, 1e-300, c.desc)
		require.Greater(t, hi, 1e300, c.desc)
		if c.desc == "8×7 reproducer" || c.desc == "integers 6×5" {
			require.Less(t, lo, 0x1p-1022, "subnormal maximum")
		}
	}
}

// TestTruncatedSVDScaled checks TruncatedSVD(s·A) = s·TruncatedSVD(A) to
// rounding for s = 10^k, k = −300…300, and for s that make max|s·a_ij|
// subnormal (down to a few units of 2⁻¹⁰⁷⁴), where s·A is rounded: σ of
// fl(s·A) lie within ‖fl(s·A) − s·A‖_F (Weyl) of s·σ(A), plus both SVDs'
// backward errors.
func TestTruncatedSVDScaled(t *testing.T) {
	for _, c := range scaleBase() {
		m, n := c.a.Dims()
		p := min(m, n)
		f0, err := exact.TruncatedSVD(c.a, p)
		require.NoError(t, err, c.desc)
		want := f0.Values(nil)
		var amax float64
		for i := range m {
			for j := range n {
				amax = max(amax, math.Abs(c.a.At(i, j)))
			}
		}
		var scales []float64
		for k := -300; k <= 300; k += 10 {
			scales = append(scales, math.Pow(10, float64(k)))
		}
		for _, sub := range []float64{1e-308, 1e-315, 1e-320, 1e-322, 2e-323} {
			scales = append(scales, sub/amax)
		}
		for _, s := range scales {
			b := mat.NewDense(m, n, nil)
			// rnd bounds ‖fl(s·A) − s·A‖_F: fl(s·a) has relative error
			// ≤ ε/2 in the normal range and absolute error ≤ 2⁻¹⁰⁷⁵ below
			// it, so the sum of squares is taken in units of 2⁻¹⁰⁷⁵.
			var rnd float64
			for i := range m {
				for j := range n {
					x := s * c.a.At(i, j)
					b.Set(i, j, x)
					e := max(math.Ldexp(math.Abs(x)*eps/2, 1075), 1)
					rnd += e * e
				}
			}
			rnd = math.Ldexp(math.Sqrt(rnd), -1075)
			f, err := exact.TruncatedSVD(b, p)
			require.NoError(t, err, "%s ·%g", c.desc, s)
			got := f.Values(nil)
			// Weyl, with the backward-error constant of
			// TestTruncatedSVDProperties for each of the two SVDs.
			// The returned σ are themselves rounded to the float64 grid,
			// ±2⁻¹⁰⁷⁵ where they are subnormal.
			tol := 2*16*float64(max(m, n))*eps*s*want[0] + rnd + 0x1p-1074
			for j := range p {
				require.False(t, math.IsNaN(got[j]) || math.IsInf(got[j], 0), "%s ·%g σ_%d = %v", c.desc, s, j, got[j])
				require.InDelta(t, s*want[j], got[j], tol, "%s ·%g σ_%d", c.desc, s, j)
			}
			require.LessOrEqual(t, testmat.OrthError(f.UView()), 4*float64(max(m, n))*eps, "%s ·%g U", c.desc, s)
			require.LessOrEqual(t, testmat.OrthError(f.VView()), 4*float64(max(m, n))*eps, "%s ·%g V", c.desc, s)
		}
	}
}

// TestTruncatedSVDOverflow checks the one finite input whose result is not
// representable: σ₁ > math.MaxFloat64, which gives ErrOverflow, not +Inf
// or NaN; just below it the result is finite.
func TestTruncatedSVDOverflow(t *testing.T) {
	a := mat.NewDense(3, 2, []float64{
		math.MaxFloat64, math.MaxFloat64,
		math.MaxFloat64, math.MaxFloat64,
		0, 0,
	})
	_, err := exact.TruncatedSVD(a, 2)
	assert.True(t, errors.Is(err, exact.ErrOverflow), "%v", err)

	// σ₁ = 2·x for the 2×2 all-x matrix: x = MaxFloat64/4 is finite.
	x := math.MaxFloat64 / 4
	b := mat.NewDense(2, 2, []float64{x, x, x, x})
	f, err := exact.TruncatedSVD(b, 2)
	require.NoError(t, err)
	// σ₂ = 0 up to the backward error (TestTruncatedSVDProperties'
	// constant, 16·max(m,n)·ε·σ₁).
	assert.InDelta(t, 2*x, f.Values(nil)[0], 32*eps*2*x)
	assert.InDelta(t, 0, f.Values(nil)[1], 32*eps*2*x)
}
