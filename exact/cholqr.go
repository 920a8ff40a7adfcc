package exact

import (
	"math"

	"github.com/loract/loract/internal/tri"
	"gonum.org/v1/gonum/blas/blas64"
)

// cholQRW computes W = Q·R (m×n, m ≥ n) by two Cholesky QR passes on the
// column-scaled W̃ = W·D⁻¹, D = diag(‖w_j‖), given the Gram matrix
// c = WᵀW (both triangles; it is not modified). CholeskyQR commutes with
// the column scaling, so each pass works on unit columns and the first
// pass's Gram matrix is c itself, rescaled. Q is returned as the first
// pass's Q₁ = W̃·R̃₁⁻¹ and the second pass's factor R₂, Q = Q₁·R₂⁻¹, so that
// the caller applies R₂⁻¹ to its n×n operand instead of to the m×n Q₁
// (svdViaR: U = Q₁·(R₂⁻¹·U_R)). The cost is one m×n triangular solve and
// one Gram product on top of the c it is given, against Householder QR's
// panels and the application of its reflectors.
//
// The first pass succeeds where the Cholesky factorization of
// C̃ = D⁻¹·c·D⁻¹ does; its Q₁ is orthonormal to about κ(W̃)²·u. The
// second pass runs only when Q₁ᵀQ₁ is within 1/2 of I in the Frobenius
// norm (so κ(Q₁) ≤ √3): CholeskyQR on such an input leaves Q orthonormal to
// O((m·n + n²)·u) (Yamamoto, Nakatsukasa, Yanagisawa and Fukaya, 2015,
// ETNA 44), and the triangular solves are backward stable row by row, so
// the residual of column j is bounded by the norm of column j of R, ‖w_j‖:
// each column keeps its accuracy relative to its own norm, as with
// Householder QR. The graded 4096×1024 benchmark matrix has
// κ(W̃) ≈ 3·10⁶, inside the u^{-1/2} ≈ 7·10⁷ where the first pass works.
//
// It returns ok = false when a column is zero or not finite, a
// factorization fails or Q₁ is too far from orthonormal; the caller then
// takes Householder QR. On success q1 is a new m×n matrix, r2 and r new
// n×n upper triangular ones (zeros below the diagonal); w is not
// modified in any case.
func cholQRW(w, c blas64.General) (q1, r2, r blas64.General, ok bool) {
	m, n := w.Rows, w.Cols
	d := make([]float64, n)
	for j := range n {
		d[j] = math.Sqrt(c.Data[j*c.Stride+j])
		if !(d[j] > 0) || math.IsInf(d[j], 0) {
			return q1, r2, r, false
		}
	}
	// R̃₁ = chol(C̃).
	r1 := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	for i := range n {
		for j := i; j < n; j++ {
			r1.Data[i*n+j] = c.Data[i*c.Stride+j] / (d[i] * d[j])
		}
	}
	if !tri.Cholesky(r1) {
		return q1, r2, r, false
	}
	// Q₁ = W̃·R̃₁⁻¹.
	q1 = blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	parallelRows(m, m*n, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			src, dst := w.Data[i*w.Stride:i*w.Stride+n], q1.Data[i*n:(i+1)*n]
			for j, x := range src {
				dst[j] = x / d[j]
			}
		}
	})
	tri.SolveRight(q1, r1)
	// R₂ = chol(Q₁ᵀQ₁), if Q₁ is close enough to orthonormal.
	r2 = blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	if !tri.SecondPassFactor(r2, q1) {
		return q1, r2, r, false
	}
	// R = R₂·R̃₁·D.
	r = blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	tri.MulUpper(r, r2, r1, true)
	for i := range n {
		row := r.Data[i*n : (i+1)*n]
		for j := range row {
			row[j] *= d[j]
		}
	}
	return q1, r2, r, true
}
