// Package tri holds the Cholesky factorization and the triangular solve of
// loract's host code, blocked so that their O(n³) and O(m·n²) work runs on
// internal/gemm's kernels: gonum's Dpotrf and Dtrsm run on its pure-Go
// BLAS (a 1024×1024 factorization takes 31 ms there against 6.5 ms here, a
// 4096×1024 solve 396 ms against 29 ms on the 2-core development machine).
// Gonum's unblocked code handles the diagonal blocks of triBlock×triBlock.
// MulUpper multiplies by a triangular matrix on the left, skipping its
// zero blocks. OffIdentity is the test a Cholesky QR pass makes of its Gram
// matrix.
//
// Matrices are gonum's blas64.General, row-major with any stride. Shape
// errors panic with a string that starts with "tri: ".
package tri

import (
	"fmt"
	"math"

	"github.com/loract/loract/internal/gemm"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// triBlock is the width of the diagonal blocks of Cholesky and SolveRight.
const triBlock = 64

// Cholesky replaces the upper triangle of the symmetric positive definite
// n×n a (only the upper triangle is read) by its Cholesky factor R,
// a = RᵀR, and zeros the strict lower triangle. It reports whether the
// factorization succeeded: false for a matrix that is not numerically
// positive definite or whose factor is not finite (a then holds garbage).
// Right-looking in blocks of triBlock rows: the diagonal block by gonum's
// Potrf, the block row by gonum's triangular solve, the trailing matrix by
// a GEMM. Its backward error has the form of the unblocked algorithm's,
// |RᵀR − a| ≤ c·γ_{n+1}·|Rᵀ|·|R| (Higham, Accuracy and Stability of
// Numerical Algorithms, Thm 10.3; TestCholesky checks c = 2).
func Cholesky(a blas64.General) bool {
	n := a.Cols
	if a.Rows != n {
		panic(fmt.Sprintf("tri: Cholesky of a %d×%d matrix", a.Rows, n))
	}
	for j0 := 0; j0 < n; j0 += triBlock {
		j1 := min(j0+triBlock, n)
		diag := blas64.Symmetric{Uplo: blas.Upper, N: j1 - j0, Stride: a.Stride, Data: a.Data[j0*a.Stride+j0:]}
		if _, ok := lapack64.Potrf(diag); !ok {
			return false
		}
		if j1 == n {
			break
		}
		rjj := blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: j1 - j0, Stride: a.Stride, Data: diag.Data}
		panel := blas64.General{Rows: j1 - j0, Cols: n - j1, Stride: a.Stride, Data: a.Data[j0*a.Stride+j1:]}
		blas64.Trsm(blas.Left, blas.Trans, 1, rjj, panel)
		trail := blas64.General{Rows: n - j1, Cols: n - j1, Stride: a.Stride, Data: a.Data[j1*a.Stride+j1:]}
		gemm.GramUpdate(-1, panel, 1, trail) // the upper triangle only
	}
	for i := range n {
		clear(a.Data[i*a.Stride : i*a.Stride+i])
	}
	for i := range n {
		for _, x := range a.Data[i*a.Stride+i : i*a.Stride+n] {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
	}
	return true
}

// SolveRight replaces the m×n b by X = b·R⁻¹ for the n×n upper triangular
// r (its strict lower triangle is not read; its diagonal must be nonzero,
// else the result holds ±Inf or NaN). Left-looking in column blocks
// of triBlock: block J is updated by one GEMM with the blocks before it,
// then multiplied by the inverse of R's diagonal block (gonum's Trtri). Row
// i of the result has the residual of substitution, ‖x_i·R − b_i‖ ≤
// γ_n·‖|x_i|·|R|‖, grown by at most the diagonal blocks' Skeel condition
// numbers ‖|R_JJ⁻¹|·|R_JJ|‖_∞ (Higham, §8.1 and §14.2; TestSolveRight).
func SolveRight(b, r blas64.General) {
	m, n := b.Rows, b.Cols
	if r.Rows != n || r.Cols != n {
		panic(fmt.Sprintf("tri: SolveRight of a %d×%d b by a %d×%d r", m, n, r.Rows, r.Cols))
	}
	inv := make([]float64, triBlock*triBlock)
	tmp := make([]float64, m*triBlock)
	for j0 := 0; j0 < n; j0 += triBlock {
		j1 := min(j0+triBlock, n)
		nb := j1 - j0
		blk := blas64.General{Rows: m, Cols: nb, Stride: b.Stride, Data: b.Data[j0:]}
		if j0 > 0 {
			left := blas64.General{Rows: m, Cols: j0, Stride: b.Stride, Data: b.Data}
			rcol := blas64.General{Rows: j0, Cols: nb, Stride: r.Stride, Data: r.Data[j0:]}
			gemm.General(false, false, -1, left, rcol, 1, blk)
		}
		ri := diagInverse(r, j0, j1, inv)
		t := blas64.General{Rows: m, Cols: nb, Stride: nb, Data: tmp[:m*nb]}
		for i := range m {
			copy(t.Data[i*nb:(i+1)*nb], blk.Data[i*b.Stride:i*b.Stride+nb])
		}
		gemm.General(false, false, 1, t, ri, 0, blk)
	}
}

// mulStrip is the height of the row strips of MulUpper.
const mulStrip = 2 * triBlock

// MulUpper sets c = R·b for the n×n upper triangular r, whose strict lower
// triangle must hold zeros (as Cholesky and SolveRight of an identity leave
// it), and the n×p b. With bUpper b is n×n upper triangular too (zeros
// below its diagonal), and so is c, whose strict lower triangle is then set
// to zero. In strips of mulStrip rows, each one GEMM over the columns of r
// from the strip's diagonal on (and the rows and columns of b from there
// on for bUpper): about n²·p flops instead of GEMM's 2·n²·p, and n³/3
// instead of 2·n³ for two triangles. c must not overlap r or b.
func MulUpper(c, r, b blas64.General, bUpper bool) {
	n, p := r.Rows, b.Cols
	if r.Cols != n || b.Rows != n || c.Rows != n || c.Cols != p || (bUpper && p != n) {
		panic(fmt.Sprintf("tri: MulUpper of a %d×%d r by a %d×%d b into a %d×%d c (upper b %t)", r.Rows, r.Cols, b.Rows, b.Cols, c.Rows, c.Cols, bUpper))
	}
	for i0 := 0; i0 < n; i0 += mulStrip {
		i1 := min(i0+mulStrip, n)
		j0 := 0
		if bUpper {
			j0 = i0
			for i := i0; i < i1; i++ {
				clear(c.Data[i*c.Stride : i*c.Stride+i0])
			}
		}
		ri := blas64.General{Rows: i1 - i0, Cols: n - i0, Stride: r.Stride, Data: r.Data[i0*r.Stride+i0:]}
		bi := blas64.General{Rows: n - i0, Cols: p - j0, Stride: b.Stride, Data: b.Data[i0*b.Stride+j0:]}
		ci := blas64.General{Rows: i1 - i0, Cols: p - j0, Stride: c.Stride, Data: c.Data[i0*c.Stride+j0:]}
		gemm.General(false, false, 1, ri, bi, 0, ci)
	}
}

// diagInverse returns, in inv, the inverse of the diagonal block
// r[j0:j1, j0:j1] of the upper triangular r (gonum's Trtri).
func diagInverse(r blas64.General, j0, j1 int, inv []float64) blas64.General {
	nb := j1 - j0
	ri := blas64.General{Rows: nb, Cols: nb, Stride: nb, Data: inv[:nb*nb]}
	for i := range nb {
		copy(ri.Data[i*nb+i:(i+1)*nb], r.Data[(j0+i)*r.Stride+j0+i:(j0+i)*r.Stride+j1])
		clear(ri.Data[i*nb : i*nb+i])
	}
	lapack64.Trtri(blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: nb, Stride: nb, Data: ri.Data})
	return ri
}

