package householder

import (
	"fmt"

	"gonum.org/v1/gonum/lapack"
)

// Larft forms the k×k upper triangular factor T of the block reflector
//
//	H = H(0)·H(1)···H(k−1) = I − V·T·Vᵀ   (store == lapack.ColumnWise)
//	H = H(0)·H(1)···H(k−1) = I − Vᵀ·T·V   (store == lapack.RowWise)
//
// of k elementary reflectors H(i) = I − τ_i·v_i·v_iᵀ of order n, the
// forward direction of LAPACK's Dlarft. For ColumnWise, v (n×k, stride ldv)
// holds v_i in column i: v_i[0:i] = 0 and v_i[i] = 1 are implied and not
// read, v_i[i+1:n] is read from v. For RowWise, v (k×n) holds v_i in row i
// the same way. t (stride ldt) receives T, its strict lower triangle set to
// zero. k ≤ n.
//
// T is built column by column (LAPACK's recurrence): T[i, i] = τ_i and
//
//	T[0:i, i] = −τ_i · T[0:i, 0:i] · (V[:, 0:i]ᵀ·v_i),
//
// the products V[:, j]ᵀ·v_i running over the rows i..lastv_i, lastv_i the
// last non-zero of v_i (the rows past it contribute exact zeros). gonum
// v0.17.0's Dlarft instead bounds them by a running maximum of the previous
// lastv that its forward branch resets at the second reflector (a
// transcription of Fortran's `IF (I.GT.1)` to a 0-based `if i > 1`), so it
// drops the terms of v_0 past lastv_1 (see docs/reliability.md). A τ_i of
// zero gives a zero column i.
//
// Cost: n·k² flops, in row-contiguous loops. Larft panics if k < 1, k > n
// or a slice is too short.
func Larft(store lapack.StoreV, n, k int, v []float64, ldv int, tau, t []float64, ldt int) {
	mv, nv := n, k
	if store == lapack.RowWise {
		mv, nv = k, n
	}
	switch {
	case store != lapack.ColumnWise && store != lapack.RowWise:
		panic("householder: bad StoreV")
	case k < 1 || k > n:
		panic(fmt.Sprintf("householder: Larft with k = %d reflectors of order n = %d", k, n))
	case ldv < max(1, nv) || len(v) < (mv-1)*ldv+nv:
		panic("householder: Larft: short v or bad ldv")
	case len(tau) < k:
		panic("householder: Larft: short tau")
	case ldt < k || len(t) < (k-1)*ldt+k:
		panic("householder: Larft: short t or bad ldt")
	}
	for i := range k {
		for j := i + 1; j < k; j++ {
			t[j*ldt+i] = 0
		}
		ti := tau[i]
		if ti == 0 {
			for j := 0; j <= i; j++ {
				t[j*ldt+i] = 0
			}
			continue
		}
		// s_j = V[:, j]ᵀ·v_i for j < i, held in t[j, i].
		if store == lapack.ColumnWise {
			lastv := n - 1
			for lastv > i && v[lastv*ldv+i] == 0 {
				lastv--
			}
			for j := range i {
				t[j*ldt+i] = v[i*ldv+j] // v_i[i] = 1
			}
			for r := i + 1; r <= lastv; r++ {
				vr := v[r*ldv+i]
				if vr == 0 {
					continue
				}
				row := v[r*ldv : r*ldv+i]
				for j, x := range row {
					t[j*ldt+i] += x * vr
				}
			}
		} else {
			lastv := n - 1
			vi := v[i*ldv : i*ldv+n]
			for lastv > i && vi[lastv] == 0 {
				lastv--
			}
			for j := range i {
				vj := v[j*ldv : j*ldv+n]
				s := vj[i] // v_i[i] = 1
				for c := i + 1; c <= lastv; c++ {
					s += vj[c] * vi[c]
				}
				t[j*ldt+i] = s
			}
		}
		// t[0:i, i] = −τ_i·T[0:i, 0:i]·s, in place: row j reads s[j:i],
		// which rows above j have not yet overwritten.
		for j := range i {
			var s float64
			for l := j; l < i; l++ {
				s += t[j*ldt+l] * t[l*ldt+i]
			}
			t[j*ldt+i] = -ti * s
		}
		t[i*ldt+i] = ti
	}
}
