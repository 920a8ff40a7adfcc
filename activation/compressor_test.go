package activation

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

func relDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(a, 2)
}

// Shapes of activations: tall (L ≫ d, the usual case), L < d, and square.
var shapes = []struct{ L, d int }{{300, 24}, {20, 48}, {40, 40}}

func TestExactLowRankRecovered(t *testing.T) {
	for _, sh := range shapes {
		for _, m := range []Method{RowSampling, Gaussian, ExactSVD} {
			x := testmat.Incoherent(sh.L, sh.d, testmat.RankPlusNoise(min(sh.L, sh.d), 4, 0), 11)
			c, err := New(Config{Method: m, Rank: Fixed(6), Precision: lowrank.Float64, MeasureError: true, Seed: 3})
			require.NoError(t, err)
			s, err := c.Compress("x", x)
			require.NoError(t, err)
			assert.Equal(t, 6, s.Rank())
			// An exactly rank-4 X is reproduced by rank 6 up to float64
			// rounding in the QR and products: ε·(L+d)·‖X‖ ≈ 1e-13.
			assert.Less(t, s.RelError(), 1e-10, "%v %v", m, sh)
			var rec mat.Dense
			require.NoError(t, s.Reconstruct(&rec))
			assert.Less(t, relDiff(x, &rec), 1e-10)
			assert.Equal(t, 6*(sh.L+sh.d)*8, s.Bytes())
			assert.Equal(t, 4*sh.L*sh.d, s.DenseBytes())
		}
	}
}

func TestErrorAgainstOptimal(t *testing.T) {
	const L, d, k = 400, 32, 8
	sigma := testmat.ActivationLike(d)
	opt := testmat.OptimalError(sigma, k)
	x := testmat.Incoherent(L, d, sigma, 5)
	errs := map[Method]float64{}
	for _, m := range []Method{RowSampling, Gaussian, ExactSVD} {
		c, err := New(Config{Method: m, Rank: Fixed(k), Oversample: 8, PowerIters: 1, Precision: lowrank.Float64, Seed: 1})
		require.NoError(t, err)
		s, err := c.Compress("x", x)
		require.NoError(t, err)
		var rec mat.Dense
		require.NoError(t, s.Reconstruct(&rec))
		e := relDiff(x, &rec)
		// RelError comes from ‖X‖² − ‖B‖², accurate to about √(ε·d) ≈ 1e-7
		// absolute (lowrank.ErrorFromNorms).
		assert.InDelta(t, e, s.RelError(), 1e-6, "%v", m)
		// No rank-k approximation beats Eckart–Young (up to rounding).
		assert.GreaterOrEqual(t, e, opt*(1-1e-9), "%v", m)
		errs[m] = e
	}
	assert.InDelta(t, opt, errs[ExactSVD], 1e-9*opt, "the exact SVD is optimal")
	// With p = 8 and q = 1 the randomized errors are within a small factor
	// of optimal: HMT's expected-error bound (1 + k/(p−1))^{1/(2q+1)} ≈ 1.3
	// for the Gaussian sketch; 1.5 leaves a margin for this one seeded draw
	// and for row sampling, which has no such guarantee on coherent
	// matrices but matches Gaussian sketching on incoherent ones.
	assert.Less(t, errs[Gaussian], 1.5*opt)
	assert.Less(t, errs[RowSampling], 1.5*opt)
}

