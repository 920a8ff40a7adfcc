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
// Tomov, Dongarra, SIAM J. Sci. Comput. 37(3), 2015): the first pass forms
// the Gram matrix YᵀY in float64 (dsyrk on a float64 copy of Y; products
// of float32 numbers are exact in float64) and factors it in float64, so
// that Q₁ = Y·R₁⁻¹ (a float32 product) is orthogonal to about u₃₂·κ(Y)
// for κ(Y) up to ≈ 10⁷, where a float32 Gram matrix would fail beyond
// κ ≈ u₃₂^{-1/2} ≈ 4·10³ — and a sketch Y = A·A_Sᵀ squares the condition
// number of A's leading part. A second pass in float32 then brings the
// orthogonality to rounding level. Each pass is one Gram product, one
// kernel that factors it and inverts the factor (one block, shared
// memory; cuSOLVER's dpotrf for ℓ > 168 in float64), and one product
// Y·R⁻¹. A Cholesky factorisation that breaks down is retried with a
// shift s·I, s = 2(p + ℓ(ℓ+1))·u·trace(G), covering the rounding of the
// Gram product and of the factorisation (shifted Cholesky QR, Fukaya et
// al., SIAM J. Sci. Comput. 42(1), 2020). The host then checks the defect
// max|Q₁ᵀQ₁ − I| measured by the second pass: if it is above 0.5/ℓ a
// third pass runs, and if that too fails, or any pass broke down even with
// the shift (rank deficiency), Householder QR of the original a is used,
// so the l columns are orthonormal to working accuracy for any a.
//
// Cost: 2p·ℓ² flops of Gram products, 4p·ℓ² of products Y·R⁻¹, two
// one-block kernels and one host synchronisation; with Householder, the
// cuSOLVER geqrf and orgqr.
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
	// The float32 passes keep the packed upper triangle of G in shared
	// memory: l(l+1)/2 floats, l ≤ 337 on a 227 KiB H100 block.
	if b.opts.QR == Householder || 2*l*(l+1) > b.smemMax {
		return b.householder(am, rm)
	}
	return b.cholQR(am, rm)
}

