package gpu

import (
	"fmt"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// cuBLASLt's enumerations used here (cublasLt.h).
const (
	ltDescTransA       = 3
	ltDescTransB       = 4
	ltDescEpilogue     = 7
	ltDescBiasPointer  = 8
	ltDescBiasDataType = 26
	ltEpilogueBias     = 4
	ltPrefMaxWorkspace = 1
)

// ltHeuristic is cublasLtMatmulHeuristicResult_t: the 64-byte algorithm,
// its workspace size, status, waves count and four reserved ints.
type ltHeuristic struct {
	algo    [8]uint64
	ws      uintptr
	state   int32
	waves   float32
	reserve [4]int32
}

// ltKey identifies one shape, leading dimensions and types of MulBias's
// product, in cuBLASLt's column-major terms: D (m×n) = A (m×k) · B (k×n),
// no operand transposed.
type ltKey struct {
	m, n, k        int
	lda, ldb, ldd  int
	ta, tb, td, tz dcode
	residual       bool
}

// ltPlan is a key's cuBLASLt descriptors and algorithm (ok false: no
// algorithm, so MulBias declines that key without asking again).
type ltPlan struct {
	desc, la, lb, ld uintptr
	algo             ltHeuristic
	ok               bool
}

// ltState is a Backend's cuBLASLt handle, preference and plans, made on
// the first MulBias (tried); plans is set once all the rest was made.
type ltState struct {
	h, pref uintptr
	plans   map[ltKey]*ltPlan
	tried   bool
}

// MulBias sets the row-major c (m×n) to a·w + bias (+ add): a (m×k) and w
// (k×n) row-major, bias a contiguous vector of n elements (float32
// or bf16) broadcast over the rows, add nil or a matrix of c's type and
// layout (the residual). c must not share memory with a, w or bias
// (lowrank.ErrAlias panics, as in Mul). bias and add are *Matrix rather
// than lowrank.Matrix so that a nil add is nil, not an interface holding
// a nil pointer. It runs as one cuBLASLt product with a bias epilogue
// (C = add, beta = 1, or beta = 0), so the destination is written once
// and read at most once (the residual), where filling c with the bias and
// then accumulating the product into it (beta = 1) writes it twice and
// reads it once more. The sum is formed in float32 and rounded once to
// c's type.
//
// It reports false, having done nothing (the caller then fills and
// accumulates), where cuBLASLt is not loaded or offers no algorithm for
// the case, and for:
//   - a column-major c: the epilogue's vector runs along the rows of
//     cuBLASLt's column-major D, i.e. along c's columns only when c is
//     row-major;
//   - a column-major a or w: only the all-row-major case (the GPU demo's)
//     has run on a GPU;
//   - an add of another type, layout or leading dimension than c, or one
//     that shares memory with c: on an H100 with CUDA 13.0 the in-place
//     product, C = D, came out one bf16 unit in the last place off where
//     the same call with a separate C was exact to its one rounding
//     (bench/results/gpu/lt_h100_2026-12-07/).
//
// Shape mismatches panic.
func (b *Backend) MulBias(c, a, w lowrank.Matrix, bias, add *Matrix) (bool, error) {
	cm, am, wm := b.mat(c), b.mat(a), b.mat(w)
	m, n := cm.Dims()
	ar, k := am.Dims()
	wr, wc := wm.Dims()
	br, bc := bias.Dims()
	if ar != m || wr != k || wc != n || br*bc != n || (br != 1 && bc != 1) {
		panic(fmt.Errorf("%w: MulBias of %d×%d = %d×%d · %d×%d + bias of %d×%d", lowrank.ErrShape, m, n, ar, k, wr, wc, br, bc))
	}
	if (br == 1 && bc > 1 && !bias.trans && bias.ld != 1) || (bc == 1 && br > 1 && bias.trans && bias.ld != 1) {
		panic(fmt.Errorf("%w: MulBias's bias must be contiguous", lowrank.ErrShape))
	}
	var zm *Matrix
	if add != nil {
		zm = b.mat(add)
		if zr, zc := zm.Dims(); zr != m || zc != n {
			panic(fmt.Errorf("%w: MulBias's addend is %d×%d, the destination %d×%d", lowrank.ErrShape, zr, zc, m, n))
		}
	}
	if overlaps(cm, am) || overlaps(cm, wm) || overlaps(cm, bias) {
		panic(lowrank.ErrAlias)
	}
	if !b.LtAvailable() || !cm.trans || !am.trans || !wm.trans ||
		(zm != nil && (zm.trans != cm.trans || zm.dtype != cm.dtype || zm.ld != cm.ld || overlaps(zm, cm))) {
		return false, nil
	}
	if err := b.enter(); err != nil {
		return false, err
	}
	defer b.leave()
	lt := &b.lt
	if !lt.tried {
		lt.tried = true
		if err := b.ltInit(); err != nil {
			return false, err // the handles made so far go in closeLt
		}
	}
	if lt.plans == nil { // ltInit failed
		return false, nil
	}
	// Row-major c is cuBLASLt's column-major D = cᵀ (n×m) = wᵀ·aᵀ: the
	// first operand is w's storage (row-major w is column-major wᵀ), the
	// second a's (row-major a is column-major aᵀ), neither transposed.
	key := ltKey{m: n, n: m, k: k, lda: wm.ld, ldb: am.ld, ldd: cm.ld, ta: wm.dtype.code(), tb: am.dtype.code(),
		td: cm.dtype.code(), tz: bias.dtype.code(), residual: zm != nil}
	p, err := b.ltPlanFor(key)
	if err != nil || !p.ok {
		return false, err
	}
	bp := bias.ptr
	if err := checkBLAS(b.api.cublasLtMatmulDescSetAttribute(p.desc, ltDescBiasPointer, unsafe.Pointer(&bp), 8), "cublasLtMatmulDescSetAttribute"); err != nil {
		return false, err
	}
	b.sc32[0], b.sc32[1] = 1, 0
	zp := cm.ptr
	if zm != nil {
		b.sc32[1], zp = 1, zm.ptr
	}
	return true, checkBLAS(b.api.cublasLtMatmul(lt.h, p.desc, unsafe.Pointer(&b.sc32[0]), wm.ptr, p.la, am.ptr, p.lb,
		unsafe.Pointer(&b.sc32[1]), zp, p.ld, cm.ptr, p.ld, unsafe.Pointer(&p.algo.algo), b.blasWS, cublasWorkspaceBytes, b.stream), "cublasLtMatmul")
}

// ltInit makes b's cuBLASLt handle and preference, then lt.plans.
func (b *Backend) ltInit() error {
	lt := &b.lt
	if err := checkBLAS(b.api.cublasLtCreate(&lt.h), "cublasLtCreate"); err != nil {
		lt.h = 0
		return err
	}
	if err := checkBLAS(b.api.cublasLtMatmulPreferenceCreate(&lt.pref), "cublasLtMatmulPreferenceCreate"); err != nil {
		lt.pref = 0
		return err
	}
	ws := uint64(cublasWorkspaceBytes)
	if err := checkBLAS(b.api.cublasLtMatmulPreferenceSetAttribute(lt.pref, ltPrefMaxWorkspace, unsafe.Pointer(&ws), 8), "cublasLtMatmulPreferenceSetAttribute"); err != nil {
		return err
	}
	lt.plans = map[ltKey]*ltPlan{}
	return nil
}

// ltPlanFor returns key's plan, making its descriptors and asking for one
// algorithm the first time.
func (b *Backend) ltPlanFor(key ltKey) (*ltPlan, error) {
	lt := &b.lt
	if p, ok := lt.plans[key]; ok {
		return p, nil
	}
	a := b.api
	p := &ltPlan{}
	lt.plans[key] = p
	if err := checkBLAS(a.cublasLtMatmulDescCreate(&p.desc, cublasCompute32F, cudaR32F), "cublasLtMatmulDescCreate"); err != nil {
		return p, err
	}
	set := func(attr int32, v int32) error {
		return checkBLAS(a.cublasLtMatmulDescSetAttribute(p.desc, attr, unsafe.Pointer(&v), 4), "cublasLtMatmulDescSetAttribute")
	}
	for _, s := range [][2]int32{{ltDescTransA, cublasOpN}, {ltDescTransB, cublasOpN}, {ltDescEpilogue, ltEpilogueBias},
		{ltDescBiasDataType, cudaType(key.tz)}} {
		if err := set(s[0], s[1]); err != nil {
			return p, err
		}
	}
	for _, l := range []struct {
		dst        *uintptr
		t          dcode
		rows, cols int
		ld         int
	}{{&p.la, key.ta, key.m, key.k, key.lda}, {&p.lb, key.tb, key.k, key.n, key.ldb}, {&p.ld, key.td, key.m, key.n, key.ldd}} {
		if err := checkBLAS(a.cublasLtMatrixLayoutCreate(l.dst, cudaType(l.t), uint64(l.rows), uint64(l.cols), int64(l.ld)), "cublasLtMatrixLayoutCreate"); err != nil {
			return p, err
		}
	}
	var got int32
	code := a.cublasLtMatmulAlgoGetHeuristic(lt.h, p.desc, p.la, p.lb, p.ld, p.ld, lt.pref, 1, unsafe.Pointer(&p.algo), &got)
	p.ok = code == 0 && got > 0 && p.algo.state == 0 && p.algo.ws <= cublasWorkspaceBytes
	return p, nil
}

// cudaType is the cudaDataType_t of a kernel type code.
func cudaType(t dcode) int32 {
	switch t {
	case codeBF16:
		return cudaR16BF
	case codeF64:
		return cudaR64F
	}
	return cudaR32F
}

// LtAvailable reports whether cuBLASLt was loaded (MulBias can run).
func (b *Backend) LtAvailable() bool { return b.api.cublasLtCreate != nil && !b.noLt }

// closeLt destroys b's cuBLASLt plans, preference and handle.
func (b *Backend) closeLt(keep func(error)) {
	lt := &b.lt
	a := b.api
	for _, p := range lt.plans {
		for _, l := range []uintptr{p.la, p.lb, p.ld} {
			if l != 0 {
				keep(checkBLAS(a.cublasLtMatrixLayoutDestroy(l), "cublasLtMatrixLayoutDestroy"))
			}
		}
		if p.desc != 0 {
			keep(checkBLAS(a.cublasLtMatmulDescDestroy(p.desc), "cublasLtMatmulDescDestroy"))
		}
	}
	if lt.pref != 0 {
		keep(checkBLAS(a.cublasLtMatmulPreferenceDestroy(lt.pref), "cublasLtMatmulPreferenceDestroy"))
	}
	if lt.h != 0 {
		keep(checkBLAS(a.cublasLtDestroy(lt.h), "cublasLtDestroy"))
	}
	*lt = ltState{}
}
