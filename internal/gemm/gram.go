package gemm

import (
	"gonum.org/v1/gonum/blas/blas64"
)

// Gram writes the n×n Gram matrix aᵀa of the m×n a into c (stride
// c.Stride), both triangles. One product computes the micro-tiles that
// hold the upper triangle, its rows split over the workers by equal areas
// of the triangle, and the lower triangle is then mirrored from it:
// ≈ m·n·(n + nr) flops (nr = 24 with AVX-512) instead of the 2·m·n² of a
// full product, and op(A) = aᵀ and op(B) = a are each packed once. The
// upper triangle is what the full product aᵀ·a computes, bit for bit.
func Gram(c, a blas64.General) {
	n := a.Cols
	if c.Rows != n || c.Cols != n {
		panic("gemm: Gram: c is not a.Cols×a.Cols")
	}
	if n == 0 {
		return
	}
	gemmWith(kernel(), true, true, false, n, n, a.Rows, 1, a.Data, max(a.Stride, 1), a.Data, max(a.Stride, 1), 0, c.Data, c.Stride)
	mirrorUpper(c)
}

// GramRows writes the m×m matrix a·aᵀ of the m×n a (the Gram matrix of
// its rows) into c, both triangles, as Gram does for aᵀa: the tiles of the
// upper triangle by one product, then the mirror; bit for bit the full
// product a·aᵀ.
func GramRows(c, a blas64.General) {
	m := a.Rows
	if c.Rows != m || c.Cols != m {
		panic("gemm: GramRows: c is not a.Rows×a.Rows")
	}
	if m == 0 {
		return
	}
	gemmWith(kernel(), true, false, true, m, m, a.Cols, 1, a.Data, max(a.Stride, 1), a.Data, max(a.Stride, 1), 0, c.Data, c.Stride)
	mirrorUpper(c)
}

// mirrorUpper copies the upper triangle of the square c onto its lower.
func mirrorUpper(c blas64.General) {
	for i := range c.Rows {
		for j := range i {
			c.Data[i*c.Stride+j] = c.Data[j*c.Stride+i]
		}
	}
}
