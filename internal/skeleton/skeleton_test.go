package skeleton

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
)

func gaussian(r, c int, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			d.Set(i, j, rng.NormFloat64())
		}
	}
	return d
}

func TestSlot(t *testing.T) {
	be := cpu.Backend{}
	var s Slot
	m, err := s.Get(be, 5, 3)
	require.NoError(t, err)
	assert.Equal(t, 15, s.Elements())
	r, c := m.Dims()
	assert.Equal(t, [2]int{5, 3}, [2]int{r, c})
	// A smaller shape is a view of the same storage: no new allocation.
	v, err := s.Get(be, 4, 2)
	require.NoError(t, err)
	v.(*mat.Dense).Set(0, 0, 7)
	assert.Equal(t, 7.0, m.(*mat.Dense).At(0, 0))
	assert.Equal(t, 15, s.Elements())
	// A larger one in either dimension grows to the largest of both.
	_, err = s.Get(be, 2, 6)
	require.NoError(t, err)
	assert.Equal(t, 5*6, s.Elements())
	s.Free(be)
	assert.Equal(t, 0, s.Elements())
}

func TestPrepareErrors(t *testing.T) {
	be := cpu.Backend{}
	a := gaussian(6, 4, 1)
	for name, c := range map[string]struct {
		k, over, q int
		o          lowrank.Orientation
		want       error
	}{
		"k=0":             {0, 0, 0, lowrank.OrientAuto, lowrank.ErrRank},
		"k>min":           {5, 0, 0, lowrank.OrientAuto, lowrank.ErrRank},
		"negative over":   {2, -1, 0, lowrank.OrientAuto, lowrank.ErrOption},
		"negative q":      {2, 0, -3, lowrank.OrientAuto, lowrank.ErrOption},
		"bad orientation": {2, 0, 0, lowrank.Orientation(7), lowrank.ErrOption},
	} {
		_, err := Prepare(&Scratch{}, be, a, c.k, Params{Oversample: c.over, PowerIters: c.q}, c.o)
		assert.ErrorIs(t, err, c.want, name)
	}
	for _, tol := range []float64{-0.1, 1, math.NaN(), math.Inf(1)} {
		_, err := Prepare(&Scratch{}, be, a, 2, Params{Tolerance: tol}, lowrank.OrientAuto)
		assert.ErrorIs(t, err, lowrank.ErrOption, "tolerance %v", tol)
	}
	boom := errors.New("the method's own option")
	_, err := Prepare(&Scratch{}, be, a, 2, Params{Err: boom}, lowrank.OrientAuto)
	assert.ErrorIs(t, err, boom)
	_, err = Prepare(&Scratch{}, be, &mat.Dense{}, 1, Params{}, lowrank.OrientAuto)
	assert.ErrorIs(t, err, lowrank.ErrEmpty)
	bad := &lowrank.Dense32{Rows: 3, Cols: 3, Stride: 3, Data: make([]float32, 5)}
	_, err = Prepare(&Scratch{}, be, bad, 1, Params{}, lowrank.OrientAuto)
	assert.ErrorIs(t, err, lowrank.ErrShape, "short Dense32")
	a.Set(4, 1, math.Inf(1))
	_, err = Prepare(&Scratch{}, be, a, 2, Params{}, lowrank.OrientAuto)
	var nf *lowrank.NotFiniteError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, [2]int{4, 1}, [2]int{nf.Row, nf.Col})
}

