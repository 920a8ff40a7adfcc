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
	gemmWith(kernel(), true, true, false, n, n, a.Rows, 1, a.Data, max(a.Stride, 1), a.Data, max(a.Stride, 1), 0, c.Data, c.Stride)
	for i := range n {
		for j := range i {
			c.Data[i*c.Stride+j] = c.Data[j*c.Stride+i]
		}
	}
}
