package sampling_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

const eps = 0x1p-52

// methods are the QB-producing entry points of the package.
var methods = []struct {
	name string
	qb   func(a mat.Matrix, k int, o *sampling.Options) (*lowrank.QB, error)
}{
	{"QB", sampling.QB},
	{"Nystrom", sampling.Nystrom},
}

// TestQBProperties checks docs/theory.md §10.1's checks 2, 5 and 6 for every method
// and shape, and checks 1 (exact recovery) on exact-rank inputs.
func TestQBProperties(t *testing.T) {
	for _, meth := range methods {
		for _, s := range testmat.PropertyShapes() {
			name := fmt.Sprintf("%s/%dx%d/k=%d/p=%d/strided=%v", meth.name, s.M, s.N, s.K, s.Over, s.Strided)
			t.Run(name, func(t *testing.T) {
				sigma := testmat.PowerLaw(min(s.M, s.N), 1, 0)
				a := s.Input(sigma, 7)
				orig := mat.DenseCopyOf(a)
				for seed := uint64(0); seed < 5; seed++ {
					f, err := meth.qb(a, s.K, &sampling.Options{Seed: seed, Oversample: s.Over})
					require.NoError(t, err)
					assert.True(t, mat.Equal(orig, a), "input modified")
					m, n := f.Dims()
					require.Equal(t, [3]int{s.M, s.N, s.K}, [3]int{m, n, f.Rank()})
					var q mat.Dense
					q.CloneFrom(f.Q())
					// §6.5: ‖QᵀQ − I‖ ≲ 1e-13·k in float64.
					assert.LessOrEqual(t, testmat.OrthError(&q), 1e-13*float64(s.K), "orthonormality")
					direct := lowrank.RelError(a, f)
					opt := testmat.OptimalError(sigma, s.K)
					// §6.2, Eckart–Young: no rank-k approximation beats the
					// optimum; the computed errors carry ~ε·√(mn) rounding.
					assert.GreaterOrEqual(t, direct, opt-1e-12, "error below the Eckart–Young optimum")
					// §6.6: the identity ‖A‖²−‖B‖² equals the direct error.
					// Each norm has relative rounding ≲ (n+k)·ε, so the
					// squared errors agree to 4·(m+n)·ε relative to ‖A‖².
					ident := lowrank.ErrorFromSquaredNorms(lowrank.SquaredFrobenius(a), f.SquaredNormB())
					assert.InDelta(t, direct*direct, ident*ident, 4*float64(s.M+s.N)*eps, "‖A‖²−‖B‖² identity")
				}
			})
		}
	}
}

// TestExactRecovery is docs/theory.md §10.1's check 1: if rank(A) ≤ ℓ and the sampled
// rows span the row space (generic for incoherent A), QB = A to rounding.
func TestExactRecovery(t *testing.T) {
	for _, meth := range methods {
		for _, s := range []testmat.Shape{{M: 60, N: 40, K: 6}, {M: 40, N: 60, K: 6, Over: 2}, {M: 50, N: 50, K: 9, Strided: true}} {
			t.Run(fmt.Sprintf("%s/%dx%d/k=%d", meth.name, s.M, s.N, s.K), func(t *testing.T) {
				sigma := testmat.RankPlusNoise(min(s.M, s.N), s.K, 0)
				for j := range sigma[:s.K] {
					sigma[j] = math.Pow(2, -float64(j)) // well conditioned on the range
				}
				a := s.Input(sigma, 3)
				f, err := meth.qb(a, s.K, &sampling.Options{Seed: 1, Oversample: s.Over})
				require.NoError(t, err)
				// Backward error of the products and QR: ≲ (m+n)·ℓ·ε·κ(A_k)
				// with κ(A_k) = 2^(k−1) ≤ 256 here; 1e-10 covers it.
				assert.Less(t, lowrank.RelError(a, f), 1e-10)
			})
		}
	}
}

