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
	cm, am, bb := b.mat(c), b.mat(a), b.mat(bm)
	ar, ac := opDims(am, ta)
	br, bc := opDims(bb, tb)
	if ac != br || ar != cm.rows || bc != cm.cols {
		panic(lowrank.ErrShape)
	}
	if count < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Errorf("%w: MulBatched count %d, strides %d, %d, %d", lowrank.ErrShape, count, strideA, strideB, strideC))
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
	if count == 0 {
		return nil
	}
	if cm.trans {
		// cᵀ = op(b)ᵀ·op(a)ᵀ into the stored column-major cᵀ.
		cm, am, bb, ta, tb, strideA, strideB = cm.T(), bb, am, !tb, !ta, strideB, strideA
	}
	if overlapsBatched(cm, strideC, am, strideA, count) || overlapsBatched(cm, strideC, bb, strideB, count) {
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
	return checkBLAS(b.api.cublasGemmStridedBatchedEx(b.blas, blasOp(opA), blasOp(opB), int32(m), int32(n), int32(k),
		unsafe.Pointer(&b.sc32[0]), am.ptr, ty, int32(am.ld), int64(strideA), bb.ptr, ty, int32(bb.ld), int64(strideB),
		unsafe.Pointer(&b.sc32[1]), cm.ptr, ct, int32(cm.ld), int64(strideC), int32(count), compute, cublasGemmDefault),
		"cublasGemmStridedBatchedEx")
}

// overlapsBatched reports whether the memory from the first element of
// x_0 to the last of x_{count−1} intersects that of y (conservative: the
// gaps between strided matrices count as used).
func overlapsBatched(x *Matrix, sx int, y *Matrix, sy int, count int) bool {
	end := func(m *Matrix, s int) uintptr {
		return m.ptr + uintptr(((count-1)*s+m.span())*m.dtype.Size())
	}
	return x.ptr < end(y, sy) && y.ptr < end(x, sx)
}
