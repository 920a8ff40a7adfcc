package householder

import (
	"fmt"

	"github.com/loract/loract/internal/gemm"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
)

// blockSize is the number of reflectors per compact-WY block, and
// blockedMin the number of reflectors from which Geqrf and Orgqr block
// (below it, gonum's unblocked Dgeqr2 / Dorg2r run alone).
const (
	blockSize  = 32
	blockedMin = 64
)

// Geqrf computes the QR factorization A = Q·R of the m×n a in place, the
// blocked algorithm of LAPACK's Dgeqrf: R in the upper triangle (min(m,n)
// rows), the k = min(m, n) reflectors of Q below the diagonal, τ in tau
// (len(tau) ≥ k). Panels of blockSize columns are factored by gonum's
// unblocked Dgeqr2 and applied to the trailing columns as one block
// reflector, T from Larft and the products by internal/gemm.
//
// Cost: 2·m·n² − 2·n³/3 flops for m ≥ n, ≈ ¾ of it in GEMM for n ≫
// blockSize. Geqrf panics if tau is short.
func Geqrf(a blas64.General, tau []float64) {
	m, n := a.Rows, a.Cols
	k := min(m, n)
	if len(tau) < k {
		panic(fmt.Sprintf("householder: Geqrf: len(tau) = %d < %d", len(tau), k))
	}
	if k == 0 {
		return
	}
	var impl gonum.Implementation
	lda := a.Stride
	work := make([]float64, n)
	if k < blockedMin {
		impl.Dgeqr2(m, n, a.Data, lda, tau[:k], work)
		return
	}
	ws := newBlockWork(m, n)
	for i := 0; i < k; i += blockSize {
		ib := min(blockSize, k-i)
		impl.Dgeqr2(m-i, ib, a.Data[i*lda+i:], lda, tau[i:i+ib], work)
		if i+ib == n {
			continue
		}
		v, t := ws.block(a, i, ib, tau[i:i+ib])
		c := view(a, i, m, i+ib, n)
		applyBlock(true, v, t, c, ws)
	}
}

// Orgqr overwrites the m×n a (n ≤ m), whose first k columns hold k ≤ n
// reflectors as left by Geqrf, with the first n columns of
// Q = H(0)···H(k−1), which are orthonormal: LAPACK's blocked Dorgqr, the
// blocks applied by internal/gemm with T from Larft and the panels formed
// by gonum's unblocked Dorg2r. k = 0 gives the first n columns of I.
//
// Cost: 4·m·n·k − 2·(m+n)·k² + 4·k³/3 flops. Orgqr panics if n > m,
// k > n or tau is short.
func Orgqr(a blas64.General, k int, tau []float64) {
	m, n := a.Rows, a.Cols
	switch {
	case n > m:
		panic(fmt.Sprintf("householder: Orgqr of %d×%d: more columns than rows", m, n))
	case k < 0 || k > n:
		panic(fmt.Sprintf("householder: Orgqr with k = %d reflectors for %d columns", k, n))
	case len(tau) < k:
		panic(fmt.Sprintf("householder: Orgqr: len(tau) = %d < %d", len(tau), k))
	}
	if n == 0 {
		return
	}
	var impl gonum.Implementation
	lda := a.Stride
	work := make([]float64, n)
	if k < blockedMin {
		impl.Dorg2r(m, n, k, a.Data, lda, tau[:k], work)
		return
	}
	// The last block, and every column after it, unblocked.
	kk := (k - 1) / blockSize * blockSize
	impl.Dorg2r(m-kk, n-kk, k-kk, a.Data[kk*lda+kk:], lda, tau[kk:k], work)
	for i := range kk {
		clear(a.Data[i*lda+kk : i*lda+n])
	}
	ws := newBlockWork(m, n)
	for i := kk - blockSize; i >= 0; i -= blockSize {
		ib := blockSize
		// Apply H(i)···H(i+ib−1) to a[i:m, i+ib:n] from the left.
		v, t := ws.block(a, i, ib, tau[i:i+ib])
		applyBlock(false, v, t, view(a, i, m, i+ib, n), ws)
		impl.Dorg2r(m-i, ib, ib, a.Data[i*lda+i:], lda, tau[i:i+ib], work)
		for r := range i {
			clear(a.Data[r*lda+i : r*lda+i+ib])
		}
	}
}

