package lowrank

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// latrdLower is LAPACK's Dlatrd for the lower triangle (gonum's
// transcription), reducing the first nb columns of the n×n symmetric a to
// tridiagonal form and returning in w (n×nb, stride ldw) the matrix W of the
// update A₂₂ − V·Wᵀ − W·Vᵀ. It differs in one place: the product of the
// trailing block with each new Householder vector, the only O(n²) step per
// column and half of all tridiagonalization flops, is a matrix–vector
// product over the full rows of the trailing block (which tridiag keeps
// symmetric in both triangles) split over the cores, instead of a serial
// triangle-only Dsymv with strided access.
func latrdLower(n, nb int, a []float64, lda int, e, tau, w []float64, ldw int, x, y []float64) {
	var impl gonum.Implementation
	bi := blas64.Implementation()
	for i := 0; i < nb; i++ {
		bi.Dgemv(blas.NoTrans, n-i, i, -1, a[i*lda:], lda, w[i*ldw:], 1, 1, a[i*lda+i:], lda)
		bi.Dgemv(blas.NoTrans, n-i, i, -1, w[i*ldw:], ldw, a[i*lda:], 1, 1, a[i*lda+i:], lda)
		if i == n-1 {
			continue
		}
		e[i], tau[i] = impl.Dlarfg(n-i-1, a[(i+1)*lda+i], a[min(i+2, n-1)*lda+i:], lda)
		a[(i+1)*lda+i] = 1

		// w[i+1:, i] = A[i+1:, i+1:]·v with v = a[i+1:, i].
		r := n - i - 1
		for k := range r {
			x[k] = a[(i+1+k)*lda+i]
		}
		a22 := a[(i+1)*lda+i+1:]
		parallelRows(r, 2*r*r, func(k0, k1 int) {
			for k := k0; k < k1; k++ {
				y[k] = dot(a22[k*lda:k*lda+r], x[:r])
			}
		})
		for k := range r {
			w[(i+1+k)*ldw+i] = y[k]
		}

		bi.Dgemv(blas.Trans, n-i-1, i, 1, w[(i+1)*ldw:], ldw, a[(i+1)*lda+i:], lda, 0, w[i:], ldw)
		bi.Dgemv(blas.NoTrans, n-i-1, i, -1, a[(i+1)*lda:], lda, w[i:], ldw, 1, w[(i+1)*ldw+i:], ldw)
		bi.Dgemv(blas.Trans, n-i-1, i, 1, a[(i+1)*lda:], lda, a[(i+1)*lda+i:], lda, 0, w[i:], ldw)
		bi.Dgemv(blas.NoTrans, n-i-1, i, -1, w[(i+1)*ldw:], ldw, w[i:], ldw, 1, w[(i+1)*ldw+i:], ldw)
		bi.Dscal(n-i-1, tau[i], w[(i+1)*ldw+i:], ldw)
		alpha := -0.5 * tau[i] * bi.Ddot(n-i-1, w[(i+1)*ldw+i:], ldw, a[(i+1)*lda+i:], lda)
		bi.Daxpy(n-i-1, alpha, a[(i+1)*lda+i:], lda, w[(i+1)*ldw+i:], ldw)
	}
}

// dot returns xᵀy for len(x) == len(y), four partial sums.
func dot(x, y []float64) float64 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}
