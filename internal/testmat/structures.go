package testmat

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// OutlierRows returns an m×n matrix U·diag(σ)·Vᵀ with exactly the singular
// values sigma whose h leading left singular vectors live on h randomly
// chosen rows (the "outlier rows", like attention-sink tokens that carry
// most of an activation's energy): U = Π·(W_h ⊕ W_{m−h}), the direct sum of
// an h×h and an (m−h)×(m−h) incoherent basis (package documentation) placed
// on complementary row sets, and V an incoherent basis. Column j < h of U
// is supported on the outlier rows only; the others are incoherent on the
// remaining rows. The outlier rows are returned in increasing order.
//
// It panics if len(sigma) > min(m, n) or h is outside [1, min(m, len(sigma))].
// Cost O(m·n·log(m·n)).
func OutlierRows(m, n int, sigma []float64, h int, seed uint64) (a *mat.Dense, rows []int) {
	if len(sigma) > min(m, n) {
		panic("testmat: more singular values than min(m, n)")
	}
	if h < 1 || h > min(m, len(sigma)) {
		panic("testmat: outlier count h out of range")
	}
	rng := rand.New(rand.NewPCG(seed, 0x0e7))
	wn := newBasis(n, rng)
	split := newSplitBasis(m, h, rng)
	a = mat.NewDense(m, n, nil)
	// T = [diag(σ); 0]·W_nᵀ: row j of T is σ_j·(W_n e_j)ᵀ, stored in rows
	// 0..len(sigma)−1 of a.
	e := make([]float64, n)
	for j, s := range sigma {
		clear(e)
		e[j] = s
		wn.apply(a.RawRowView(j), e)
	}
	// A = U·T, column by column.
	col := make([]float64, m)
	out := make([]float64, m)
	for c := 0; c < n; c++ {
		for i := 0; i < m; i++ {
			col[i] = a.At(i, c)
		}
		split.apply(out, col)
		for i := 0; i < m; i++ {
			a.Set(i, c, out[i])
		}
	}
	return a, split.outliers()
}

// OutlierCols returns the transpose structure of OutlierRows: an m×n
// matrix with exactly the singular values sigma whose h leading right
// singular vectors live on h randomly chosen columns (the "outlier
// channels" of LLM activations), and incoherent left singular vectors.
// The outlier columns are returned in increasing order. Panics and cost
// are as for OutlierRows with m and n exchanged.
func OutlierCols(m, n int, sigma []float64, h int, seed uint64) (a *mat.Dense, cols []int) {
	t, cols := OutlierRows(n, m, sigma, h, seed)
	a = mat.NewDense(m, n, nil)
	a.Copy(t.T())
	return a, cols
}

// splitBasis applies U = Π·(W_h ⊕ W_{p−h}): coordinates 0..h−1 of x are
// mapped by W_h onto the rows out[0..h−1] of the permuted order, the rest
// by W_{p−h} onto the other rows.
type splitBasis struct {
	p, h   int
	head   *basis
	tail   *basis
	rows   []int // rows[i] is the output row of position i
	xh, yh []float64
	xt, yt []float64
}

func newSplitBasis(p, h int, rng *rand.Rand) *splitBasis {
	b := &splitBasis{p: p, h: h, rows: rng.Perm(p), head: newBasis(h, rng),
		xh: make([]float64, h), yh: make([]float64, h)}
	if p > h {
		b.tail = newBasis(p-h, rng)
		b.xt, b.yt = make([]float64, p-h), make([]float64, p-h)
	}
	return b
}

func (b *splitBasis) apply(dst, x []float64) {
	copy(b.xh, x[:b.h])
	b.head.apply(b.yh, b.xh)
	for i, v := range b.yh {
		dst[b.rows[i]] = v
	}
	if b.tail == nil {
		return
	}
	copy(b.xt, x[b.h:])
	b.tail.apply(b.yt, b.xt)
	for i, v := range b.yt {
		dst[b.rows[b.h+i]] = v
	}
}

func (b *splitBasis) outliers() []int {
	r := append([]int(nil), b.rows[:b.h]...)
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j] < r[j-1]; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
	return r
}

// Haar returns U·diag(σ)·Vᵀ with U (m×len(σ)) and V (n×len(σ)) the leading
// columns of independent Haar-distributed (uniformly random) orthogonal
// matrices: the "random incoherent" model of the theory, whose sampled
// rows behave like scaled Gaussian rows. The DCT bases of Incoherent are
// as incoherent (μ ≤ 2) but structured: a few rows of their leading
// columns are samples of smooth cosines and can be nearly dependent.
// Cost O(m³ + n³): meant for m, n up to about a thousand.
// It panics if len(sigma) > min(m, n).
func Haar(m, n int, sigma []float64, seed uint64) *mat.Dense {
	if len(sigma) > min(m, n) {
		panic("testmat: more singular values than min(m, n)")
	}
	rng := rand.New(rand.NewPCG(seed, 0x4aa4))
	r := len(sigma)
	u := haarCols(m, r, rng)
	v := haarCols(n, r, rng)
	for j, s := range sigma {
		for i := 0; i < m; i++ {
			u.Set(i, j, u.At(i, j)*s)
		}
	}
	a := mat.NewDense(m, n, nil)
	if r > 0 {
		a.Mul(u, v.T())
	}
	return a
}

// haarCols returns the first r columns of a Haar-distributed p×p
// orthogonal matrix: Q of the QR of a p×r Gaussian matrix with the signs
// of R's diagonal made positive (Mezzadri 2007).
func haarCols(p, r int, rng *rand.Rand) *mat.Dense {
	g := mat.NewDense(p, max(r, 1), nil)
	for i := 0; i < p; i++ {
		for j := 0; j < r; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q, rr mat.Dense
	qr.QTo(&q)
	qr.RTo(&rr)
	out := mat.NewDense(p, max(r, 1), nil)
	for j := 0; j < r; j++ {
		s := 1.0
		if rr.At(j, j) < 0 {
			s = -1
		}
		for i := 0; i < p; i++ {
			out.Set(i, j, s*q.At(i, j))
		}
	}
	return out
}
