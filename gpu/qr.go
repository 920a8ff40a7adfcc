package gpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// QR replaces a (p×l, p ≥ l) by the orthonormal factor of its thin QR and
// writes R (l×l upper triangular) into r if r is not nil.
//
// With CholQR (default) it is a mixed-precision Cholesky QR (Yamazaki,
// Tomov, Dongarra, SIAM J. Sci. Comput. 37(3), 2015). The first pass forms
// the Gram matrix YᵀY in float64 (dgemm on a float64 copy of Y: products
// of float32 numbers are exact in float64), factors it in float64
// (cuSOLVER's dpotrf; a one-block kernel for ℓ < 32) and forms
// Q₁ = Y·R₁⁻¹ in float32, orthogonal to about u₃₂·κ(Y) for κ(Y) up to
// ≈ 10⁷, where a float32 Gram matrix fails beyond κ ≈ u₃₂^{-1/2} ≈ 4·10³ —
// and a sketch Y = A·A_Sᵀ squares the condition number of A's leading
// part. A factorisation that breaks down is retried with a shift s·I,
// s = 2(p + ℓ(ℓ+1))·u·trace(G), covering the rounding of the Gram product
// and of the factorisation (shifted Cholesky QR, Fukaya et al., SIAM J.
// Sci. Comput. 42(1), 2020).
//
// Without r, Q₁ is then orthogonalised by one or two polynomial steps
// Q ← Q·(I + E)^{-1/2} to second order (E = QᵀQ − I; only matrix
// products). With r, or if the steps do not converge, float32 Cholesky
// passes follow until the defect of a pass's input is below 0.5/ℓ, and
// R = R_last···R₁. If that fails too, or a factorisation broke down even
// with the shift (rank deficiency), Householder QR of the original a is
// used, so the l columns are orthonormal to working accuracy for any a.
//
// Cost without r: 4p·ℓ² flops of Gram products and 4p·ℓ² of products
// Y·X, one dpotrf of ℓ×ℓ, two small kernels and one host synchronisation.
// With Householder: cuSOLVER's geqrf and orgqr.
func (b *Backend) QR(a, r lowrank.Matrix) error {
	am := b.mat(a)
	work(am)
	p, l := am.Dims()
	if p < l {
		panic(lowrank.ErrShape)
	}
	var rm *Matrix
	if r != nil {
		rm = b.mat(r)
		work(rm)
		if rm.rows != l || rm.cols != l {
			panic(lowrank.ErrShape)
		}
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	// The float64 pass and the polynomial steps work for every ℓ ≤ 1024
	// (trinv64 has one thread per row); the float32 passes of the
	// triangular path keep the packed upper triangle of G in shared
	// memory, ℓ(ℓ+1)/2 + 3ℓ floats, ℓ ≤ 334 on a 227 KiB block: beyond,
	// that path is Householder QR (before, every ℓ > 334 was: a cliff).
	if b.opts.QR == Householder || l > 1024 || (rm != nil && !b.fits32(l)) {
		return b.householder(am, rm)
	}
	return b.cholQR(am, rm)
}

// fits32 reports whether the float32 Cholesky pass (cholinv, R only) fits
// the device's shared memory for ℓ.
func (b *Backend) fits32(l int) bool { return cholSmem(l, 4, false) <= b.smemMax }

// cholSmem returns the dynamic shared memory of cholinv for ℓ and element
// size es: packed G (and Xt if inv), two row buffers and the diagonal.
func cholSmem(l, es int, inv bool) int {
	np := l * (l + 1) / 2
	if inv {
		np *= 2
	}
	return (np + 3*l) * es
}

// qrBufs are the scratch buffers of one Cholesky QR.
type qrBufs struct {
	t, s, y64, g, h, rinv, g64, status uintptr
	rs                                 [4]uintptr
}

func (b *Backend) qrScratch(p, l int) (*qrBufs, error) {
	var q qrBufs
	var err error
	const f = 4
	if q.t, err = b.buf(&b.sc.qrT, p*l*f); err != nil {
		return nil, err
	}
	if q.s, err = b.buf(&b.sc.qrS, p*l*f); err != nil {
		return nil, err
	}
	if q.y64, err = b.buf(&b.sc.qrY64, p*l*8); err != nil {
		return nil, err
	}
	// float64 first, so that every float64 element is 8-byte aligned
	// whatever ℓ (cuMemAlloc returns 256-byte aligned memory).
	small, err := b.buf(&b.sc.qrSmall, l*l*8+7*l*l*f)
	if err != nil {
		return nil, err
	}
	q.g64 = small
	fs := small + uintptr(l*l*8)
	q.g, q.h, q.rinv = fs, fs+uintptr(l*l*f), fs+uintptr(2*l*l*f)
	for i := range q.rs {
		q.rs[i] = fs + uintptr((3+i)*l*l*f)
	}
	if q.status, err = b.buf(&b.sc.qrStatus, 4*stSlots+8); err != nil {
		return nil, err
	}
	return &q, nil
}

// Status slots (int32) of a Cholesky QR.
const (
	stFlags  = 0 // bit 0: a factorisation failed even with the shift; bit 1: NaN
	stDev    = 1 // max|G − I| of the last cholinv pass's input (float bits)
	stPotrf  = 2 // dpotrf's devInfo
	stDevNS1 = 3 // max|G − I| before the first polynomial step
	stDevNS2 = 4 // max|G − I| before the second polynomial step
	stFroNS1 = 5 // ‖G − I‖_F² before the first polynomial step (float)
	stFroNS2 = 6 // ‖G − I‖_F² before the second polynomial step (float)
	stSlots  = 8
)

func (b *Backend) cholQR(a, r *Matrix) error {
	p, l := a.Dims()
	q, err := b.qrScratch(p, l)
	if err != nil {
		return err
	}
	if r == nil {
		// Fast path: one float64 Cholesky pass, then two polynomial
		// steps Q ← Q·(I + E)^{-1/2}, each only matrix products.
		if err := b.zeroStatus(q); err != nil {
			return err
		}
		if err := b.cholPass64(q, a.ptr, a.ld, q.t, p, l, false); err != nil {
			return err
		}
		if err := b.nsStep(q, q.t, q.s, p, l, stDevNS1); err != nil {
			return err
		}
		st, err := b.readStatus(q)
		if err != nil {
			return err
		}
		// A step leaves QᵀQ − I = −5/16·E³ + O(E⁴) (the series of
		// (I + E)^{-1/2}): with ‖E‖₂ ≤ ‖E‖_F ≤ 0.02 that is ≤ 2.5·10⁻⁶,
		// the rounding level of float32 products of length p ≈ 4096
		// (√p·u ≈ 4·10⁻⁶), and one step is enough. A step converges for
		// ‖E‖₂ < 1; ‖E‖_F ≤ 0.5 leaves margin for a second one.
		fro := func(slot int) float64 { return math.Sqrt(devOf(st[slot])) }
		ok := st[stFlags] == 0 && st[stPotrf] == 0
		res := q.s
		if ok && fro(stFroNS1) > 0.02 {
			ok = fro(stFroNS1) <= 0.5
			if ok {
				if err := b.nsStep(q, q.s, q.t, p, l, stDevNS2); err != nil {
					return err
				}
				if st, err = b.readStatus(q); err != nil {
					return err
				}
				ok = st[stFlags] == 0 && fro(stFroNS2) <= 0.02
				res = q.t
			}
		}
		b.lastDev = math.Sqrt(devOf(st[stFroNS1]))
		if ok {
			return b.copyMat(a, &Matrix{ptr: res, rows: p, cols: l, ld: p, dtype: Float32})
		}
	}
	// Triangular path (R requested, or the fast path did not converge):
	// the float64 pass, then Cholesky passes in float32 until the defect
	// of a pass's input is below 0.5/ℓ; Householder where they do not fit.
	if !b.fits32(l) {
		b.fallbacks++
		return b.householder(a, r)
	}
	if err := b.zeroStatus(q); err != nil {
		return err
	}
	if err := b.cholPass64(q, a.ptr, a.ld, q.t, p, l, true); err != nil {
		return err
	}
	if err := b.cholPass32(q, 1, q.t, q.s, p, l); err != nil {
		return err
	}
	passes, res := 2, q.s
	st, err := b.readStatus(q)
	if err != nil {
		return err
	}
	if !statusOK(st, l) {
		if err := b.cholPass32(q, 2, q.s, q.t, p, l); err != nil {
			return err
		}
		passes, res = 3, q.t
		if st, err = b.readStatus(q); err != nil {
			return err
		}
		if !statusOK(st, l) {
			b.fallbacks++
			return b.householder(a, r)
		}
	}
	if err := b.copyMat(a, &Matrix{ptr: res, rows: p, cols: l, ld: p, dtype: Float32}); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	// R = R_last···R₁: products of upper triangular matrices stay exactly
	// upper triangular (every term below the diagonal has a zero factor).
	sq := func(ptr uintptr) *Matrix { return &Matrix{ptr: ptr, rows: l, cols: l, ld: l, dtype: Float32} }
	acc := sq(q.rs[0])
	for i := 1; i < passes; i++ {
		dst := r
		if i < passes-1 {
			dst = sq(q.rs[3])
		}
		if err := b.gemm(dst, 1, sq(q.rs[i]), false, acc, false, 0, FP32); err != nil {
			return err
		}
		acc = dst
	}
	return nil
}

func devOf(bits int32) float64 { return float64(math.Float32frombits(uint32(bits))) }

func statusOK(st [stSlots]int32, l int) bool {
	return st[stFlags] == 0 && st[stPotrf] == 0 && devOf(st[stDev])*float64(l) <= 0.5
}

func (b *Backend) zeroStatus(q *qrBufs) error {
	return b.api.check(b.api.cuMemsetD8Async(q.status, 0, 4*stSlots, b.stream), "cuMemsetD8Async")
}

// readStatus waits for the stream and reads the status slots.
func (b *Backend) readStatus(q *qrBufs) ([stSlots]int32, error) {
	var st [stSlots]int32
	err := b.download(unsafe.Pointer(&st[0]), q.status, 4*stSlots)
	return st, err
}

// cholPass64 is the float64 pass: dst = src·R⁻¹ with RᵀR = srcᵀsrc
// (+ shift) formed and factored in float64; R goes to q.rs[0] if wantR.
func (b *Backend) cholPass64(q *qrBufs, src uintptr, lds int, dst uintptr, p, l int, wantR bool) error {
	const uDouble = 0x1p-53
	if err := b.copy2D(q.y64, codeF64, 1, p, src, codeF32, 1, lds, p, l, false); err != nil {
		return err
	}
	// The one-block kernel factors a Gram matrix in a separate buffer (a
	// retry restarts from it): the float64 pair q.g, q.h (2·ℓ² float32).
	blk := b.useBlk && l >= 32 && l <= cholBlkMax && cholBlkSmem(l) <= b.smemMax
	gram := q.g64
	if blk {
		gram = q.g
	}
	// Gram matrix by dgemm: cuBLAS's dsyrk/ssyrk are several times slower
	// for these tall-skinny shapes (measured: ssyrk 0.38 ms, dsyrk 0.046 ms
	// for 4096×128 on an H100). Split into row chunks (a strided-batched
	// product and a sum) it was no faster on an H200 (docs/gpu.md).
	b.sc64[0], b.sc64[1] = 1, 0
	code := int32(15) // CUBLAS_STATUS_NOT_SUPPORTED, seen from dgemm for ℓ = 1
	if l >= 32 {
		code = b.api.cublasDgemm(b.blas, cublasOpT, cublasOpN, int32(l), int32(l), int32(p),
			unsafe.Pointer(&b.sc64[0]), q.y64, int32(p), q.y64, int32(p), unsafe.Pointer(&b.sc64[1]), gram, int32(l))
	}
	if code == 15 {
		code = b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(p),
			unsafe.Pointer(&b.sc64[0]), q.y64, int32(p), unsafe.Pointer(&b.sc64[1]), gram, int32(l))
	}
	if err := checkBLAS(code, "cublasDgemm_v2/cublasDsyrk_v2"); err != nil {
		return err
	}
	shift := 2 * float64(p+l*(l+1)) * uDouble
	// Accept a pivot down to 10·(p + ℓ)·u₆₄ of its diagonal entry: below
	// it the float64 Gram matrix carries no information.
	rel := 10 * float64(p+l) * uDouble
	// Five ways to factor the float64 Gram matrix, measured on an H200
	// for p = 4096 (gpu.test -gpu.prof, docs/gpu.md): the
	// one-column-per-barrier kernel cholinv64 (which also inverts)
	// 0.19 ms at ℓ = 128, so it serves only ℓ < 32; cuSOLVER's dpotrf
	// 0.084 ms at ℓ = 128 and 0.18 ms at ℓ = 256 (one launch per block
	// step), the default above chol64OneMax (with libPotrf, at every ℓ);
	// its batched potrf (a batch of one), slower; the
	// blocked one-block kernel cholblk64 (useBlk), 0.15 ms at ℓ = 128 and
	// 0.39 ms at ℓ = 256, its 32 sequential pivots per diagonal block
	// latency-bound on one multiprocessor; and chol64, the same blocking
	// with a branch-free pivot chain, which beats cuSOLVER for batches
	// (QRBatch) and, since the twenty-sixth session, for one matrix up to
	// ℓ = chol64OneMax (H100).
	if sm := cholSmem(l, 8, true); sm <= b.smemMax && l < 32 {
		if err := b.cholInv64(q.g64, l, l, q.rinv, l, q.rs[0], l, shift, rel, q.status); err != nil {
			return err
		}
	} else {
		switch {
		case blk:
			if err := b.cholBlk64(gram, l, q.g64, l, l, shift, rel, q.status+4*stPotrf); err != nil {
				return err
			}
		case b.potrfBatched:
			if err := b.potrfBatch(q, l); err != nil {
				return err
			}
		case b.useChol64(l, 1):
			if err := b.chol64(q.g64, l, l*l, q.status+4*stPotrf, 1); err != nil {
				return err
			}
		default:
			w, lw, err := b.potrfWork(q.g64, l)
			if err != nil {
				return err
			}
			if err := checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), q.g64, int32(l), w, lw, q.status+4*stPotrf), "cusolverDnDpotrf"); err != nil {
				return err
			}
		}
		if wantR {
			if err := b.copy2D(q.rs[0], codeF32, 1, l, q.g64, codeF64, 1, l, l, l, true); err != nil {
				return err
			}
		}
		if b.useTrsm {
			// dst = src·R⁻¹ by a float64 triangular solve on the float64
			// copy of src (overwritten), then rounded to float32.
			b.sc64[0] = 1
			if err := checkBLAS(b.api.cublasDtrsm(b.blas, cublasSideRight, cublasFillUpper, cublasOpN, cublasDiagNonUnit, int32(p), int32(l),
				unsafe.Pointer(&b.sc64[0]), q.g64, int32(l), q.y64, int32(p)), "cublasDtrsm_v2"); err != nil {
				return err
			}
			return b.copy2D(dst, codeF32, 1, p, q.y64, codeF64, 1, p, p, l, false)
		}
		if err := b.trInv64(q.rinv, l, q.g64, l, l); err != nil {
			return err
		}
	}
	return b.applyRinv(dst, src, lds, q.rinv, p, l)
}

