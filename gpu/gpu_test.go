package gpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/lowrank/backendtest"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// u32 is the unit roundoff of float32.
const u32 = 0x1p-24

// open returns a backend on device 0, skipping the test with the reason
// when CUDA is unavailable. Any other failure fails the test.
func open(t *testing.T, opts *Options) *Backend {
	t.Helper()
	b, err := Open(0, opts)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

// TestUnavailable runs everywhere: without CUDA, Available must explain
// why with ErrUnavailable; with it, Open of a missing ordinal must fail
// with ErrUnavailable rather than panic.
func TestUnavailable(t *testing.T) {
	if err := Available(); err != nil {
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.True(t, strings.Contains(err.Error(), "lib") || strings.Contains(err.Error(), "device"), "reason: %v", err)
		_, err := Open(0, nil)
		assert.ErrorIs(t, err, ErrUnavailable)
		return
	}
	_, err := Open(1<<20, nil)
	assert.ErrorIs(t, err, ErrUnavailable)
}

// rowMajorInput uploads a as a row-major device matrix of type dt, the
// layout activations arrive in.
func rowMajorInput(dt DType) func(t *testing.T, b lowrank.Backend, a *mat.Dense) lowrank.Matrix {
	return func(t *testing.T, be lowrank.Backend, a *mat.Dense) lowrank.Matrix {
		m, err := be.(*Backend).UploadDense32(testmat.To32(a), dt)
		require.NoError(t, err)
		return m
	}
}

func TestConformance(t *testing.T) {
	// OrthTol 1e-5 per column is docs/theory.md §10.1's float32 requirement (check 5); the
	// suite's other tolerances are multiples of U = 2⁻²⁴ (products,
	// backward errors) with the constants it states.
	t.Run("fp32/cholqr/col-major", func(t *testing.T) {
		backendtest.Run(t, open(t, nil), backendtest.Config{U: u32, OrthTol: 1e-5})
	})
	t.Run("fp32/cholqr/row-major-f32-input", func(t *testing.T) {
		backendtest.Run(t, open(t, nil), backendtest.Config{U: u32, OrthTol: 1e-5, Input: rowMajorInput(Float32)})
	})
	// A bf16 input is rounded once (InputU = 2⁻⁸) and the other operand
	// of a product with it is rounded to bf16 too, which the suite's
	// U + InputU per product covers with its factor 2.
	t.Run("fp32/cholqr/row-major-bf16-input", func(t *testing.T) {
		backendtest.Run(t, open(t, nil), backendtest.Config{U: u32, OrthTol: 1e-5, Input: rowMajorInput(BFloat16), InputU: 0x1p-8})
	})
	t.Run("fp32/householder", func(t *testing.T) {
		backendtest.Run(t, open(t, &Options{QR: Householder}), backendtest.Config{U: u32, OrthTol: 1e-5})
	})
}

// activation returns an m×n activation-like matrix (power-law spectrum
// σ_j = 1/(j+1) + 10⁻³, incoherent singular vectors) and its spectrum.
// uploadFloat32 puts a on the device as float32, as a row-major
// activation buffer or as a column-major matrix.
func uploadFloat32(t *testing.T, b *Backend, a *mat.Dense, rowMajor bool) *Matrix {
	t.Helper()
	if rowMajor {
		da, err := b.UploadDense32(testmat.To32(a), Float32)
		require.NoError(t, err)
		return da
	}
	m, n := a.Dims()
	da, err := b.NewMatrix(m, n, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Upload(da, a))
	return da
}

func activation(m, n int, seed uint64) (*mat.Dense, []float64) {
	s := testmat.ActivationLike(min(m, n))
	return testmat.Incoherent(m, n, s, seed), s
}

// qbError returns ‖op(A) − Q·B‖_F/‖A‖_F in float64 on the host.
func qbError(a *mat.Dense, q, bm *mat.Dense, trans bool) float64 {
	var r mat.Dense
	r.Mul(q, bm)
	if trans {
		r.Sub(a.T(), &r)
	} else {
		r.Sub(a, &r)
	}
	return mat.Norm(&r, 2) / mat.Norm(a, 2)
}

// TestSamplingQB runs the LoRAct QB (package sampling, unchanged) on
// device data and checks it against the float64 CPU run with the same
// draw.
func TestSamplingQB(t *testing.T) {
	b := open(t, nil)
	for _, tc := range []struct {
		m, n, k, over int
		rowMajor      bool
	}{{1024, 512, 32, 0, true}, {512, 1024, 48, 8, false}, {2000, 300, 300, 0, true}} {
		a, _ := activation(tc.m, tc.n, uint64(tc.m+tc.k))
		da := uploadFloat32(t, b, a, tc.rowMajor)
		opts := &sampling.Options{Oversample: tc.over, Seed: 7}
		d := sampling.NewDecomposer(b)
		var f lowrank.Factors
		require.NoError(t, d.QBTo(&f, da, tc.k, opts))
		var q, bb mat.Dense
		require.NoError(t, b.Download(&q, f.Q))
		require.NoError(t, b.Download(&bb, f.B))
		// docs/theory.md §10.1, check 5: ‖QᵀQ − I‖_max ≤ 1e-5·k in float32.
		assert.LessOrEqual(t, testmat.OrthError(&q), 1e-5*float64(tc.k), "%v: orthogonality", tc)
		eg := qbError(a, &q, &bb, f.Trans)
		cpu, err := sampling.QB(a, tc.k, opts)
		require.NoError(t, err)
		ec := lowrank.RelError(a, cpu)
		// Same draw, so the same subspace up to float32 rounding of Y and
		// of the products, amplified by at most κ(Y) ≤ (σ₁/σ_ℓ)² ≈ 2·10³
		// for ℓ ≤ 56 here: u·κ ≈ 10⁻⁴ ≤ 10⁻³ (ℓ = 300 is all of op(A)).
		assert.InDelta(t, ec, eg, 1e-3, "%v: GPU and CPU errors for the same draw", tc)
		// The norms identity ‖A − QB‖² = ‖A‖² − ‖B‖² holds up to the
		// orthogonality defect of Q (‖QᵀA‖² − ‖QQᵀA‖² ≤ ‖QᵀQ − I‖₂·‖B‖²,
		// ≤ 1e-5·k) and the float32 rounding of B (≤ 10·(m+n)·u relative).
		en := lowrank.ErrorFromSquaredNorms(f.SquaredNormA, f.SquaredNormB)
		assert.InDelta(t, eg*eg, en*en, 1e-5*float64(tc.k)+10*float64(tc.m+tc.n)*u32, "%v: ErrorFromNorms", tc)
		d.Close()
		b.Free(f.Q)
		b.Free(f.B)
		b.Free(da)
	}
}

// TestRSVD runs the Gaussian randomized SVD (package rsvd, unchanged) on
// the device: orthonormal factors, singular values below the true ones
// (a projection cannot increase them) up to float32 rounding, and the
// error within HMT's expected bound.
func TestRSVD(t *testing.T) {
	b := open(t, nil)
	const m, n, k = 1500, 700, 40
	a, sigma := activation(m, n, 3)
	da, err := b.NewMatrix(m, n, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Upload(da, a))
	for _, norm := range []rsvd.Normalizer{rsvd.QR, rsvd.LU} {
		d := rsvd.NewDecomposer(b)
		u, v, s, err := d.SVD(da, k, &rsvd.Options{Oversample: 10, PowerIters: 2, Normalizer: norm, Seed: 1})
		require.NoError(t, err)
		var hu, hv mat.Dense
		require.NoError(t, b.Download(&hu, u))
		require.NoError(t, b.Download(&hv, v))
		assert.LessOrEqual(t, testmat.OrthError(&hu), 1e-5*k, "U orthonormal")
		assert.LessOrEqual(t, testmat.OrthError(&hv), 1e-5*k, "V orthonormal")
		// Interlacing: σ_i(QᵀA) ≤ σ_i(A); float32 products add ≤ n·u·‖A‖_F.
		slack := float64(n) * u32 * mat.Norm(a, 2)
		for i := range s {
			assert.LessOrEqual(t, s[i], sigma[i]+slack, "σ_%d", i)
			if i > 0 {
				assert.LessOrEqual(t, s[i], s[i-1])
			}
		}
		f := lowrank.NewSVD(&hu, s, &hv)
		e := lowrank.RelError(a, f)
		opt := testmat.OptimalError(sigma, k)
		assert.GreaterOrEqual(t, e, opt*(1-1e-4), "Eckart–Young: no rank-%d approximation beats the truncated SVD", k)
		// HMT (2011) Thm 10.5: E‖A − QQᵀA‖_F ≤ √(1 + k/(p−1))·opt without
		// power iterations; q = 2 only helps. Factor 3 covers the spread of
		// one draw (Markov bound on the squared error: probability ≤ 1/9).
		assert.LessOrEqual(t, e, 3*math.Sqrt(1+float64(k)/9)*opt, "%v: error", norm)
		b.Free(u)
		b.Free(v)
		d.Close()
	}
}

// exactCases are the shapes of the ExactSVD tests: both orientations, one
// input row-major.
var exactCases = []struct {
	m, n     int
	rowMajor bool
}{{600, 200, false}, {200, 500, true}}

// checkExactSVD runs ExactSVD(da, k) for a = da's host copy with exactly
// known singular values sigma and checks the k values, U and V, and the
// rank-k error; it returns the values.
func checkExactSVD(t *testing.T, b *Backend, da *Matrix, a *mat.Dense, sigma []float64, k int, name string) []float64 {
	t.Helper()
	q := len(sigma)
	u, v, s, err := b.ExactSVD(da, k)
	require.NoError(t, err, name)
	require.Len(t, s, k, name)
	defer b.Free(u)
	defer b.Free(v)
	var hu, hv mat.Dense
	require.NoError(t, b.Download(&hu, u))
	require.NoError(t, b.Download(&hv, v))
	na := mat.Norm(a, 2) // Frobenius
	for i := range s {
		// Weyl: rounding A to float32 moves σ_i by ≤ u·‖A‖_F; the
		// float64 Gram adds q·2⁻⁵³·σ₁²/σ_i (doc of ExactSVD), ×10.
		tol := u32*na + 10*float64(q)*0x1p-53*sigma[0]*sigma[0]/sigma[i]
		assert.InDelta(t, sigma[i], s[i], tol, "%s: σ_%d", name, i)
	}
	// σ_min/σ₁ ≈ 1.5·10⁻², so the vectors of U = A·V·Σ⁻¹ keep
	// orthogonality to float32 rounding amplified by σ₁/σ_min ≤ 100:
	// 1e-5 per column holds with a wide margin.
	assert.LessOrEqual(t, testmat.OrthError(&hu), 1e-5*float64(q), "%s: U", name)
	assert.LessOrEqual(t, testmat.OrthError(&hv), 1e-5*float64(q), "%s: V", name)
	// The rank-k error: the optimal one (0 at k = q) plus the float32
	// factors' backward error, ≤ c·q·u relative to ‖A‖_F, c = 10.
	f := lowrank.NewSVD(&hu, s, &hv)
	assert.LessOrEqual(t, lowrank.RelError(a, f), testmat.OptimalError(sigma, k)+10*float64(q)*u32, "%s: rank-%d error", name, k)
	return s
}

// TestExactSVD compares the Gram/syevd SVD with exactly known singular
// values, in both orientations and for a row-major input.
func TestExactSVD(t *testing.T) {
	b := open(t, nil)
	for _, tc := range exactCases {
		q := min(tc.m, tc.n)
		sigma := testmat.PowerLaw(q, 1, 1e-2)
		a := testmat.Incoherent(tc.m, tc.n, sigma, 11)
		da := uploadFloat32(t, b, a, tc.rowMajor)
		checkExactSVD(t, b, da, a, sigma, q, fmt.Sprint(tc))
		b.Free(da)
	}
}

// TestExactSVDTruncated: the k leading terms (k < min(m, n)) from the
// selective eigensolver (dsyevdx) and, behind the noSyevdx switch, from
// every eigenpair (dsyevd) — both orientations, k = 1, q/4 and q − 1 —
// each checked as TestExactSVD's (checkExactSVD), and the two paths'
// values equal to float64 rounding of the Gram matrix (2·q·2⁻⁵³·σ₁²/σ_i,
// both backward stable).
func TestExactSVDTruncated(t *testing.T) {
	b := open(t, nil)
	defer func() { b.noSyevdx = false }()
	for _, tc := range exactCases {
		q := min(tc.m, tc.n)
		sigma := testmat.PowerLaw(q, 1, 1e-2)
		a := testmat.Incoherent(tc.m, tc.n, sigma, 12)
		da := uploadFloat32(t, b, a, tc.rowMajor)
		for _, k := range []int{1, q / 4, q - 1} {
			var vals [2][]float64
			for i, off := range []bool{false, true} {
				b.noSyevdx = off
				vals[i] = checkExactSVD(t, b, da, a, sigma, k, fmt.Sprintf("%v k=%d dsyevd=%v", tc, k, off))
			}
			for j := range vals[0] {
				tol := 2 * float64(q) * 0x1p-53 * sigma[0] * sigma[0] / sigma[j]
				assert.InDelta(t, vals[1][j], vals[0][j], tol+1e-12*sigma[0], "%v k=%d: σ_%d from dsyevdx and dsyevd", tc, k, j)
			}
		}
		b.Free(da)
	}
}

// TestPrecision reports the accuracy cost of TF32 and bf16 products and of
// bf16 storage of the factors against exact float32 products, on the same
// activation and draw, and bounds each by its unit roundoff.
func TestPrecision(t *testing.T) {
	b := open(t, nil)
	const m, n, k = 2048, 1024, 64
	a, sigma := activation(m, n, 5)
	da, err := b.UploadDense32(testmat.To32(a), Float32)
	require.NoError(t, err)
	opt := testmat.OptimalError(sigma, k)
	errs := map[Math]float64{}
	for _, mth := range []Math{FP32, TF32, BF16} {
		b.SetMath(mth)
		d := sampling.NewDecomposer(b)
		var f lowrank.Factors
		require.NoError(t, d.QBTo(&f, da, k, &sampling.Options{Seed: 3}))
		var q, bb mat.Dense
		require.NoError(t, b.Download(&q, f.Q))
		require.NoError(t, b.Download(&bb, f.B))
		errs[mth] = qbError(a, &q, &bb, f.Trans)
		assert.LessOrEqual(t, testmat.OrthError(&q), 1e-5*k, "%v: Q orthonormal whatever the product precision", mth)
		if mth == FP32 {
			// bf16 storage of both factors: each element rounded once
			// (relative 2⁻⁸), so ‖ΔQ·B‖_F + ‖Q·ΔB‖_F ≤ 2·2⁻⁸·√k·‖B‖_F.
			q16, err := b.ToBF16(f.Q)
			require.NoError(t, err)
			b16, err := b.ToBF16(f.B)
			require.NoError(t, err)
			var hq, hb mat.Dense
			require.NoError(t, b.Download(&hq, q16))
			require.NoError(t, b.Download(&hb, b16))
			e16 := qbError(a, &hq, &hb, f.Trans)
			t.Logf("bf16 storage of Q and B: rel. error %.6g (fp32 factors %.6g, optimal %.6g)", e16, errs[FP32], opt)
			assert.LessOrEqual(t, e16, errs[FP32]+2*0x1p-8*math.Sqrt(k))
			assert.Greater(t, e16, errs[FP32]-2*0x1p-8*math.Sqrt(k))
			b.Free(q16)
			b.Free(b16)
		}
		d.Close()
		b.Free(f.Q)
		b.Free(f.B)
	}
	b.SetMath(FP32)
	for _, c := range []struct {
		m Math
		u float64
	}{{TF32, 0x1p-11}, {BF16, 0x1p-8}} {
		t.Logf("%v products: rel. error %.6g, fp32 %.6g, difference %.3g (optimal %.6g)", c.m, errs[c.m], errs[FP32], errs[c.m]-errs[FP32], opt)
		// Operands rounded to unit roundoff u perturb Y and B by ≤ 2u
		// relatively; through the subspace this moves the error by
		// O(u·κ) with κ = σ₁/σ_k ≈ 65 here: 2u·κ bounds it.
		assert.InDelta(t, errs[FP32], errs[c.m], 2*c.u*sigma[0]/sigma[k-1], "%v", c.m)
	}
}

// TestSteadyStateAllocs checks that repeated compressions of the same
// shapes allocate no device memory, and that the QR's fallback and fast
// paths produce orthonormal Q for sketches of every conditioning.
func TestSteadyStateAllocs(t *testing.T) {
	b := open(t, nil)
	a, _ := activation(2048, 1024, 9)
	da, err := b.UploadDense32(testmat.To32(a), BFloat16)
	require.NoError(t, err)
	d := sampling.NewDecomposer(b)
	defer d.Close()
	var f lowrank.Factors
	opts := &sampling.Options{Oversample: 8, Seed: 1}
	require.NoError(t, d.QBTo(&f, da, 64, opts))
	require.NoError(t, d.QBTo(&f, da, 64, opts))
	require.NoError(t, b.Synchronize())
	before := b.MemStats().Mallocs
	free0, _, err := b.MemInfo()
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		opts.Seed = uint64(10 + i)
		require.NoError(t, d.QBTo(&f, da, 64, opts))
	}
	require.NoError(t, b.Synchronize())
	free1, _, err := b.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, before, b.MemStats().Mallocs, "cuMemAlloc calls in steady state")
	assert.Equal(t, free0, free1, "device free memory in steady state")
}

