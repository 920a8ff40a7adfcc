package gpu

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

var (
	profFlag       = flag.Bool("gpu.prof", false, "time the pieces of the Cholesky QR and of ExactSVD")
	cholWidthsFlag = flag.String("gpu.cholwidths", "32,64,115,128,231,256,384,512", "TestProfileChol64's widths ℓ, comma-separated")
	kernelsFlag    = flag.String("gpu.kernels", "", "compile this CUDA source in place of the embedded kernels.cu (a variant of a kernel, with every kernel's name and signature kept, tested and timed by the same binary)")
)

// TestMain applies -gpu.kernels before any test opens a Backend: the
// package compiles kernelSource when a Backend first needs it.
func TestMain(m *testing.M) {
	flag.Parse()
	if *kernelsFlag != "" {
		src, err := os.ReadFile(*kernelsFlag)
		if err != nil {
			fmt.Fprintln(os.Stderr, "-gpu.kernels:", err)
			os.Exit(2)
		}
		kernelSource = string(src)
	}
	os.Exit(m.Run())
}

// aheadDelay returns work to queue before a timed call so that the host
// enqueues the whole call before the stream reaches it: a 4096³ float32
// product, ≈ 3 ms on an H200 (its matrices live as long as b).
func aheadDelay(t *testing.T, b *Backend) func() error {
	const nd = 4096
	da, err := b.NewMatrix(nd, nd, Float32)
	require.NoError(t, err)
	dc, err := b.NewMatrix(nd, nd, Float32)
	require.NoError(t, err)
	return func() error {
		require.NoError(t, b.enter())
		defer b.leave()
		return b.gemm(dc, 1, da, false, da, false, 0, FP32)
	}
}

