package lowrank

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/gemm"
)

// gemmMixed computes c = alpha·op(a)·op(b) + beta·c where a and b are each
// a *mat.Dense or a *Dense32. Float32 data is read in place and converted
// to float64 inside gemm's packing, so no float64 copy of a *Dense32 is
// made; the product runs on internal/gemm's threaded kernels.
func gemmMixed(ta, tb bool, alpha float64, a, b Matrix, beta float64, c blas64.General) {
	m, k := opDims(a, ta)
	_, n := opDims(b, tb)
	switch a := a.(type) {
	case *Dense32:
		switch b := b.(type) {
		case *Dense32:
			gemm.Gemm(ta, tb, m, n, k, alpha, a.Data, ld32(a), b.Data, ld32(b), beta, c.Data, c.Stride)
		default:
			bg := dense(b)
			gemm.Gemm(ta, tb, m, n, k, alpha, a.Data, ld32(a), bg.Data, bg.Stride, beta, c.Data, c.Stride)
		}
	default:
		ag := dense(a)
		switch b := b.(type) {
		case *Dense32:
			gemm.Gemm(ta, tb, m, n, k, alpha, ag.Data, ag.Stride, b.Data, ld32(b), beta, c.Data, c.Stride)
		default:
			bg := dense(b)
			gemm.Dgemm(ta, tb, m, n, k, alpha, ag.Data, ag.Stride, bg.Data, bg.Stride, beta, c.Data, c.Stride)
		}
	}
}

// ld32 is the leading dimension of d for gemm, which wants at least 1
// even when d has no columns (and panics if it is below d.Cols).
func ld32(d *Dense32) int { return max(d.Stride, 1) }

// gemm64 computes c = alpha·op(a)·op(b) + beta·c for float64 operands, with
// op(x) = xᵀ when the flag is set. Shapes follow blas64.Gemm (op(a) is
// c.Rows×k, op(b) k×c.Cols); c must not alias a or b. With beta = 0, c is
// not read. It panics with ErrShape if the shapes do not match. It runs
// on internal/gemm's threaded kernels.
func gemm64(tA, tB bool, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	ar, k := a.Rows, a.Cols
	if tA {
		ar, k = k, ar
	}
	br, bc := b.Rows, b.Cols
	if tB {
		br, bc = bc, br
	}
	if ar != c.Rows || br != k || bc != c.Cols {
		panic(ErrShape)
	}
	gemm.Dgemm(tA, tB, c.Rows, c.Cols, k, alpha, a.Data, a.Stride, b.Data, b.Stride, beta, c.Data, c.Stride)
}

var _ mat.Matrix = (*Dense32)(nil)
