package eig

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"

	"github.com/loract/loract/internal/vec"
)

// latrdLower is LAPACK's Dlatrd for the lower triangle, reducing the first
// nb columns of the n×n symmetric a (stride lda, both triangles current)
// to tridiagonal form. It returns the panel's Householder vectors V and the
// matrix W of the update A₂₂ − V·Wᵀ − W·Vᵀ transposed: row j of vt (nb×n,
// stride n) holds v_j (zero up to j, 1 at j+1) and row j of wt the column
// w_j (zero up to j). It writes d, e and tau for the panel, and, at the
// end, v_j below the subdiagonal of column j of a (LAPACK's layout, which
// applyTridiagQ reads); the subdiagonal itself is left to the caller (e).
//
// The arithmetic is Dlatrd's, in another layout. Dlatrd walks columns of
// a, V and W, which in row-major storage are strided and make every
// matrix–vector product a loop over short rows (i < nb elements). Here
// column i of the panel is updated as row i of a — the same numbers at the
// panel's start, a being symmetric and held in both triangles — and V and W
// are held as rows, so that every product is a contiguous loop over rows
// of length n−i. The product of the trailing block with each new vector,
// half of all tridiagonalization flops, reads each element of the lower
// triangle once, contiguously, with the rows split over the cores
// (symvLower): the lower triangle below row i is never written here, so it
// still holds the trailing block as at the panel's start, which is what
// Dlatrd multiplies by.
func latrdLower(n, nb int, a []float64, lda int, d, e, tau, vt, wt []float64, t, ybuf [][]float64) {
	var impl gonum.Implementation
	bi := blas64.Implementation()
	t0, t1 := t[0][:nb], t[1][:nb]
	for i := 0; i < nb; i++ {
		row := a[i*lda+i : i*lda+n] // column i of the panel, as row i
		if i > 0 {
			// a[i:, i] −= V[i:, 0:i]·W[i, 0:i]ᵀ + W[i:, 0:i]·V[i, 0:i]ᵀ.
			for j := range i {
				t0[j], t1[j] = wt[j*n+i], vt[j*n+i]
			}
			bi.Dgemv(blas.Trans, i, n-i, -1, vt[i:], n, t0[:i], 1, 1, row, 1)
			bi.Dgemv(blas.Trans, i, n-i, -1, wt[i:], n, t1[:i], 1, 1, row, 1)
		}
		d[i] = row[0]
		vrow, wrow := vt[i*n:(i+1)*n], wt[i*n:(i+1)*n]
		clear(vrow[:i+1])
		clear(wrow[:i+1])
		if i == n-1 {
			continue
		}
		e[i], tau[i] = impl.Dlarfg(n-i-1, row[1], row[min(2, n-i-1):], 1)
		vrow[i+1] = 1
		copy(vrow[i+2:], row[2:])
		v := vrow[i+1:]
		w := wrow[i+1:]
		r := n - i - 1

		// w = tau·(A[i+1:, i+1:]·v − V·(Wᵀv) − W·(Vᵀv)), over the rows and
		// columns i+1: of the panel's previous vectors.
		symvLower(r, a[(i+1)*lda+i+1:], lda, v, w, ybuf)
		if i > 0 {
			bi.Dgemv(blas.NoTrans, i, r, 1, wt[i+1:], n, v, 1, 0, t0[:i], 1)
			bi.Dgemv(blas.Trans, i, r, -1, vt[i+1:], n, t0[:i], 1, 1, w, 1)
			bi.Dgemv(blas.NoTrans, i, r, 1, vt[i+1:], n, v, 1, 0, t1[:i], 1)
			bi.Dgemv(blas.Trans, i, r, -1, wt[i+1:], n, t1[:i], 1, 1, w, 1)
		}
		bi.Dscal(r, tau[i], w, 1)
		alpha := -0.5 * tau[i] * bi.Ddot(r, w, 1, v, 1)
		bi.Daxpy(r, alpha, v, 1, w, 1)
	}
	// The vectors below the subdiagonals, row by row of a: contiguous
	// writes of up to nb elements instead of a stride-lda walk per column.
	for k := 2; k < n; k++ {
		dst := a[k*lda : k*lda+min(k-1, nb)]
		for j := range dst {
			dst[j] = vt[j*n+k]
		}
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
