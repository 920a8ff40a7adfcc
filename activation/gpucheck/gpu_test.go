package gpucheck

import (
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// u32 is float32's unit roundoff, ubf bf16's (lowrank's convention:
// 2⁻⁸, the bound |fl(x) − x| ≤ u·|x| of an 8-bit significand).
var (
	u32 = lowrank.Float32.UnitRoundoff()
	ubf = lowrank.BFloat16.UnitRoundoff()
)

// open returns a backend on device 0, skipping the test (with the reason)
// where there is none; any other failure fails it.
func open(t *testing.T) *gpu.Backend {
	t.Helper()
	b, err := gpu.Open(0, nil)
	if errors.Is(err, gpu.ErrUnavailable) {
		t.Skip("no CUDA device: ", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

func upload(t *testing.T, b *gpu.Backend, x mat.Matrix, dt gpu.DType) *gpu.Matrix {
	t.Helper()
	m, err := b.UploadDense32(testmat.To32(x), dt)
	require.NoError(t, err)
	return m
}

func download(t *testing.T, b *gpu.Backend, m lowrank.Matrix) *mat.Dense {
	t.Helper()
	var d mat.Dense
	require.NoError(t, b.Download(&d, m))
	return &d
}

// newMat returns a zeroed r×c matrix (row-major if asked), freed at the
// end of the test unless freed before.
func newMat(t *testing.T, b *gpu.Backend, r, c int, dt gpu.DType, rowMajor bool) *gpu.Matrix {
	t.Helper()
	if rowMajor {
		r, c = c, r
	}
	m, err := b.NewMatrix(r, c, dt)
	require.NoError(t, err)
	t.Cleanup(func() { b.Free(m) })
	if rowMajor {
		return m.T()
	}
	return m
}

func diffNorm(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2)
}

// reconstruct returns X̃ = P·R of the device handle s on the host.
func reconstruct(t *testing.T, b *gpu.Backend, s *activation.Saved) *mat.Dense {
	t.Helper()
	r, c := s.Dims()
	dst := newMat(t, b, r, c, gpu.Float32, false)
	defer b.Free(dst)
	require.NoError(t, s.Reconstruct(dst))
	return download(t, b, dst)
}

// TestDeviceMatchesHost compresses one activation on the device and on the
// CPU with the same seed (the same sampled rows for RowSampling), for each
// input type, method and storage precision, and checks the device handle
// against the host one and against its own stored factors.
func TestDeviceMatchesHost(t *testing.T) {
	b := open(t)
	t.Logf("device %s", b.Name())
	const L, d, k, o = 2048, 256, 24, 40
	xh := testmat.Incoherent(L, d, testmat.ActivationLike(d), 1)
	g := testmat.Gaussian(L, o, 2)
	for _, in := range []gpu.DType{gpu.Float32, gpu.BFloat16} {
		x := upload(t, b, xh, in)
		// The host compressor sees the values the device holds.
		xv := download(t, b, x)
		for _, prec := range []lowrank.Precision{lowrank.BFloat16, lowrank.Float32} {
			for _, m := range []activation.Method{activation.RowSampling, activation.Gaussian} {
				cfg := activation.Config{Method: m, Rank: activation.Fixed(k), Precision: prec, MeasureError: true, Seed: 3}
				cc, err := activation.New(cfg)
				require.NoError(t, err)
				cfg.Backend = b
				gc, err := activation.New(cfg)
				require.NoError(t, err)
				sc, err := cc.Compress("x", xv)
				require.NoError(t, err)
				sg, err := gc.Compress("x", x)
				require.NoError(t, err)
				require.NoError(t, b.Synchronize())
				name := in.String() + " input, " + prec.String() + " storage, " + m.String()

				assert.True(t, sg.Compressed(), name)
				assert.Equal(t, sc.Rank(), sg.Rank(), name)
				// k = 24, a multiple of 8: the factors are stored unpadded
				// (TestDevicePaddedFactors checks a padded rank's bytes).
				assert.Equal(t, k*(L+d)*prec.Size(), sg.Bytes(), name)
				assert.Equal(t, sg.Bytes(), gc.Stats().Total.Live, name)

				// Both errors are measured from factors stored at precision
				// prec: each lies within u·(1+√k) of the unrounded error (see
				// activation's TestPrecision); float32 against float64
				// arithmetic adds ≲ (L+d)·u32. Only row sampling makes the
				// same draw on both (the Gaussian test matrices come from
				// different generators).
				u := prec.UnitRoundoff()
				tol := 2*u*(1+math.Sqrt(k)) + (L+d)*u32
				if m == activation.RowSampling {
					assert.InDelta(t, sc.RelError(), sg.RelError(), tol, name)
				}
				t.Logf("%s: relative error CPU %.5f device %.5f", name, sc.RelError(), sg.RelError())

				// X̃ on the device against the host's: each within its
				// error of X.
				rg := reconstruct(t, b, sg)
				var rc mat.Dense
				require.NoError(t, sc.Reconstruct(&rc))
				nx := mat.Norm(xv, 2)
				assert.LessOrEqual(t, diffNorm(&rc, rg), (sc.RelError()+sg.RelError()+tol)*nx, name)
				// The measured error is that of the stored factors: the host
				// recomputes it from X̃ within float32 rounding of the
				// difference (k-term dot products and X).
				assert.InDelta(t, diffNorm(rg, xv)/nx, sg.RelError(), float64(k+2)*u32*(1+mat.Norm(rg, 2)/nx), name)

				for _, gdt := range []gpu.DType{gpu.Float32, gpu.BFloat16} {
					dg := upload(t, b, g, gdt)
					gv := download(t, b, dg)
					for _, outIn := range []bool{true, false} {
						var want, host mat.Dense
						var dst *gpu.Matrix
						if outIn {
							dst = newMat(t, b, o, d, gpu.Float32, gdt == gpu.BFloat16)
							require.NoError(t, sg.WeightGradOutIn(dst, dg))
							want.Mul(gv.T(), rg)
							require.NoError(t, sc.WeightGradOutIn(&host, gv))
						} else {
							dst = newMat(t, b, d, o, gpu.Float32, gdt == gpu.BFloat16)
							require.NoError(t, sg.WeightGradInOut(dst, dg))
							want.Mul(rg.T(), gv)
							require.NoError(t, sc.WeightGradInOut(&host, gv))
						}
						got := download(t, b, dst)
						b.Free(dst)
						// Against the device's own X̃ = P·R in float64: the
						// product is (Gᵀ·P)·R with G rounded to the factors'
						// type (u), the k×o intermediate stored in it (u),
						// and float32 accumulation over L and k; entrywise
						// |ΔW| ≤ (2u + (L+k)·u32)·|G|ᵀ|P||R|, so in norm
						// ≤ (2u + (L+k)·u32)·‖G‖_F·‖P‖_F·‖R‖_F, and
						// ‖P‖_F·‖R‖_F ≤ √k·‖X̃‖_F (R has near-orthonormal
						// rows, up to the QR's rounding).
						uu := u
						if gdt == gpu.BFloat16 {
							uu = max(u, ubf)
						}
						bound := (2*uu + float64(L+k)*u32) * mat.Norm(gv, 2) * math.Sqrt(k) * mat.Norm(rg, 2)
						assert.LessOrEqual(t, diffNorm(got, &want), bound, "%s, %v gradient, out×in %v", name, gdt, outIn)
						// Against the host path's, same draw: ‖Gᵀ(X̃_c − X̃_g)‖
						// ≤ ‖G‖₂·‖X̃_c − X̃_g‖_F ≤ ‖G‖_F·(e_c + e_g + tol)·‖X‖_F.
						hostTol := mat.Norm(gv, 2)*(sc.RelError()+sg.RelError()+tol)*nx + bound
						assert.LessOrEqual(t, diffNorm(got, &host), hostTol, "%s, %v gradient: device against host", name, gdt)
					}
					b.Free(dg)
				}
				// The device's pool, not the bookkeeping: Release frees the
				// factors' blocks, their bytes rounded up to the pool's size
				// classes (≤ 1/8 or 511 bytes each); Close frees the
				// compressor's scratch.
				require.NoError(t, b.Synchronize())
				liveHeld := b.MemStats().Live
				require.NoError(t, sg.Release())
				require.NoError(t, sc.Release())
				assert.Zero(t, gc.Stats().Total.Live)
				freed := liveHeld - b.MemStats().Live
				assert.GreaterOrEqual(t, freed, int64(sg.Bytes()), name)
				assert.LessOrEqual(t, freed, int64(sg.Bytes())*9/8+2*511, name)
				liveOpen := b.MemStats().Live
				gc.Close()
				cc.Close()
				assert.Less(t, b.MemStats().Live, liveOpen, "%s: Close frees the compressor's scratch", name)
			}
		}
		b.Free(x)
	}
}

// step is one layer's forward and backward with the compressor: the
// shared input of three projections saved once and retained twice, a
// second input saved on its own, each weight gradient from the factors,
// every handle released.
func step(t *testing.T, c *activation.Compressor, xs [2]*gpu.Matrix, g *gpu.Matrix, dsts [2]*gpu.Matrix) {
	s0, err := c.CompressKey("qkv", activation.Key{ID: 1}, xs[0])
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, s0.Retain())
	}
	s1, err := c.Compress("o", xs[1])
	require.NoError(t, err)
	require.NoError(t, c.Join())
	for range 3 {
		require.NoError(t, s0.WeightGradOutIn(dsts[0], g))
		require.NoError(t, s0.Release())
	}
	require.NoError(t, s1.WeightGradInOut(dsts[1], g))
	require.NoError(t, s1.Release())
}

// TestSteadyState runs training steps on the device and checks, at the
// allocator and the transfer counters: no cuMemAlloc after the first
// step, device free memory unchanged, nothing copied to the device (the
// sampled indices are drawn there from their seeds, draw_uniform), and
// downloads per step that do not grow with the activation (no activation
// or factor bytes cross; what does is a few scalars per compression).
func TestSteadyState(t *testing.T) {
	b := open(t)
	const d, k, o = 512, 32, 64
	perStep := func(L int, workers int) (up, down int64) {
		c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Workers: workers, Seed: 9})
		require.NoError(t, err)
		defer c.Close()
		var xs [2]*gpu.Matrix
		for i := range xs {
			xs[i] = upload(t, b, testmat.Incoherent(L, d, testmat.ActivationLike(d), uint64(i)), gpu.BFloat16)
			defer b.Free(xs[i])
		}
		g := upload(t, b, testmat.Gaussian(L, o, 3), gpu.BFloat16)
		defer b.Free(g)
		dsts := [2]*gpu.Matrix{newMat(t, b, o, d, gpu.Float32, true), newMat(t, b, d, o, gpu.BFloat16, false)}
		for range 2 { // warm-up: the pool and the scratch grow to their size
			step(t, c, xs, g, dsts)
		}
		require.NoError(t, b.Synchronize())
		mallocs := b.MemStats().Mallocs
		free0, _, err := b.MemInfo()
		require.NoError(t, err)
		up0, down0 := transfers(b, c)
		const steps = 5
		for range steps {
			step(t, c, xs, g, dsts)
		}
		require.NoError(t, b.Synchronize())
		free1, _, err := b.MemInfo()
		require.NoError(t, err)
		assert.Equal(t, mallocs, b.MemStats().Mallocs, "L %d, %d workers: cuMemAlloc calls in steady state", L, workers)
		assert.Equal(t, free0, free1, "L %d, %d workers: device free memory in steady state", L, workers)
		assert.Zero(t, c.Stats().Total.Live, "everything released")
		up1, down1 := transfers(b, c)
		return (up1 - up0) / steps, (down1 - down0) / steps
	}
	for _, workers := range []int{0, 2} {
		up, down := perStep(4096, workers)
		up2, down2 := perStep(8192, workers)
		t.Logf("%d workers: per step (2 compressions) %d bytes to the device, %d to the host; at twice L: %d and %d", workers, up, down, up2, down2)
		assert.Equal(t, up, up2, "bytes to the device do not depend on L")
		assert.Equal(t, down, down2, "bytes to the host do not depend on L")
		assert.Zero(t, up, "bytes copied to the device in steady state")
		assert.LessOrEqual(t, down, int64(2*256), "scalars only")
	}
}