// TestTransposeAgrees checks that A and Aᵀ (as a mat.Transpose view) give
// the same factors up to transposition: both work on the same op(A).
func TestTransposeAgrees(t *testing.T) {
	a := testmat.Incoherent(50, 30, testmat.PowerLaw(30, 1, 0), 4)
	f1, err := sampling.QB(a, 7, &sampling.Options{Seed: 9})
	require.NoError(t, err)
	f2, err := sampling.QB(a.T(), 7, &sampling.Options{Seed: 9})
	require.NoError(t, err)
	assert.NotEqual(t, f1.LeftOrthonormal(), f2.LeftOrthonormal())
	var r1, r2 mat.Dense
	f1.Reconstruct(&r1)
	f2.Reconstruct(&r2)
	assert.True(t, mat.EqualApprox(&r1, r2.T(), 1e-14), "QB(Aᵀ) ≠ QB(A)ᵀ")
	// An explicit copy of Aᵀ also agrees (orientation is by shape).
	f3, err := sampling.QB(mat.DenseCopyOf(a.T()), 7, &sampling.Options{Seed: 9})
	require.NoError(t, err)
	var r3 mat.Dense
	f3.Reconstruct(&r3)
	assert.True(t, mat.EqualApprox(&r3, &r2, 1e-13))
}

// TestNested is docs/theory.md §10.1's check 7: S ⊂ S′ gives error(S′) ≤ error(S),
// since range(A·A_Sᵀ) ⊂ range(A·A_S′ᵀ).
func TestNested(t *testing.T) {
	a := testmat.Incoherent(40, 70, testmat.PowerLaw(40, 1, 0), 5)
	s := []int{3, 17, 29, 8, 11, 30, 1, 22, 35, 14}
	prev := math.Inf(1)
	for l := 2; l <= len(s); l++ {
		f, err := sampling.QB(a, l, &sampling.Options{Indices: s[:l]})
		require.NoError(t, err)
		e := lowrank.RelError(a, f)
		// Rounding in the two errors: ~ε·(m+n)·l.
		assert.LessOrEqual(t, e, prev+1e-13, "ℓ=%d", l)
		prev = e
	}
}

// TestPowerIterations is docs/theory.md §10.1's check 7, second half: the error is
// non-increasing in q on average (mean over 20 seeds).
func TestPowerIterations(t *testing.T) {
	a := testmat.Incoherent(80, 60, testmat.PowerLaw(60, 1, 0), 6)
	mean := func(q int) float64 {
		s := 0.0
		for seed := uint64(0); seed < 20; seed++ {
			f, err := sampling.QB(a, 8, &sampling.Options{Seed: seed, PowerIters: q})
			require.NoError(t, err)
			s += lowrank.RelError(a, f)
		}
		return s / 20
	}
	e0, e1, e2 := mean(0), mean(1), mean(2)
	assert.LessOrEqual(t, e1, e0)
	assert.LessOrEqual(t, e2, e1)
}

func TestFloat32Input(t *testing.T) {
	for _, s := range []testmat.Shape{{M: 90, N: 40, K: 8}, {M: 40, N: 90, K: 8, Over: 3}} {
		a64 := testmat.Incoherent(s.M, s.N, testmat.ActivationLike(min(s.M, s.N)), 2)
		a32 := testmat.To32(a64)
		w := mat.NewDense(s.M, s.N, nil) // the float32 values, widened exactly
		for i := 0; i < s.M; i++ {
			for j := 0; j < s.N; j++ {
				w.Set(i, j, float64(a32.Data[i*s.N+j]))
			}
		}
		opts := &sampling.Options{Seed: 5, Oversample: s.Over}
		qb := func(be cpu.Backend, a lowrank.Matrix) (*lowrank.QB, *sampling.Decomposer) {
			d := sampling.NewDecomposer(be)
			var f lowrank.Factors
			require.NoError(t, d.QBTo(&f, a, s.K, opts))
			h, err := f.ToQB(be)
			require.NoError(t, err)
			return h, d
		}
		fw, _ := qb(cpu.Backend{}, w)
		fwide, _ := qb(cpu.Backend{WideFloat32: true}, a32)
		f32, d32 := qb(cpu.Backend{}, a32)
		var rw, rwide, r32 mat.Dense
		fw.Reconstruct(&rw)
		fwide.Reconstruct(&rwide)
		f32.Reconstruct(&r32)
		nw := mat.Norm(w, 2)
		// Widened inside the products, float32 → float64 is exact, so both
		// runs do the same float64 arithmetic on the same numbers; only the
		// summation order inside the products may differ: relative
		// ≲ n·ε·κ, 1e-10 with margin.
		assert.Less(t, diffNorm(&rwide, &rw)/nw, 1e-10)
		// Computed in float32 (the default): Y = op(A)·Ω accumulates over
		// S = the other dimension, so ‖ΔY‖_F ≤ γ_S·‖A‖_F·‖Ω‖_F, which
		// turns range(Y) by sin θ ≤ ‖ΔY‖/σ_ℓ(Y) (Wedin); B = Qᵀ·op(A)
		// adds γ_P·‖A‖_F (Q rounded to float32 and the float32 sum); the
		// reconstruction moves by ≤ 2 sin θ + γ_P relative. σ_ℓ(Y) is that
		// of the exact sketch of the same draw.
		draw := d32.Draw()
		op := mat.Matrix(w)
		if draw.Trans {
			op = w.T()
		}
		p, sn := op.Dims()
		omega := mat.NewDense(sn, len(draw.Indices), nil)
		for j, i := range draw.Indices {
			for c := 0; c < sn; c++ {
				omega.Set(c, j, op.At(i, c))
			}
		}
		var y mat.Dense
		y.Mul(op, omega)
		sv := testmat.SingularValues(&y)
		gamma := func(n int) float64 { return float64(n) * 0x1p-24 / (1 - float64(n)*0x1p-24) }
		sinTheta := gamma(sn) * nw * mat.Norm(omega, 2) / sv[len(sv)-1]
		bound := 2*sinTheta + gamma(p)
		got := diffNorm(&r32, &rw) / nw
		t.Logf("%d×%d: float32 products move X̃ by %.2e relative (bound %.2e)", s.M, s.N, got, bound)
		assert.Less(t, got, bound)
		// Against the float64 original: by the triangle inequality the
		// error differs from the error against the float32 data by at most
		// ‖A − A32‖_F/‖A‖_F ≤ 2⁻²⁴ (one rounding per element).
		e64 := lowrank.RelError(a64, f32)
		e32 := lowrank.RelError(w, f32) * nw / mat.Norm(a64, 2)
		assert.InDelta(t, e64, e32, 0x1p-24+1e-15)
	}
}

