package gpu

import (
	"fmt"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// MulBatched computes c_i = alpha·op(a_i)·op(b_i) + beta·c_i for
// i = 0, …, count−1 in one cublasGemmStridedBatchedEx call, where x_i is
// the matrix x (its shape, leading dimension, layout and type) with its
// first element moved i·strideX elements on. It is the product of
// attention: for one head, the scores Q_b·K_bᵀ of every image b of a batch
// are views of one row-major (batch·tokens)×hidden tensor, strideA =
// strideB = tokens·hidden apart.
//
// The layouts are those of Mul: row-major views (RowMajor, Matrix.T) are
// passed to cuBLAS as their stored transposes, c of either layout. a and b
// must have the same element type: float32 (computed as the Backend's Math
// says, FP32 or TF32; BF16 Math is computed as FP32 here, since a strided
// operand cannot be rounded in place) or bf16 (bf16 products with float32
// accumulation); c is float32, or bf16 for bf16 operands (cuBLAS has no
// strided-batched product of float32 operands into bf16: it answers
// CUBLAS_STATUS_NOT_SUPPORTED). With beta = 0, c is not read.
//
// It panics with lowrank.ErrShape for mismatched shapes, operand types
// that differ, float32 operands with a bf16 c, or a negative count or
// stride, and with lowrank.ErrAlias if
// the extent of the c_i overlaps that of the a_i or b_i. count = 0 does
// nothing. Cost: 2·m·n·k·count flops.
func (b *Backend) MulBatched(count int, c *Matrix, strideC int, alpha float64, a *Matrix, ta bool, strideA int,
	bm *Matrix, tb bool, strideB int, beta float64) error {
	return b.MulBatchedGrid(count, 1, c, strideC, 0, alpha, a, ta, strideA, 0, bm, tb, strideB, 0, beta)
}

// MulBatchedGrid is MulBatched over a two-level batch: for i < count and
// j < count2, c_ij = alpha·op(a_ij)·op(b_ij) + beta·c_ij, where x_ij is
// the matrix x with its first element moved i·strideX + j·strideX2
// elements on. It is the product of multi-head attention in one call:
// image i and head j of a row-major (batch·tokens)×hidden tensor are
// tokens·hidden and headDim elements apart, which no single stride
// spans. With count2 = 1 it is MulBatched (one strided-batched call);
// otherwise one launch writes the count·count2 operand and destination
// addresses on the device (kernel ptr_grid, into scratch that the stream
// orders) and one cublasGemmBatchedEx call runs the products. Its rules,
// panics and cost are MulBatched's, a negative count2 or second stride
// panicking as a negative count or stride does, and the overlap check
// spans both levels.
func (b *Backend) MulBatchedGrid(count, count2 int, c *Matrix, strideC, strideC2 int, alpha float64, a *Matrix, ta bool, strideA, strideA2 int,
	bm *Matrix, tb bool, strideB, strideB2 int, beta float64) error {
	cm, am, bb := b.mat(c), b.mat(a), b.mat(bm)
	ar, ac := opDims(am, ta)
	br, bc := opDims(bb, tb)
	if ac != br || ar != cm.rows || bc != cm.cols {
		panic(lowrank.ErrShape)
	}
	if count < 0 || count2 < 0 || strideA < 0 || strideB < 0 || strideC < 0 || strideA2 < 0 || strideB2 < 0 || strideC2 < 0 {
		panic(fmt.Errorf("%w: MulBatched counts %d, %d, strides %d, %d, %d and %d, %d, %d", lowrank.ErrShape,
			count, count2, strideA, strideB, strideC, strideA2, strideB2, strideC2))
	}
	if am.dtype != bb.dtype {
		panic(fmt.Errorf("%w: MulBatched operands of types %v and %v", lowrank.ErrShape, am.dtype, bb.dtype))
	}
	if cm.dtype != Float32 && cm.dtype != BFloat16 {
		panic(fmt.Errorf("%w: destination of type %v", lowrank.ErrShape, cm.dtype))
	}
	if am.dtype == Float32 && cm.dtype == BFloat16 {
		panic(fmt.Errorf("%w: MulBatched of float32 operands into a bf16 destination (not supported by cuBLAS)", lowrank.ErrShape))
	}
	if count == 0 || count2 == 0 {
		return nil
	}
	if cm.trans {
		// cᵀ = op(b)ᵀ·op(a)ᵀ into the stored column-major cᵀ.
		cm, am, bb, ta, tb = cm.T(), bb, am, !tb, !ta
		strideA, strideB, strideA2, strideB2 = strideB, strideA, strideB2, strideA2
	}
	if overlapsBatched(cm, strideC, strideC2, am, strideA, strideA2, count, count2) ||
		overlapsBatched(cm, strideC, strideC2, bb, strideB, strideB2, count, count2) {
		panic(lowrank.ErrAlias)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	m, k := opDims(am, ta)
	_, n := opDims(bb, tb)
	opA, opB := ta != am.trans, tb != bb.trans
	ty, compute := int32(cudaR32F), int32(cublasCompute32F)
	if am.dtype == BFloat16 {
		ty = cudaR16BF
	} else if b.opts.Math == TF32 {
		compute = cublasCompute32FFastTF
	}
	ct := int32(cudaR32F)
	if cm.dtype == BFloat16 {
		ct = cudaR16BF
	}
	b.sc32[0], b.sc32[1] = float32(alpha), float32(beta)
	if count2 == 1 {
		return checkBLAS(b.api.cublasGemmStridedBatchedEx(b.blas, blasOp(opA), blasOp(opB), int32(m), int32(n), int32(k),
			unsafe.Pointer(&b.sc32[0]), am.ptr, ty, int32(am.ld), int64(strideA), bb.ptr, ty, int32(bb.ld), int64(strideB),
			unsafe.Pointer(&b.sc32[1]), cm.ptr, ct, int32(cm.ld), int64(strideC), int32(count), compute, cublasGemmDefault),
			"cublasGemmStridedBatchedEx")
	}
	total := count * count2
	tab, err := b.buf(&b.sc.gridPtrs, 3*8*total)
	if err != nil {
		return err
	}
	if err := b.ptrGrid(tab, count, count2, am, strideA, strideA2, bb, strideB, strideB2, cm, strideC, strideC2); err != nil {
		return err
	}
	return checkBLAS(b.api.cublasGemmBatchedEx(b.blas, blasOp(opA), blasOp(opB), int32(m), int32(n), int32(k),
		unsafe.Pointer(&b.sc32[0]), tab, ty, int32(am.ld), tab+uintptr(8*total), ty, int32(bb.ld),
		unsafe.Pointer(&b.sc32[1]), tab+uintptr(16*total), ct, int32(cm.ld), int32(total), compute, cublasGemmDefault),
		"cublasGemmBatchedEx")
}

// overlapsBatched reports whether the memory from the first element of
// x_00 to the last of x_{count−1, count2−1} intersects that of y
// (conservative: the gaps between the matrices count as used).
func overlapsBatched(x *Matrix, sx, sx2 int, y *Matrix, sy, sy2 int, count, count2 int) bool {
	end := func(m *Matrix, s, s2 int) uintptr {
		return m.ptr + uintptr(((count-1)*s+(count2-1)*s2+m.span())*m.dtype.Size())
	}
	return x.ptr < end(y, sy, sy2) && y.ptr < end(x, sx, sx2)
}