// TestProfile times each launch of the Cholesky QR (p = 4096) and of
// ExactSVD (8192×4096), one JSON line each. Behind -gpu.prof.
func TestProfile(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	// Each piece is timed twice: as it is, with the stream idle when the
	// host starts enqueueing it (the events then include the host's
	// launch latency, as after every synchronisation), and "ahead":
	// behind a 4096³ float32 product (≈ 3 ms on an H200), so that the
	// events see only the GPU's time.
	delay := aheadDelay(t, b)
	const reps = 20
	for _, pl := range [][2]int{{4096, 128}, {4096, 256}, {4096, 512}, {11008, 256}} {
		p, l := pl[0], pl[1]
		y, err := b.NewMatrix(p, l, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Normal(y, 1))
		y64, _ := b.alloc(8 * p * l)
		g64, _ := b.alloc(8 * l * l)
		r64, _ := b.alloc(8 * l * l)
		g, _ := b.alloc(4 * l * l)
		rinv, _ := b.alloc(4 * l * l)
		r, _ := b.alloc(4 * l * l)
		st, _ := b.alloc(16)
		out, _ := b.alloc(4 * p * l)
		piece := func(name string, f func() error) {
			run := func(int) error {
				require.NoError(t, b.enter())
				defer b.leave()
				return f()
			}
			med, lo := tm.median(t, reps, run)
			tm.ahead = delay
			amed, alo := tm.median(t, reps, run)
			tm.ahead = nil
			emit(map[string]any{"piece": name, "p": p, "l": l, "ms": med, "ms_min": lo, "ms_ahead": amed, "ms_ahead_min": alo})
		}
		piece("cast f32→f64", func() error {
			return b.copy2D(y64, codeF64, 1, p, y.ptr, codeF32, 1, p, p, l, false)
		})
		piece("dsyrk", func() error {
			b.sc64[0], b.sc64[1] = 1, 0
			return checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(p),
				unsafe.Pointer(&b.sc64[0]), y64, int32(p), unsafe.Pointer(&b.sc64[1]), g64, int32(l)), "dsyrk")
		})
		if cholSmem(l, 8, true) <= b.smemMax {
			piece("cholinv64 fused", func() error {
				return b.cholInv64(g64, l, l, rinv, l, r, l, 1e-12, 1e-12, st)
			})
		}
		var lw int32
		require.NoError(t, checkSolver(b.api.cusolverDnDpotrfBufferSize(b.solver, cublasFillUpper, int32(l), g64, int32(l), &lw), "x"))
		w, _ := b.alloc(8 * int(max(lw, 1)))
		piece("dsyrk+dpotrf", func() error {
			b.sc64[0], b.sc64[1] = 1, 0
			if err := checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(p),
				unsafe.Pointer(&b.sc64[0]), y64, int32(p), unsafe.Pointer(&b.sc64[1]), g64, int32(l)), "dsyrk"); err != nil {
				return err
			}
			return checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), g64, int32(l), w, lw, st+8), "potrf")
		})
		if cholBlkSmem(l) <= b.smemMax {
			piece("dgemm+cholblk64", func() error {
				if err := b.dgemm(true, false, l, l, p, y64, p, y64, p, g64, l); err != nil {
					return err
				}
				return b.cholBlk64(g64, l, r64, l, l, 1e-12, 1e-12, st+8)
			})
		}
		piece("trinv64", func() error {
			return b.trInv64(rinv, l, g64, l, l)
		})
		piece("dgemm gram", func() error {
			return b.dgemm(true, false, l, l, p, y64, p, y64, p, g64, l)
		})
		piece("sgemm gram", func() error { return b.gram32(g, y.ptr, p, l) })
		piece("ssyrk", func() error {
			b.sc32[0], b.sc32[1] = 1, 0
			return checkBLAS(b.api.cublasSsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(p),
				unsafe.Pointer(&b.sc32[0]), y.ptr, int32(p), unsafe.Pointer(&b.sc32[1]), g, int32(l)), "ssyrk")
		})
		for _, fused := range []bool{true, false} {
			shm := cholSmem(l, 4, fused)
			if shm > b.smemMax {
				continue
			}
			name := map[bool]string{true: "cholinv fused", false: "cholinv R only"}[fused]
			piece(name, func() error {
				return b.cholInv(g, l, l, rinv, l, r, l, 1e-3, 1e-2, st, fused)
			})
		}
		piece("trinv", func() error { return b.trInv(rinv, l, r, l, l) })
		piece("gemm Y·R⁻¹", func() error { return b.applyRinv(out, y.ptr, p, rinv, p, l) })
		piece("status download", func() error {
			var s [3]int32
			return b.download(unsafe.Pointer(&s[0]), st, 12)
		})
		q, err := b.qrScratch(p, l)
		require.NoError(t, err)
		piece("nsStep", func() error { return b.nsStep(q, y.ptr, out, p, l, stDevNS1) })
		piece("cholPass64", func() error { return b.cholPass64(q, y.ptr, p, out, p, l, false) })
		if b.fits32(l) { // the float32 pass's shared memory, as qr.go checks it
			piece("cholPass32", func() error { return b.cholPass32(q, 1, y.ptr, out, p, l) })
		}
		om := &Matrix{ptr: out, rows: p, cols: l, ld: p, dtype: Float32}
		rm, err := b.NewMatrix(l, l, Float32)
		require.NoError(t, err)
		fb := b.fallbacks
		piece("whole QR, no R", func() error {
			if err := b.copyMat(om, y); err != nil {
				return err
			}
			return b.cholQR(om, nil)
		})
		piece("whole QR, with R", func() error {
			if err := b.copyMat(om, y); err != nil {
				return err
			}
			return b.cholQR(om, rm)
		})
		piece("copy only", func() error { return b.copyMat(om, y) })
		emit(map[string]any{"fallbacks": b.fallbacks - fb})
		b.Free(y)
	}
	// ExactSVD pieces, 8192×4096.
	const m, n = 8192, 4096
	a, err := b.NewMatrix(m, n, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Normal(a, 5))
	a64, _ := b.alloc(8 * m * n)
	g, _ := b.alloc(8 * n * n)
	g2, _ := b.alloc(8 * n * n)
	w, _ := b.alloc(8*n + 64)
	x, _ := b.alloc(8 * m * n)
	one := func(name string, f func() error) {
		med, lo := tm.median(t, 2, func(int) error {
			require.NoError(t, b.enter())
			defer b.leave()
			return f()
		})
		emit(map[string]any{"piece": name, "m": m, "n": n, "ms": med, "ms_min": lo})
	}
	one("cast", func() error {
		return b.copy2D(a64, codeF64, 1, m, a.ptr, codeF32, 1, m, m, n, false)
	})
	one("dsyrk AᵀA", func() error {
		b.sc64[0], b.sc64[1] = 1, 0
		return checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, n, m,
			unsafe.Pointer(&b.sc64[0]), a64, m, unsafe.Pointer(&b.sc64[1]), g, n), "dsyrk")
	})
	one("dgemm AᵀA", func() error {
		return b.dgemm(true, false, n, n, m, a64, m, a64, m, g, n)
	})
	for _, uplo := range []int32{cublasFillUpper, 0} {
		var lw int32
		require.NoError(t, checkSolver(b.api.cusolverDnDsyevdBufferSize(b.solver, cusolverEigModeVector, uplo, n, g2, n, w, &lw), "x"))
		wk, _ := b.alloc(8 * int(lw))
		one(fmt.Sprintf("dsyevd uplo=%d", uplo), func() error {
			if err := b.api.check(b.api.cuMemcpyDtoDAsync(g2, g, 8*n*n, b.stream), "copy"); err != nil {
				return err
			}
			return checkSolver(b.api.cusolverDnDsyevd(b.solver, cusolverEigModeVector, uplo, n, g2, n, w, wk, lw, w+8*n), "syevd")
		})
	}
	one("dgemm A·V", func() error {
		return b.dgemm(false, false, m, n, n, a64, m, g2, n, x, m)
	})
	// The full SVD, and k = 128 by each route: on this Gaussian matrix (a
	// spectrum without a gap) the subspace route gives up after its first
	// check, so its line is that check's cost on top of dsyevdx; on a
	// power-law spectrum (σ_j = 1/j + 10⁻³, the benchmark's) it converges.
	exact := func(name string, a *Matrix, k int, noSyevdx, noSubspace bool) {
		b.noSyevdx, b.noSubspace = noSyevdx, noSubspace
		one(name, func() error {
			u, v, _, err := b.ExactSVD(a, k)
			if err == nil {
				b.Free(u)
				b.Free(v)
			}
			return err
		})
		run := b.lastSubspace
		emit(map[string]any{"piece": name + " route", "steps": run.Steps, "checks": run.Checks, "residual": run.Residual, "used": run.Used, "split": run.Split})
	}
	exact(fmt.Sprintf("ExactSVD k=%d", n), a, n, false, false)
	exact("ExactSVD k=128 (subspace, Gaussian)", a, 128, false, false)
	exact("ExactSVD k=128 (dsyevdx)", a, 128, false, true)
	exact("ExactSVD k=128 (dsyevd)", a, 128, true, true)
	// The subspace route's pieces at ℓ = 256 on the Gram matrix g: one
	// step (product and Cholesky QR pass) and the check's eigensolver.
	const l = 256
	vb, _ := b.alloc(8 * n * l)
	zb, _ := b.alloc(8 * n * l)
	hb, _ := b.alloc(8*l*l + 8*l + 64)
	require.NoError(t, b.normal(x, n, n, l, 1))
	require.NoError(t, b.copy2D(vb, codeF64, 1, n, x, codeF32, 1, n, n, l, false))
	one("subspace: G·V (4096², ℓ = 256)", func() error {
		return b.dgemm(false, false, n, l, n, g, n, vb, n, zb, n)
	})
	one("subspace: G·V half (4096², ℓ/2 = 128)", func() error {
		return b.dgemm(false, false, n, l/2, n, g, n, vb, n, zb, n)
	})
	one("subspace: Cholesky QR pass 4096×256", func() error {
		if err := b.api.check(b.api.cuMemcpyDtoDAsync(zb, vb, 8*n*l, b.stream), "copy"); err != nil {
			return err
		}
		w, lw, err := b.potrfWork(hb, l)
		if err != nil {
			return err
		}
		return b.orth64(zb, n, l, hb, hb+uintptr(8*l*l+8*l), w, lw)
	})
	// The Cholesky QR pass's other two calls alone (hb's upper triangle,
	// VᵀV of the Gaussian V, stands for R).
	syrk := func() error {
		b.sc64[0], b.sc64[1] = 1, 0
		return checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, l, n,
			unsafe.Pointer(&b.sc64[0]), vb, n, unsafe.Pointer(&b.sc64[1]), hb, l), "dsyrk")
	}
	one("subspace: dsyrk 4096×256 (of the pass)", syrk)
	one("subspace: dtrsm 4096×256 (of the pass)", func() error {
		if err := b.api.check(b.api.cuMemcpyDtoDAsync(zb, vb, 8*n*l, b.stream), "copy"); err != nil {
			return err
		}
		b.sc64[0] = 1
		return checkBLAS(b.api.cublasDtrsm(b.blas, cublasSideRight, cublasFillUpper, cublasOpN, cublasDiagNonUnit, n, l,
			unsafe.Pointer(&b.sc64[0]), hb, l, zb, n), "dtrsm")
	})
	one("subspace: D2D copy 4096×256 float64 (in each timing above that copies)", func() error {
		return b.api.check(b.api.cuMemcpyDtoDAsync(zb, vb, 8*n*l, b.stream), "copy")
	})
	one("subspace: dsyevd 256", func() error {
		if err := syrk(); err != nil {
			return err
		}
		return b.dsyevd(hb, l, hb+uintptr(8*l*l), hb+uintptr(8*l*l+8*l))
	})
	for _, p := range []uintptr{vb, zb, hb} {
		require.NoError(t, b.free(p))
	}
	pl := testmat.Incoherent(m, n, testmat.PowerLaw(n, 1, 1e-3), 7)
	dpl, err := b.UploadDense32(testmat.To32(pl), Float32)
	require.NoError(t, err)
	for _, k := range []int{32, 64, 128, 256, 512} {
		exact(fmt.Sprintf("ExactSVD k=%d (subspace, power law)", k), dpl, k, false, false)
		b.constShift = true
		exact(fmt.Sprintf("ExactSVD k=%d (subspace, power law, constant shift)", k), dpl, k, false, false)
		b.constShift = false
		b.noSplit = true
		exact(fmt.Sprintf("ExactSVD k=%d (subspace, power law, one stream)", k), dpl, k, false, false)
		b.noSplit = false
		b.trsmOrth = true
		exact(fmt.Sprintf("ExactSVD k=%d (subspace, power law, dtrsm steps)", k), dpl, k, false, false)
		b.trsmOrth = false
		exact(fmt.Sprintf("ExactSVD k=%d (dsyevdx, power law)", k), dpl, k, false, true)
	}
	b.Free(dpl)
	b.noSyevdx, b.noSubspace = false, false
}