// TestWeightGradConventions checks both layouts of a linear layer's weight
// gradient against the product with the reconstruction, for factors and
// for a stored copy, into float64 and float32 destinations, with g as a
// float64 matrix, a float32 one and a transpose view.
func TestWeightGradConventions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, sh := range shapes {
		for _, m := range []Method{RowSampling, Uncompressed} {
			x := testmat.Incoherent(sh.L, sh.d, testmat.ActivationLike(min(sh.L, sh.d)), 2)
			g := mat.NewDense(sh.L, 5, nil)
			for i := 0; i < sh.L; i++ {
				for j := 0; j < 5; j++ {
					g.Set(i, j, rng.NormFloat64())
				}
			}
			gCopy := mat.DenseCopyOf(g)
			c, err := New(Config{Method: m, Rank: Fixed(3), Precision: lowrank.Float32})
			require.NoError(t, err)
			s, err := c.Compress("x", x)
			require.NoError(t, err)
			var rec, outIn, inOut mat.Dense
			require.NoError(t, s.Reconstruct(&rec))
			outIn.Mul(g.T(), &rec) // PyTorch: W is o×d, dW = Gᵀ·X
			inOut.Mul(rec.T(), g)  // gonum: W is d×o, dW = Xᵀ·G
			var got mat.Dense
			require.NoError(t, s.WeightGradOutIn(&got, g))
			// Both are products of the same stored factors in float64,
			// grouped differently: ε·(L+d) relative.
			assert.Less(t, relDiff(&outIn, &got), 1e-12, "%v %v out×in", m, sh)
			got.Reset()
			require.NoError(t, s.WeightGradInOut(&got, g))
			assert.Less(t, relDiff(&inOut, &got), 1e-12, "%v %v in×out", m, sh)
			assert.True(t, mat.Equal(g, gCopy), "g is not modified")
			// g as float32 and as a generic transpose view take the other
			// product paths; the float32 rounding of g (and of a float32
			// destination) is relative 2⁻²⁴ per element, inside 1e-6.
			var got32, gotT mat.Dense
			require.NoError(t, s.WeightGradOutIn(&got32, testmat.To32(g)))
			assert.Less(t, relDiff(&outIn, &got32), 1e-6)
			gt := mat.DenseCopyOf(g.T())
			require.NoError(t, s.WeightGradOutIn(&gotT, gt.T()))
			assert.Less(t, relDiff(&outIn, &gotT), 1e-12)
			var d32 lowrank.Dense32
			require.NoError(t, s.WeightGradInOut(&d32, g))
			assert.Less(t, relDiff(&inOut, &d32), 1e-6, "float32 destination")
			var r32 lowrank.Dense32
			require.NoError(t, s.Reconstruct(&r32))
			assert.Less(t, relDiff(&rec, &r32), 1e-6, "float32 reconstruction")
		}
	}
}

// TestWeightGradAliasing: a destination that is the output gradient itself
// (possible when both are d×d, o = d = L) gives the right answer: the
// product goes through scratch.
func TestWeightGradAliasing(t *testing.T) {
	const n = 64
	x := testmat.Incoherent(n, n, testmat.ActivationLike(n), 3)
	for _, m := range []Method{RowSampling, Uncompressed} {
		c, err := New(Config{Method: m, Rank: Fixed(8), Precision: lowrank.Float32})
		require.NoError(t, err)
		s, err := c.Compress("x", x)
		require.NoError(t, err)
		g := testmat.Gaussian(n, n, 4)
		var want mat.Dense
		require.NoError(t, s.WeightGradOutIn(&want, mat.DenseCopyOf(g)))
		require.NoError(t, s.WeightGradOutIn(g, g))
		assert.True(t, mat.EqualApprox(&want, g, 1e-12), "%v: dst = g", m)
	}
}

func TestPrecision(t *testing.T) {
	const L, d, k = 200, 32, 6
	x := testmat.Incoherent(L, d, testmat.ActivationLike(d), 9)
	var e [3]float64
	var b [3]int
	for i, p := range []lowrank.Precision{lowrank.Float64, lowrank.Float32, lowrank.BFloat16} {
		c, err := New(Config{Rank: Fixed(k), Precision: p, MeasureError: true, Seed: 4})
		require.NoError(t, err)
		s, err := c.Compress("x", x)
		require.NoError(t, err)
		e[i], b[i] = s.RelError(), s.Bytes()
		assert.Equal(t, k*(L+d)*p.Size(), b[i])
	}
	// Rounding P and R elementwise to unit roundoff u perturbs P·R by at
	// most u·(‖P‖·‖R‖_F + ‖P‖_F·‖R‖) ≤ u·(1+√k)·‖X‖_F (R has orthonormal
	// rows), so the error grows by at most that.
	for i, p := range []lowrank.Precision{lowrank.Float32, lowrank.BFloat16} {
		bound := p.UnitRoundoff() * (1 + math.Sqrt(k))
		assert.InDelta(t, e[0], e[i+1], bound, "%v", p)
	}
}