// transfers returns the bytes copied between host and device by b and its
// forks (the asynchronous compressor's worker streams).
func transfers(b *gpu.Backend, _ *activation.Compressor) (up, down int64) { return b.Transfers() }

// TestAsyncOrdered compresses on worker streams activations that the
// caller's stream is still writing (a copy queued just before each
// Compress): each worker's stream must wait for it (an event), so the
// factors equal those of synchronous compression on the caller's stream.
// After Wait the caller may overwrite the input without changing the
// saved factors.
func TestAsyncOrdered(t *testing.T) {
	b := open(t)
	const n, L, d, k = 6, 4096, 1024, 48
	var srcs, xs []*gpu.Matrix
	for i := range n {
		src := upload(t, b, testmat.Incoherent(L, d, testmat.ActivationLike(d), uint64(10+i)), gpu.Float32)
		srcs = append(srcs, src)
		xs = append(xs, newMat(t, b, L, d, gpu.Float32, false))
	}
	syncC, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Seed: 5, Precision: lowrank.Float32})
	require.NoError(t, err)
	defer syncC.Close()
	var want []*mat.Dense
	for i := range n {
		require.NoError(t, b.Copy(xs[i], srcs[i]))
		s, err := syncC.Compress("x", xs[i])
		require.NoError(t, err)
		want = append(want, reconstruct(t, b, s))
		require.NoError(t, s.Release())
	}
	// Zero the inputs, then refill each just before its Compress.
	for i := range n {
		require.NoError(t, b.Scale(xs[i], 0))
	}
	asyncC, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Seed: 5, Precision: lowrank.Float32, Workers: 3})
	require.NoError(t, err)
	defer asyncC.Close()
	var saved []*activation.Saved
	for i := range n {
		require.NoError(t, b.Copy(xs[i], srcs[i]))
		s, err := asyncC.Compress("x", xs[i])
		require.NoError(t, err)
		saved = append(saved, s)
	}
	require.NoError(t, asyncC.Join())
	for i := range n {
		require.NoError(t, b.Scale(xs[i], 0)) // the caller reuses the buffer
	}
	for i, s := range saved {
		got := reconstruct(t, b, s)
		// The same operations in the same order on another stream: the
		// same bits (cuBLAS is deterministic on one device); a tolerance
		// of float32 reassociation, (L+d)·u32, keeps the test about
		// ordering.
		assert.LessOrEqual(t, diffNorm(got, want[i]), float64(L+d)*u32*mat.Norm(want[i], 2), "activation %d: the worker read the input before the caller's copy finished, or after it was overwritten", i)
		require.NoError(t, s.Release())
	}
	for _, m := range srcs {
		b.Free(m)
	}
}

