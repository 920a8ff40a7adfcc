package gpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// SVD writes a = u·diag(s)·vᵀ for a small square l×l a with cuSOLVER's
// one-sided Jacobi SVD (gesvdj, default tolerance = machine precision):
// s is non-increasing, u and v are orthonormal to working accuracy.
func (b *Backend) SVD(u lowrank.Matrix, s []float64, v lowrank.Matrix, a lowrank.Matrix) error {
	am, um, vm := b.mat(a), b.mat(u), b.mat(v)
	work(um)
	work(vm)
	l, lc := am.Dims()
	if l != lc || len(s) != l || um.rows != l || um.cols != l || vm.rows != l || vm.cols != l {
		panic(lowrank.ErrShape)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if b.gesvdj == 0 {
		if err := checkSolver(b.api.cusolverDnCreateGesvdjInfo(&b.gesvdj), "cusolverDnCreateGesvdjInfo"); err != nil {
			return err
		}
	}
	ac, err := b.buf(&b.sc.svdA, 4*l*l+4*l+16)
	if err != nil {
		return err
	}
	sv := ac + uintptr(4*l*l)
	info := sv + uintptr(4*l)
	acm := &Matrix{ptr: ac, rows: l, cols: l, ld: l, dtype: Float32}
	if err := b.copyMat(acm, am); err != nil {
		return err
	}
	var lw int32
	if err := checkSolver(b.api.cusolverDnSgesvdjBufferSize(b.solver, cusolverEigModeVector, 0, int32(l), int32(l), ac, int32(l),
		sv, um.ptr, int32(um.ld), vm.ptr, int32(vm.ld), &lw, b.gesvdj), "cusolverDnSgesvdj_bufferSize"); err != nil {
		return err
	}
	w, err := b.buf(&b.sc.svdWork, 4*int(max(lw, 1)))
	if err != nil {
		return err
	}
	if err := checkSolver(b.api.cusolverDnSgesvdj(b.solver, cusolverEigModeVector, 0, int32(l), int32(l), ac, int32(l),
		sv, um.ptr, int32(um.ld), vm.ptr, int32(vm.ld), w, lw, info, b.gesvdj), "cusolverDnSgesvdj"); err != nil {
		return err
	}
	// The singular values and devInfo are adjacent: one download.
	s32 := make([]float32, l+1)
	if err := b.download(unsafe.Pointer(&s32[0]), sv, 4*(l+1)); err != nil {
		return err
	}
	if err := solverInfo("cusolverDnSgesvdj", int32(math.Float32bits(s32[l])), l); err != nil {
		return err
	}
	for i, x := range s32[:l] {
		s[i] = float64(x)
	}
	return nil
}

// SymEig writes g = w·diag(lam)·wᵀ for the symmetric l×l float32 g (its
// upper triangle is read; g is not modified), lam non-increasing with
// negative eigenvalues reported as 0, with cuSOLVER's divide and conquer
// (dsyevd) on a float64 copy of g: 3.1–3.5× faster than the Jacobi SVD
// at l = 138–522 on the H200 (docs/gpu.md, "The ℓ sweep"), and with
// float64 rounding in the decomposition of the float32 g. It implements
// lowrank.SymEigener, so an oversampled QB's truncation uses it.
func (b *Backend) SymEig(w lowrank.Matrix, lam []float64, g lowrank.Matrix) error {
	gm, wm := b.mat(g), b.mat(w)
	work(wm)
	l, lc := gm.Dims()
	if l != lc || len(lam) != l || wm.rows != l || wm.cols != l {
		panic(lowrank.ErrShape)
	}
	if b.noSymEig {
		v, err := b.NewMatrix(l, l, Float32)
		if err != nil {
			return err
		}
		defer b.Free(v)
		return b.SVD(w, lam, v, g)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	// g in float64 (l×l), then its eigenvalues and devInfo, adjacent.
	g64, err := b.buf(&b.sc.eigG, 8*(l*l+l+1))
	if err != nil {
		return err
	}
	w64 := g64 + uintptr(8*l*l)
	info := w64 + uintptr(8*l)
	si, sj := gm.strides()
	if err := b.copy2D(g64, codeF64, 1, l, gm.ptr, gm.dtype.code(), si, sj, l, l, false); err != nil {
		return err
	}
	if err := b.dsyevd(g64, l, w64, info); err != nil {
		return err
	}
	// dsyevd's eigenvalues ascend: column j of w is column l−1−j of the
	// vectors.
	if err := b.copy2D(wm.ptr, codeF32, 1, wm.ld, g64+uintptr(8*l*(l-1)), codeF64, 1, -l, l, l, false); err != nil {
		return err
	}
	out := make([]float64, l+1)
	if err := b.download(unsafe.Pointer(&out[0]), w64, 8*(l+1)); err != nil {
		return err
	}
	if err := solverInfo("cusolverDnDsyevd", int32(math.Float64bits(out[l])), l); err != nil {
		return err
	}
	for j := range lam {
		lam[j] = max(out[l-1-j], 0)
	}
	return nil
}

// ExactSVD returns the k leading terms of the thin SVD of a (m×n, float32
// or bf16, column- or row-major): A ≈ U·diag(S)·Vᵀ with U (m×k) and V
// (n×k) float32 matrices owned by b and S non-increasing.
//
// Method: with op(A) the orientation of A with p ≥ q rows, the Gram matrix
// G = op(A)ᵀ·op(A) is formed in float64 (dsyrk), its eigenpairs by
// cuSOLVER's divide and conquer (dsyevd), σ_i = √λ_i, V = the leading
// eigenvectors and U = op(A)·V·Σ⁻¹ in float64. Accuracy: the float64 Gram
// has absolute error ≲ q·2⁻⁵³·σ₁², so σ_i is accurate to about
// q·2⁻⁵³·σ₁²/σ_i — below the float32 rounding of the input (2⁻²⁴·σ₁) for
// every σ_i ≥ q·2⁻²⁹·σ₁ (7.6·10⁻⁶·σ₁ at q = 4096); singular vectors of
// singular values below that threshold lose accuracy in proportion. Cost
// p·q² + 4q³ float64 flops and 8(p·q + q²) bytes of scratch.
//
// For k ≤ q/8 (q ≥ 512) the k leading eigenpairs are first sought by
// subspace iteration on G (subspace.go), accepted only with every
// residual ‖G·v_j − λ_j·v_j‖ ≤ q·2⁻⁵³·λ₁, which keeps the accuracy above;
// on a spectrum that decays past σ_k it costs some fifteen steps of
// 4·q²·k flops instead of the eigensolver's O(q³) (docs/gpu.md, "Exact
// SVD"), and where it does not converge it falls back to dsyevdx. For
// 128 ≤ 2k ≤ 512 its steps run on two streams: the first such call makes
// a sibling (Fork) with its own stream, cuBLAS and cuSOLVER handles and
// cuBLAS workspace, kept until b is closed.
func (b *Backend) ExactSVD(a *Matrix, k int) (u, v *Matrix, s []float64, err error) {
	am := b.mat(a)
	m, n := am.Dims()
	if err := skeleton.CheckRank(m, n, k); err != nil {
		return nil, nil, nil, err
	}
	if err := b.enter(); err != nil {
		return nil, nil, nil, err
	}
	defer b.leave()
	trans := m < n
	p, q := m, n
	si, sj := am.strides()
	if trans {
		p, q = n, m
		si, sj = sj, si
	}
	a64, err := b.buf(&b.sc.exactA, 8*p*q)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := b.buf(&b.sc.exactG, 8*(q*q+q+k+1))
	if err != nil {
		return nil, nil, nil, err
	}
	w := g + uintptr(8*q*q)
	sdev := w + uintptr(8*q)
	info := sdev + uintptr(8*k)
	vk, err := b.buf(&b.sc.exactV, 8*(q*k+p*k))
	if err != nil {
		return nil, nil, nil, err
	}
	x := vk + uintptr(8*q*k)
	// op(A) in float64, column-major p×q.
	if err := b.copy2D(a64, codeF64, 1, p, am.ptr, am.dtype.code(), si, sj, p, q, false); err != nil {
		return nil, nil, nil, err
	}
	b.sc64[0], b.sc64[1] = 1, 0
	if err := checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, int32(q), int32(p),
		unsafe.Pointer(&b.sc64[0]), a64, int32(p), unsafe.Pointer(&b.sc64[1]), g, int32(q)), "cublasDsyrk_v2"); err != nil {
		return nil, nil, nil, err
	}
	// For k ≤ q/8 the k largest eigenpairs by subspace iteration
	// (subspace.go), if it converges; otherwise all eigenpairs by divide
	// and conquer, or for k < q the k largest by cuSOLVER's selective
	// solver (dsyevdx: the tridiagonal's eigenvectors and the back
	// transformation for k columns, not q).
	b.lastSubspace = subspaceRun{}
	done := false
	if k < q && b.subspaceRoute(q, k) {
		if done, err = b.subspaceEig(g, q, k, sdev, vk, x); err != nil {
			return nil, nil, nil, err
		}
	}
	solver, c := "cusolverDnDsyevd", q
	switch {
	case done:
	case k < q && !b.noSyevdx:
		solver, c = "cusolverDnDsyevdx", k
		meig, err := b.dsyevdx(g, q, k, w, info)
		if err != nil {
			return nil, nil, nil, err
		}
		if meig != k {
			return nil, nil, nil, fmt.Errorf("%w: cusolverDnDsyevdx found %d of the %d largest eigenpairs of a %d×%d Gram matrix", lowrank.ErrNoConvergence, meig, k, q, q)
		}
	default:
		if err := b.dsyevd(g, q, w, info); err != nil {
			return nil, nil, nil, err
		}
	}
	if !done {
		if err := b.svdEig(sdev, vk, q, w, g, q, q, k, c); err != nil {
			return nil, nil, nil, err
		}
	}
	// X = op(A)·V_k in float64, then U = X·Σ⁻¹.
	if err := b.dgemm(false, false, p, k, q, a64, p, vk, q, x, p); err != nil {
		return nil, nil, nil, err
	}
	if !done {
		var st [1]int32
		if err := b.download(unsafe.Pointer(&st[0]), info, 4); err != nil {
			return nil, nil, nil, err
		}
		if err := solverInfo(solver, st[0], q); err != nil {
			return nil, nil, nil, err
		}
	}
	uo, err := b.NewMatrix(p, k, Float32)
	if err != nil {
		return nil, nil, nil, err
	}
	vo, err := b.NewMatrix(q, k, Float32)
	if err != nil {
		b.Free(uo)
		return nil, nil, nil, err
	}
	if err := b.scaleCols(uo.ptr, p, x, p, sdev, p, k); err != nil {
		return nil, nil, nil, err
	}
	if err := b.copy2D(vo.ptr, codeF32, 1, q, vk, codeF64, 1, q, q, k, false); err != nil {
		return nil, nil, nil, err
	}
	s = make([]float64, k)
	if err := b.download(unsafe.Pointer(&s[0]), sdev, 8*k); err != nil {
		return nil, nil, nil, err
	}
	if trans {
		uo, vo = vo, uo
	}
	return uo, vo, s, nil
}