func TestNoneStoresCopy(t *testing.T) {
	x := testmat.To32(testmat.Incoherent(50, 10, testmat.Flat(10), 1))
	c, err := New(Config{Method: Uncompressed, Precision: lowrank.Float32})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.Equal(t, 4*50*10, s.Bytes())
	assert.Equal(t, 0.0, s.RelError())
	var rec mat.Dense
	require.NoError(t, s.Reconstruct(&rec))
	for i := 0; i < 50; i++ {
		for j := 0; j < 10; j++ {
			require.Equal(t, x.At(i, j), rec.At(i, j))
		}
	}
}

func TestBreakEvenStoresDense(t *testing.T) {
	// k·(L+d) ≥ L·d: 10·(20+12) = 320 ≥ 240, factors would not save memory.
	x := testmat.Incoherent(20, 12, testmat.Flat(12), 1)
	c, err := New(Config{Rank: Fixed(10), Precision: lowrank.Float32})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.Equal(t, 12, s.Rank())
	assert.Equal(t, 4*20*12, s.Bytes())
	assert.Equal(t, 0.0, s.RelError())
}

// TestTolRank checks tolRank on spectra whose answer is known exactly
// (dyadic energies: every sum is exact), a zero matrix and a tolerance
// out of reach, and the exact SVD of X = 0 under both policies (one term
// of zeros at error 0 for the tolerance, not a miss; k terms for Fixed).
func TestTolRank(t *testing.T) {
	sq := []float64{0.5, 0.25, 0.125, 0.0625, 0.0625} // total 1
	for _, c := range []struct {
		tol        float64
		kmax, want int
	}{
		{1, 5, 1},      // discarding everything is within tol = 1
		{0.75, 5, 1},   // tail 0.5 ≤ 0.5625
		{0.5, 5, 2},    // tail 0.5 > 0.25, 0.25 ≤ 0.25 (equality passes)
		{0.25, 5, 4},   // tail 0.0625 ≤ 0.0625
		{0.1, 5, 5},    // only the whole spectrum
		{0.1, 4, 0},    // beyond kmax
		{0.1, 9, 5},    // kmax past len(sq)
		{1e-300, 5, 5}, // tail 0
	} {
		assert.Equal(t, c.want, tolRank(sq, 1, c.tol, c.kmax), "tol %g kmax %d", c.tol, c.kmax)
	}
	assert.Equal(t, 1, tolRank([]float64{0, 0, 0}, 0, 0.1, 3), "X = 0")
	assert.Equal(t, 0.875, kept(sq, 3))

	const L, d, k = 60, 20, 4
	for _, rank := range []RankPolicy{Fixed(k), Tolerance(0.2, 0)} {
		c, err := New(Config{Method: ExactSVD, Rank: rank, Precision: lowrank.Float64})
		require.NoError(t, err)
		s, err := c.Compress("zero", mat.NewDense(L, d, nil))
		require.NoError(t, err)
		want := 1
		if rank == Fixed(k) {
			want = k
		}
		assert.Equal(t, want, s.Rank(), "%v", rank)
		assert.Zero(t, s.RelError(), "%v", rank)
		assert.Zero(t, c.Stats().Total.ToleranceMisses, "%v", rank)
		require.NoError(t, s.Release())
		c.Close()
	}
}