// TestConcurrentCompress calls Compress from several goroutines on one
// asynchronous device compressor: every handle's factors are those of the
// same input compressed alone with the same seed policy, and the
// accounting returns to zero.
func TestConcurrentCompress(t *testing.T) {
	b := open(t)
	const n, L, d, k = 8, 2048, 512, 32
	var xs []*gpu.Matrix
	for i := range n {
		xs = append(xs, upload(t, b, testmat.Incoherent(L, d, testmat.ActivationLike(d), uint64(30+i)), gpu.Float32))
	}
	require.NoError(t, b.Synchronize())
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Oversample: 8, PowerIters: 1, Workers: 4, MeasureError: true})
	require.NoError(t, err)
	defer c.Close()
	saved := make([]*activation.Saved, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.Compress("x", xs[i])
			if assert.NoError(t, err) {
				saved[i] = s
			}
		}()
	}
	wg.Wait()
	require.NoError(t, c.Join())
	opt := testmat.OptimalError(testmat.ActivationLike(d), k)
	for i, s := range saved {
		require.NotNil(t, s)
		assert.Equal(t, k, s.Rank())
		// p = 8, q = 1: within 1.5× of the optimum (activation's
		// TestErrorAgainstOptimal), plus the bf16 storage rounding
		// u·(1+√k). A factor garbled by a race would be far off.
		assert.LessOrEqual(t, s.RelError(), 1.5*opt+ubf*(1+math.Sqrt(k)), "activation %d", i)
		// The reported error is that of the stored factors (float32
		// rounding of the difference).
		xv := download(t, b, xs[i])
		rg := reconstruct(t, b, s)
		assert.InDelta(t, s.RelError(), diffNorm(rg, xv)/mat.Norm(xv, 2), float64(k+2)*u32*2, "activation %d", i)
		require.NoError(t, s.Release())
	}
	assert.Zero(t, c.Stats().Total.Live)
	for _, x := range xs {
		b.Free(x)
	}
}