// SecondPassFactor sets g = qᵀq for the m×n q and, if it is within 1/2
// of I in the Frobenius norm (so κ(q) ≤ √3), replaces it by its Cholesky
// factor R₂, reporting whether both held. That is the second pass of
// CholeskyQR2: on such a q, Cholesky QR leaves q·R₂⁻¹ orthonormal to
// O((m·n + n²)·u) (Yamamoto, Nakatsukasa, Yanagisawa and Fukaya, ETNA 44,
// 2015); a q further from orthonormal was left so by a first pass on a
// matrix too ill-conditioned for it, and its caller falls back.
func SecondPassFactor(g, q blas64.General) bool {
	gemm.Gram(g, q)
	return OffIdentity(g) <= 0.5 && Cholesky(g)
}

// OffIdentity returns ‖G − I‖_F for the symmetric l×l g, reading its upper
// triangle only (each off-diagonal entry counted twice): the distance from
// orthonormality of the columns whose Gram matrix g is (gemm.Gram's), as a
// Cholesky QR pass tests it.
func OffIdentity(g blas64.General) float64 {
	var diag, off float64
	for i := 0; i < g.Rows; i++ {
		row := g.Data[i*g.Stride : i*g.Stride+g.Cols]
		d := row[i] - 1
		diag += d * d
		for _, v := range row[i+1:] {
			off += v * v
		}
	}
	return math.Sqrt(diag + 2*off)
}