func TestTolerance(t *testing.T) {
	const L, d, eps = 300, 40, 0.1
	sigma := testmat.ActivationLike(d)
	x := testmat.Incoherent(L, d, sigma, 3)
	kOpt := 1
	for testmat.OptimalError(sigma, kOpt) > eps {
		kOpt++
	}
	c, err := New(Config{Method: ExactSVD, Rank: Tolerance(eps, 0), Precision: lowrank.Float64, MeasureError: true})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.Equal(t, kOpt, s.Rank(), "the exact SVD finds the smallest rank")
	assert.LessOrEqual(t, s.RelError(), eps)

	for _, m := range []Method{RowSampling, Gaussian} {
		c, err := New(Config{Method: m, Rank: Tolerance(eps, 0), PowerIters: 1, Precision: lowrank.Float64, MeasureError: true})
		require.NoError(t, err)
		s, err := c.Compress("x", x)
		require.NoError(t, err)
		// The measured error meets ε up to the √(ε_mach·d) ≈ 1e-7
		// inaccuracy of the norm identity the rank was chosen by.
		assert.LessOrEqual(t, s.RelError(), eps+1e-6, "%v", m)
		// No rank below Eckart–Young's can meet ε.
		assert.GreaterOrEqual(t, s.Rank(), kOpt, "%v", m)
		// With a power iteration the sketch captures nearly the optimal
		// energy on this incoherent matrix; allow two ranks of slack for
		// this one seeded draw.
		assert.LessOrEqual(t, s.Rank(), kOpt+2, "%v", m)
	}
	_, err = New(Config{Rank: Tolerance(0, 0)})
	assert.ErrorIs(t, err, lowrank.ErrOption)
	_, err = New(Config{Rank: Fixed(0)})
	assert.ErrorIs(t, err, lowrank.ErrRank)
	_, err = New(Config{Method: Method(9)})
	assert.ErrorIs(t, err, lowrank.ErrOption)
	for _, n := range []int{-1, 3} {
		_, err = New(Config{BatchStreams: n})
		assert.ErrorIs(t, err, lowrank.ErrOption, "BatchStreams %d", n)
	}
}

func TestNotFiniteNamesLayer(t *testing.T) {
	for _, m := range []Method{RowSampling, Gaussian, ExactSVD, Uncompressed} {
		for _, v := range []float64{math.NaN(), math.Inf(1)} {
			x := testmat.Incoherent(60, 8, testmat.Flat(8), 1)
			x.Set(17, 3, v)
			c, err := New(Config{Method: m, Rank: Fixed(2)})
			require.NoError(t, err)
			s, err := c.Compress("blk3.fc1", x)
			require.Error(t, err)
			assert.Nil(t, s)
			var le *LayerError
			require.True(t, errors.As(err, &le), "%v", err)
			assert.Equal(t, "blk3.fc1", le.Layer)
			assert.Contains(t, err.Error(), `"blk3.fc1"`)
			assert.ErrorIs(t, err, lowrank.ErrNotFinite)
			var nf *lowrank.NotFiniteError
			require.True(t, errors.As(err, &nf))
			assert.Equal(t, 17, nf.Row)
			assert.Equal(t, 3, nf.Col)
			assert.Zero(t, c.Stats().Total.Live)
			assert.NoError(t, c.Join(), "a synchronous error is returned once, by Compress")
		}
	}
}