// TestDeviceExactAndTolerance checks the exact SVD and the tolerance
// policy on the device against the host's.
func TestDeviceExactAndTolerance(t *testing.T) {
	b := open(t)
	const L, d, k = 2048, 192, 16
	xh := testmat.Incoherent(L, d, testmat.ActivationLike(d), 7)
	x := upload(t, b, xh, gpu.Float32)
	xv := download(t, b, x)
	for _, rank := range []activation.RankPolicy{activation.Fixed(k), activation.Tolerance(0.2, 64)} {
		cfg := activation.Config{Method: activation.ExactSVD, Rank: rank, Precision: lowrank.Float32}
		cc, err := activation.New(cfg)
		require.NoError(t, err)
		cfg.Backend = b
		gc, err := activation.New(cfg)
		require.NoError(t, err)
		sc, err := cc.Compress("x", xv)
		require.NoError(t, err)
		sg, err := gc.Compress("x", x)
		require.NoError(t, err)
		// The truncated SVD is optimal: both errors are the tail of the
		// same singular values, the device's computed from a float64 Gram
		// of float32 data (relative error ≲ d·u32 in σ², so in the ratio).
		assert.Equal(t, sc.Rank(), sg.Rank(), "%v", rank)
		assert.InDelta(t, sc.RelError(), sg.RelError(), float64(d)*u32+1e-6, "%v", rank)
		rg := reconstruct(t, b, sg)
		// The reported error (from σ) against that of the stored float32
		// factors: their rounding moves X̃ by ≤ u32·(1+√k)·‖X‖_F, R's
		// float32 product over k terms by k·u32, and the float64 Gram's
		// subspace error is far below (d·u32 as a margin).
		assert.InDelta(t, sg.RelError(), diffNorm(rg, xv)/mat.Norm(xv, 2), (1+math.Sqrt(float64(sg.Rank()))+float64(sg.Rank())+d)*u32, "%v: the reported error is the stored factors'", rank)
		t.Logf("%v: rank %d, error host %.5f device %.5f", rank, sg.Rank(), sc.RelError(), sg.RelError())
		require.NoError(t, sg.Release())
		require.NoError(t, sc.Release())
		gc.Close()
		cc.Close()
	}
	// X = 0 with the exact SVD: every policy keeps one rank-one term of
	// zeros at error 0, as the host does (σ₁ = 0 must not divide).
	z := upload(t, b, mat.NewDense(L, d, nil), gpu.Float32)
	for _, rank := range []activation.RankPolicy{activation.Fixed(k), activation.Tolerance(0.2, 64)} {
		for _, be := range []lowrank.Backend{nil, b} {
			zc, err := activation.New(activation.Config{Backend: be, Method: activation.ExactSVD, Rank: rank, Precision: lowrank.Float32})
			require.NoError(t, err)
			var in lowrank.Matrix = z
			if be == nil {
				in = mat.NewDense(L, d, nil)
			}
			zs, err := zc.Compress("zero", in)
			require.NoError(t, err, "%v, device %v", rank, be != nil)
			want := 1
			if rank == activation.Fixed(k) {
				want = k
			}
			assert.Equal(t, want, zs.Rank(), "%v, device %v: X = 0", rank, be != nil)
			assert.Zero(t, zs.RelError(), "%v, device %v: X = 0", rank, be != nil)
			assert.Zero(t, zc.Stats().Total.ToleranceMisses, "%v, device %v: X = 0", rank, be != nil)
			require.NoError(t, zs.Release())
			zc.Close()
		}
	}
	b.Free(z)
	// A tolerance no rank within the bound meets: X is stored as it is, on
	// the device.
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Tolerance(1e-6, 64), Precision: lowrank.Float32})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.False(t, s.Compressed())
	assert.Equal(t, 1, c.Stats().Total.ToleranceMisses)
	assert.Equal(t, 4*L*d, s.Bytes())
	got := reconstruct(t, b, s)
	assert.True(t, mat.Equal(got, xv), "a stored float32 X is X")
	require.NoError(t, s.Release())
	c.Close()
	b.Free(x)
}

