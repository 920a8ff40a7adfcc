package gpu

import (
	"fmt"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// Mul computes c = alpha·op(a)·op(b) + beta·c with cublasGemmEx. The
// arithmetic follows the backend's Math; a row-major operand is passed to
// cuBLAS as its stored column-major transpose with the operation flipped.
// c is a float32 column-major matrix, or a bf16 one (storage of a
// product: the operands are then multiplied in bf16 with float32
// accumulation); a row-major c (a transposed view, Matrix.T) is written as
// the transposed product. With beta = 0, c is not read. It panics with
// lowrank.ErrAlias if c shares memory with a or b.
func (b *Backend) Mul(c lowrank.Matrix, alpha float64, a lowrank.Matrix, ta bool, bm lowrank.Matrix, tb bool, beta float64) error {
	cm, am, bb := b.mat(c), b.mat(a), b.mat(bm)
	ar, ac := opDims(am, ta)
	br, bc := opDims(bb, tb)
	if ac != br || ar != cm.rows || bc != cm.cols {
		panic(lowrank.ErrShape)
	}
	if cm.trans {
		// cᵀ = op(b)ᵀ·op(a)ᵀ into the stored column-major cᵀ.
		cm, am, bb, ta, tb = cm.T(), bb, am, !tb, !ta
	}
	if cm.dtype != Float32 && cm.dtype != BFloat16 {
		panic(fmt.Errorf("%w: destination of type %v", lowrank.ErrShape, cm.dtype))
	}
	if overlaps(cm, am) || overlaps(cm, bb) {
		panic(lowrank.ErrAlias)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.gemm(cm, float32(alpha), am, ta, bb, tb, float32(beta), b.opts.Math)
}

// overlaps reports whether the device memory spans of x and y intersect
// (conservative for interleaved views: a product into a column block of a
// matrix whose other block is an operand is refused).
func overlaps(x, y *Matrix) bool {
	xs, ys := x.span()*x.dtype.Size(), y.span()*y.dtype.Size()
	return x.ptr < y.ptr+uintptr(ys) && y.ptr < x.ptr+uintptr(xs) && !disjointColumns(x, y)
}

// disjointColumns reports whether x and y are column blocks of one
// column-major matrix (same leading dimension and type, both stored
// column-major) whose columns do not intersect.
func disjointColumns(x, y *Matrix) bool {
	if x.trans || y.trans || x.ld != y.ld || x.dtype != y.dtype {
		return false
	}
	es := uintptr(x.dtype.Size())
	lo := min(x.ptr, y.ptr)
	pos := func(m *Matrix) (r, c int) {
		off := int((m.ptr - lo) / es)
		return off % m.ld, off / m.ld
	}
	xr, xc := pos(x)
	yr, yc := pos(y)
	if xr+x.rows > x.ld || yr+y.rows > y.ld {
		return false
	}
	return xc+x.cols <= yc || yc+y.cols <= xc || xr+x.rows <= yr || yr+y.rows <= xr
}

// gemm is Mul without the checks, with an explicit arithmetic.
func (b *Backend) gemm(c *Matrix, alpha float32, a *Matrix, ta bool, bm *Matrix, tb bool, beta float32, mth Math) error {
	m, k := opDims(a, ta)
	_, n := opDims(bm, tb)
	opA, opB := ta != a.trans, tb != bm.trans
	pa, pb := a.ptr, bm.ptr
	lda, ldb := a.ld, bm.ld
	ty := int32(cudaR32F)
	compute := int32(cublasCompute32F)
	if mth == TF32 {
		compute = cublasCompute32FFastTF
	}
	if a.dtype == BFloat16 || bm.dtype == BFloat16 || c.dtype == BFloat16 || mth == BF16 {
		ty, compute = cudaR16BF, cublasCompute32F
		var err error
		if pa, lda, err = b.asBF16(&b.sc.mulA, a); err != nil {
			return err
		}
		if pb, ldb, err = b.asBF16(&b.sc.mulB, bm); err != nil {
			return err
		}
	}
	b.sc32[0], b.sc32[1] = alpha, beta
	cop := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	ct := int32(cudaR32F)
	if c.dtype == BFloat16 {
		ct = cudaR16BF
	}
	return checkBLAS(b.api.cublasGemmEx(b.blas, cop(opA), cop(opB), int32(m), int32(n), int32(k),
		unsafe.Pointer(&b.sc32[0]), pa, ty, int32(lda), pb, ty, int32(ldb),
		unsafe.Pointer(&b.sc32[1]), c.ptr, ct, int32(c.ld), compute, cublasGemmDefault), "cublasGemmEx")
}

// asBF16 returns the stored matrix of m as bf16: m itself if it is bf16,
// else a rounded copy in the scratch buffer s (same stored shape, leading
// dimension the stored rows).
func (b *Backend) asBF16(s *devBuf, m *Matrix) (uintptr, int, error) {
	if m.dtype == BFloat16 {
		return m.ptr, m.ld, nil
	}
	sr, sc := m.stored()
	p, err := b.buf(s, sr*sc*2)
	if err != nil {
		return 0, 0, err
	}
	if m.contiguous() {
		return p, sr, b.f32ToBF16(p, m.ptr, sr*sc)
	}
	return p, sr, b.copyStored(p, BFloat16, sr, m)
}

// copyStored copies the stored matrix of m into dst (type dt, leading
// dimension ldd), converting the element type.
func (b *Backend) copyStored(dst uintptr, dt DType, ldd int, m *Matrix) error {
	sr, sc := m.stored()
	return b.copy2D(dst, dt.code(), 1, ldd, m.ptr, m.dtype.code(), 1, m.ld, sr, sc, false)
}

// Scale multiplies the float32 column-major matrix m by alpha, the
// product formed in float64 (alpha may be outside float32's range).
func (b *Backend) Scale(m lowrank.Matrix, alpha float64) error {
	d := b.mat(m)
	work(d)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.scale2D(d.ptr, d.ld, d.rows, d.cols, alpha)
}

// checkGather panics unless dst is a float32 column-major q×len(idx)
// destination of a gather of rows idx of op(a) (p×q), every index in
// [0, p).
func (b *Backend) checkGather(dst, a lowrank.Matrix, trans bool, idx []int) (dm, am *Matrix, p, q int) {
	dm, am = b.mat(dst), b.mat(a)
	p, q = opDims(am, trans)
	if dm.rows != q || dm.cols != len(idx) {
		panic(lowrank.ErrShape)
	}
	work(dm)
	for _, i := range idx {
		if i < 0 || i >= p {
			panic(fmt.Sprintf("gpu: gather index %d out of range [0, %d)", i, p))
		}
	}
	return dm, am, p, q
}

// Gather sets column j of dst to row idx[j] of op(a).
func (b *Backend) Gather(dst lowrank.Matrix, a lowrank.Matrix, trans bool, idx []int) error {
	dm, am, _, q := b.checkGather(dst, a, trans, idx)
	if len(idx) == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	di, err := b.uploadIndices(idx)
	if err != nil {
		return err
	}
	// op(a)(i, r) = A(i, r), or A(r, i) if trans.
	si, sj := am.strides()
	if trans {
		si, sj = sj, si
	}
	l := len(idx)
	if si == 1 && gatherRowsFits(l) {
		return b.gatherRows(dm.ptr, dm.ld, am.ptr, am.dtype.code(), sj, di, q, l)
	}
	return b.gather(dm.ptr, dm.ld, am.ptr, am.dtype.code(), si, sj, di, q, l)
}

// uploadIndices copies idx to the device as int64 (the scratch buffer
// gatherIdx) and returns its address. Called inside enter.
func (b *Backend) uploadIndices(idx []int) (uintptr, error) {
	b.idx = b.idx[:0]
	for _, i := range idx {
		b.idx = append(b.idx, int64(i))
	}
	di, err := b.buf(&b.sc.gatherIdx, 8*len(idx))
	if err != nil {
		return 0, err
	}
	// Pageable source: the copy is staged before the call returns, so
	// b.idx may be reused at once.
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(di, unsafe.Pointer(&b.idx[0]), uintptr(8*len(idx)), b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		return 0, err
	}
	b.device.toDevice.Add(int64(8 * len(idx)))
	return di, nil
}

// Normal fills m with standard normal samples from a counter-based
// generator keyed by seed (SplitMix64 hash, Box–Muller): equal seeds give
// bit-identical matrices on any device.
func (b *Backend) Normal(m lowrank.Matrix, seed uint64) error {
	d := b.mat(m)
	work(d)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.normal(d.ptr, d.ld, d.rows, d.cols, seed)
}

// Copy copies src into dst of the same shape, converting the element type
// if dst is bf16 (bf16 storage of factors) and transposing the storage if
// src is row-major.
func (b *Backend) Copy(dst, src lowrank.Matrix) error {
	dm, sm := b.mat(dst), b.mat(src)
	if dm.rows != sm.rows || dm.cols != sm.cols {
		panic(lowrank.ErrShape)
	}
	if dm.trans {
		panic(fmt.Errorf("%w: Copy destination must be column-major", lowrank.ErrShape))
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.copyMat(dm, sm)
}

func (b *Backend) copyMat(dm, sm *Matrix) error {
	if dm.dtype == sm.dtype && !sm.trans && dm.contiguous() && sm.contiguous() {
		return b.api.check(b.api.cuMemcpyDtoDAsync(dm.ptr, sm.ptr, uintptr(dm.rows*dm.cols*dm.dtype.Size()), b.stream), "cuMemcpyDtoDAsync_v2")
	}
	si, sj := sm.strides()
	return b.copy2D(dm.ptr, dm.dtype.code(), 1, dm.ld, sm.ptr, sm.dtype.code(), si, sj, dm.rows, dm.cols, false)
}

// ToBF16 returns a new bf16 column-major copy of m (bf16 storage of a
// factor: half the bytes, relative rounding error ≤ 2⁻⁸ per element).
func (b *Backend) ToBF16(m lowrank.Matrix) (*Matrix, error) {
	d := b.mat(m)
	out, err := b.NewMatrix(d.rows, d.cols, BFloat16)
	if err != nil {
		return nil, err
	}
	if err := b.Copy(out, d); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}