func TestPrepareShapes(t *testing.T) {
	be := cpu.Backend{}
	a := gaussian(9, 4, 2)
	pr, err := Prepare(&Scratch{}, be, a, 2, Params{Oversample: math.MaxInt}, lowrank.OrientAuto)
	require.NoError(t, err, "oversampling by MaxInt must not overflow")
	assert.Equal(t, Problem{A: a, M: 9, N: 4, Trans: true, P: 4, S: 9, K: 2, L: 4, Scale: 1, Copied: 1, SquaredNormA: pr.SquaredNormA}, pr)
	pr, err = Prepare(&Scratch{}, be, a, 2, Params{Oversample: 3}, lowrank.OrientRows)
	require.NoError(t, err)
	assert.Equal(t, [5]int{9, 4, 2, 4, 0}, [5]int{pr.P, pr.S, pr.K, pr.L, boolInt(pr.Trans)}, "ℓ = k + p capped at min(P, S) = 4")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPrepareScale checks the two scaling regimes: for max|a_ij| outside
// [2⁻¹⁶, 2¹⁶] the problem gets the power of two that brings it into
// [1, 2) (clamped to a normal float64 at the very ends of the range);
// beyond [2⁻¹⁰⁰, 2¹⁰⁰] the input is replaced by a scaled copy. Either way
// SquaredNormA is exactly that of the scaled matrix.
func TestPrepareScale(t *testing.T) {
	be := cpu.Backend{}
	a := gaussian(7, 5, 3)
	base, err := Prepare(&Scratch{}, be, a, 2, Params{}, lowrank.OrientAuto)
	require.NoError(t, err)
	assert.Equal(t, 1.0, base.Scale, "ordinary inputs are not scaled")
	assert.Equal(t, 1.0, base.Copied)
	amaxA := math.Max(mat.Max(a), -mat.Min(a))
	for _, e := range []int{-1070, -1000, -600, -200, -99, -20, 20, 99, 200, 600, 1000} {
		var s mat.Dense
		s.Scale(math.Ldexp(1, e), a)
		var sc Scratch
		pr, err := Prepare(&sc, be, &s, 2, Params{}, lowrank.OrientAuto)
		require.NoError(t, err, "2^%d", e)
		ns := pr.NormScale()
		scaled := amaxA * math.Ldexp(1, e) * ns
		if e > -1022 { // no subnormal entries: exact
			assert.True(t, scaled >= 1 && scaled < 2, "2^%d: scaled max %v in [1, 2)", e, scaled)
			assert.Equal(t, base.SquaredNormA*math.Pow(ns*math.Ldexp(1, e), 2), pr.SquaredNormA, "2^%d", e)
		} else {
			assert.Equal(t, 0x1p1023, ns, "the scale of subnormal entries is clamped")
			assert.Greater(t, pr.SquaredNormA, 0.0)
		}
		copied := e < -99 || e > 99
		assert.Equal(t, copied, pr.Copied != 1, "2^%d: scaled copy", e)
		if copied {
			assert.Equal(t, 1.0, pr.Scale, "a copy needs no product scaling")
			assert.NotSame(t, &s, pr.A, "the copy replaces the input")
			got := pr.A.(*mat.Dense)
			assert.InDelta(t, scaled, math.Max(mat.Max(got), -mat.Min(got)), 0, "2^%d", e)
			assert.Positive(t, sc.Elements(), "the copy lives in the scratch")
		} else {
			assert.Same(t, &s, pr.A, "2^%d: no copy", e)
		}
	}
}

func TestScaleBy(t *testing.T) {
	be := cpu.Backend{}
	a := gaussian(3, 3, 4)
	var b, want mat.Dense
	b.Scale(0x1p1000, a)
	// (2⁻⁷⁰⁰)² = 2⁻¹⁴⁰⁰ is not a float64: ScaleBy applies it in steps,
	// each exact while the result is a normal number.
	require.NoError(t, ScaleBy(be, &b, 0x1p-700, 2))
	want.Scale(0x1p-400, a)
	assert.True(t, mat.Equal(&want, &b), "a·2¹⁰⁰⁰·(2⁻⁷⁰⁰)² = a·2⁻⁴⁰⁰ exactly")
}

func TestRankForTolerance(t *testing.T) {
	// ‖A‖² = 10, λ = σ(B)² = 6, 3, 0.5: errors² 4, 1, 0.5 at k = 1, 2, 3.
	lam := []float64{6, 3, 0.5}
	for _, c := range []struct {
		tol  float64
		k    int
		met  bool
		name string
	}{
		{math.Sqrt(0.45), 1, true, "error² 4 ≤ 4.5"},
		{math.Sqrt(0.35), 2, true, "error² 1 ≤ 3.5 at k = 2"},
		{math.Sqrt(0.1), 2, true, "1 ≤ 1"},
		{math.Sqrt(0.06), 3, true, "0.5 ≤ 0.6"},
		{math.Sqrt(0.04), 3, false, "0.5 > 0.4 at every rank"},
	} {
		k, met := RankForTolerance(10, lam, c.tol)
		assert.Equal(t, c.k, k, c.name)
		assert.Equal(t, c.met, met, c.name)
	}
}

// TestFinishQBTolerance checks the tolerance path of FinishQB on an exact
// rank-3 matrix: a tolerance above the rank-2 error truncates, one below
// every achievable error returns the full rank with ErrTolerance.
func TestFinishQBTolerance(t *testing.T) {
	be := cpu.Backend{}
	u, v := orthonormal(20, 3, 5), orthonormal(12, 3, 6)
	var us, a mat.Dense
	us.Mul(u, mat.NewDiagDense(3, []float64{4, 2, 1}))
	a.Mul(&us, v.T())
	pr, err := Prepare(&Scratch{}, be, &a, 3, Params{}, lowrank.OrientRows)
	require.NoError(t, err)
	q := mat.DenseCopyOf(u) // the exact range
	var sc Scratch
	var f lowrank.Factors
	pr.Tol = 0.3 // rank 2 leaves 1/√21 ≈ 0.218
	require.NoError(t, FinishQB(&sc, be, &f, pr, q))
	assert.Equal(t, 2, f.Rank())
	// ε·√(m·n)-level rounding of the products.
	assert.InDelta(t, 1/math.Sqrt(21), f.RelError(), 1e-12)
	pr.K = 2
	pr.Tol = 0.1
	err = FinishQB(&sc, be, &f, pr, q)
	assert.ErrorIs(t, err, lowrank.ErrTolerance)
	assert.Equal(t, 2, f.Rank(), "the rank-K result comes with the error")
}

// TestFinishQBSpectrum: the reported spectrum is σ(B)² of the full-width
// sketch, asked for (ℓ = K) or not (ℓ > K), empty on the fast path, and
// each truncation's error follows from it.
func TestFinishQBSpectrum(t *testing.T) {
	be := cpu.Backend{}
	u, v := orthonormal(20, 3, 5), orthonormal(12, 3, 6)
	var us, a mat.Dense
	us.Mul(u, mat.NewDiagDense(3, []float64{4, 2, 1}))
	a.Mul(&us, v.T())
	q := mat.DenseCopyOf(u) // the exact range: σ(B) = σ(A)
	var sc Scratch
	var f lowrank.Factors
	pr, err := Prepare(&Scratch{}, be, &a, 3, Params{}, lowrank.OrientRows)
	require.NoError(t, err)
	require.NoError(t, FinishQB(&sc, be, &f, pr, q))
	assert.Empty(t, f.Spectrum, "ℓ = K without Spectrum: no eigen-decomposition")
	for _, tc := range []struct{ k, l int }{{3, 3}, {1, 3}, {2, 3}} {
		pr, err := Prepare(&Scratch{}, be, &a, tc.k, Params{Spectrum: true, Oversample: tc.l - tc.k}, lowrank.OrientRows)
		require.NoError(t, err)
		require.NoError(t, FinishQB(&sc, be, &f, pr, q))
		require.Equal(t, tc.k, f.Rank())
		require.Len(t, f.Spectrum, tc.l)
		// The eigenvalues of the 3×3 Gram matrix of B, accurate to
		// ε·‖A‖² ≈ 1e-14 relative to σ₁² = 16.
		for i, want := range []float64{16, 4, 1} {
			assert.InDelta(t, want, f.Spectrum[i], 1e-12, "k=%d σ_%d²", tc.k, i+1)
		}
		var kept float64
		for _, v := range f.Spectrum[:tc.k] {
			kept += v
		}
		assert.InDelta(t, f.RelError(), lowrank.ErrorFromSquaredNorms(f.SquaredNormA, kept), 1e-7,
			"the truncation's error from the spectrum (norm identity: √(ε·n) ≈ 1e-7)")
	}
}

func orthonormal(m, k int, seed uint64) *mat.Dense {
	var qr mat.QR
	qr.Factorize(gaussian(m, k, seed))
	var q mat.Dense
	qr.QTo(&q)
	return mat.DenseCopyOf(q.Slice(0, m, 0, k))
}

func TestFlipAndHost(t *testing.T) {
	assert.Equal(t, lowrank.OrientCols, Flip(lowrank.OrientRows, true))
	assert.Equal(t, lowrank.OrientRows, Flip(lowrank.OrientCols, true))
	assert.Equal(t, lowrank.OrientAuto, Flip(lowrank.OrientAuto, true))
	assert.Equal(t, lowrank.OrientRows, Flip(lowrank.OrientRows, false))
	a := gaussian(8, 5, 7)
	// A method whose basis is the identity on op(A)'s rows: an exact QB.
	identity := func(be lowrank.Backend) Method {
		m := Method{Backend: be, Scratch: &Scratch{}}
		m.Basis = func(h lowrank.Matrix, k int, o lowrank.Orientation) (Problem, lowrank.Matrix, error) {
			pr, err := Prepare(&Scratch{}, be, h, k, Params{}, o)
			if err != nil {
				return pr, nil, err
			}
			q := mat.NewDense(pr.P, pr.P, nil)
			for i := range pr.P {
				q.Set(i, i, 1)
			}
			pr.K, pr.L = pr.P, pr.P
			return pr, q, nil
		}
		return m
	}
	for _, in := range []mat.Matrix{a, a.T()} {
		f, err := HostQB(in, 5, identity)
		require.NoError(t, err)
		r, c := in.Dims()
		fr, fc := f.Dims()
		assert.Equal(t, [2]int{r, c}, [2]int{fr, fc}, "the result is oriented to the caller's matrix")
		var rec mat.Dense
		f.Reconstruct(&rec)
		assert.True(t, mat.EqualApprox(&rec, in, 1e-14))
		s, err := HostSVD(in, 5, identity)
		require.NoError(t, err)
		sr, sc := s.Dims()
		assert.Equal(t, [2]int{r, c}, [2]int{sr, sc})
		assert.InDelta(t, 0, lowrank.RelError(in, s), 1e-14)
	}
	failing := func(be lowrank.Backend) Method {
		return Method{Backend: be, Scratch: &Scratch{}, Basis: func(lowrank.Matrix, int, lowrank.Orientation) (Problem, lowrank.Matrix, error) {
			return Problem{}, nil, errors.New("boom")
		}}
	}
	_, err := HostQB(a, 2, failing)
	assert.EqualError(t, err, "boom")
	_, err = HostSVD(a, 2, failing)
	assert.EqualError(t, err, "boom")
}

// symEigBackend is the CPU backend with the lowrank.SymEigener
// capability, by gonum's EigenSym; it counts its calls.
type symEigBackend struct {
	cpu.Backend
	calls int
}

func (b *symEigBackend) SymEig(w lowrank.Matrix, lam []float64, g lowrank.Matrix) error {
	b.calls++
	l, _ := g.Dims()
	var es mat.EigenSym
	if !es.Factorize(mat.NewSymDense(l, mat.DenseCopyOf(g.(*mat.Dense)).RawMatrix().Data), true) {
		return lowrank.ErrNoConvergence
	}
	vals := es.Values(nil)
	var vec mat.Dense
	es.VectorsTo(&vec)
	wd := w.(*mat.Dense)
	for j := range l { // ascending → non-increasing
		lam[j] = max(vals[l-1-j], 0)
		for i := range l {
			wd.Set(i, j, vec.At(i, l-1-j))
		}
	}
	return nil
}

// TestFinishQBSymEig: with a backend that has SymEig, the truncation of
// an oversampled QB calls it instead of SVD, and the result is the SVD
// path's up to the rounding of the two eigensolvers (ε·‖A‖² relative to
// σ₁², as in TestFinishQBSpectrum).
func TestFinishQBSymEig(t *testing.T) {
	u, v := orthonormal(20, 3, 5), orthonormal(12, 3, 6)
	var us, a mat.Dense
	us.Mul(u, mat.NewDiagDense(3, []float64{4, 2, 1}))
	a.Mul(&us, v.T())
	q := mat.DenseCopyOf(u)
	se := &symEigBackend{}
	for _, k := range []int{1, 2} {
		var fs, fe lowrank.Factors
		var sc1, sc2 Scratch
		pr, err := Prepare(&Scratch{}, cpu.Backend{}, &a, k, Params{Oversample: 3 - k}, lowrank.OrientRows)
		require.NoError(t, err)
		require.NoError(t, FinishQB(&sc1, cpu.Backend{}, &fs, pr, q))
		calls := se.calls
		require.NoError(t, FinishQB(&sc2, se, &fe, pr, q))
		assert.Equal(t, calls+1, se.calls, "k=%d: SymEig used", k)
		assert.InDeltaSlice(t, fs.Spectrum, fe.Spectrum, 1e-12, "k=%d: spectra", k)
		assert.InDelta(t, fs.RelError(), fe.RelError(), 1e-12, "k=%d: errors", k)
		// The same rank-k QB: Q·B agree (the eigenvectors' signs cancel).
		var ps, pe mat.Dense
		ps.Mul(fs.Q.(*mat.Dense), fs.B.(*mat.Dense))
		pe.Mul(fe.Q.(*mat.Dense), fe.B.(*mat.Dense))
		assert.True(t, mat.EqualApprox(&ps, &pe, 1e-12), "k=%d: Q·B", k)
	}
}