// TestDeviceScale checks that the device path's answer does not depend on
// the input's magnitude: X and 2^e·X (e = ±100, within float32's range,
// scaled by a power of two so the data are the same bits) give factors of
// the same relative error, and a rank-deficient X is recovered to float32
// rounding.
func TestDeviceScale(t *testing.T) {
	b := open(t)
	const L, d, k = 1024, 128, 16
	xh := testmat.Incoherent(L, d, testmat.ActivationLike(d), 8)
	errs := map[int]float64{}
	for _, e := range []int{0, -100, 100} {
		var xs mat.Dense
		xs.Scale(math.Ldexp(1, e), xh)
		x := upload(t, b, &xs, gpu.Float32)
		c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Precision: lowrank.Float32, MeasureError: true, Seed: 1})
		require.NoError(t, err)
		s, err := c.Compress("x", x)
		require.NoError(t, err, "scale 2^%d", e)
		errs[e] = s.RelError()
		assert.False(t, math.IsNaN(errs[e]))
		require.NoError(t, s.Release())
		c.Close()
		b.Free(x)
	}
	// Power-of-two scaling changes no rounding: equal to the rounding of
	// the error's own computation.
	for _, e := range []int{-100, 100} {
		assert.InDelta(t, errs[0], errs[e], float64(k+2)*u32, "scale 2^%d: %v", e, errs)
	}

	// Rank 5 < k: the factors reproduce X to float32 rounding (the sketch
	// spans range(X); rounding of the products, ≲ (L+d)·u32, and of the
	// QR's orthogonality).
	low := testmat.Incoherent(L, d, []float64{1, 0.5, 0.25, 0.1, 0.05}, 9)
	x := upload(t, b, low, gpu.Float32)
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Precision: lowrank.Float32, MeasureError: true})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.LessOrEqual(t, s.RelError(), float64(L+d)*u32, "rank-deficient input")
	require.NoError(t, s.Release())
	c.Close()
	b.Free(x)
}