// potrfWork returns dpotrf's workspace for an l×l matrix at g and its
// size in elements.
func (b *Backend) potrfWork(g uintptr, l int) (uintptr, int32, error) {
	var lw int32
	if err := checkSolver(b.api.cusolverDnDpotrfBufferSize(b.solver, cublasFillUpper, int32(l), g, int32(l), &lw), "cusolverDnDpotrf_bufferSize"); err != nil {
		return 0, 0, err
	}
	w, err := b.buf(&b.sc.qrPotrf, 8*int(max(lw, 1)))
	return w, lw, err
}

// potrfBatch factors the float64 Gram matrix q.g64 in place with
// cuSOLVER's batched Cholesky (a batch of one), devInfo into the status.
func (b *Backend) potrfBatch(q *qrBufs, l int) error {
	arr := q.status + 4*stSlots
	b.tmp[7] = uint64(q.g64)
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(arr, unsafe.Pointer(&b.tmp[7]), 8, b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		return err
	}
	b.device.toDevice.Add(8)
	return checkSolver(b.api.cusolverDnDpotrfBatched(b.solver, cublasFillUpper, int32(l), arr, int32(l), q.status+4*stPotrf, 1), "cusolverDnDpotrfBatched")
}

// cholPass32 is a float32 Cholesky pass: dst = src·R⁻¹, R into q.rs[i].
// Its input should be nearly orthonormal: a pivot below 10⁻² of its
// diagonal entry is taken as a failure of the previous pass.
func (b *Backend) cholPass32(q *qrBufs, i int, src, dst uintptr, p, l int) error {
	const uSingle = 0x1p-24
	if err := b.gram32(q.g, src, p, l); err != nil {
		return err
	}
	fused := cholSmem(l, 4, true) <= b.smemMax
	shift := float32(2 * float64(p+l*(l+1)) * uSingle)
	if err := b.cholInv(q.g, l, l, q.rinv, l, q.rs[i], l, shift, 1e-2, q.status, fused); err != nil {
		return err
	}
	if !fused {
		if err := b.trInv(q.rinv, l, q.rs[i], l, l); err != nil {
			return err
		}
	}
	return b.applyRinv(dst, src, p, q.rinv, p, l)
}