// plainBackend is a backend with only lowrank.Backend's methods: no
// optional capability, so its sketches get QR.
type plainBackend struct{ lowrank.Backend }

// TestFloat32SketchQR checks the QB of a float32 input large enough for
// the CPU backend's CholeskyQR, whose sketch is then orthonormalised only
// to ‖QᵀQ − I‖_F ≤ 2⁻²⁴ (skeleton.SketchQR), against the same draw with
// QR's full orthonormality; testmat.Float32SketchQR derives the bounds.
func TestFloat32SketchQR(t *testing.T) {
	const m, n, k = 1100, 1024, 64
	a := testmat.To32(testmat.Incoherent(m, n, testmat.PowerLaw(n, 0.5, 0), 4))
	sum, err := testmat.Float32SketchQR(a, func(be lowrank.Backend, f *lowrank.Factors) error {
		return sampling.NewDecomposer(be).QBTo(f, a, k, &sampling.Options{Seed: 3})
	}, cpu.Backend{}, plainBackend{cpu.Backend{}})
	t.Log(sum)
	assert.NoError(t, err)
}

func diffNorm(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2)
}

func TestReproducible(t *testing.T) {
	a := testmat.Incoherent(64, 48, testmat.PowerLaw(48, 1, 0), 8)
	seq := make([]*lowrank.QB, 4)
	for i := range seq {
		f, err := sampling.QB(a, 6, &sampling.Options{Seed: uint64(i), PowerIters: 1, Oversample: 2})
		require.NoError(t, err)
		seq[i] = f
	}
	// Concurrent calls with their own options share no mutable state.
	par := make([]*lowrank.QB, 4)
	var wg sync.WaitGroup
	for i := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := sampling.QB(a, 6, &sampling.Options{Seed: uint64(i), PowerIters: 1, Oversample: 2})
			if err == nil {
				par[i] = f
			}
		}()
	}
	wg.Wait()
	for i := range seq {
		require.NotNil(t, par[i])
		var q1, q2 mat.Dense
		q1.CloneFrom(seq[i].Q())
		q2.CloneFrom(par[i].Q())
		assert.True(t, mat.Equal(&q1, &q2), "seed %d: not bit-identical", i)
	}
	var q0, q1 mat.Dense
	q0.CloneFrom(seq[0].Q())
	q1.CloneFrom(seq[1].Q())
	assert.False(t, mat.Equal(&q0, &q1), "different seeds gave the same Q")
}