// TestDeviceErrors checks the device path's errors: each names the layer
// and wraps the sentinel a caller tests for.
func TestDeviceErrors(t *testing.T) {
	b := open(t)
	y := testmat.To32(testmat.Incoherent(256, 32, testmat.Flat(32), 2))
	y.Data[40*32+7] = float32(math.NaN())
	dy, err := b.UploadDense32(y, gpu.Float32)
	require.NoError(t, err)
	defer b.Free(dy)
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(4)})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Compress("blk2.fc2", dy)
	var le *activation.LayerError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "blk2.fc2", le.Layer)
	var nf *lowrank.NotFiniteError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, [2]int{40, 7}, [2]int{nf.Row, nf.Col})

	// A host matrix for a device compressor, a host destination for a
	// device handle, and a destination of the wrong shape.
	_, err = c.Compress("x", y)
	assert.ErrorIs(t, err, lowrank.ErrShape)
	good := upload(t, b, testmat.Incoherent(256, 32, testmat.ActivationLike(32), 3), gpu.Float32)
	defer b.Free(good)
	s, err := c.Compress("x", good)
	require.NoError(t, err)
	assert.ErrorIs(t, s.Reconstruct(&mat.Dense{}), lowrank.ErrShape)
	assert.ErrorIs(t, s.Reconstruct(newMat(t, b, 255, 32, gpu.Float32, false)), activation.ErrShapeMismatch)
	g := newMat(t, b, 256, 8, gpu.Float32, false)
	assert.ErrorIs(t, s.WeightGradOutIn(newMat(t, b, 8, 31, gpu.Float32, false), g), activation.ErrShapeMismatch)
	assert.ErrorIs(t, s.WeightGradOutIn(newMat(t, b, 8, 32, gpu.Float32, false), mat.NewDense(256, 8, nil)), lowrank.ErrShape)
	require.NoError(t, s.Release())
	assert.ErrorIs(t, s.Reconstruct(newMat(t, b, 256, 32, gpu.Float32, false)), activation.ErrReleased)

	// float64 storage is a host format.
	_, err = activation.New(activation.Config{Backend: b, Precision: lowrank.Float64})
	assert.ErrorIs(t, err, lowrank.ErrOption)
}

