package exact

import (
	"math"
	"slices"
	"sort"

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
	n := w.Cols
	cols := make([]int, n)
	for j := range cols {
		cols[j] = j
	}
	q1, r1, d, _, ok := scaledFirstPass(w, c, cols)
	if !ok {
		return q1, r2, r, false
	}
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

// scaledFirstPass is the first Cholesky QR pass of cholQRW and
// orthonormalizeColumns, on the columns cols of x (p×n) in that order,
// scaled to unit norm: with d the columns' norms √c_jj and
// C̃ = D⁻¹·c_SS·D⁻¹ (c_SS the rows and columns cols of the Gram matrix c,
// both triangles), it returns Q₁ = X_S·D⁻¹·R̃₁⁻¹ (a new p×s matrix),
// R̃₁ = chol(C̃) (s×s, upper), d, and ‖C̃ − I‖_F (tri.OffIdentity), the test
// for a second pass; ok is false, with nothing written to x or c, when a
// norm is zero or not finite or the factorization fails.
func scaledFirstPass(x, c blas64.General, cols []int) (q1, r1 blas64.General, d []float64, off float64, ok bool) {
	s := len(cols)
	d = make([]float64, s)
	for a, j := range cols {
		d[a] = math.Sqrt(c.Data[j*c.Stride+j])
		if !(d[a] > 0) || math.IsInf(d[a], 0) {
			return q1, r1, d, 0, false
		}
	}
	r1 = blas64.General{Rows: s, Cols: s, Stride: s, Data: make([]float64, s*s)}
	for a, i := range cols {
		for b := a; b < s; b++ {
			r1.Data[a*s+b] = c.Data[i*c.Stride+cols[b]] / (d[a] * d[b])
		}
	}
	off = tri.OffIdentity(r1)
	if !tri.Cholesky(r1) {
		return q1, r1, d, off, false
	}
	q1 = gatherColumns(x, cols)
	parallelRows(q1.Rows, q1.Rows*s, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row := q1.Data[i*s : (i+1)*s]
			for a := range row {
				row[a] /= d[a]
			}
		}
	})
	tri.SolveRight(q1, r1)
	return q1, r1, d, off, true
}

// orthonormalizeColumns finishes the refinement where it left relaxed
// pairs (scanPairs): pairs of columns that are not orthogonal to working
// accuracy but whose coupling — the component of the smaller column along
// the larger, |c_pq|/max(‖x_p‖, ‖x_q‖) — is below the coupling floor, so
// that normalizing the columns would leave U that far from orthonormal.
// It factors the columns cols of x (p×n), taken in order of decreasing
// norm, as X_S = Q·T by Cholesky QR on the column-scaled X_S·D⁻¹ (whose
// Gram matrix is c rescaled; a second pass where the first one's Gram
// matrix is more than 1/2 from I, as in cholQRW), and replaces column j by
// q_j·t_jj: columns orthonormal to O((p·s + s²)·u), s = len(cols), with
// norms t_jj, which become the singular values. What this drops from the
// factorization, X_S − Q·diag(T) = Q·(T − diag(T)), is the strict upper
// triangle of T, ω = ‖T − diag(T)‖_F, whose entries are the couplings to
// first order, t_ab ≈ c_ab/‖x_a‖ for ‖x_a‖ ≥ ‖x_b‖; the singular values
// move by at most ω (Weyl). It returns ω and, if ω ≤ bound and the
// factorization succeeded, true, with the diagonal of c set to t_jj² for
// the columns cols (the rest of c is then stale); otherwise false, with x
// and c unchanged.
func orthonormalizeColumns(x, c blas64.General, cols []int, bound float64) (float64, bool) {
	s := len(cols)
	order := slices.Clone(cols)
	norm := func(j int) float64 { return c.Data[j*c.Stride+j] }
	sort.SliceStable(order, func(a, b int) bool { return norm(order[a]) > norm(order[b]) })
	// Q = X_S·D⁻¹·R̃⁻¹, T = R̃·D.
	q, r, d, off, ok := scaledFirstPass(x, c, order)
	if !ok {
		return 0, false
	}
	twoPass := off > 0.5
	t := r
	for a := range s {
		row := t.Data[a*s : (a+1)*s]
		for b := a; b < s; b++ {
			row[b] *= d[b]
		}
	}
	if twoPass {
		r2 := blas64.General{Rows: s, Cols: s, Stride: s, Data: make([]float64, s*s)}
		if !tri.SecondPassFactor(r2, q) {
			return 0, false
		}
		tri.SolveRight(q, r2)
		t = blas64.General{Rows: s, Cols: s, Stride: s, Data: make([]float64, s*s)}
		tri.MulUpper(t, r2, r, true)
	}
	var off2 float64
	for a := range s {
		for _, v := range t.Data[a*s+a+1 : (a+1)*s] {
			off2 += v * v
		}
	}
	omega := math.Sqrt(off2)
	if !(omega <= bound) {
		return omega, false
	}
	parallelRows(q.Rows, q.Rows*s, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row := q.Data[i*s : (i+1)*s]
			for a := range row {
				row[a] *= t.Data[a*s+a]
			}
		}
	})
	scatterColumns(x, order, q)
	for a, j := range order {
		c.Data[j*c.Stride+j] = t.Data[a*s+a] * t.Data[a*s+a]
	}
	return omega, true
}