// TestProfileGather times the fused first read of the step benchmark's
// inputs (row-major bf16 L×d), kernel and partial sums without the
// read-back, for every variant of its kernels: ℓ = 256 sampled columns
// (stored rows: gather_norm_rows, gatherMode) at L = 16384, and ℓ = 256
// sampled rows (stored columns: gather_norm_cols, gatherColsMode) of the
// 8192×11008 input, whose QB takes that orientation; beside a
// device-to-device copy and SquaredNorm's kernel of the same bytes.
// Behind -gpu.prof; CUDA events with the host ahead (aheadDelay).
func TestProfileGather(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	tm.ahead = aheadDelay(t, b)
	defer func() { b.gatherMode, b.gatherColsMode = 0, 0 }()
	const l, reps = 256, 20
	for _, c := range []struct {
		L, d  int
		trans bool // samples columns of the activation (stored rows)
	}{{16384, 4096, true}, {16384, 11008, true}, {8192, 11008, false}} {
		L, d := c.L, c.d
		a := traceInput(t, b, L, d, BFloat16)
		p, s := d, L
		if !c.trans {
			p, s = L, d
		}
		rng := rand.New(rand.NewPCG(1, uint64(d)))
		idx := rng.Perm(p)[:l]
		omega, err := b.NewMatrix(s, l, Float32)
		require.NoError(t, err)
		require.True(t, b.fusable(a, c.trans, idx))
		nb, nmap := b.gatherNormBlocks(a, c.trans)
		nbs := b.sqNormBlocks(a)
		part, err := b.alloc(8 * (2*max(nb, nbs) + 2))
		require.NoError(t, err)
		var cmap uintptr
		if nmap > 0 {
			cmap, err = b.alloc(4 * nmap)
			require.NoError(t, err)
		}
		require.NoError(t, b.enter())
		di, err := b.uploadIndices(idx)
		b.leave()
		require.NoError(t, err)
		bytes := 2 * L * d
		one := func(name string, f func() error) {
			med, lo := tm.median(t, reps, func(int) error {
				require.NoError(t, b.enter())
				defer b.leave()
				return f()
			})
			emit(map[string]any{"piece": name, "L": L, "d": d, "l": l, "ms": med, "ms_min": lo,
				"read_TBps": float64(bytes) / (med * 1e-3) / 1e12})
		}
		modes, first, smem := gatherModes, kGatherNormRows, gatherNormSmem(l, d)
		if nmap > 0 {
			modes, first, smem = gatherColsModes, kGatherNormCols, 0
		}
		for mode := range modes {
			b.gatherMode, b.gatherColsMode = mode%gatherModes, mode%gatherColsModes
			one(fmt.Sprintf("fused read, %s", kernelNames[first+kernel(mode)]), func() error {
				return b.gatherNormInto(part+uintptr(8*2*nb), part, cmap, omega, a, c.trans, di, l)
			})
			regs, local, blocks := kernelStats(t, b, first+kernel(mode), gatherNormThreads, smem)
			emit(map[string]any{"kernel": kernelNames[first+kernel(mode)], "L": L, "d": d, "regs": regs, "local_bytes": local,
				"blocks_per_sm": blocks, "threads": gatherNormThreads, "smem_bytes": smem})
		}
		b.gatherMode, b.gatherColsMode = 0, 0
		dst, err := b.alloc(bytes)
		require.NoError(t, err)
		one("copy (read and write)", func() error {
			return b.api.check(b.api.cuMemcpyDtoDAsync(dst, a.ptr, uintptr(bytes), b.stream), "cuMemcpyDtoDAsync")
		})
		one("sumsq_bf16 kernel and partial sums", func() error {
			return b.sqNormInto(part+uintptr(8*2*nbs), part, a, 1)
		})
		for _, q := range []uintptr{part, cmap, dst} {
			if q != 0 {
				require.NoError(t, b.free(q))
			}
		}
		b.Free(omega)
		b.Free(a)
	}
}

