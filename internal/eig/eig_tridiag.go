package eig

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"

	"github.com/loract/loract/internal/vec"
)

// latrdLower is LAPACK's Dlatrd for the lower triangle (gonum's
// transcription), reducing the first nb columns of the n×n symmetric a to
// tridiagonal form and returning in w (n×nb, stride ldw) the matrix W of the
// update A₂₂ − V·Wᵀ − W·Vᵀ. It differs in one place: the product of the
// trailing block with each new Householder vector, the only O(n²) step per
// column and half of all tridiagonalization flops, is a matrix–vector
// product that reads each element of the lower triangle once, contiguously,
// with the rows split over the cores (symvLower), instead of gonum's serial
// Dsymv.
func latrdLower(n, nb int, a []float64, lda int, e, tau, w []float64, ldw int, x, y []float64, ybuf [][]float64) {
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
		symvLower(r, a[(i+1)*lda+i+1:], lda, x[:r], y[:r], ybuf)
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

// symvLower sets y = A·x for the r×r symmetric A whose lower triangle is
// held in a (stride lda). Row k contributes a[k, 0:k+1]·x[0:k+1] to y_k and
// a[k, 0:k]·x_k to y[0:k], so each element is read once, contiguously: half
// the memory traffic of a full-storage product, which is what bounds this
// step. The rows are split over len(ybuf) goroutines at k = r·√(p/parts)
// (equal triangle areas), each accumulating into its own buffer ybuf[p]
// (len ≥ r), which are then summed.
func symvLower(r int, a []float64, lda int, x, y []float64, ybuf [][]float64) {
	parts := len(ybuf)
	if r < 256 || parts == 1 {
		clear(y)
		symvLowerRows(0, r, a, lda, x, y)
		return
	}
	var wg sync.WaitGroup
	for p := range parts {
		k0 := int(float64(r) * math.Sqrt(float64(p)/float64(parts)))
		k1 := int(float64(r) * math.Sqrt(float64(p+1)/float64(parts)))
		if p == parts-1 {
			k1 = r
		}
		yp := ybuf[p][:r]
		wg.Add(1)
		go func() {
			defer wg.Done()
			clear(yp[:k1])
			symvLowerRows(k0, k1, a, lda, x, yp)
		}()
	}
	wg.Wait()
	copy(y, ybuf[parts-1][:r])
	for p := range parts - 1 {
		k1 := int(float64(r) * math.Sqrt(float64(p+1)/float64(parts)))
		for k, v := range ybuf[p][:k1] {
			y[k] += v
		}
	}
}

// symvLowerRows adds the contributions of rows [k0, k1) of the lower
// triangle to y (see symvLower); y[0:k1] must be initialized. Each row is
// one vec.DotAxpy.
func symvLowerRows(k0, k1 int, a []float64, lda int, x, y []float64) {
	for k := k0; k < k1; k++ {
		xk := x[k]
		y[k] += vec.DotAxpy(a[k*lda:k*lda+k], x[:k], y[:k], xk) + a[k*lda+k]*xk
	}
}