func TestBadInput(t *testing.T) {
	a := testmat.Gaussian(10, 8, 1)
	for _, k := range []int{0, -1, 9} {
		_, err := sampling.QB(a, k, nil)
		assert.ErrorIs(t, err, lowrank.ErrRank, "k=%d", k)
	}
	_, err := sampling.QB(&mat.Dense{}, 1, nil)
	assert.Error(t, err)
	_, err = sampling.QB(lowrank.NewDense32(0, 5, nil), 1, nil)
	assert.ErrorIs(t, err, lowrank.ErrEmpty)
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		b := mat.DenseCopyOf(a)
		b.Set(6, 3, bad)
		b.Set(7, 0, math.NaN())
		_, err := sampling.QB(b, 2, nil)
		var nf *lowrank.NotFiniteError
		require.ErrorAs(t, err, &nf)
		assert.Equal(t, [2]int{6, 3}, [2]int{nf.Row, nf.Col}, "first non-finite element")
		assert.ErrorIs(t, err, lowrank.ErrNotFinite)
		assert.Contains(t, err.Error(), "(6, 3)")
	}
	b32 := lowrank.NewDense32(4, 4, nil)
	b32.Data[9] = float32(math.NaN())
	_, err = sampling.QB(b32, 2, nil)
	var nf *lowrank.NotFiniteError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, [2]int{2, 1}, [2]int{nf.Row, nf.Col})
	_, err = sampling.QB(a, 2, &sampling.Options{Oversample: -1})
	assert.ErrorIs(t, err, lowrank.ErrOption)
	_, err = sampling.QB(a, 2, &sampling.Options{PowerIters: -2})
	assert.ErrorIs(t, err, lowrank.ErrOption)
	_, err = sampling.QB(a, 3, &sampling.Options{Indices: []int{1, 2}})
	assert.ErrorIs(t, err, lowrank.ErrOption, "fewer indices than k")
	_, err = sampling.QB(a, 2, &sampling.Options{Indices: []int{1, 1}})
	assert.ErrorIs(t, err, lowrank.ErrOption, "repeated index")
}

// TestZeroAndDependent: an all-zero matrix gives zero B and orthonormal Q;
// linearly dependent sampled rows give an orthonormal Q without NaN.
func TestZeroAndDependent(t *testing.T) {
	for _, meth := range methods {
		z := mat.NewDense(12, 9, nil)
		f, err := meth.qb(z, 3, nil)
		require.NoError(t, err, meth.name)
		var q mat.Dense
		q.CloneFrom(f.Q())
		assert.LessOrEqual(t, testmat.OrthError(&q), 1e-14, meth.name)
		assert.Equal(t, 0.0, f.SquaredNormB(), meth.name)
		assert.Equal(t, 0.0, lowrank.RelError(z, f), meth.name)

		// Rank 1 with every row a multiple of the same vector: any ℓ > 1
		// sampled rows are dependent.
		r1 := mat.NewDense(20, 15, nil)
		g := testmat.Gaussian(20, 1, 2)
		h := testmat.Gaussian(1, 15, 3)
		r1.Mul(g, h)
		f, err = meth.qb(r1, 5, &sampling.Options{Seed: 4})
		require.NoError(t, err, meth.name)
		q.Reset()
		q.CloneFrom(f.Q())
		assert.LessOrEqual(t, testmat.OrthError(&q), 1e-13*5, meth.name)
		e := lowrank.RelError(r1, f)
		assert.False(t, math.IsNaN(e), meth.name)
		// Rank 1 ≤ ℓ: exact recovery to rounding.
		assert.Less(t, e, 1e-12, meth.name)
	}
}

func TestSVDForm(t *testing.T) {
	for _, s := range testmat.PropertyShapes() {
		t.Run(fmt.Sprintf("%dx%d/k=%d/p=%d", s.M, s.N, s.K, s.Over), func(t *testing.T) {
			sigma := testmat.PowerLaw(min(s.M, s.N), 2, 0)
			a := s.Input(sigma, 11)
			f, err := sampling.SVD(a, s.K, &sampling.Options{Seed: 2, Oversample: s.Over})
			require.NoError(t, err)
			var u, v mat.Dense
			f.UTo(&u)
			f.VTo(&v)
			um, _ := u.Dims()
			vn, _ := v.Dims()
			require.Equal(t, [2]int{s.M, s.N}, [2]int{um, vn})
			assert.LessOrEqual(t, testmat.OrthError(&u), 1e-13*float64(s.K))
			assert.LessOrEqual(t, testmat.OrthError(&v), 1e-13*float64(s.K))
			sv := f.Values(nil)
			for j := range sv {
				// Singular values of a projection of A never exceed A's
				// (interlacing), up to rounding ε·σ₁·(m+n).
				assert.LessOrEqual(t, sv[j], sigma[j]+float64(s.M+s.N)*eps)
				if j > 0 {
					assert.LessOrEqual(t, sv[j], sv[j-1])
				}
			}
			assert.GreaterOrEqual(t, lowrank.RelError(a, f), testmat.OptimalError(sigma, s.K)-1e-12)
		})
	}
}