// ApplyQ overwrites the m×p c with Q·c, or Qᵀ·c if trans, where
// Q = H(0)···H(k−1) is the product of the k reflectors held in the m×k
// refl in Geqrf's layout (its diagonal and upper triangle are not read)
// and τ in tau: LAPACK's Dormqr from the left. Blocks of blockSize
// reflectors are applied as I − V·T·Vᵀ, T from Larft, by three GEMMs each.
//
// Cost: 2·p·k·(2m − k) flops. ApplyQ panics if the row counts of refl and
// c differ, k > m or tau is short.
func ApplyQ(trans bool, refl blas64.General, tau []float64, c blas64.General) {
	m, k := refl.Rows, refl.Cols
	switch {
	case c.Rows != m:
		panic(fmt.Sprintf("householder: ApplyQ: reflectors of order %d, c has %d rows", m, c.Rows))
	case k > m:
		panic(fmt.Sprintf("householder: ApplyQ: %d reflectors of order %d", k, m))
	case len(tau) < k:
		panic(fmt.Sprintf("householder: ApplyQ: len(tau) = %d < %d", len(tau), k))
	}
	if k == 0 || c.Cols == 0 {
		return
	}
	ws := newBlockWork(m, c.Cols)
	last := (k - 1) / blockSize * blockSize
	apply := func(i int) {
		ib := min(blockSize, k-i)
		v, t := ws.block(refl, i, ib, tau[i:i+ib])
		applyBlock(trans, v, t, view(c, i, m, 0, c.Cols), ws)
	}
	if trans {
		// Qᵀ = H(k−1)···H(0): the first block first.
		for i := 0; i <= last; i += blockSize {
			apply(i)
		}
		return
	}
	for i := last; i >= 0; i -= blockSize {
		apply(i)
	}
}

// QR replaces the p×l y (p ≥ l) by the orthonormal Q of its thin
// Householder QR factorization y = Q·R and, if r has data, writes the l×l
// upper triangular R into r (zeros below the diagonal). It is the
// drop-in for gonum's lapack64.Geqrf followed by lapack64.Orgqr, with the
// blocks formed by Larft: Q is orthonormal to O(p·l·ε) for every y,
// rank-deficient ones included.
//
// Cost: 4·p·l² − 4·l³/3 flops. QR panics if p < l or r is not l×l.
func QR(y, r blas64.General) {
	p, l := y.Rows, y.Cols
	if p < l {
		panic(fmt.Sprintf("householder: QR of %d×%d: fewer rows than columns", p, l))
	}
	if r.Data != nil && (r.Rows != l || r.Cols != l) {
		panic(fmt.Sprintf("householder: QR: r is %d×%d, want %d×%d", r.Rows, r.Cols, l, l))
	}
	tau := make([]float64, l)
	Geqrf(y, tau)
	if r.Data != nil {
		for i := range l {
			row := r.Data[i*r.Stride : i*r.Stride+l]
			clear(row[:i])
			copy(row[i:], y.Data[i*y.Stride+i:i*y.Stride+l])
		}
	}
	Orgqr(y, l, tau)
}

