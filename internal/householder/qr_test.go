package householder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// qrInput is one matrix of the QR property table.
type qrInput struct {
	name   string
	m, n   int
	stride int
	fill   func(rng *rand.Rand, a blas64.General)
	draws  int // independent draws of fill (1 if 0)
}

func gaussianFill(rng *rand.Rand, a blas64.General) {
	for i := range a.Rows {
		for j := range a.Cols {
			a.Data[i*a.Stride+j] = rng.NormFloat64()
		}
	}
}

// rankFill returns a filler of a rank-r product X·Y whose factors have
// exact zeros (whole zero rows of X, zero columns of Y, sparse entries):
// the factorizations then produce reflectors with trailing zeros, the
// pattern gonum's Dlarft gets wrong.
func rankFill(r int) func(rng *rand.Rand, a blas64.General) {
	return func(rng *rand.Rand, a blas64.General) {
		m, n := a.Rows, a.Cols
		x := make([]float64, m*r)
		y := make([]float64, r*n)
		for i := range x {
			if rng.IntN(3) != 0 {
				x[i] = rng.NormFloat64()
			}
		}
		for i := range y {
			if rng.IntN(3) != 0 {
				y[i] = rng.NormFloat64()
			}
		}
		for i := range m {
			if rng.IntN(4) == 0 {
				clear(x[i*r : (i+1)*r])
			}
		}
		for i := range m {
			for j := range n {
				var s float64
				for l := range r {
					s += x[i*r+l] * y[l*n+j]
				}
				a.Data[i*a.Stride+j] = s
			}
		}
	}
}

func zeroFill(_ *rand.Rand, a blas64.General) {
	for i := range a.Rows {
		clear(a.Data[i*a.Stride : i*a.Stride+a.Cols])
	}
}

func qrInputs() []qrInput {
	return []qrInput{
		{"gaussian/unblocked", 50, 30, 30, gaussianFill, 0},
		{"gaussian/blocked", 300, 150, 150, gaussianFill, 0},
		{"gaussian/square", 130, 130, 131, gaussianFill, 0},
		{"gaussian/k=97", 200, 97, 100, gaussianFill, 0},
		{"gaussian/1col", 40, 1, 3, gaussianFill, 0},
		{"gaussian/1x1", 1, 1, 1, gaussianFill, 0},
		// With gonum's Dlarft in Geqrf/Orgqr, Q is not orthonormal on
		// 3–10% of these rank-1 draws (measured, 100 draws a shape): 80
		// draws in all miss the defect with probability ≈ 0.93⁸⁰ < 0.5%,
		// and with these seeds they catch it.
		{"rank1/180x150", 180, 150, 150, rankFill(1), 20},
		{"rank1/200x100", 200, 100, 100, rankFill(1), 20},
		{"rank1/square", 140, 140, 140, rankFill(1), 20},
		{"rank3/400x200", 400, 200, 203, rankFill(3), 0},
		{"rank40/300x160", 300, 160, 160, rankFill(40), 0},
		{"rank1/unblocked", 30, 20, 20, rankFill(1), 10},
		{"rank1/100x70", 100, 70, 70, rankFill(1), 20},
		{"zero/200x100", 200, 100, 100, zeroFill, 0},
	}
}

func newGeneral(r, c, stride int) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: stride, Data: make([]float64, (r-1)*stride+c)}
}

func copyOf(a blas64.General) blas64.General {
	b := blas64.General{Rows: a.Rows, Cols: a.Cols, Stride: a.Stride, Data: append([]float64(nil), a.Data...)}
	return b
}

// orthErr returns ‖QᵀQ − I‖_max for the m×n q (n ≤ m), and ‖QQᵀ − I‖_max if rows.
func orthErr(q blas64.General, rows bool) float64 {
	m, n := q.Rows, q.Cols
	at := func(i, j int) float64 { return q.Data[i*q.Stride+j] }
	if rows {
		m, n = n, m
		at = func(i, j int) float64 { return q.Data[j*q.Stride+i] }
	}
	var e float64
	for a := range n {
		for b := range n {
			var s float64
			for i := range m {
				s += at(i, a) * at(i, b)
			}
			if a == b {
				s--
			}
			e = max(e, math.Abs(s))
		}
	}
	return e
}

// mulErr returns max|a − x·y|, x p×l and y l×c.
func mulErr(a, x, y blas64.General) float64 {
	var e float64
	for i := range a.Rows {
		for j := range a.Cols {
			var s float64
			for l := range x.Cols {
				s += x.Data[i*x.Stride+l] * y.Data[l*y.Stride+j]
			}
			e = max(e, math.Abs(a.Data[i*a.Stride+j]-s))
		}
	}
	return e
}

func maxAbs(a blas64.General) float64 {
	var e float64
	for i := range a.Rows {
		for j := range a.Cols {
			e = max(e, math.Abs(a.Data[i*a.Stride+j]))
		}
	}
	return e
}