// TestDeviceOutOfMemory fills the device until a compression's scratch
// does not fit: Compress returns the driver's out-of-memory error (named
// by layer), and once memory is freed the same compressor works again.
func TestDeviceOutOfMemory(t *testing.T) {
	b := open(t)
	const L, d, k = 8192, 2048, 256
	x := upload(t, b, testmat.Incoherent(L, d, testmat.ActivationLike(d), 4), gpu.BFloat16)
	defer b.Free(x)
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Workers: 1})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, b.TrimPool())
	free, _, err := b.MemInfo()
	require.NoError(t, err)
	// Take the device's memory in blocks of decreasing size until not
	// even 1 MiB is left: the compression's scratch (the d×k sketch alone
	// is 2 MiB) cannot fit.
	var filler []*gpu.Matrix
	for n := min(int64(free), 16<<30); n >= 1<<20; {
		m, err := b.NewMatrix(int(n/4), 1, gpu.Float32)
		if err != nil {
			n /= 2
			continue
		}
		filler = append(filler, m)
	}
	t.Logf("filled the device with %d blocks", len(filler))
	s, err := c.Compress("big", x)
	if err == nil {
		err = s.Wait()
	}
	var ce *gpu.CUDAError
	require.ErrorAs(t, err, &ce, "%v", err)
	assert.True(t, ce.OutOfMemory(), "%v", err)
	var le *activation.LayerError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "big", le.Layer)
	for _, m := range filler {
		b.Free(m)
	}
	require.NoError(t, b.TrimPool())
	s, err = c.Compress("big", x)
	require.NoError(t, err)
	require.NoError(t, s.Wait())
	assert.Equal(t, k, s.Rank())
	require.NoError(t, s.Release())
}