// LQ replaces the r×c x (r ≤ c) by the orthonormal Q (r×c) of its LQ
// factorization x = L·Q, so that row i of Q lies in the span of rows
// 0..i of x, and, if l has data, writes the r×r lower triangular L into l.
// It is the QR factorization of xᵀ = Qᵀ·Lᵀ (QR), transposed: the same
// numbers as LAPACK's Dgelqf + Dorglq up to rounding, orthonormal to
// O(r·c·ε) whatever the rank of x.
//
// Cost: 4·c·r² − 4·r³/3 flops plus two transpositions. LQ panics if r > c
// or l is not r×r.
func LQ(x, l blas64.General) {
	r, c := x.Rows, x.Cols
	if r > c {
		panic(fmt.Sprintf("householder: LQ of %d×%d: more rows than columns", r, c))
	}
	if l.Data != nil && (l.Rows != r || l.Cols != r) {
		panic(fmt.Sprintf("householder: LQ: l is %d×%d, want %d×%d", l.Rows, l.Cols, r, r))
	}
	xt := blas64.General{Rows: c, Cols: r, Stride: max(r, 1), Data: make([]float64, c*r)}
	for i := range r {
		for j, v := range x.Data[i*x.Stride : i*x.Stride+c] {
			xt.Data[j*r+i] = v
		}
	}
	var rt blas64.General
	if l.Data != nil {
		rt = blas64.General{Rows: r, Cols: r, Stride: max(r, 1), Data: make([]float64, r*r)}
	}
	QR(xt, rt)
	for i := range r {
		row := x.Data[i*x.Stride : i*x.Stride+c]
		for j := range row {
			row[j] = xt.Data[j*r+i]
		}
	}
	if l.Data != nil {
		for i := range r {
			for j := range r {
				l.Data[i*l.Stride+j] = rt.Data[j*r+i]
			}
		}
	}
}

// blockWork holds the scratch of one block application: the explicit V
// (rows×blockSize), T, and the two blockSize×cols products.
type blockWork struct {
	v, t, w, w2 []float64
}

func newBlockWork(rows, cols int) *blockWork {
	return &blockWork{
		v:  make([]float64, rows*blockSize),
		t:  make([]float64, blockSize*blockSize),
		w:  make([]float64, blockSize*cols),
		w2: make([]float64, blockSize*cols),
	}
}

// block returns the explicit unit lower trapezoidal V ((m−i)×ib) of the ib
// reflectors held in a from row and column i, and their T (Larft).
func (ws *blockWork) block(a blas64.General, i, ib int, tau []float64) (v, t blas64.General) {
	rr := a.Rows - i
	v = blas64.General{Rows: rr, Cols: ib, Stride: ib, Data: ws.v[:rr*ib]}
	for r := range rr {
		row := v.Data[r*ib : (r+1)*ib]
		src := a.Data[(i+r)*a.Stride+i:]
		for j := range ib {
			switch {
			case r > j:
				row[j] = src[j]
			case r == j:
				row[j] = 1
			default:
				row[j] = 0
			}
		}
	}
	t = blas64.General{Rows: ib, Cols: ib, Stride: ib, Data: ws.t[:ib*ib]}
	Larft(lapack.ColumnWise, rr, ib, v.Data, ib, tau, t.Data, ib)
	return v, t
}

// applyBlock overwrites c (rows of v × any) with H·c, or Hᵀ·c if trans,
// H = I − V·T·Vᵀ: W = Vᵀ·c, W₂ = op(T)·W, c −= V·W₂ (4·rows·nb·cols flops).
func applyBlock(trans bool, v, t, c blas64.General, ws *blockWork) {
	nb, nc := v.Cols, c.Cols
	if nc == 0 {
		return
	}
	w := blas64.General{Rows: nb, Cols: nc, Stride: nc, Data: ws.w[:nb*nc]}
	w2 := blas64.General{Rows: nb, Cols: nc, Stride: nc, Data: ws.w2[:nb*nc]}
	gemm.General(true, false, 1, v, c, 0, w)
	gemm.General(trans, false, 1, t, w, 0, w2)
	gemm.General(false, false, -1, v, w2, 1, c)
}

// view returns a[i0:i1, j0:j1].
func view(a blas64.General, i0, i1, j0, j1 int) blas64.General {
	if i1 == i0 || j1 == j0 {
		return blas64.General{Rows: i1 - i0, Cols: j1 - j0, Stride: max(a.Stride, 1)}
	}
	return blas64.General{Rows: i1 - i0, Cols: j1 - j0, Stride: a.Stride, Data: a.Data[i0*a.Stride+j0 : (i1-1)*a.Stride+j1]}
}
