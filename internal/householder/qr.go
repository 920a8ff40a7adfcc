package householder

import (
	"fmt"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/vec"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// blockSize is the number of reflectors per compact-WY block of Geqrf,
// Orgqr and ApplyQ; panelBase the panel width below which the recursive
// panel factorization of Geqrf runs gonum's unblocked Dgeqr2. Wide blocks
// make the trailing updates GEMMs with an inner dimension of 128 (at 32,
// ApplyQ on 4096×1024 ran at 10 GFLOP/s, memory bound); the recursion
// keeps the panel in GEMMs too. BenchmarkGeqrf, 4096×1024, 2 cores, load
// ≈ 5: Geqrf 0.57 s and ApplyQ 1.47 s with blocks of 32 and Dgeqr2 panels;
// see docs/exact-svd.md for the current numbers.
const (
	blockSize = 128
	panelBase = 16
)

// Geqrf computes the QR factorization A = Q·R of the m×n a in place, the
// blocked algorithm of LAPACK's Dgeqrf: R in the upper triangle (min(m,n)
// rows), the k = min(m, n) reflectors of Q below the diagonal, τ in tau
// (len(tau) ≥ k). Panels of blockSize columns are factored recursively
// (Elmroth–Gustavson: the left half, its block reflector applied to the
// right half, the right half; gonum's unblocked Dgeqr2 below panelBase
// columns) and applied to the trailing columns as one block reflector, T
// from the Gram matrix of V (larftGram) and the products by internal/gemm.
//
// Cost: 2·m·n² − 2·n³/3 flops for m ≥ n, nearly all in GEMM. Geqrf panics
// if tau is short.
func Geqrf(a blas64.General, tau []float64) {
	m, n := a.Rows, a.Cols
	k := min(m, n)
	if len(tau) < k {
		panic(fmt.Sprintf("householder: Geqrf: len(tau) = %d < %d", len(tau), k))
	}
	if k == 0 {
		return
	}
	ws := newBlockWork(m, n, min(blockSize, k)) // blocks of at most k reflectors
	// The panel is factored in a contiguous copy (stride ib instead of n):
	// Dgeqr2 and the recursion walk its columns, which in a wide row-major
	// a are a stride of n·8 bytes apart.
	pbuf := make([]float64, m*min(blockSize, k))
	for i := 0; i < k; i += blockSize {
		ib := min(blockSize, k-i)
		pan := blas64.General{Rows: m - i, Cols: ib, Stride: ib, Data: pbuf[:(m-i)*ib]}
		copyGeneral(pan, view(a, i, m, i, i+ib))
		panelQR(pan, tau[i:i+ib], ws, 0)
		copyGeneral(view(a, i, m, i, i+ib), pan)
		if i+ib == n {
			continue
		}
		v, t := ws.block(a, i, ib, tau[i:i+ib])
		applyBlock(true, v, t, view(a, i, m, i+ib, n), ws)
	}
}

// panelQR factors the p×w panel a (p ≥ w) in place, recursively; depth
// indexes the scratch of its level in ws.levels.
func panelQR(a blas64.General, tau []float64, ws *blockWork, depth int) {
	p, w := a.Rows, a.Cols
	if w <= panelBase {
		var impl gonum.Implementation
		impl.Dgeqr2(p, w, a.Data, a.Stride, tau[:min(p, w)], ws.small[:w])
		return
	}
	w1 := w / 2
	panelQR(view(a, 0, p, 0, w1), tau[:w1], ws, depth+1)
	// The reflectors of the left half, applied to the right half, with the
	// scratch of this level (the caller's level is in use).
	for len(ws.levels) <= depth {
		ws.levels = append(ws.levels, nil)
	}
	lw := ws.levels[depth]
	if lw == nil || len(lw.v) < p*w1 || len(lw.w) < w1*(w-w1) {
		lw = newBlockWork(p, w-w1, w1)
		ws.levels[depth] = lw
	}
	v, t := lw.block(a, 0, w1, tau[:w1])
	applyBlock(true, v, t, view(a, 0, p, w1, w), lw)
	panelQR(view(a, w1, p, w1, w), tau[w1:w], ws, depth+1)
}

// Orgqr overwrites the m×n a (n ≤ m), whose first k columns hold k ≤ n
// reflectors as left by Geqrf, with the first n columns of
// Q = H(0)···H(k−1), which are orthonormal: LAPACK's blocked Dorgqr, with
// every block applied by internal/gemm (T from larftGram). The blocks go
// from the last to the first; block i, once its V is copied out, has its
// columns set to those of the identity and is applied to a[i:m, i:n] (the
// columns before i are unit vectors it does not touch). k = 0 gives the
// first n columns of I.
//
// Cost: ≈ 4·m·n·k − 2·(m+n)·k² + 4·k³/3 flops. Orgqr panics if n > m,
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
	setIdentityCols := func(j0, j1 int) {
		for r := range m {
			row := a.Data[r*a.Stride : r*a.Stride+n]
			clear(row[j0:j1])
			if r >= j0 && r < j1 {
				row[r] = 1
			}
		}
	}
	setIdentityCols(k, n)
	if k == 0 {
		return
	}
	ws := newBlockWork(m, n, min(blockSize, k))
	last := (k - 1) / blockSize * blockSize
	for i := last; i >= 0; i -= blockSize {
		ib := min(blockSize, k-i)
		v, t := ws.block(a, i, ib, tau[i:i+ib])
		setIdentityCols(i, i+ib)
		applyBlock(false, v, t, view(a, i, m, i, n), ws)
	}
}