// TestOverflowingProducts: finite factors whose product lies beyond the
// destination's range give an error wrapping lowrank.ErrNotFinite (not a
// *lowrank.NotFiniteError: no input element is at fault), a NaN in the
// output gradient gives that gradient's *lowrank.NotFiniteError, and a
// product within range stays an ordinary success.
func TestOverflowingProducts(t *testing.T) {
	for _, m := range []Method{RowSampling, Uncompressed} {
		x := testmat.Incoherent(40, 6, testmat.Flat(6), 2)
		x.Scale(1e200, x) // finite in float64, ‖X‖₂ ≈ 1e200
		c, err := New(Config{Method: m, Rank: Fixed(6), Precision: lowrank.Float64})
		require.NoError(t, err)
		s, err := c.Compress("fc", x)
		require.NoError(t, err)

		var rec mat.Dense
		require.NoError(t, s.Reconstruct(&rec), "%v: X̃ ≈ X is within float64", m)
		var rec32 lowrank.Dense32
		err = s.Reconstruct(&rec32)
		require.ErrorIs(t, err, lowrank.ErrNotFinite, "%v: 1e200 beyond float32", m)
		assert.Contains(t, err.Error(), "reconstruction overflows float32")

		g := testmat.Gaussian(40, 3, 1)
		var dw mat.Dense
		require.NoError(t, s.WeightGradOutIn(&dw, g), "%v: ‖G‖·‖X‖ ≈ 1e201", m)
		g.Scale(1e120, g) // ‖G‖·‖X‖ ≈ 1e321: beyond float64
		err = s.WeightGradOutIn(&dw, g)
		require.ErrorIs(t, err, lowrank.ErrNotFinite, "%v", m)
		var nf *lowrank.NotFiniteError
		assert.False(t, errors.As(err, &nf), "%v: no element is at fault: %v", m, err)
		assert.Contains(t, err.Error(), "weight gradient overflows float64")

		g = testmat.Gaussian(40, 3, 1)
		g.Set(11, 2, math.NaN())
		err = s.WeightGradOutIn(&dw, g)
		require.True(t, errors.As(err, &nf), "%v: %v", m, err)
		assert.Equal(t, [2]int{11, 2}, [2]int{nf.Row, nf.Col})
		assert.Contains(t, err.Error(), "output gradient")
		require.NoError(t, s.Release())
		c.Close()
	}
}

func TestReleaseAndShapeErrors(t *testing.T) {
	x := testmat.Incoherent(30, 6, testmat.Flat(6), 1)
	c, err := New(Config{Rank: Fixed(2)})
	require.NoError(t, err)
	s, err := c.Compress("fc", x)
	require.NoError(t, err)

	var bad mat.Dense
	bad.ReuseAs(30, 7)
	assert.ErrorIs(t, s.Reconstruct(&bad), ErrShapeMismatch)
	assert.ErrorIs(t, s.WeightGradOutIn(&mat.Dense{}, mat.NewDense(29, 4, nil)), ErrShapeMismatch)
	var badW mat.Dense
	badW.ReuseAs(6, 4) // in×out where out×in is asked
	assert.ErrorIs(t, s.WeightGradOutIn(&badW, mat.NewDense(30, 4, nil)), ErrShapeMismatch)
	assert.NoError(t, s.WeightGradInOut(&badW, mat.NewDense(30, 4, nil)))
	assert.ErrorIs(t, s.Reconstruct(lowrank.NewDense32(30, 5, nil)), ErrShapeMismatch)
	assert.ErrorIs(t, s.Reconstruct(mat.NewVecDense(3, nil)), lowrank.ErrShape, "unsupported destination type")
	err = s.Reconstruct(&bad)
	var le *LayerError
	require.True(t, errors.As(err, &le))
	assert.Equal(t, "fc", le.Layer)

	require.NoError(t, s.Release())
	assert.ErrorIs(t, s.Release(), ErrReleased)
	assert.ErrorIs(t, s.Reconstruct(&mat.Dense{}), ErrReleased)
	assert.ErrorIs(t, s.WeightGradOutIn(&mat.Dense{}, mat.NewDense(30, 4, nil)), ErrReleased)
	assert.ErrorIs(t, s.Retain(), ErrReleased)
	_, err = c.Compress("empty", &mat.Dense{})
	assert.ErrorIs(t, err, lowrank.ErrEmpty)
}