// gram32 computes g = srcᵀ·src (ℓ×ℓ, both triangles) in float32.
func (b *Backend) gram32(g, src uintptr, p, l int) error {
	b.sc32[0], b.sc32[1] = 1, 0
	return checkBLAS(b.api.cublasGemmEx(b.blas, cublasOpT, cublasOpN, int32(l), int32(l), int32(p),
		unsafe.Pointer(&b.sc32[0]), src, cudaR32F, int32(p), src, cudaR32F, int32(p),
		unsafe.Pointer(&b.sc32[1]), g, cudaR32F, int32(l), cublasCompute32F, cublasGemmDefault), "cublasGemmEx")
}

// nsStep computes dst = src·X with X = (I + E)^{-1/2} to second order
// (kernel nscorr), E = srcᵀsrc − I; max|E| goes to status slot slot.
func (b *Backend) nsStep(q *qrBufs, src, dst uintptr, p, l, slot int) error {
	if err := b.gram32(q.g, src, p, l); err != nil {
		return err
	}
	b.sc32[0], b.sc32[1] = 1, 0
	if err := checkBLAS(b.api.cublasGemmEx(b.blas, cublasOpN, cublasOpN, int32(l), int32(l), int32(l),
		unsafe.Pointer(&b.sc32[0]), q.g, cudaR32F, int32(l), q.g, cudaR32F, int32(l),
		unsafe.Pointer(&b.sc32[1]), q.h, cudaR32F, int32(l), cublasCompute32F, cublasGemmDefault), "cublasGemmEx"); err != nil {
		return err
	}
	if err := b.nsCorr(q.rinv, q.g, q.h, l, q.status+uintptr(4*slot), q.status+uintptr(4*(slot+2)), q.status); err != nil {
		return err
	}
	return b.applyRinv(dst, src, p, q.rinv, p, l)
}

