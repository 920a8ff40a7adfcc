// Package skeleton holds the pieces of the randomized algorithms that packages
// sampling and rsvd share: orientation, the rank-k truncation of a QB, and
// the SVD of a QB. Each is written against lowrank.Backend.
package skeleton

import (
	"errors"
	"fmt"

	"github.com/loract/loract/lowrank"
)

// Orientation chooses whether an algorithm works on A or on Aᵀ.
type Orientation int

const (
	// Auto works on whichever of A and Aᵀ has no more rows than columns,
	// so the orthonormal factor lives in the smaller dimension.
	Auto Orientation = iota
	// Rows works on A: Q is m×k.
	Rows
	// Cols works on Aᵀ: Q is n×k.
	Cols
)

// Trans reports whether an algorithm with orientation o works on Aᵀ for an
// m×n A.
func (o Orientation) Trans(m, n int) (bool, error) {
	switch o {
	case Auto:
		return m > n, nil
	case Rows:
		return false, nil
	case Cols:
		return true, nil
	}
	return false, fmt.Errorf("%w: orientation %d", lowrank.ErrOption, int(o))
}

// Factors are the factors of a QB held on a backend: op(A) ≈ Q·B, where
// op(A) is Aᵀ if Trans. Norm2A is ‖A‖_F² and Norm2B is ‖B‖_F², so that the
// relative error is lowrank.ErrorFromNorms(Norm2A, Norm2B).
type Factors struct {
	Q, B   lowrank.Matrix
	Trans  bool
	Norm2A float64
	Norm2B float64
}

// Ensure returns m if it is non-nil and r×c, and otherwise a new r×c matrix.
func Ensure(b lowrank.Backend, m lowrank.Matrix, r, c int) (lowrank.Matrix, error) {
	if m != nil {
		if mr, mc := m.Dims(); mr == r && mc == c {
			return m, nil
		}
		b.Free(m)
	}
	return b.New(r, c)
}

// Truncate reduces the rank-ℓ QB (q, b) of an op(A) to rank k ≤ ℓ by
// keeping the k leading left singular vectors of b: with b·bᵀ = W·Λ·Wᵀ,
// Q' = q·W_k and B' = W_kᵀ·b. Since W is orthonormal, Q' is orthonormal
// and B' = Q'ᵀ·op(A), so the result is again a valid QB whatever the
// accuracy of W. The results are written to dq (p×k) and db (k×s).
func Truncate(ws *lowrank.Workspace, dq, db, q, b lowrank.Matrix, k int) error {
	be := ws.Backend()
	l, _ := b.Dims()
	g, err := ws.Get("trunc.gram", l, l)
	if err != nil {
		return err
	}
	if err := be.Mul(g, 1, b, false, b, true, 0); err != nil {
		return err
	}
	u, err := ws.Get("trunc.u", l, l)
	if err != nil {
		return err
	}
	v, err := ws.Get("trunc.v", l, l)
	if err != nil {
		return err
	}
	s := make([]float64, l)
	if err := be.SVD(u, s, v, g); err != nil {
		return err
	}
	uk := be.Cols(u, 0, k)
	if err := be.Mul(dq, 1, q, false, uk, false, 0); err != nil {
		return err
	}
	return be.Mul(db, 1, uk, true, b, false, 0)
}

