package gemm

import (
	"gonum.org/v1/gonum/blas/blas64"
)

// gramBlock is the width of the column blocks of Gram. With 4 blocks or
// more the product computes at most (1 + 1/4)·m·n² multiply–adds instead of
// the 2·m·n² of a full GEMM.
const gramBlock = 256

// Gram writes the n×n Gram matrix aᵀa of the m×n a into c (stride
// c.Stride), both triangles. Only the blocks on and above the diagonal are
// computed, by GEMM, and then mirrored: ≈ m·n²·(1 + gramBlock/n) flops.
func Gram(c, a blas64.General) {
	n := a.Cols
	for j0 := 0; j0 < n; j0 += gramBlock {
		j1 := min(j0+gramBlock, n)
		// c[0:j1, j0:j1] = a[:, 0:j1]ᵀ·a[:, j0:j1].
		General(true, false, 1, colsOf(a, 0, j1), colsOf(a, j0, j1), 0, subGeneral(c, 0, j1, j0, j1))
	}
	for i := range n {
		for j := range i {
			c.Data[i*c.Stride+j] = c.Data[j*c.Stride+i]
		}
	}
}

func colsOf(a blas64.General, j0, j1 int) blas64.General {
	return subGeneral(a, 0, a.Rows, j0, j1)
}

func subGeneral(a blas64.General, i0, i1, j0, j1 int) blas64.General {
	if i1 == i0 || j1 == j0 {
		return blas64.General{Rows: i1 - i0, Cols: j1 - j0, Stride: max(a.Stride, 1)}
	}
	return blas64.General{Rows: i1 - i0, Cols: j1 - j0, Stride: a.Stride, Data: a.Data[i0*a.Stride+j0 : (i1-1)*a.Stride+j1]}
}