// kernelStats returns kernel k's registers per thread, local memory per
// thread (spills) and resident blocks per multiprocessor for blocks of
// the given threads and dynamic shared memory, as the driver reports them.
func kernelStats(t *testing.T, b *Backend, k kernel, threads, smem int) (regs, local, blocks int32) {
	a := b.api
	require.NoError(t, a.check(a.cuFuncGetAttribute(&regs, cuFuncAttrNumRegs, b.fn[k]), "cuFuncGetAttribute"))
	require.NoError(t, a.check(a.cuFuncGetAttribute(&local, cuFuncAttrLocalSize, b.fn[k]), "cuFuncGetAttribute"))
	require.NoError(t, a.check(a.cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, b.fn[k], int32(threads), uintptr(smem)),
		"cuOccupancyMaxActiveBlocksPerMultiprocessor"))
	return regs, local, blocks
}

// TestProfileDraw times draw_uniform alone (a batch's four draws of 256
// of 4096, 4096, 4096 and 11008 rows, and one of 128 of 4096) with the
// host ahead (aheadDelay), and single rows QBs with the indices drawn on
// the device and copied (noDraw), CUDA events around each call, median of
// 20: what drawing costs on a compression's critical path. Behind
// -gpu.prof.
func TestProfileDraw(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	defer func() { b.noDraw = false }()
	dev, err := b.alloc(8 * 4 * 256)
	require.NoError(t, err)
	for _, c := range []struct {
		l  int
		ps []int
	}{{256, []int{4096, 4096, 4096, 11008}}, {128, []int{4096}}} {
		seeds := make([]uint64, len(c.ps))
		for i := range seeds {
			seeds[i] = uint64(i + 1)
		}
		for _, ahead := range []bool{false, true} {
			tm.ahead = nil
			if ahead {
				tm.ahead = aheadDelay(t, b)
			}
			med, lo := tm.median(t, 20, func(int) error {
				require.NoError(t, b.enter())
				defer b.leave()
				return b.drawUniform(dev, c.l, seeds, c.ps)
			})
			emit(map[string]any{"piece": fmt.Sprintf("draw_uniform: %d draws of %d of %v rows", len(c.ps), c.l, c.ps), "ahead": ahead, "ms": med, "ms_min": lo})
		}
	}
	require.NoError(t, b.free(dev))
	tm.ahead = nil
	for _, c := range []struct {
		m, n, k int
		dt      DType
	}{{16384, 4096, 256, BFloat16}, {8192, 4096, 128, Float32}} {
		a := traceInput(t, b, c.m, c.n, c.dt)
		dec := sampling.NewDecomposer(b)
		var f lowrank.Factors
		for _, noDraw := range []bool{false, true, false, true} {
			b.noDraw = noDraw
			med, lo := tm.median(t, 20, func(i int) error {
				return dec.QBTo(&f, a, c.k, &sampling.Options{Seed: uint64(i + 100)})
			})
			emit(map[string]any{"piece": fmt.Sprintf("rows QB %d×%d k=%d %v", c.m, c.n, c.k, c.dt), "indices_copied": noDraw, "ms": med, "ms_min": lo})
		}
		b.noDraw = false
		f.Free(b)
		dec.Close()
		b.Free(a)
	}
}