// applyRinv computes dst (p×l, leading dimension p) = src·R⁻¹ in float32.
func (b *Backend) applyRinv(dst, src uintptr, lds int, rinv uintptr, p, l int) error {
	b.sc32[0], b.sc32[1] = 1, 0
	return checkBLAS(b.api.cublasGemmEx(b.blas, cublasOpN, cublasOpN, int32(p), int32(l), int32(l),
		unsafe.Pointer(&b.sc32[0]), src, cudaR32F, int32(lds), rinv, cudaR32F, int32(l),
		unsafe.Pointer(&b.sc32[1]), dst, cudaR32F, int32(p), cublasCompute32F, cublasGemmDefault), "cublasGemmEx")
}

// householder computes the thin QR with cuSOLVER's geqrf and orgqr.
func (b *Backend) householder(a, r *Matrix) error {
	p, l := a.Dims()
	var lw1, lw2 int32
	if err := checkSolver(b.api.cusolverDnSgeqrfBufferSize(b.solver, int32(p), int32(l), a.ptr, int32(a.ld), &lw1), "cusolverDnSgeqrf_bufferSize"); err != nil {
		return err
	}
	tau, err := b.buf(&b.sc.hhTau, 4*l+16)
	if err != nil {
		return err
	}
	info := tau + uintptr(4*l)
	if err := checkSolver(b.api.cusolverDnSorgqrBufferSize(b.solver, int32(p), int32(l), int32(l), a.ptr, int32(a.ld), tau, &lw2), "cusolverDnSorgqr_bufferSize"); err != nil {
		return err
	}
	lw := max(lw1, lw2, 1)
	w, err := b.buf(&b.sc.hhWork, 4*int(lw))
	if err != nil {
		return err
	}
	if err := checkSolver(b.api.cusolverDnSgeqrf(b.solver, int32(p), int32(l), a.ptr, int32(a.ld), tau, w, lw, info), "cusolverDnSgeqrf"); err != nil {
		return err
	}
	if r != nil {
		if err := b.copy2D(r.ptr, codeF32, 1, r.ld, a.ptr, codeF32, 1, a.ld, l, l, true); err != nil {
			return err
		}
	}
	if err := checkSolver(b.api.cusolverDnSorgqr(b.solver, int32(p), int32(l), int32(l), a.ptr, int32(a.ld), tau, w, lw, info), "cusolverDnSorgqr"); err != nil {
		return err
	}
	return b.checkInfo(info, "cusolverDnSgeqrf/cusolverDnSorgqr")
}

