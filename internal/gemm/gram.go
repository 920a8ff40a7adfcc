package gemm

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas64"
)

// Gram writes the n×n Gram matrix aᵀa of the m×n a into c (stride
// c.Stride), both triangles. One product computes the micro-tiles that
// hold the upper triangle, its rows split over the workers by equal areas
// of the triangle, and the lower triangle is then mirrored from it:
// ≈ m·n·(n + nr) flops (nr = 24 with AVX-512) instead of the 2·m·n² of a
// full product, and op(A) = aᵀ and op(B) = a are each packed once. The
// upper triangle is what the full product aᵀ·a computes, bit for bit.
func Gram(c, a blas64.General) { symmetric(c, a, false) }

// GramRows writes the m×m matrix a·aᵀ of the m×n a (the Gram matrix of
// its rows) into c, both triangles, as Gram does for aᵀa: the tiles of the
// upper triangle by one product, then the mirror; bit for bit the full
// product a·aᵀ.
func GramRows(c, a blas64.General) { symmetric(c, a, true) }

// GramUpdate sets c ← alpha·aᵀ·a + beta·c for the m×n a and n×n c on the
// micro-tiles that hold c's upper triangle, as Gram computes aᵀa: the upper
// triangle is the full product's, bit for bit; below the diagonal the
// entries of tiles that cross it are updated and the others left. It is
// the trailing update of a Cholesky factorization that reads only the
// upper triangle (tri.Cholesky), at about half the flops of a full product.
func GramUpdate(alpha float64, a blas64.General, beta float64, c blas64.General) {
	n, k := a.Cols, a.Rows
	if c.Rows != n || c.Cols != n {
		panic(fmt.Sprintf("gemm: GramUpdate of a %d×%d a into a %d×%d c", a.Rows, a.Cols, c.Rows, c.Cols))
	}
	if n == 0 {
		return
	}
	gemmWith(kernel(), true, true, false, n, n, k, alpha, a.Data, max(a.Stride, 1), a.Data, max(a.Stride, 1), beta, c.Data, c.Stride)
}

// symmetric is Gram (c = aᵀa) or, with rows, GramRows (c = a·aᵀ).
func symmetric(c, a blas64.General, rows bool) {
	n, k := a.Cols, a.Rows
	if rows {
		n, k = k, n
	}
	if c.Rows != n || c.Cols != n {
		panic(fmt.Sprintf("gemm: Gram of a %d×%d a into a %d×%d c", a.Rows, a.Cols, c.Rows, c.Cols))
	}
	if n == 0 {
		return
	}
	lda := max(a.Stride, 1)
	gemmWith(kernel(), true, !rows, rows, n, n, k, 1, a.Data, lda, a.Data, lda, 0, c.Data, c.Stride)
	for i := range n {
		for j := range i {
			c.Data[i*c.Stride+j] = c.Data[j*c.Stride+i]
		}
	}
}