// TestProfileChol64 times the factorisation of n float64 ℓ×ℓ Gram
// matrices (κ = 10⁴) by one chol64 launch, by cuSOLVER's batched potrf and
// by n dpotrf calls, each after a device copy of the inputs (timed alone
// too), CUDA events around each call, median of 20 after 3 warm-ups, as
// called and queued behind a 4096³ product (aheadDelay: the device's time
// alone), with chol64's registers and spills: the measurement behind
// chol64Max. Behind -gpu.prof; -gpu.cholwidths picks
// the widths (one, to profile a launch of it under ncu).
func TestProfileChol64(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	delay := aheadDelay(t, b)
	name, _ := b.Device()
	regs, local, blocks := kernelStats(t, b, kChol64, chol64Threads, chol64Smem(256))
	emit(map[string]any{"kernel": "chol64", "device": name, "regs": regs, "local_bytes": local, "blocks_per_sm_l256": blocks})
	var widths []int
	for _, f := range strings.Split(*cholWidthsFlag, ",") {
		l, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(t, err, "-gpu.cholwidths")
		require.Positive(t, l, "-gpu.cholwidths")
		widths = append(widths, l)
	}
	for _, l := range widths {
		if chol64Smem(l) > b.smemMax {
			continue
		}
		for _, n := range []int{1, 4} {
			host := make([]float64, 0, n*l*l)
			for k := range n {
				g := gramOf(2048, l, 1e4, l, uint64(k+1))
				for j := range l {
					for i := range l {
						host = append(host, g.At(i, j))
					}
				}
			}
			size := 8 * n * l * l
			require.NoError(t, b.enter())
			src, err := b.alloc(size)
			require.NoError(t, err)
			d, err := b.alloc(size)
			require.NoError(t, err)
			info, err := b.alloc(4 * n)
			require.NoError(t, err)
			ptrs, err := b.alloc(8 * n)
			require.NoError(t, err)
			require.NoError(t, b.api.check(b.api.cuMemcpyHtoDAsync(src, unsafe.Pointer(&host[0]), uintptr(size), b.stream), "cuMemcpyHtoDAsync_v2"))
			require.NoError(t, b.uploadPtrs(ptrs, d, 8*l*l, n))
			w, lw, err := b.potrfWork(d, l)
			require.NoError(t, err)
			b.leave()
			cp := func() error {
				return b.api.check(b.api.cuMemcpyDtoDAsync(d, src, uintptr(size), b.stream), "cuMemcpyDtoDAsync_v2")
			}
			rec := map[string]any{"chol": fmt.Sprintf("%d x %d", n, l), "device": name}
			for _, v := range []struct {
				key string
				f   func() error
			}{
				{"copy", cp},
				{"chol64", func() error { return b.chol64(d, l, l*l, info, n) }},
				{"potrf_batched", func() error {
					return checkSolver(b.api.cusolverDnDpotrfBatched(b.solver, cublasFillUpper, int32(l), ptrs, int32(l), info, int32(n)), "cusolverDnDpotrfBatched")
				}},
				{"dpotrf_each", func() error {
					for k := range n {
						if err := checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), d+uintptr(8*k*l*l), int32(l), w, lw, info+uintptr(4*k)), "cusolverDnDpotrf"); err != nil {
							return err
						}
					}
					return nil
				}},
			} {
				f := v.f
				if v.key != "copy" {
					f = func() error {
						if err := cp(); err != nil {
							return err
						}
						return v.f()
					}
				}
				run := func(int) error {
					require.NoError(t, b.enter())
					defer b.leave()
					return f()
				}
				med, _ := tm.median(t, 20, run)
				tm.ahead = delay
				amed, _ := tm.median(t, 20, run)
				tm.ahead = nil
				rec[v.key+"_ms"], rec[v.key+"_ahead_ms"] = med, amed
				infos := make([]int32, n)
				require.NoError(t, b.enter())
				require.NoError(t, b.download(unsafe.Pointer(&infos[0]), info, 4*n))
				b.leave()
				require.Equal(t, make([]int32, n), infos, "%s %d x %d: breakdown", v.key, n, l)
			}
			emit(rec)
			require.NoError(t, b.enter())
			for _, p := range []uintptr{src, d, info, ptrs} {
				require.NoError(t, b.free(p))
			}
			b.leave()
		}
	}
}