// TestDeviceCompressBatch checks CompressBatch on the device against
// Compress of the same activations in the same order (the same seeds):
//   - exact-rank-8 float32 inputs at k = 16 with float32 factors are
//     reconstructed by both within 10·(L+d)·u32·‖X‖ (the products'
//     reassociation, as TestAsyncOrdered);
//   - for activation-like bf16 inputs the relative errors agree: e² =
//     1 − ‖B‖²/‖X‖², and the batched ‖B‖² is within 2γ_d of the single
//     one's (gpu.TestQBBatchDevice), so |e_b² − e_s²| ≤ 2γ_d;
//   - five activations of one shape and a sixth of another make one
//     host synchronisation together on one stream (BatchStreams 0: the
//     batch's reads deferred, lowrank.Deferrer), two on two (two groups
//     of three, one each), and repeated batches no cuMemAlloc after the
//     first;
//   - with workers the batch is one job whose handles equal the
//     synchronous batch's bit for bit.
func TestDeviceCompressBatch(t *testing.T) {
	b := open(t)
	const L, d, k, n = 4096, 384, 16, 5
	gamma := func(d int) float64 { return float64(d) * u32 / (1 - float64(d)*u32) }
	layers := []string{"q", "o", "fc1", "a", "b", "other"}
	inputs := func(spec func(int) []float64, dt gpu.DType) []lowrank.Matrix {
		xs := make([]lowrank.Matrix, n+1)
		for i := range xs {
			w := d
			if i == n {
				w = 512
			}
			x := upload(t, b, testmat.Incoherent(L, w, spec(w), uint64(20+i)), dt)
			t.Cleanup(func() { b.Free(x) })
			xs[i] = x
		}
		return xs
	}
	rank8 := func(w int) []float64 { return testmat.RankPlusNoise(w, 8, 0) }
	exact := inputs(rank8, gpu.Float32)
	act := inputs(testmat.ActivationLike, gpu.BFloat16)
	for _, c := range []struct {
		name    string
		xs      []lowrank.Matrix
		prec    lowrank.Precision
		streams int
	}{{"rank 8, float32, one stream", exact, lowrank.Float32, 0}, {"activation-like, bf16, one stream", act, lowrank.BFloat16, 0},
		{"rank 8, float32, two streams", exact, lowrank.Float32, 2}, {"activation-like, bf16, two streams", act, lowrank.BFloat16, 2}} {
		cfg := activation.Config{Backend: b, Rank: activation.Fixed(k), Seed: 4, Precision: c.prec, BatchStreams: c.streams}
		single, err := activation.New(cfg)
		require.NoError(t, err)
		batch, err := activation.New(cfg)
		require.NoError(t, err)
		// Every compressor runs the batch twice, the first a warm-up: the
		// second uses the seeds of calls 6 to 11 in each.
		var want []*activation.Saved
		for round := range 2 {
			for i, x := range c.xs {
				s, err := single.Compress(layers[i], x)
				require.NoError(t, err)
				if round == 0 {
					require.NoError(t, s.Release())
				} else {
					want = append(want, s)
				}
			}
		}
		got, err := batch.CompressBatch(layers, c.xs) // warm-up
		require.NoError(t, err)
		for _, s := range got {
			require.NoError(t, s.Release())
		}
		require.NoError(t, b.Synchronize())
		s0, m0 := b.Syncs(), b.MemStats().Mallocs
		got, err = batch.CompressBatch(layers, c.xs)
		require.NoError(t, err)
		if c.prec == lowrank.BFloat16 {
			// (The rank-8 sketches are rank-deficient: their QRs fall
			// back to QR alone, with its own synchronisations.)
			assert.Equal(t, int64(max(c.streams, 1)), b.Syncs()-s0, "%s: one a stream for the six of two shapes", c.name)
		}
		assert.Equal(t, m0, b.MemStats().Mallocs, "%s: cuMemAlloc calls in a repeated batch", c.name)
		for i, x := range c.xs {
			r, w := x.Dims()
			if c.prec == lowrank.Float32 {
				xh := download(t, b, x)
				tol := 10 * float64(r+w) * u32 * mat.Norm(xh, 2)
				assert.LessOrEqual(t, diffNorm(reconstruct(t, b, got[i]), xh), tol, "%s item %d: batched", c.name, i)
				assert.LessOrEqual(t, diffNorm(reconstruct(t, b, want[i]), xh), tol, "%s item %d: single", c.name, i)
			} else {
				eb, es := got[i].RelError(), want[i].RelError()
				assert.InDelta(t, es*es, eb*eb, 2*gamma(w), "%s item %d: e² batched and single", c.name, i)
			}
			assert.Equal(t, want[i].Bytes(), got[i].Bytes())
		}
		// The same batch as one asynchronous job.
		cfg.Workers = 2
		async, err := activation.New(cfg)
		require.NoError(t, err)
		ag, err := async.CompressBatch(layers, c.xs)
		require.NoError(t, err)
		require.NoError(t, async.Join())
		for _, s := range ag {
			require.NoError(t, s.Release())
		}
		ag, err = async.CompressBatch(layers, c.xs)
		require.NoError(t, err)
		require.NoError(t, async.Join())
		for i := range c.xs {
			assert.True(t, mat.Equal(reconstruct(t, b, got[i]), reconstruct(t, b, ag[i])), "%s item %d: asynchronous batch", c.name, i)
			require.NoError(t, ag[i].Release())
			require.NoError(t, got[i].Release())
			require.NoError(t, want[i].Release())
		}
		async.Close()
		single.Close()
		batch.Close()
	}
}
