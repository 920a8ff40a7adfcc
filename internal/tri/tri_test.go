package tri

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"

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

// TestCholesky checks the blocked Cholesky factorization at orders
// around the block width and across conditionings: the backward error
// |RᵀR − A| ≤ 2·γ_{n+1}·|Rᵀ|·|R| elementwise (Higham, Thm 10.3, which
// holds for the blocked right-looking algorithm with the same form; the
// factor 2 allows for the blocked trailing updates' rounding in another
// order), the lower triangle zeroed, and failure on an indefinite matrix
// and on NaN.
func TestCholesky(t *testing.T) {
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
			require.True(t, Cholesky(r), "n = %d, κ = 10^%g", n, 2*e)
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
		assert.False(t, Cholesky(ind), "n = %d: indefinite", n)
		ind.Data[(n-1)*n+n-1] = math.NaN()
		assert.False(t, Cholesky(ind), "n = %d: NaN", n)
	}
}

// TestSolveRight checks X = B·R⁻¹ against its residual, row by row: with
// the diagonal blocks applied through their inverses the row-wise bound
// of substitution, ‖x_i·R − b_i‖ ≤ γ_n·‖|x_i|·|R|‖, grows by the blocks'
// Skeel condition numbers cond(R_JJ) = ‖|R_JJ⁻¹|·|R_JJ|‖_∞ (Higham,
// §8.1, and §14.2 for the residual of a triangular inverse); the test allows
// 2·γ_n·max_J cond(R_JJ), computed from the exact blocks it drew.
func TestSolveRight(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, n := range []int{1, 63, 64, 65, 200} {
		for _, e := range []float64{0, 3} {
			const m = 150
			r := randomUpper(n, e, rng)
			b := testmat.Gaussian(m, n, uint64(n)).RawMatrix()
			x := blas64.General{Rows: m, Cols: n, Stride: n, Data: slices.Clone(b.Data)}
			SolveRight(x, r)
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

// TestMulUpper checks R·B against the sum over the nonzero terms
// elementwise, |c_ij − Σ_k r_ik·b_kj| ≤ γ_n·Σ_k |r_ik·b_kj| (any order of
// summation; the GEMM's fused multiply–adds round less), for sizes around
// the strip height, a general and a triangular b, and that an upper b gives
// an upper c with exact zeros below (c starts as garbage).
func TestMulUpper(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, n := range []int{1, 127, 128, 129, 300} {
		for _, bUpper := range []bool{false, true} {
			p := 70
			if bUpper {
				p = n
			}
			r := randomUpper(n, 3, rng)
			b := testmat.Gaussian(n, p, uint64(n)).RawMatrix()
			if bUpper {
				b = randomUpper(n, 3, rng)
			}
			c := blas64.General{Rows: n, Cols: p, Stride: p + 1, Data: make([]float64, n*(p+1))}
			for i := range c.Data {
				c.Data[i] = math.NaN()
			}
			MulUpper(c, r, b, bUpper)
			for i := range n {
				for j := range p {
					var s, abs float64
					for k := i; k < n; k++ {
						s += r.Data[i*r.Stride+k] * b.Data[k*b.Stride+j]
						abs += math.Abs(r.Data[i*r.Stride+k] * b.Data[k*b.Stride+j])
					}
					got := c.Data[i*c.Stride+j]
					if bUpper && j < i {
						require.Equal(t, 0.0, got, "n = %d: c(%d, %d) below the diagonal", n, i, j)
						continue
					}
					require.InDelta(t, s, got, gammaN(n)*abs, "n = %d, upper b %t: c(%d, %d)", n, bUpper, i, j)
				}
			}
		}
	}
}

// TestSecondPassFactor: a q with orthonormal columns plus a perturbation
// of norm 0.1 gets R₂ with R₂ᵀR₂ = qᵀq to Cholesky's backward error
// (2·γ_{n+1}·|R₂ᵀ|·|R₂|, as TestCholesky); columns doubled in length
// (‖qᵀq − I‖_F = 3·√n > 1/2) are declined.
func TestSecondPassFactor(t *testing.T) {
	const m, n = 200, 30
	q := testmat.Gaussian(m, n, 5).RawMatrix()
	g := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	gemm.Gram(g, q)
	require.True(t, Cholesky(g))
	SolveRight(q, g) // orthonormal columns
	rng := rand.New(rand.NewPCG(49, 50))
	for i := range q.Data {
		q.Data[i] += 0.1 / math.Sqrt(float64(m*n)) * rng.NormFloat64()
	}
	want := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	gemm.Gram(want, q)
	r2 := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	require.True(t, SecondPassFactor(r2, q))
	for i := range n {
		for j := i; j < n; j++ {
			var s, abs float64
			for k := 0; k <= i; k++ {
				s += r2.Data[k*n+i] * r2.Data[k*n+j]
				abs += math.Abs(r2.Data[k*n+i] * r2.Data[k*n+j])
			}
			require.InDelta(t, want.Data[i*n+j], s, 2*gammaN(n+1)*abs, "(%d, %d)", i, j)
		}
	}
	for i := range q.Data {
		q.Data[i] *= 2
	}
	assert.False(t, SecondPassFactor(r2, q), "columns of norm 2")
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

// TestShapePanics: mismatched shapes are programming errors.
func TestShapePanics(t *testing.T) {
	sq := func(r, c int) blas64.General {
		return blas64.General{Rows: r, Cols: c, Stride: c, Data: make([]float64, r*c)}
	}
	assert.PanicsWithValue(t, "tri: Cholesky of a 2×3 matrix", func() { Cholesky(sq(2, 3)) })
	assert.PanicsWithValue(t, "tri: SolveRight of a 4×3 b by a 2×2 r", func() { SolveRight(sq(4, 3), sq(2, 2)) })
	assert.PanicsWithValue(t, "tri: MulUpper of a 3×3 r by a 3×2 b into a 3×2 c (upper b true)", func() { MulUpper(sq(3, 2), sq(3, 3), sq(3, 2), true) })
	assert.PanicsWithValue(t, "tri: MulUpper of a 3×3 r by a 2×2 b into a 3×2 c (upper b false)", func() { MulUpper(sq(3, 2), sq(3, 3), sq(2, 2), false) })
}

// TestOffIdentity: ‖G − I‖_F from the upper triangle alone (the lower one
// holds garbage here), each off-diagonal entry counted twice: diagonal
// defects 0.5 and −0.25 and one off-diagonal 0.5 give √(0.25 + 0.0625 + 2·0.25).
func TestOffIdentity(t *testing.T) {
	g := blas64.General{Rows: 3, Cols: 3, Stride: 4, Data: []float64{
		1.5, 0.5, 0, 9,
		7, 0.75, 0, 9,
		7, 7, 1, 9,
	}}
	assert.Equal(t, math.Sqrt(0.25+0.0625+2*0.25), OffIdentity(g))
}