func TestLengthSquared(t *testing.T) {
	// Coherent rows (attention-sink-like): the dominant directions live on
	// a few rows. Uniform sampling misses them; length-squared finds them.
	// Orientation Rows makes the sampled rows those of A (Auto would work
	// on Aᵀ for this tall A and sample its incoherent columns).
	sigma := testmat.PowerLaw(60, 1, 0)
	a := testmat.Coherent(100, 60, sigma, true, 1)
	mean := func(s sampling.Sampler) float64 {
		tot := 0.0
		for seed := uint64(0); seed < 10; seed++ {
			f, err := sampling.QB(a, 5, &sampling.Options{Seed: seed, Sampler: s, Orientation: lowrank.OrientRows})
			require.NoError(t, err)
			tot += lowrank.RelError(a, f)
		}
		return tot / 10
	}
	opt := testmat.OptimalError(sigma, 5)
	uni, ls := mean(sampling.Uniform), mean(sampling.LengthSquared)
	t.Logf("coherent rows: uniform %.3f, length-squared %.3f, optimal %.3f", uni/opt, ls/opt, 1.0)
	assert.Less(t, ls, uni, "length-squared must beat uniform on coherent rows")
}

// TestFloat32TransientMemory: compressing an m×n float32 input allocates
// O((m+n)·ℓ) float64s beyond the input, never an m×n float64 copy.
func TestFloat32TransientMemory(t *testing.T) {
	if raceEnabled {
		// Counted by the plain go test run; under -race the pools drop
		// items on purpose.
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	const m, n, k = 2000, 600, 16
	a := testmat.To32(testmat.Gaussian(m, n, 3))
	d := sampling.NewDecomposer(cpu.Backend{})
	var f lowrank.Factors
	opts := &sampling.Options{Seed: 1, PowerIters: 1}
	require.NoError(t, d.QBTo(&f, a, k, opts)) // warm up the workspace
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	require.NoError(t, d.QBTo(&f, a, k, opts))
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	// Budget: the index permutation (m ints) and, per product, one float64
	// conversion panel of at most 2¹⁶ elements (lowrank's panelElems), plus
	// 8 (m+n)·k-sized buffers; an m×n float64 copy would be 9.6 MB.
	budget := uint64(8*m + 4*8*(1<<16) + 8*8*(m+n)*k)
	t.Logf("steady-state allocation %d bytes, budget %d, m×n float64 copy %d", alloc, budget, 8*m*n)
	assert.Less(t, alloc, budget)
	assert.Less(t, alloc, uint64(8*m*n/2))
}

func TestErrorsAreWrapped(t *testing.T) {
	_, err := sampling.QB(testmat.Gaussian(3, 3, 1), 4, nil)
	assert.True(t, errors.Is(err, lowrank.ErrRank))
	assert.Contains(t, err.Error(), "k = 4")
}

// TestScratchBoundedOverRanks: a sweep over 64 ranks on one Decomposer
// holds no more scratch than a fresh Decomposer needs for the largest rank
// (the slots grow to the largest shape and are viewed at smaller ones; a
// workspace keyed by shape would hold one set per rank).
func TestScratchBoundedOverRanks(t *testing.T) {
	a := testmat.Incoherent(300, 120, testmat.PowerLaw(120, 1, 0), 3)
	for _, over := range []int{0, 5} {
		sweep := sampling.NewDecomposer(cpu.Backend{})
		var f lowrank.Factors
		peak := 0
		for k := 1; k <= 64; k++ {
			require.NoError(t, sweep.QBTo(&f, a, k, &sampling.Options{Seed: uint64(k), Oversample: over, PowerIters: 1}))
			peak = max(peak, sweep.ScratchElements())
		}
		fresh := sampling.NewDecomposer(cpu.Backend{})
		require.NoError(t, fresh.QBTo(&f, a, 64, &sampling.Options{Seed: 64, Oversample: over, PowerIters: 1}))
		assert.Equal(t, fresh.ScratchElements(), peak, "p=%d: scratch after a 64-rank sweep", over)
		assert.Positive(t, peak)
	}
}