// TestSharing: a second consumer shares a handle by saying so (Retain, or
// the same Key); equal memory alone never shares.
func TestSharing(t *testing.T) {
	x := testmat.Incoherent(64, 16, testmat.ActivationLike(16), 1)
	c, err := New(Config{Rank: Fixed(4)})
	require.NoError(t, err)
	key := Key{ID: 7, Version: 1}
	q, err := c.CompressKey("q", key, x)
	require.NoError(t, err)
	k, err := c.CompressKey("k", key, x)
	require.NoError(t, err)
	assert.Same(t, q, k)
	require.NoError(t, q.Retain()) // the v projection
	v := q
	plain, err := c.Compress("o", x) // the same memory, no key: compressed again
	require.NoError(t, err)
	assert.NotSame(t, q, plain)

	st := c.Stats()
	require.Len(t, st.Layers, 3)
	assert.Equal(t, 2, st.Total.Calls, "x compressed once under the key, once without")
	assert.Equal(t, 1, st.Layers[1].Shared)

	require.NoError(t, q.Release())
	require.NoError(t, k.Release())
	assert.Equal(t, q.Bytes()+plain.Bytes(), c.Stats().Total.Live, "live until the last consumer releases")
	require.NoError(t, v.Release())
	assert.ErrorIs(t, v.Release(), ErrReleased)
	// After the last release the key is free: a new tensor under it is
	// compressed afresh.
	again, err := c.CompressKey("q", key, x)
	require.NoError(t, err)
	assert.NotSame(t, q, again)
}

// TestReusedBuffer: a buffer overwritten with new data and compressed again
// (buffer pools and arenas do this) gets its own factors, with or without
// a key of a new version.
func TestReusedBuffer(t *testing.T) {
	const L, d, k = 256, 32, 4
	buf := testmat.To32(testmat.Incoherent(L, d, testmat.RankPlusNoise(d, k, 0), 1))
	c, err := New(Config{Rank: Fixed(k), Precision: lowrank.Float32, MeasureError: true})
	require.NoError(t, err)
	first, err := c.CompressKey("layer1.in", Key{ID: 1, Version: 1}, buf)
	require.NoError(t, err)
	var firstRec mat.Dense
	require.NoError(t, first.Reconstruct(&firstRec))
	copy(buf.Data, testmat.To32(testmat.Incoherent(L, d, testmat.RankPlusNoise(d, k, 0), 2)).Data)
	fresh := mat.DenseCopyOf(buf)
	for _, get := range []func() (*Saved, error){
		func() (*Saved, error) { return c.Compress("layer2.in", buf) },
		func() (*Saved, error) { return c.CompressKey("layer2.in", Key{ID: 1, Version: 2}, buf) },
	} {
		second, err := get()
		require.NoError(t, err)
		assert.NotSame(t, first, second)
		var rec mat.Dense
		require.NoError(t, second.Reconstruct(&rec))
		// Exact rank k: both reproduce their own data to float32 rounding
		// of the factors, (1+√k)·2⁻²⁴ relative, plus the float32 products
		// of the sketch and projection of float32 input (γ of their inner
		// dimensions L and d).
		tol := (1 + math.Sqrt(k) + L + d) * 0x1p-24
		assert.Less(t, relDiff(fresh, &rec), tol)
		assert.Less(t, second.RelError(), tol)
	}
	var rec1 mat.Dense
	require.NoError(t, first.Reconstruct(&rec1))
	assert.True(t, mat.Equal(&firstRec, &rec1), "the first handle kept its own factors")
}

