package exact

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/eig"
	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/internal/tri"
)

// gradedW returns the W = A·V̂ of the exact SVD (svdTall's steps 1–2) and
// its Gram matrix for the m×n graded matrix of TestTruncatedSVDKnownSpectra:
// the input of svdViaR.
func gradedW(t *testing.T, m, n int) (w, c blas64.General) {
	a, _ := tallOperand(testmat.Incoherent(m, n, testmat.Exponential(n, 14*math.Ln10/float64(n-1)), 31), false)
	g := make([]float64, n*n)
	gemm.Gram(blas64.General{Rows: n, Cols: n, Stride: n, Data: g}, a)
	lam, vd := make([]float64, n), make([]float64, n*n)
	require.True(t, eig.Sym(n, g, lam, vd))
	w = blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	gemm.General(false, false, 1, a, blas64.General{Rows: n, Cols: n, Stride: n, Data: vd}, 0, w)
	c = blas64.General{Rows: n, Cols: n, Stride: n, Data: g}
	gemm.Gram(c, w)
	return w, c
}

// TestCholQRW checks the Cholesky QR of W on the graded matrix's W, whose
// columns span 10⁻¹⁴ to 1 and whose scaled form has κ(W̃) ≈ 10⁶: Q
// orthonormal within 4·m·ε (the SVD tests' bound for U), every column of
// the residual W − Q·R within 4·n·u of its own column (two passes, each a
// row-wise backward-stable solve with error γ_n relative to |Q|·|R|'s
// column, ≈ ‖w_j‖; see cholQRW), R upper triangular, w unchanged. A zero
// column and a W̃ of κ ≈ 10¹⁰ (beyond u^{-1/2}) are declined, leaving w
// as it was.
func TestCholQRW(t *testing.T) {
	const m, n = 1000, 300
	w, c := gradedW(t, m, n)
	w0 := slices.Clone(w.Data)
	q, r2, r, ok := cholQRW(w, c)
	require.True(t, ok)
	tri.SolveRight(q, r2) // Q = Q₁·R₂⁻¹
	assert.Equal(t, w0, w.Data, "w unchanged")
	for i := range n {
		for j := range i {
			require.Zero(t, r.Data[i*n+j], "R[%d, %d]", i, j)
			require.Zero(t, r2.Data[i*n+j], "R₂[%d, %d]", i, j)
		}
	}
	res := blas64.General{Rows: m, Cols: n, Stride: n, Data: slices.Clone(w.Data)}
	gemm.General(false, false, -1, q, r, 1, res)
	var worst float64
	for j := range n {
		var s, s0 float64
		for i := range m {
			s += res.Data[i*n+j] * res.Data[i*n+j]
			s0 += w.Data[i*n+j] * w.Data[i*n+j]
		}
		worst = max(worst, math.Sqrt(s/s0))
	}
	assert.LessOrEqual(t, worst, 4*float64(n)*0x1p-53, "worst column residual")
	qm := mat.NewDense(m, n, q.Data)
	assert.LessOrEqual(t, testmat.OrthError(qm), 4*float64(m)*0x1p-52, "‖QᵀQ − I‖")
	t.Logf("worst column residual %.1e, ‖QᵀQ − I‖_max %.1e", worst, testmat.OrthError(qm))

	// A zero column.
	z := blas64.General{Rows: m, Cols: n, Stride: n, Data: slices.Clone(w0)}
	for i := range m {
		z.Data[i*n+7] = 0
	}
	cz := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	gemm.Gram(cz, z)
	zc := slices.Clone(z.Data)
	_, _, _, ok = cholQRW(z, cz)
	assert.False(t, ok, "zero column")
	assert.Equal(t, zc, z.Data)
	// Two columns at an angle of 10⁻¹⁰: κ(W̃) ≈ 10¹⁰.
	for i := range m {
		z.Data[i*n+7] = w0[i*n+3] + 1e-10*math.Sqrt(c.Data[3*n+3])*w0[i*n+5]/math.Sqrt(c.Data[5*n+5])
	}
	gemm.Gram(cz, z)
	zc = slices.Clone(z.Data)
	_, _, _, ok = cholQRW(z, cz)
	assert.False(t, ok, "κ(W̃) ≈ 10¹⁰")
	assert.Equal(t, zc, z.Data)
}

// TestSVDViaRRoutes runs the graded matrix of TestTruncatedSVDKnownSpectra
// (whose W takes svdViaR) through both factorizations of W, Cholesky QR
// (the default where it succeeds) and Householder QR, to the accuracy
// that test asks: σ within 16·m·ε·σ₁ of the known values, U and V
// orthonormal within 4·m·ε.
func TestSVDViaRRoutes(t *testing.T) {
	const m, n = 1000, 300
	sigma := testmat.Exponential(n, 14*math.Ln10/float64(n-1))
	a := testmat.Incoherent(m, n, sigma, 31)
	for _, chol := range []bool{true, false} {
		old := cholRoute
		cholRoute = chol
		f, err := TruncatedSVD(a, n)
		cholRoute = old
		require.NoError(t, err, "cholRoute = %v", chol)
		got := f.Values(nil)
		for j, s := range sigma {
			require.InDelta(t, s, got[j], 16*float64(m)*0x1p-52*sigma[0], "cholRoute = %v: σ_%d", chol, j)
		}
		assert.LessOrEqual(t, testmat.OrthError(f.UView()), 4*float64(m)*0x1p-52, "cholRoute = %v: U", chol)
		assert.LessOrEqual(t, testmat.OrthError(f.VView()), 4*float64(m)*0x1p-52, "cholRoute = %v: V", chol)
	}
}
