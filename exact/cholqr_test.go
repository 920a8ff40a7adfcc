package exact

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/eig"
	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/householder"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/internal/trace"
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
// orthonormal within 4·m·ε. A third run makes refine's orthonormalization
// of the relaxed pairs decline (the trace must say so), so that the strict
// rounds after it meet the same bounds.
func TestSVDViaRRoutes(t *testing.T) {
	const m, n = 1000, 300
	sigma := testmat.Exponential(n, 14*math.Ln10/float64(n-1))
	a := testmat.Incoherent(m, n, sigma, 31)
	for _, route := range []struct {
		name          string
		chol, decline bool
	}{{"Cholesky QR", true, false}, {"Householder QR", false, false}, {"orthonormalization declined", true, true}} {
		oldChol, oldDecline := cholRoute, declineRelaxed
		cholRoute, declineRelaxed = route.chol, route.decline
		var relaxed, declined bool
		trace.SetHook(func(stage string, _ time.Duration) {
			if strings.HasPrefix(stage, "orthonormalize") {
				relaxed = true
				declined = declined || strings.HasSuffix(stage, "(false)")
			}
		})
		f, err := TruncatedSVD(a, n)
		trace.SetHook(nil)
		cholRoute, declineRelaxed = oldChol, oldDecline
		require.NoError(t, err, route.name)
		require.True(t, relaxed, "%s: relaxed pairs orthonormalized", route.name)
		require.Equal(t, route.decline, declined, "%s: the orthonormalization declined", route.name)
		got := f.Values(nil)
		for j, s := range sigma {
			require.InDelta(t, s, got[j], 16*float64(m)*0x1p-52*sigma[0], "%s: σ_%d", route.name, j)
		}
		assert.LessOrEqual(t, testmat.OrthError(f.UView()), 4*float64(m)*0x1p-52, "%s: U", route.name)
		assert.LessOrEqual(t, testmat.OrthError(f.VView()), 4*float64(m)*0x1p-52, "%s: V", route.name)
	}
}