// TestQR checks the thin QR on the property table: Q orthonormal, R upper
// triangular, Q·R = A, for Gaussian, rank-deficient (with the zero
// patterns that break gonum's blocked QR) and zero inputs, unblocked and
// blocked sizes, strides beyond the row length.
func TestQR(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range qrInputs() {
		t.Run(c.name, func(t *testing.T) {
			for range max(c.draws, 1) {
				testQROnce(t, rng, c)
			}
		})
	}
}

func testQROnce(t *testing.T, rng *rand.Rand, c qrInput) {
	a := newGeneral(c.m, c.n, c.stride)
	c.fill(rng, a)
	y := copyOf(a)
	r := newGeneral(c.n, c.n, c.n+1)
	for i := range r.Data {
		r.Data[i] = math.NaN() // every element of R must be written
	}
	QR(y, r)
	// Householder QR is backward stable: Q is orthonormal to O(m·n·ε) in
	// the worst case (Higham, Thm. 19.4, γ_{mn}) and to O(√m·n·ε) in
	// practice; Q·R = A + ΔA with ‖Δa_j‖ ≤ γ_{mn}·‖a_j‖. The bounds below
	// are the worst-case constants, 4·m·n·ε, in the max norm, and for
	// A − QR times √m·max|a| ≥ ‖a_j‖.
	tol := 4 * float64(c.m*c.n) * eps
	assert.LessOrEqual(t, orthErr(y, false), tol, "‖QᵀQ − I‖")
	for i := range c.n {
		for j := range i {
			require.Zero(t, r.Data[i*r.Stride+j], "R(%d,%d) below the diagonal", i, j)
		}
		require.GreaterOrEqual(t, r.Data[i*r.Stride+i], 0.0, "R(%d,%d) negative", i, i)
	}
	assert.LessOrEqual(t, mulErr(a, y, r), tol*max(maxAbs(a), math.SmallestNonzeroFloat64)*math.Sqrt(float64(c.m)), "‖A − QR‖")
}

// TestQRMatchesUnblocked compares Geqrf with gonum's unblocked Dgeqr2 (one
// reflector at a time, no Dlarft) on Gaussian input, where the reflectors
// are well determined: the blocked algorithm only reassociates the same
// operations.
func TestQRMatchesUnblocked(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][2]int{{300, 150}, {200, 97}, {128, 128}, {70, 64}} {
		m, n := s[0], s[1]
		a := newGeneral(m, n, n)
		gaussianFill(rng, a)
		b := copyOf(a)
		tauA, tauB := make([]float64, n), make([]float64, n)
		Geqrf(a, tauA)
		var impl gonum.Implementation
		impl.Dgeqr2(m, n, b.Data, n, tauB, make([]float64, n))
		// The factorization of a Gaussian matrix is well conditioned:
		// the two orders of evaluation agree to a modest multiple of the
		// backward error, m·n·ε relative to max|a|, itself ≈ 4 here.
		tol := float64(m*n) * eps * 4
		assert.LessOrEqual(t, maxAbsDiff(a.Data, b.Data), tol, "%d×%d factors", m, n)
		assert.LessOrEqual(t, maxAbsDiff(tauA, tauB), tol, "%d×%d τ", m, n)
	}
}

// TestOrgqrWideBasis checks Orgqr with k < n: the completion of k
// reflectors to n orthonormal columns (the use of exact.completeBasis),
// whose first k columns span those of the factored matrix.
func TestOrgqrWideBasis(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][3]int{{400, 300, 100}, {200, 200, 3}, {150, 120, 0}, {90, 80, 70}} {
		m, n, k := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("m=%d/n=%d/k=%d", m, n, k), func(t *testing.T) {
			a := newGeneral(m, n, n)
			cols := view(a, 0, m, 0, k)
			if k > 0 {
				rankFill(min(k, 5))(rng, cols)
			}
			src := copyOf(a)
			tau := make([]float64, k)
			Geqrf(cols, tau)
			Orgqr(a, k, tau)
			// As in TestQR: worst-case 4·m·n·ε.
			assert.LessOrEqual(t, orthErr(a, false), 4*float64(m*n)*eps)
			// Each factored column a_j (j < k) lies in the span of q_0..q_j:
			// ‖a_j − Q_j·Q_jᵀ·a_j‖ ≤ c·m·n·ε·‖a_j‖.
			for j := range k {
				var resid, nrm float64
				proj := make([]float64, j+1)
				for l := 0; l <= j; l++ {
					for i := range m {
						proj[l] += a.Data[i*n+l] * src.Data[i*n+j]
					}
				}
				for i := range m {
					x := src.Data[i*n+j]
					nrm += x * x
					for l := 0; l <= j; l++ {
						x -= a.Data[i*n+l] * proj[l]
					}
					resid += x * x
				}
				assert.LessOrEqual(t, math.Sqrt(resid), 4*float64(m*n)*eps*math.Sqrt(nrm), "column %d", j)
			}
		})
	}
}

