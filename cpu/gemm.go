package cpu

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/lowrank"
)

// gemmMixed computes c = alpha·op(a)·op(b) + beta·c where a and b are each
// a *mat.Dense or a *lowrank.Dense32. Float32 data is read in place and converted
// to float64 inside gemm's packing, so no float64 copy of a *lowrank.Dense32 is
// made; the product runs on internal/gemm's threaded kernels.
func gemmMixed(ta, tb bool, alpha float64, a, b lowrank.Matrix, beta float64, c blas64.General) {
	m, k := opDims(a, ta)
	_, n := opDims(b, tb)
	switch a := a.(type) {
	case *lowrank.Dense32:
		switch b := b.(type) {
		case *lowrank.Dense32:
			gemm.Gemm(ta, tb, m, n, k, alpha, a.Data, ld32(a), b.Data, ld32(b), beta, c.Data, c.Stride)
		default:
			bg := dense(b)
			gemm.Gemm(ta, tb, m, n, k, alpha, a.Data, ld32(a), bg.Data, bg.Stride, beta, c.Data, c.Stride)
		}
	default:
		ag := dense(a)
		switch b := b.(type) {
		case *lowrank.Dense32:
			gemm.Gemm(ta, tb, m, n, k, alpha, ag.Data, ag.Stride, b.Data, ld32(b), beta, c.Data, c.Stride)
		default:
			bg := dense(b)
			gemm.Dgemm(ta, tb, m, n, k, alpha, ag.Data, ag.Stride, bg.Data, bg.Stride, beta, c.Data, c.Stride)
		}
	}
}

// ld32 is the leading dimension of d for gemm, which wants at least 1
// even when d has no columns (and panics if it is below d.Cols).
func ld32(d *lowrank.Dense32) int { return max(d.Stride, 1) }

var _ mat.Matrix = (*lowrank.Dense32)(nil)