// TestOrthonormalizeColumns checks the orthonormalization of refine's
// relaxed columns on X = Q₀·T₀ (p×n, Q₀ orthonormal, T₀ upper triangular
// with a graded diagonal, 1 down to 10⁻¹², and off-diagonal entries
// T₀_ab = η·t_bb·r, r uniform in ±1/2), its columns shuffled and only
// some of them passed: in exact arithmetic the columns taken in order of
// decreasing norm have the QR factorization Q₀·T₀, so the columns become
// q₀_b·t_bb and ω = ‖T₀ − diag(T₀)‖_F. The tolerances are the columnwise
// rounding of the construction and of the factorization, a few γ_{p+n}
// relative to each column (4·(p+n)·u), and for orthonormality the SVD
// tests' 4·p·ε; η = 10⁻⁶ makes ω far larger than those. One case has
// cosines of 0.4 among the ten smallest columns, so that the scaled Gram
// matrix is more than 1/2 from I and the second pass runs. The columns not
// passed are untouched, and a bound below ω, a zero column and two columns
// at an angle of 10⁻¹⁰ are declined with x and c unchanged.
func TestOrthonormalizeColumns(t *testing.T) {
	const p, n = 300, 80
	const u = 0x1p-53
	tol := 4 * float64(p+n) * u
	rnd := rand.New(rand.NewPCG(41, 42))
	q0 := testmat.Gaussian(p, n, 7).RawMatrix()
	tau := make([]float64, n)
	householder.Geqrf(q0, tau)
	householder.Orgqr(q0, n, tau)
	perm := rnd.Perm(n) // column b of T₀ goes to column perm[b] of X
	for _, twoPass := range []bool{false, true} {
		t0 := make([]float64, n*n)
		for b := range n {
			d := math.Pow(10, -12*float64(b)/float64(n-1))
			t0[b*n+b] = d
			for a := range b {
				eta := 1e-6
				if twoPass && a >= n-10 {
					eta = 0.8
				}
				t0[a*n+b] = eta * d * (rnd.Float64() - 0.5)
			}
		}
		var omega0 float64
		for a := range n {
			for b := a + 1; b < n; b++ {
				omega0 += t0[a*n+b] * t0[a*n+b]
			}
		}
		omega0 = math.Sqrt(omega0)
		xs := blas64.General{Rows: p, Cols: n, Stride: n, Data: make([]float64, p*n)}
		gemm.General(false, false, 1, q0, blas64.General{Rows: n, Cols: n, Stride: n, Data: t0}, 0, xs)
		x := blas64.General{Rows: p, Cols: n + 5, Stride: n + 5, Data: make([]float64, p*(n+5))}
		for i := range p {
			for b := range n {
				x.Data[i*x.Stride+perm[b]] = xs.Data[i*n+b]
			}
			for j := n; j < n+5; j++ {
				x.Data[i*x.Stride+j] = rnd.NormFloat64()
			}
		}
		c := blas64.General{Rows: n + 5, Cols: n + 5, Stride: n + 5, Data: make([]float64, (n+5)*(n+5))}
		gemm.Gram(c, x)
		cols := slices.Clone(perm)
		slices.Sort(cols)
		// The scaled Gram matrix of the columns passed, as the function
		// tests it for the second pass.
		g := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
		for a := range n {
			for b := range n {
				pa, pb := perm[a], perm[b]
				g.Data[a*n+b] = c.Data[pa*c.Stride+pb] / math.Sqrt(c.Data[pa*c.Stride+pa]*c.Data[pb*c.Stride+pb])
			}
		}
		require.Equal(t, twoPass, tri.OffIdentity(g) > 0.5, "twoPass %v: ‖C̃ − I‖_F = %.2g", twoPass, tri.OffIdentity(g))

		x0, c0 := slices.Clone(x.Data), slices.Clone(c.Data)
		omega, ok := orthonormalizeColumns(x, c, cols, math.Inf(1))
		require.True(t, ok, "twoPass %v", twoPass)
		var xf2 float64
		for _, j := range cols {
			xf2 += c0[j*c.Stride+j]
		}
		assert.InDelta(t, omega0, omega, tol*(omega0+math.Sqrt(xf2)), "twoPass %v: ω", twoPass)
		qm := mat.NewDense(p, n, nil)
		for b := range n {
			j := perm[b]
			var s2, dq float64
			for i := range p {
				s2 += x.Data[i*x.Stride+j] * x.Data[i*x.Stride+j]
			}
			s := math.Sqrt(s2)
			require.InDelta(t, t0[b*n+b], s, tol*t0[b*n+b], "twoPass %v: ‖x'_%d‖ = t_%d%d", twoPass, j, b, b)
			require.InDelta(t, s2, c.Data[j*c.Stride+j], 4*float64(p)*u*s2, "twoPass %v: c_jj = ‖x'_j‖²", twoPass)
			for i := range p {
				qi := x.Data[i*x.Stride+j] / s
				qm.Set(i, b, qi)
				dq += (qi - q0.Data[i*n+b]) * (qi - q0.Data[i*n+b])
			}
			require.LessOrEqual(t, math.Sqrt(dq), tol, "twoPass %v: direction of column %d", twoPass, j)
		}
		assert.LessOrEqual(t, testmat.OrthError(qm), 4*float64(p)*0x1p-52, "twoPass %v: orthonormal", twoPass)
		for i := range p {
			for j := n; j < n+5; j++ {
				require.Equal(t, x0[i*x.Stride+j], x.Data[i*x.Stride+j], "twoPass %v: column %d untouched", twoPass, j)
			}
		}
		t.Logf("twoPass %v: ω = %.3g (ω₀ %.3g), ‖QᵀQ − I‖_max = %.1e", twoPass, omega, omega0, testmat.OrthError(qm))

		// Declined: x and c as they were.
		declined := func(what string, x, c blas64.General, bound float64) {
			t.Helper()
			xc, cc := slices.Clone(x.Data), slices.Clone(c.Data)
			_, ok := orthonormalizeColumns(x, c, cols, bound)
			assert.False(t, ok, what)
			assert.Equal(t, xc, x.Data, what+": x")
			assert.Equal(t, cc, c.Data, what+": c")
		}
		copy(x.Data, x0)
		copy(c.Data, c0)
		declined("a bound below ω", x, c, omega/2)
		for i := range p {
			x.Data[i*x.Stride+perm[3]] = 0
		}
		gemm.Gram(c, x)
		declined("a zero column", x, c, math.Inf(1))
		for i := range p {
			x.Data[i*x.Stride+perm[3]] = x0[i*x.Stride+perm[1]] + 1e-10*x0[i*x.Stride+perm[2]]
		}
		gemm.Gram(c, x)
		declined("two columns 10⁻¹⁰ apart", x, c, math.Inf(1))
	}
}