// SVDOf computes the SVD of op(A) ≈ Q·B from the QB factors, truncated to
// rank k, accurately: Bᵀ = Q₂·R (thin QR, Q₂ s×ℓ), R = U_R·Σ·V_Rᵀ, so
// op(A) ≈ (Q·V_R)·Σ·(Q₂·U_R)ᵀ. It returns U (p×k), S and V (s×k) of
// op(A). bt must hold Bᵀ (s×ℓ) and is overwritten.
func SVDOf(ws *lowrank.Workspace, q, bt lowrank.Matrix, k int) (u, v lowrank.Matrix, s []float64, err error) {
	be := ws.Backend()
	p, l := q.Dims()
	sr, _ := bt.Dims()
	if sr < l {
		return nil, nil, nil, errors.New("alg: SVDOf needs ℓ ≤ the number of columns of op(A)")
	}
	r, err := ws.Get("svd.r", l, l)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := be.QR(bt, r); err != nil {
		return nil, nil, nil, err
	}
	ur, err := ws.Get("svd.ur", l, l)
	if err != nil {
		return nil, nil, nil, err
	}
	vr, err := ws.Get("svd.vr", l, l)
	if err != nil {
		return nil, nil, nil, err
	}
	sv := make([]float64, l)
	if err := be.SVD(ur, sv, vr, r); err != nil {
		return nil, nil, nil, err
	}
	// Bᵀ = Q₂·R = Q₂·U_R·Σ·V_Rᵀ, so B = V_R·Σ·(Q₂·U_R)ᵀ.
	if u, err = be.New(p, k); err != nil {
		return nil, nil, nil, err
	}
	if v, err = be.New(sr, k); err != nil {
		be.Free(u)
		return nil, nil, nil, err
	}
	if err := be.Mul(u, 1, q, false, be.Cols(vr, 0, k), false, 0); err != nil {
		return nil, nil, nil, err
	}
	if err := be.Mul(v, 1, bt, false, be.Cols(ur, 0, k), false, 0); err != nil {
		return nil, nil, nil, err
	}
	return u, v, sv[:k], nil
}

// FinishQB writes the rank-k QB of op(A) from the orthonormal p×ℓ basis q
// into dst: B = qᵀ·op(A), truncated to k leading directions when ℓ > k
// (see Truncate). dst's matrices are reused when their shapes fit.
func FinishQB(ws *lowrank.Workspace, dst *Factors, a lowrank.Matrix, trans bool, q lowrank.Matrix, k int, norm2 float64) error {
	be := ws.Backend()
	p, l := q.Dims()
	m, n := a.Dims()
	s := n
	if trans {
		s = m
	}
	var err error
	if dst.Q, err = Ensure(be, dst.Q, p, k); err != nil {
		return err
	}
	if dst.B, err = Ensure(be, dst.B, k, s); err != nil {
		return err
	}
	if l == k {
		if err := be.Copy(dst.Q, q); err != nil {
			return err
		}
		if err := be.Mul(dst.B, 1, q, true, a, trans, 0); err != nil {
			return err
		}
	} else {
		bl, err := ws.Get("b.full", l, s)
		if err != nil {
			return err
		}
		if err := be.Mul(bl, 1, q, true, a, trans, 0); err != nil {
			return err
		}
		if err := Truncate(ws, dst.Q, dst.B, q, bl, k); err != nil {
			return err
		}
	}
	dst.Trans = trans
	dst.Norm2A = norm2
	dst.Norm2B, err = be.Norm2(dst.B)
	return err
}

// FinishSVD returns the rank-k SVD U (m×k), S, V (n×k) of A itself from
// the orthonormal p×ℓ basis q of op(A): Bᵀ = op(A)ᵀ·q, then SVDOf, with
// the orientation undone.
func FinishSVD(ws *lowrank.Workspace, a lowrank.Matrix, trans bool, q lowrank.Matrix, k int) (u, v lowrank.Matrix, s []float64, err error) {
	_, l := q.Dims()
	m, n := a.Dims()
	sdim := n
	if trans {
		sdim = m
	}
	bt, err := ws.Get("bt", sdim, l)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := ws.Backend().Mul(bt, 1, a, !trans, q, false, 0); err != nil {
		return nil, nil, nil, err
	}
	if u, v, s, err = SVDOf(ws, q, bt, k); err != nil {
		return nil, nil, nil, err
	}
	if trans {
		u, v = v, u
	}
	return u, v, s, nil
}

// Flip returns the orientation to use on the stored matrix when the
// caller's matrix is its transpose (t): an explicit orientation is
// swapped, Auto stays (it depends on the shape only).
func (o Orientation) Flip(t bool) Orientation {
	if !t {
		return o
	}
	switch o {
	case Rows:
		return Cols
	case Cols:
		return Rows
	}
	return o
}