// TestCloseReleases checks that Close returns the device's free memory to
// its value before Open (the primary context is kept alive by a second
// backend, so its own memory is not counted).
func TestCloseReleases(t *testing.T) {
	a, _ := activation(1024, 512, 2)
	workload := func(b *Backend) *Matrix {
		da, err := b.UploadDense32(testmat.To32(a), Float32)
		require.NoError(t, err)
		d := rsvd.NewDecomposer(b)
		_, _, _, err = d.SVD(da, 32, &rsvd.Options{Oversample: 4, PowerIters: 1})
		require.NoError(t, err)
		_, _, _, err = b.ExactSVD(da, 8)
		require.NoError(t, err)
		return da // the factors and da stay allocated: Close must free them
	}
	keep := open(t, nil)
	// CUDA loads library kernels into the context lazily, on first use,
	// and keeps them: run the workload once on the long-lived backend so
	// that the measurement sees only what the second backend allocates.
	workload(keep)
	require.NoError(t, keep.Synchronize())
	free0, _, err := keep.MemInfo()
	require.NoError(t, err)
	b, err := Open(0, nil)
	require.NoError(t, err)
	da := workload(b)
	require.NoError(t, b.Close())
	free1, _, err := keep.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, free0, free1, "free device memory after Close")
	// Use after Close is an error, never a crash.
	_, _, err = b.SquaredNorm(da, 1)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.New(2, 2)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, b.QR(da2(b), nil), ErrClosed)
	assert.NoError(t, b.Close(), "second Close")
}