// checkInfo reads a cuSOLVER devInfo and reports a negative value (an
// invalid argument) as an error.
func (b *Backend) checkInfo(info uintptr, call string) error {
	var v int32
	if err := b.download(unsafe.Pointer(&v), info, 4); err != nil {
		return err
	}
	if v < 0 {
		return &CUDAError{Call: call, Code: int(v), Detail: fmt.Sprintf("devInfo = %d: parameter %d is invalid", v, -v)}
	}
	return nil
}

// LU replaces a (p×l, p ≥ l) by the unit lower trapezoidal factor L of
// a = P·L·U (cuSOLVER getrf), with the row interchanges undone on L as
// cpu.Backend.LU does, so that range(L) = range(a).
func (b *Backend) LU(a lowrank.Matrix) error {
	am := b.mat(a)
	work(am)
	p, l := am.Dims()
	if p < l {
		panic(lowrank.ErrShape)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	var lw int32
	if err := checkSolver(b.api.cusolverDnSgetrfBufferSize(b.solver, int32(p), int32(l), am.ptr, int32(am.ld), &lw), "cusolverDnSgetrf_bufferSize"); err != nil {
		return err
	}
	w, err := b.buf(&b.sc.luWork, 4*int(max(lw, 1)))
	if err != nil {
		return err
	}
	ipiv, err := b.buf(&b.sc.luIpiv, 4*l+4)
	if err != nil {
		return err
	}
	info := ipiv + uintptr(4*l)
	if err := checkSolver(b.api.cusolverDnSgetrf(b.solver, int32(p), int32(l), am.ptr, int32(am.ld), w, ipiv, info), "cusolverDnSgetrf"); err != nil {
		return err
	}
	if err := b.luFix(am.ptr, am.ld, p, l, ipiv); err != nil {
		return err
	}
	// info > 0 reports an exactly zero pivot of U; L is still valid.
	return b.checkInfo(info, "cusolverDnSgetrf")
}