// ApplyQ overwrites the m×p c with Q·c, or Qᵀ·c if trans, where
// Q = H(0)···H(k−1) is the product of the k reflectors held in the m×k
// refl in Geqrf's layout (its diagonal and upper triangle are not read)
// and τ in tau: LAPACK's Dormqr from the left. Blocks of blockSize
// reflectors are applied as I − V·T·Vᵀ, T from larftGram, by three GEMMs
// each.
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
	ws := newBlockWork(m, c.Cols, min(blockSize, k))
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
// upper triangular R into r (zeros below the diagonal). The signs are
// chosen so that R has a non-negative diagonal (the factorization is then
// unique for y of full rank, and a y with nearly orthonormal columns has
// Q ≈ y, not Q ≈ y·diag(±1)). It is the
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
	neg := make([]bool, l)
	for i := range l {
		neg[i] = y.Data[i*y.Stride+i] < 0
	}
	if r.Data != nil {
		for i := range l {
			row := r.Data[i*r.Stride : i*r.Stride+l]
			clear(row[:i])
			copy(row[i:], y.Data[i*y.Stride+i:i*y.Stride+l])
			if neg[i] {
				for j := i; j < l; j++ {
					row[j] = -row[j]
				}
			}
		}
	}
	Orgqr(y, l, tau)
	for i := range p {
		row := y.Data[i*y.Stride : i*y.Stride+l]
		for j, ng := range neg {
			if ng {
				row[j] = -row[j]
			}
		}
	}
}

// LQ replaces the r×c x (r ≤ c) by the orthonormal Q (r×c) of its LQ
// factorization x = L·Q, so that row i of Q lies in the span of rows
// 0..i of x, and, if l has data, writes the r×r lower triangular L into l;
// L has a non-negative diagonal (so Q ≈ x for nearly orthonormal rows).
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
	vec.Transpose(r, c, x.Data, x.Stride, xt.Data, xt.Stride)
	var rt blas64.General
	if l.Data != nil {
		rt = blas64.General{Rows: r, Cols: r, Stride: max(r, 1), Data: make([]float64, r*r)}
	}
	QR(xt, rt)
	vec.Transpose(c, r, xt.Data, xt.Stride, x.Data, x.Stride)
	if l.Data != nil {
		for i := range r {
			for j := range r {
				l.Data[i*l.Stride+j] = rt.Data[j*r+i]
			}
		}
	}
}

// blockWork holds the scratch of one block application: the explicit V
// (rows×nb), T and the Gram matrix S = VᵀV, the two nb×cols products, the
// work of Dgeqr2, and the scratch of the levels of panelQR's recursion.
type blockWork struct {
	v, t, s, w, w2, small []float64
	levels                []*blockWork
}

// newBlockWork returns the scratch for blocks of up to nb reflectors of
// order rows applied to rows×cols matrices.
func newBlockWork(rows, cols, nb int) *blockWork {
	nb = min(nb, max(rows, 1))
	return &blockWork{
		v:     make([]float64, rows*nb),
		t:     make([]float64, nb*nb),
		s:     make([]float64, nb*nb),
		w:     make([]float64, nb*cols),
		w2:    make([]float64, nb*cols),
		small: make([]float64, panelBase),
	}
}

// block returns the explicit unit lower trapezoidal V ((m−i)×ib) of the ib
// reflectors held in a from row and column i, and their T (larftGram).
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
	larftGram(v, tau, t, ws.s[:ib*ib])
	return v, t
}

// larftGram forms the T of the block reflector of the explicit unit lower
// trapezoidal V (rows×k, zeros above the diagonal stored) like Larft, but
// with the inner products V[:, j]ᵀ·v_i all at once, S = VᵀV by gemm.Gram
// (rows·k·(k + nr) flops at GEMM speed; the explicit zeros make every sum
// exact in structure, so the trailing zeros that gonum's Dlarft mishandles
// play no part), followed by the O(k³) recurrence
// T[0:i, i] = −τ_i·T[0:i, 0:i]·S[0:i, i], T[i, i] = τ_i. s is scratch of
// k·k.
func larftGram(v blas64.General, tau []float64, t blas64.General, s []float64) {
	k := v.Cols
	sg := blas64.General{Rows: k, Cols: k, Stride: k, Data: s}
	gemm.Gram(sg, v)
	ld := t.Stride
	for i := range k {
		for j := i + 1; j < k; j++ {
			t.Data[j*ld+i] = 0
		}
		ti := tau[i]
		if ti == 0 {
			for j := 0; j <= i; j++ {
				t.Data[j*ld+i] = 0
			}
			continue
		}
		for j := range i {
			var x float64
			for l := j; l < i; l++ {
				x += t.Data[j*ld+l] * s[l*k+i]
			}
			t.Data[j*ld+i] = -ti * x
		}
		t.Data[i*ld+i] = ti
	}
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

// copyGeneral copies src into dst (same shape).
func copyGeneral(dst, src blas64.General) {
	for i := range src.Rows {
		copy(dst.Data[i*dst.Stride:i*dst.Stride+src.Cols], src.Data[i*src.Stride:i*src.Stride+src.Cols])
	}
}