func TestAccounting(t *testing.T) {
	c, err := New(Config{Rank: Fixed(2), Precision: lowrank.Float32})
	require.NoError(t, err)
	a := testmat.Incoherent(100, 10, testmat.Flat(10), 1)
	b := testmat.Incoherent(50, 20, testmat.Flat(20), 2)
	sa, err := c.Compress("a", a)
	require.NoError(t, err)
	sb, err := c.Compress("b", b)
	require.NoError(t, err)
	ba, bb := 2*(100+10)*4, 2*(50+20)*4
	st := c.Stats()
	assert.Equal(t, LayerStats{Layer: "total", Calls: 2, Live: ba + bb, Peak: ba + bb,
		DenseLive: 4 * 2000, DensePeak: 4 * 2000, Rank: 2,
		RelError: sb.RelError(), MaxRelError: max(sa.RelError(), sb.RelError()),
		MeanRelError: sa.RelError() + (sb.RelError()-sa.RelError())/2}, st.Total)
	require.NoError(t, sa.Release())
	st = c.Stats()
	assert.Equal(t, bb, st.Total.Live)
	assert.Equal(t, ba+bb, st.Total.Peak)
	assert.Equal(t, 0, st.Layers[0].Live)
	assert.Equal(t, ba, st.Layers[0].Peak)
	assert.Equal(t, 4000, st.Layers[0].DensePeak)
	c.ResetPeak()
	st = c.Stats()
	assert.Equal(t, bb, st.Total.Peak)
	assert.Equal(t, 0, st.Layers[0].Peak)
	require.NoError(t, sb.Release())
	assert.Zero(t, c.Stats().Total.Live)
	assert.Zero(t, c.Stats().Total.DenseLive)
}

func TestAsync(t *testing.T) {
	const n = 12
	xs := make([]*lowrank.Dense32, n)
	for i := range xs {
		xs[i] = testmat.To32(testmat.Incoherent(128, 16, testmat.ActivationLike(16), uint64(i)))
	}
	xs[7].Data[5*16+2] = float32(math.NaN())
	run := func(workers int) ([]*Saved, []error, error) {
		c, err := New(Config{Rank: Fixed(4), Workers: workers, Seed: 8})
		require.NoError(t, err)
		saved := make([]*Saved, n)
		errs := make([]error, n)
		for i, x := range xs {
			saved[i], errs[i] = c.Compress("layer"+string(rune('a'+i)), x)
		}
		return saved, errs, c.Join()
	}
	syncS, syncE, err := run(0)
	assert.NoError(t, err)
	asyncS, asyncE, joinErr := run(3)
	for i := range xs {
		if i == 7 {
			assert.ErrorIs(t, syncE[i], lowrank.ErrNotFinite)
			assert.NoError(t, asyncE[i], "an asynchronous Compress does not wait")
			assert.ErrorIs(t, asyncS[i].Wait(), lowrank.ErrNotFinite)
			assert.ErrorIs(t, asyncS[i].Reconstruct(&mat.Dense{}), lowrank.ErrNotFinite)
			continue
		}
		require.NoError(t, syncE[i])
		require.NoError(t, asyncE[i])
		var a, b mat.Dense
		require.NoError(t, syncS[i].Reconstruct(&a))
		require.NoError(t, asyncS[i].Reconstruct(&b))
		assert.True(t, mat.Equal(&a, &b), "call i draws from stream (Seed, i) in either mode")
	}
	require.Error(t, joinErr)
	var le *LayerError
	require.True(t, errors.As(joinErr, &le))
	assert.Equal(t, "layerh", le.Layer)
	assert.ErrorIs(t, joinErr, lowrank.ErrNotFinite)
}

func TestInputsUnchanged(t *testing.T) {
	for _, m := range []Method{RowSampling, Gaussian, ExactSVD, Uncompressed} {
		x := testmat.Incoherent(90, 12, testmat.ActivationLike(12), 4)
		x32 := testmat.To32(x)
		want, want32 := mat.DenseCopyOf(x), append([]float32(nil), x32.Data...)
		c, err := New(Config{Method: m, Rank: Tolerance(0.2, 6), MeasureError: true})
		require.NoError(t, err)
		_, err = c.Compress("x", x)
		require.NoError(t, err)
		_, err = c.Compress("x32", x32)
		require.NoError(t, err)
		assert.True(t, mat.Equal(want, x), "%v", m)
		assert.Equal(t, want32, x32.Data, "%v", m)
	}
}