func (b *Backend) cholQR(a, r *Matrix) error {
	p, l := a.Dims()
	const f = 4 // bytes per float32
	t, err := b.getScratch("qr.t", p*l*f)
	if err != nil {
		return err
	}
	s, err := b.getScratch("qr.s", p*l*f)
	if err != nil {
		return err
	}
	y64, err := b.getScratch("qr.y64", p*l*8)
	if err != nil {
		return err
	}
	const nr = 4 // R of each pass (3) and a temporary
	small, err := b.getScratch("qr.small", (2+nr)*l*l*f+l*l*8)
	if err != nil {
		return err
	}
	g := small
	rinv := small + uintptr(l*l*f)
	rs := func(i int) uintptr { return small + uintptr((2+i)*l*l*f) }
	g64 := small + uintptr((2+nr)*l*l*f)
	status, err := b.getScratch("qr.status", 16)
	if err != nil {
		return err
	}
	if err := b.api.check(b.api.cuMemsetD8Async(status, 0, 16, b.stream), "cuMemsetD8Async"); err != nil {
		return err
	}
	const uSingle, uDouble = 0x1p-24, 0x1p-53
	shift := 2 * float64(p+l*(l+1))
	// Pass 1, float64 Gram and factorisation.
	if err := b.launch("copy2d", b.grid(p*l), 256, 0, u64(y64), 2, 1, i64(p),
		u64(a.ptr), 0, 1, i64(a.ld), i64(p), i64(l), 0); err != nil {
		return err
	}
	b.sc64[0], b.sc64[1] = 1, 0
	if err := checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(p),
		unsafe.Pointer(&b.sc64[0]), y64, int32(p), unsafe.Pointer(&b.sc64[1]), g64, int32(l)), "cublasDsyrk_v2"); err != nil {
		return err
	}
	if l*(l+1)*8 <= b.smemMax {
		// Accept a pivot down to 10·(p + ℓ)·u₆₄ of its diagonal entry:
		// below it the float64 Gram matrix carries no information.
		if err := b.launch("cholinv64", 1, 1024, l*(l+1)*8, u64(g64), i64(l), i64(l), u64(rinv), i64(l), u64(rs(0)), i64(l),
			math.Float64bits(shift*uDouble), math.Float64bits(10*float64(p+l)*uDouble), u64(status), 1); err != nil {
			return err
		}
	} else {
		var lw int32
		if err := checkSolver(b.api.cusolverDnDpotrfBufferSize(b.solver, cublasFillUpper, int32(l), g64, int32(l), &lw), "cusolverDnDpotrf_bufferSize"); err != nil {
			return err
		}
		w, err := b.getScratch("qr.potrf", 8*int(max(lw, 1)))
		if err != nil {
			return err
		}
		if err := checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), g64, int32(l), w, lw, status+8), "cusolverDnDpotrf"); err != nil {
			return err
		}
		if err := b.launch("trinv64", l, 128, l*8, u64(rinv), i64(l), u64(g64), i64(l), i64(l)); err != nil {
			return err
		}
		if err := b.launch("copy2d", b.grid(l*l), 256, 0, u64(rs(0)), 0, 1, i64(l),
			u64(g64), 2, 1, i64(l), i64(l), i64(l), 1); err != nil {
			return err
		}
	}
	if err := b.applyRinv(t, a.ptr, a.ld, rinv, p, l); err != nil {
		return err
	}
	// Passes 2 (and 3), float32. Q₁ is nearly orthonormal, so its pivots
	// are near 1: one below 10⁻² of its diagonal entry means pass 1 failed.
	fused := l*(l+1)*f <= b.smemMax
	pass := func(i int, src, dst uintptr) error {
		b.sc32[0], b.sc32[1] = 1, 0
		if err := checkBLAS(b.api.cublasSsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(p),
			unsafe.Pointer(&b.sc32[0]), src, int32(p), unsafe.Pointer(&b.sc32[1]), g, int32(l)), "cublasSsyrk_v2"); err != nil {
			return err
		}
		shmem := l * (l + 1) / 2 * f
		if fused {
			shmem *= 2
		}
		if err := b.launch("cholinv", 1, 1024, shmem, u64(g), i64(l), i64(l), u64(rinv), i64(l), u64(rs(i)), i64(l),
			f32bits(float32(shift*uSingle)), f32bits(1e-2), u64(status), boolArg(fused)); err != nil {
			return err
		}
		if !fused {
			if err := b.launch("trinv", l, 128, l*f, u64(rinv), i64(l), u64(rs(i)), i64(l), i64(l)); err != nil {
				return err
			}
		}
		return b.applyRinv(dst, src, p, rinv, p, l)
	}
	if err := pass(1, t, s); err != nil {
		return err
	}
	passes, res := 2, s
	ok, err := b.qrStatus(status, l)
	if err != nil {
		return err
	}
	if !ok {
		if err := pass(2, s, t); err != nil {
			return err
		}
		passes, res = 3, t
		if ok, err = b.qrStatus(status, l); err != nil {
			return err
		}
		if !ok {
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
	acc := sq(rs(0))
	for i := 1; i < passes; i++ {
		dst := r
		if i < passes-1 {
			dst = sq(rs(nr - 1))
		}
		if err := b.gemm(dst, 1, sq(rs(i)), false, acc, false, 0, FP32); err != nil {
			return err
		}
		acc = dst
	}
	return nil
}

// applyRinv computes dst (p×l, leading dimension p) = src·R⁻¹ in float32.
func (b *Backend) applyRinv(dst, src uintptr, lds int, rinv uintptr, p, l int) error {
	b.sc32[0], b.sc32[1] = 1, 0
	return checkBLAS(b.api.cublasGemmEx(b.blas, cublasOpN, cublasOpN, int32(p), int32(l), int32(l),
		unsafe.Pointer(&b.sc32[0]), src, cudaR32F, int32(lds), rinv, cudaR32F, int32(l),
		unsafe.Pointer(&b.sc32[1]), dst, cudaR32F, int32(p), cublasCompute32F, cublasGemmDefault), "cublasGemmEx")
}

// qrStatus waits for the stream and reads the Cholesky-QR status: true if
// no factorisation failed and the last pass's input had max|QᵀQ − I| ≤
// 0.5/ℓ, so that its output is orthonormal to rounding level.
func (b *Backend) qrStatus(status uintptr, l int) (bool, error) {
	var st [3]int32
	if err := b.download(unsafe.Pointer(&st[0]), status, 12); err != nil {
		return false, err
	}
	defect := math.Float32frombits(uint32(st[1]))
	return st[0] == 0 && st[2] == 0 && float64(defect)*float64(l) <= 0.5, nil
}

// householder computes the thin QR with cuSOLVER's geqrf and orgqr.
func (b *Backend) householder(a, r *Matrix) error {
	p, l := a.Dims()
	var lw1, lw2 int32
	if err := checkSolver(b.api.cusolverDnSgeqrfBufferSize(b.solver, int32(p), int32(l), a.ptr, int32(a.ld), &lw1), "cusolverDnSgeqrf_bufferSize"); err != nil {
		return err
	}
	tau, err := b.getScratch("hh.tau", 4*l+16)
	if err != nil {
		return err
	}
	info := tau + uintptr(4*l)
	if err := checkSolver(b.api.cusolverDnSorgqrBufferSize(b.solver, int32(p), int32(l), int32(l), a.ptr, int32(a.ld), tau, &lw2), "cusolverDnSorgqr_bufferSize"); err != nil {
		return err
	}
	lw := max(lw1, lw2, 1)
	w, err := b.getScratch("hh.work", 4*int(lw))
	if err != nil {
		return err
	}
	if err := checkSolver(b.api.cusolverDnSgeqrf(b.solver, int32(p), int32(l), a.ptr, int32(a.ld), tau, w, lw, info), "cusolverDnSgeqrf"); err != nil {
		return err
	}
	if r != nil {
		if err := b.launch("copy2d", b.grid(l*l), 256, 0, u64(r.ptr), 0, 1, i64(r.ld),
			u64(a.ptr), 0, 1, i64(a.ld), i64(l), i64(l), 1); err != nil {
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
// lowrank.CPU.LU does, so that range(L) = range(a).
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
	w, err := b.getScratch("lu.work", 4*int(max(lw, 1)))
	if err != nil {
		return err
	}
	ipiv, err := b.getScratch("lu.ipiv", 4*l+4)
	if err != nil {
		return err
	}
	info := ipiv + uintptr(4*l)
	if err := checkSolver(b.api.cusolverDnSgetrf(b.solver, int32(p), int32(l), am.ptr, int32(am.ld), w, ipiv, info), "cusolverDnSgetrf"); err != nil {
		return err
	}
	if err := b.launch("lufix", (l+127)/128, 128, 0, u64(am.ptr), i64(am.ld), i64(p), i64(l), u64(ipiv)); err != nil {
		return err
	}
	// info > 0 reports an exactly zero pivot of U; L is still valid.
	return b.checkInfo(info, "cusolverDnSgetrf")
}
