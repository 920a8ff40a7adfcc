package testmat

import (
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// OutlierRows returns an m×n matrix U·diag(σ)·Vᵀ with exactly the singular
// values sigma whose h leading left singular vectors live on h randomly
// chosen rows (the "outlier rows", like attention-sink tokens that carry
// most of an activation's energy): U = Π·(H_h ⊕ H_{m−h}), the direct sum of
// an h×h and an (m−h)×(m−h) Haar-random orthogonal matrix placed on
// complementary row sets, and V the leading columns of an n×n Haar-random
// orthogonal matrix. Column j < h of U is supported on the outlier rows
// only; the others are random on the remaining rows. The outlier rows are
// returned in increasing order.
//
// It panics if len(sigma) > min(m, n) or h is outside [1, min(m, len(sigma))].
// Cost O(m³ + n³ + m·n·len(sigma)): meant for m, n up to about a thousand.
func OutlierRows(m, n int, sigma []float64, h int, seed uint64) (a *mat.Dense, rows []int) {
	if len(sigma) > min(m, n) {
		panic("testmat: more singular values than min(m, n)")
	}
	if h < 1 || h > min(m, len(sigma)) {
		panic("testmat: outlier count h out of range")
	}
	rng := rand.New(rand.NewPCG(seed, 0x0e7))
	r := len(sigma)
	perm := rng.Perm(m)
	head := haarCols(h, h, rng)
	var tail *mat.Dense
	if m > h {
		tail = haarCols(m-h, min(r, m)-h, rng)
	}
	// U (m×r): column j < h is head's column j on rows perm[0..h); column
	// j ≥ h is tail's column j−h on rows perm[h..m).
	u := mat.NewDense(m, r, nil)
	for j := 0; j < r; j++ {
		for i := 0; i < m; i++ {
			switch {
			case j < h && i < h:
				u.Set(perm[i], j, head.At(i, j)*sigma[j])
			case j >= h && i >= h:
				u.Set(perm[i], j, tail.At(i-h, j-h)*sigma[j])
			}
		}
	}
	v := haarCols(n, r, rng)
	a = mat.NewDense(m, n, nil)
	a.Mul(u, v.T())
	rows = append([]int(nil), perm[:h]...)
	sort.Ints(rows)
	return a, rows
}

// OutlierCols returns the transpose structure of OutlierRows: an m×n
// matrix with exactly the singular values sigma whose h leading right
// singular vectors live on h randomly chosen columns (the "outlier
// channels" of LLM activations), and Haar-random left singular vectors.
// The outlier columns are returned in increasing order. Panics and cost
// are as for OutlierRows with m and n exchanged.
func OutlierCols(m, n int, sigma []float64, h int, seed uint64) (a *mat.Dense, cols []int) {
	t, cols := OutlierRows(n, m, sigma, h, seed)
	a = mat.NewDense(m, n, nil)
	a.Copy(t.T())
	return a, cols
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
