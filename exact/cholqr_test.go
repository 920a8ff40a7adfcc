package exact

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/eig"
	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/testmat"
)

// gammaN is γ_n = n·u/(1 − n·u) for u = 2⁻⁵³ (Higham, §3.1).
func gammaN(n int) float64 {
	nu := float64(n) * 0x1p-53
	return nu / (1 - nu)
}

// randomUpper returns an n×n upper triangular matrix with unit-ish
// diagonal entries 10^U(0, −e) and off-diagonal entries N(0, 1)/n, so that
// its diagonal blocks span e decades.
func randomUpper(n int, e float64, rng *rand.Rand) blas64.General {
	r := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	for i := range n {
		r.Data[i*n+i] = math.Pow(10, -e*rng.Float64())
		for j := i + 1; j < n; j++ {
			r.Data[i*n+j] = rng.NormFloat64() / float64(n)
		}
	}
	return r
}

// TestCholUpper checks the blocked Cholesky factorization at orders
// around the block width and across conditionings: the backward error
// |RᵀR − A| ≤ 2·γ_{n+1}·|Rᵀ|·|R| elementwise (Higham, Thm 10.3, which
// holds for the blocked right-looking algorithm with the same form; the
// factor 2 allows for the blocked trailing updates' rounding in another
// order), the lower triangle zeroed, and failure on an indefinite matrix
// and on NaN.
func TestCholUpper(t *testing.T) {
	for _, n := range []int{1, 2, 63, 64, 65, 130, 200} {
		for _, e := range []float64{0, 2.5, 5} { // κ(A) up to about 10¹⁰
			sigma := make([]float64, n) // σ(B) from 1 to 10^-e: κ(A) = 10^(2e)
			for j := range sigma {
				sigma[j] = math.Pow(10, -e*float64(j)/float64(max(n-1, 1)))
			}
			b := testmat.Incoherent(n, n, sigma, uint64(n)).RawMatrix()
			a := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
			gemm.General(true, false, 1, b, b, 0, a)
			r := blas64.General{Rows: n, Cols: n, Stride: n, Data: slices.Clone(a.Data)}
			for i := range n { // garbage below the diagonal must not be read
				for j := range i {
					r.Data[i*n+j] = math.NaN()
				}
			}
			require.True(t, cholUpper(r), "n = %d, κ = 10^%g", n, 2*e)
			var worst float64
			for i := range n {
				for j := range n {
					if j < i {
						require.Zero(t, r.Data[i*n+j], "n = %d: R[%d, %d]", n, i, j)
					}
					var s, abs float64
					for k := range min(i, j) + 1 {
						s += r.Data[k*n+i] * r.Data[k*n+j]
						abs += math.Abs(r.Data[k*n+i] * r.Data[k*n+j])
					}
					if abs > 0 {
						worst = max(worst, math.Abs(s-a.Data[i*n+j])/abs)
					}
				}
			}
			assert.LessOrEqual(t, worst, 2*gammaN(n+1), "n = %d, κ = 10^%g", n, 2*e)
		}
		ind := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
		for i := range n {
			ind.Data[i*n+i] = 1
		}
		ind.Data[(n-1)*n+n-1] = -1
		assert.False(t, cholUpper(ind), "n = %d: indefinite", n)
		ind.Data[(n-1)*n+n-1] = math.NaN()
		assert.False(t, cholUpper(ind), "n = %d: NaN", n)
	}
}

// TestTrsmUpper checks X = B·R⁻¹ against its residual, row by row: with
// the diagonal blocks applied through their inverses the row-wise bound
// of substitution, ‖x_i·R − b_i‖ ≤ γ_n·‖|x_i|·|R|‖, grows by the blocks'
// Skeel condition numbers cond(R_JJ) = ‖|R_JJ⁻¹|·|R_JJ|‖_∞ (Higham,
// §8.1, and §14.2 for the residual of a triangular inverse); the test allows
// 2·γ_n·max_J cond(R_JJ), computed from the exact blocks it drew.
func TestTrsmUpper(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, n := range []int{1, 63, 64, 65, 200} {
		for _, e := range []float64{0, 3} {
			const m = 150
			r := randomUpper(n, e, rng)
			b := testmat.Gaussian(m, n, uint64(n)).RawMatrix()
			x := blas64.General{Rows: m, Cols: n, Stride: n, Data: slices.Clone(b.Data)}
			trsmUpper(x, r)
			cond := blockCond(r)
			for i := range m {
				var num, den float64
				for j := range n {
					var s, abs float64
					for k := range j + 1 {
						s += x.Data[i*n+k] * r.Data[k*n+j]
						abs += math.Abs(x.Data[i*n+k] * r.Data[k*n+j])
					}
					num += (s - b.Data[i*n+j]) * (s - b.Data[i*n+j])
					den += abs * abs
				}
				require.LessOrEqual(t, math.Sqrt(num), 2*gammaN(n)*cond*math.Sqrt(den), "n = %d, 10^-%g: row %d", n, e, i)
			}
		}
	}
}

// blockCond returns max_J ‖|R_JJ⁻¹|·|R_JJ|‖_∞ over the triBlock diagonal
// blocks of the upper triangular r, the inverse by back substitution.
func blockCond(r blas64.General) float64 {
	n := r.Cols
	var worst float64
	for j0 := 0; j0 < n; j0 += triBlock {
		nb := min(triBlock, n-j0)
		inv := make([]float64, nb*nb)
		for c := range nb { // column c of the inverse: R_JJ·y = e_c
			for i := c; i >= 0; i-- {
				s := 0.0
				if i == c {
					s = 1
				}
				for k := i + 1; k <= c; k++ {
					s -= r.Data[(j0+i)*n+j0+k] * inv[k*nb+c]
				}
				inv[i*nb+c] = s / r.Data[(j0+i)*n+j0+i]
			}
		}
		for i := range nb {
			var row float64
			for j := range nb {
				var s float64
				for k := range nb {
					s += math.Abs(inv[i*nb+k]) * math.Abs(r.Data[(j0+k)*n+j0+j])
				}
				row += s
			}
			worst = max(worst, row)
		}
	}
	return worst
}

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
	trsmUpper(q, r2) // Q = Q₁·R₂⁻¹
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