// da2 returns a float32 column-major matrix header of b for use-after-Close
// checks (no device memory is touched).
func da2(b *Backend) *Matrix {
	return &Matrix{ptr: 0, rows: 4, cols: 2, ld: 4, dtype: Float32, owner: b.device}
}

func TestOutOfMemory(t *testing.T) {
	b := open(t, nil)
	_, err := b.NewMatrix(1<<20, 1<<20, Float32) // 4 TiB
	var ce *CUDAError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "cuMemAlloc_v2", ce.Call)
	assert.True(t, ce.OutOfMemory(), "%v", err)
	// The backend stays usable.
	m, err := b.New(3, 3)
	require.NoError(t, err)
	b.Free(m)
}

// TestQRConditioning feeds the QR sketches from well conditioned to
// numerically rank deficient: Q must be orthonormal and A = QR in every
// case, whichever path (Cholesky QR or the Householder fallback) ran.
func TestQRConditioning(t *testing.T) {
	b := open(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	// The default (chol64 to chol64OneMax, dpotrf above), dpotrf
	// throughout (libPotrf), cholblk64.
	for _, v := range []struct{ blk, lib bool }{{false, false}, {false, true}, {true, false}} {
		b.useBlk, b.libPotrf = v.blk, v.lib
		testQRConditioning(t, b, rng)
	}
	b.useBlk, b.libPotrf = false, false
}

func testQRConditioning(t *testing.T, b *Backend, rng *rand.Rand) {
	for _, cond := range []float64{1, 1e3, 1e6, 1e9} {
		for _, l := range []int{16, 128, 256} {
			p := 4096
			s := make([]float64, l)
			for i := range s {
				s[i] = math.Pow(cond, -float64(i)/float64(l-1))
			}
			y := testmat.Incoherent(p, l, s, rng.Uint64())
			dy, err := b.NewMatrix(p, l, Float32)
			require.NoError(t, err)
			require.NoError(t, b.Upload(dy, y))
			dr, err := b.NewMatrix(l, l, Float32)
			require.NoError(t, err)
			fb := b.fallbacks
			require.NoError(t, b.QR(dy, dr))
			if cond <= 1e6 {
				// κ(Y) ≤ 10⁶ < u⁻¹: shifted CholeskyQR3 must succeed
				// without the Householder fallback (Fukaya et al. 2020).
				assert.Equal(t, fb, b.fallbacks, "cond %g l %d blk %v libPotrf %v: Cholesky QR fell back", cond, l, b.useBlk, b.libPotrf)
			}
			var q, r mat.Dense
			require.NoError(t, b.Download(&q, dy))
			require.NoError(t, b.Download(&r, dr))
			assert.LessOrEqual(t, testmat.OrthError(&q), 1e-5*float64(l), "cond %g l %d blk %v libPotrf %v", cond, l, b.useBlk, b.libPotrf)
			var qr mat.Dense
			qr.Mul(&q, &r)
			qr.Sub(&qr, y)
			// Backward stability: Higham's worst case ‖Y − QR‖_F ≤ c·p·l·u·‖Y‖_F
			// is never approached; rounding errors of the length-p dot
			// products add like a random walk, giving c·l·√p·u·‖Y‖_F, c = 10.
			assert.LessOrEqual(t, mat.Norm(&qr, 2), 10*float64(l)*u32*math.Sqrt(float64(p))*mat.Norm(y, 2), "cond %g l %d", cond, l)
			b.Free(dy)
			b.Free(dr)
		}
	}
}

// TestWrappedActivation compresses memory the package does not own, as a
// training loop's activation: a row-major buffer wrapped with RowMajor
// gives bit-identical factors to the same data uploaded by UploadDense32
// (same layout, same operations), and Free of the wrapper leaves the
// memory alone.
func TestWrappedActivation(t *testing.T) {
	b := open(t, nil)
	const m, n, k = 1024, 384, 32
	a := testmat.To32(testmat.Incoherent(m, n, testmat.ActivationLike(n), 4))
	for _, dt := range []DType{Float32, BFloat16} {
		up, err := b.UploadDense32(a, dt)
		require.NoError(t, err)
		// The "framework's" buffer: raw device memory holding the same
		// row-major bytes (a copy of up's storage).
		raw, err := b.NewMatrix(n, m, dt)
		require.NoError(t, err)
		require.NoError(t, b.enter())
		require.NoError(t, b.api.check(b.api.cuMemcpyDtoDAsync(raw.ptr, up.ptr, uintptr(m*n*dt.Size()), b.stream), "cuMemcpyDtoDAsync"))
		b.leave()
		act := RowMajor(raw.Ptr(), m, n, n, dt)
		var fw, fu lowrank.Factors
		d := sampling.NewDecomposer(b)
		require.NoError(t, d.QBTo(&fw, act, k, &sampling.Options{Seed: 5}))
		require.NoError(t, d.QBTo(&fu, up, k, &sampling.Options{Seed: 5}))
		var qw, qu mat.Dense
		require.NoError(t, b.Download(&qw, fw.Q))
		require.NoError(t, b.Download(&qu, fu.Q))
		assert.True(t, mat.Equal(&qw, &qu), "%v: wrapped and uploaded activations must give identical Q", dt)
		assert.Equal(t, fu.SquaredNormB, fw.SquaredNormB, "%v", dt)
		b.Free(act) // a wrapper: must not free raw
		n2, _, err := b.SquaredNorm(raw, 1)
		require.NoError(t, err)
		assert.InDelta(t, fw.SquaredNormA, n2, 1e-12*n2, "%v: the wrapped memory is still valid", dt)
		d.Close()
		for _, x := range []lowrank.Matrix{fw.Q, fw.B, fu.Q, fu.B, up, raw} {
			b.Free(x)
		}
	}
}

// TestExactSVDSubspace checks the subspace route of a truncated ExactSVD
// (k ≤ q/8): on a power-law spectrum it converges, passes checkExactSVD
// and gives dsyevdx's values to both routes' Gram rounding; on a spectrum
// without a gap after σ_k it gives up and returns dsyevdx's result bit for
// bit. The first matrix runs the default steps (split on two streams
// where splitSteps says, ℓ = 256 here, else R⁻¹ products; Chebyshev
// shifts), the second the steps' dtrsm path (trsmOrth, the path of
// ℓ > 1024), the third the one-stream R⁻¹ steps (noSplit), the fourth the
// one constant shift (constShift).
func TestExactSVDSubspace(t *testing.T) {
	b := open(t, nil)
	defer func() { b.noSubspace, b.trsmOrth, b.noSplit, b.constShift = false, false, false, false }()
	for _, tc := range []struct {
		m, n                                int
		rowMajor, trsm, noSplit, constShift bool
	}{{2048, 1024, false, false, false, false}, {1024, 2048, true, true, false, false}, {2048, 1024, false, false, true, false},
		{2048, 1024, false, false, false, true}} {
		b.trsmOrth, b.noSplit, b.constShift = tc.trsm, tc.noSplit, tc.constShift
		q := min(tc.m, tc.n)
		gapped := testmat.PowerLaw(q, 1, 1e-3)
		flat := make([]float64, q)
		for j := range flat {
			flat[j] = 1 - 0.25*float64(j)/float64(q)
		}
		for _, sp := range []struct {
			name  string
			sigma []float64
			ks    []int
		}{{"power law", gapped, []int{16, 128}}, {"no gap", flat, []int{64}}} {
			a := testmat.Incoherent(tc.m, tc.n, sp.sigma, 13)
			da := uploadFloat32(t, b, a, tc.rowMajor)
			for _, k := range sp.ks {
				name := fmt.Sprintf("%v %s k=%d", tc, sp.name, k)
				b.noSubspace = false
				sub := checkExactSVD(t, b, da, a, sp.sigma, k, name+" subspace")
				run := b.lastSubspace
				t.Logf("%s: %d steps, %d checks, residual %.3g·λ₁, used %v, split %v", name, run.Steps, run.Checks, run.Residual, run.Used, run.Split)
				assert.Equal(t, b.splitSteps(2*k), run.Split, name)
				b.noSubspace = true
				ref := checkExactSVD(t, b, da, a, sp.sigma, k, name+" dsyevdx")
				if sp.name == "no gap" {
					// λ_{2k+1}/λ_k ≈ 0.97: hundreds of steps predicted.
					assert.False(t, run.Used, "%s: the route should give up", name)
					assert.Zero(t, run.Checks, "%s: the rate read off R should give up before any check", name)
					assert.Equal(t, ref, sub, "%s: the fallback is dsyevdx on the same Gram matrix", name)
					continue
				}
				require.True(t, run.Used, "%s: the route should converge", name)
				assert.LessOrEqual(t, run.Residual, float64(q)*0x1p-53, name)
				assert.LessOrEqual(t, run.Steps, subspaceMax, name)
				for j := range sub {
					tol := 2 * float64(q) * 0x1p-53 * sp.sigma[0] * sp.sigma[0] / sp.sigma[j]
					assert.InDelta(t, ref[j], sub[j], tol+1e-12*sp.sigma[0], "%s: σ_%d from the subspace route and dsyevdx", name, j)
				}
			}
			b.Free(da)
		}
	}
}

// TestExactSVDSubspaceRankDeficient: where op(A) has rank below the
// route's basis (ℓ = 2k), G·V is near rank-deficient and its Cholesky QR
// breaks down, so the route is expected to give up and return dsyevdx's
// result bit for bit; should it converge on the float32 rounding's tail
// instead, its residuals bound it as always. Either way the nonzero
// values are exact and the rest at the rounding's level. A zero matrix
// goes the same way.
func TestExactSVDSubspaceRankDeficient(t *testing.T) {
	b := open(t, nil)
	defer func() { b.noSubspace = false }()
	const m, n, k, rank = 2048, 1024, 64, 8
	sigma := make([]float64, n)
	for j := range rank {
		sigma[j] = 1 / float64(j+1)
	}
	zero := make([]float64, n)
	for _, sp := range []struct {
		name  string
		sigma []float64
	}{{"rank 8", sigma}, {"zero", zero}} {
		a := testmat.Incoherent(m, n, sp.sigma, 17)
		da := uploadFloat32(t, b, a, false)
		var vals [2][]float64
		var run subspaceRun
		for i, off := range []bool{false, true} {
			b.noSubspace = off
			u, v, s, err := b.ExactSVD(da, k)
			require.NoError(t, err, sp.name)
			if !off {
				run = b.lastSubspace
				t.Logf("%s: %d steps, %d checks, residual %v, used %v", sp.name, run.Steps, run.Checks, run.Residual, run.Used)
			}
			vals[i] = s
			b.Free(u)
			b.Free(v)
		}
		na := mat.Norm(a, 2)
		if run.Used {
			assert.LessOrEqual(t, run.Residual, float64(n)*0x1p-53, sp.name)
		} else {
			assert.Equal(t, vals[1], vals[0], "%s: the fallback is dsyevdx", sp.name)
		}
		// The values past the rank: those of A's float32 rounding
		// (≤ u·‖A‖_F, Weyl) seen through the Gram's q·2⁻⁵³·σ₁² error.
		noise := math.Sqrt(u32*u32*na*na+10*float64(n)*0x1p-53) * math.Max(1, sp.sigma[0])
		for _, v := range vals {
			for j := rank; j < k; j++ {
				assert.LessOrEqual(t, v[j], noise, "%s: σ_%d", sp.name, j)
			}
		}
		for j := range rank {
			// As in checkExactSVD: float32 rounding of A, and the float64
			// Gram's q·2⁻⁵³·σ₁²/σ_j, ×10.
			tol := u32*na + 10*float64(n)*0x1p-53
			if sp.sigma[j] > 0 {
				tol += 10 * float64(n) * 0x1p-53 * sp.sigma[0] * sp.sigma[0] / sp.sigma[j]
			}
			assert.InDelta(t, sp.sigma[j], vals[0][j], tol, "%s: σ_%d", sp.name, j)
		}
		b.Free(da)
	}
}

// TestProfilerRange opens and closes a profiler capture range around a
// product: without a profiler attached the calls succeed and change
// nothing (the product is still exact on small integers), and after
// Close they fail with ErrClosed rather than crash.
func TestProfilerRange(t *testing.T) {
	b := open(t, nil)
	a := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 6})
	da, err := b.UploadDense32(testmat.To32(a), Float32)
	require.NoError(t, err)
	require.NoError(t, b.ProfilerStart())
	c, err := b.NewMatrix(2, 2, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Mul(c, 1, da, true, da, false, 0))
	require.NoError(t, b.ProfilerStop())
	var got mat.Dense
	require.NoError(t, b.Download(&got, c))
	var want mat.Dense
	want.Mul(a.T(), a)
	assert.True(t, mat.Equal(&want, &got), "AᵀA inside the range: %v", mat.Formatted(&got))
	b2, err := Open(0, nil)
	require.NoError(t, err)
	require.NoError(t, b2.Close())
	assert.ErrorIs(t, b2.ProfilerStart(), ErrClosed)
}