// TestApplyQ checks Q·C and Qᵀ·C against the explicit Q of Orgqr on
// rank-deficient reflectors, with k not a multiple of the block.
func TestApplyQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m, k, p := 160, 97, 40
	refl := newGeneral(m, k, k)
	rankFill(2)(rng, refl)
	tau := make([]float64, k)
	Geqrf(refl, tau)
	q := newGeneral(m, m, m)
	for i := range m {
		copy(q.Data[i*m:i*m+k], refl.Data[i*k:(i+1)*k])
	}
	Orgqr(q, k, tau)
	c := newGeneral(m, p, p+2)
	gaussianFill(rng, c)
	for _, trans := range []bool{false, true} {
		got := copyOf(c)
		ApplyQ(trans, refl, tau, got)
		var e float64
		for i := range m {
			for j := range p {
				var s float64
				for l := range m {
					ql := q.Data[i*m+l]
					if trans {
						ql = q.Data[l*m+i]
					}
					s += ql * c.Data[l*c.Stride+j]
				}
				e = max(e, math.Abs(s-got.Data[i*got.Stride+j]))
			}
		}
		// Two backward-stable applications of the same k reflectors to a
		// Gaussian C (max ≈ 4): 4·m·k·ε·max|c|.
		assert.LessOrEqual(t, e, 4*float64(m*k)*eps*maxAbs(c), "trans=%v", trans)
	}
}

// TestLQ checks the LQ factorization: orthonormal rows, L lower
// triangular, L·Q = X, on nearly orthonormal rows with repeats (the
// eigensolver's clusters) and rank-deficient rows.
func TestLQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][2]int{{150, 150}, {40, 90}, {200, 201}} {
		r, c := s[0], s[1]
		x := newGeneral(r, c, c)
		rankFill(min(r, 30))(rng, x)
		x0 := copyOf(x)
		l := newGeneral(r, r, r)
		LQ(x, l)
		tol := 4 * float64(r*c) * eps
		assert.LessOrEqual(t, orthErr(x, true), tol, "%d×%d ‖QQᵀ − I‖", r, c)
		for i := range r {
			for j := i + 1; j < r; j++ {
				require.Zero(t, l.Data[i*r+j], "L(%d,%d) above the diagonal", i, j)
			}
			require.GreaterOrEqual(t, l.Data[i*r+i], 0.0, "L(%d,%d) negative", i, i)
		}
		assert.LessOrEqual(t, mulErr(x0, l, x), tol*maxAbs(x0)*math.Sqrt(float64(r)), "%d×%d ‖X − LQ‖", r, c)
	}
}

// TestGonumBlockedQRDefect shows the consequence of the Dlarft defect on
// the audit's input: gonum's blocked Dgeqrf + Dorgqr on a 180×150
// rank-1 matrix with zero rows returns a Q that is not orthonormal, where
// QR's is. It fails, as a reminder, once a gonum upgrade fixes Dlarft.
func TestGonumBlockedQRDefect(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var worst float64
	for range 20 {
		a := newGeneral(180, 150, 150)
		rankFill(1)(rng, a)
		g := copyOf(a)
		var impl gonum.Implementation
		tau := make([]float64, 150)
		work := make([]float64, 1)
		impl.Dgeqrf(180, 150, g.Data, 150, tau, work, -1)
		lw := int(work[0])
		impl.Dorgqr(180, 150, 150, g.Data, 150, tau, work, -1)
		work = make([]float64, max(lw, int(work[0])))
		impl.Dgeqrf(180, 150, g.Data, 150, tau, work, len(work))
		impl.Dorgqr(180, 150, 150, g.Data, 150, tau, work, len(work))
		worst = max(worst, orthErr(g, false))

		QR(a, blas64.General{})
		// As in TestQR.
		require.LessOrEqual(t, orthErr(a, false), 4*180*150*eps)
	}
	t.Logf("gonum Dgeqrf+Dorgqr, worst ‖QᵀQ − I‖ over 20 rank-1 inputs: %.2e", worst)
	assert.Greater(t, worst, 1e-6, "gonum's blocked QR was orthonormal on every draw: has Dlarft been fixed?")
}

// TestLQNearIdentity checks the use of LQ as orth(I + K) for a small skew
// K, the simultaneous rotations of the exact SVD's refinement: the result
// must be I + K to first order — with the signs of I, which the
// non-negative diagonal of L guarantees (a Householder LQ alone returns
// rows ≈ ±(I + K), which would turn some rotations around).
func TestLQNearIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const n = 150
	const k = 1e-5
	x := newGeneral(n, n, n)
	for i := range n {
		x.Data[i*n+i] = 1
		for j := i + 1; j < n; j++ {
			v := k * (2*rng.Float64() - 1)
			x.Data[i*n+j], x.Data[j*n+i] = v, -v
		}
	}
	x0 := copyOf(x)
	LQ(x, blas64.General{})
	// (I + K)(I + K)ᵀ = I − K², so L = I + O(K²) and Q = I + K + O(K²):
	// elementwise ≤ n·k² (the entries of K² are sums of n products ≤ k²).
	assert.LessOrEqual(t, maxAbsDiff(x.Data, x0.Data), float64(n)*k*k+4*float64(n)*eps)
}