// dsyevd replaces the symmetric n×n float64 a (upper triangle, leading
// dimension n) by its eigenvectors and writes its eigenvalues, ascending,
// into w and the devInfo into info, with cuSOLVER's divide and conquer
// (workspace in the scratch slot syevdWork). It does not wait for the
// stream: the caller reads info (solverInfo).
func (b *Backend) dsyevd(a uintptr, n int, w, info uintptr) error {
	var lw int32
	if err := checkSolver(b.api.cusolverDnDsyevdBufferSize(b.solver, cusolverEigModeVector, cublasFillUpper, int32(n), a, int32(n), w, &lw), "cusolverDnDsyevd_bufferSize"); err != nil {
		return err
	}
	wb, err := b.buf(&b.sc.syevdWork, 8*int(max(lw, 1)))
	if err != nil {
		return err
	}
	return checkSolver(b.api.cusolverDnDsyevd(b.solver, cusolverEigModeVector, cublasFillUpper, int32(n), a, int32(n), w, wb, lw, info), "cusolverDnDsyevd")
}

// dsyevdx replaces the first k columns of the symmetric n×n float64 a
// (upper triangle, leading dimension n) by the eigenvectors of its k
// largest eigenvalues and writes those, ascending, into w[0:k] and the
// devInfo into info, with cuSOLVER's dsyevdx (range il = n−k+1 … iu = n;
// workspace in the scratch slot syevdWork). It returns the number of
// eigenpairs found (cuSOLVER writes it to host memory: the call waits for
// the stream); the caller reads info (solverInfo).
func (b *Backend) dsyevdx(a uintptr, n, k int, w, info uintptr) (int, error) {
	var lw, meig int32
	il, iu := int32(n-k+1), int32(n)
	if err := checkSolver(b.api.cusolverDnDsyevdxBufferSize(b.solver, cusolverEigModeVector, cusolverEigRangeI, cublasFillUpper, int32(n), a, int32(n),
		0, 0, il, iu, &meig, w, &lw), "cusolverDnDsyevdx_bufferSize"); err != nil {
		return 0, err
	}
	wb, err := b.buf(&b.sc.syevdWork, 8*int(max(lw, 1)))
	if err != nil {
		return 0, err
	}
	if err := checkSolver(b.api.cusolverDnDsyevdx(b.solver, cusolverEigModeVector, cusolverEigRangeI, cublasFillUpper, int32(n), a, int32(n),
		0, 0, il, iu, &meig, w, wb, lw, info), "cusolverDnDsyevdx"); err != nil {
		return 0, err
	}
	return int(meig), nil
}

// solverInfo returns the error of a cuSOLVER call's devInfo st on an n×n
// problem: an invalid parameter for st < 0, no convergence for st > 0.
func solverInfo(call string, st int32, n int) error {
	switch {
	case st < 0:
		return &CUDAError{Call: call, Code: int(st), Detail: "invalid parameter"}
	case st > 0:
		return fmt.Errorf("%w: %s on %d×%d (info %d)", lowrank.ErrNoConvergence, call, n, n, st)
	}
	return nil
}
