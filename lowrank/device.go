package lowrank

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Factors is a QB held on a Backend: op(A) ≈ Q·B, where op(A) is Aᵀ if
// Trans and A otherwise, Q (p×k) has orthonormal columns and B = Qᵀ·op(A)
// is k×s. The Decomposers of packages sampling and rsvd write into a
// Factors, reusing its matrices between calls when their shapes fit; the
// matrices belong to the backend they were made on (Free releases them).
// The zero value is an empty Factors.
//
// For the caller, A ≈ op(L)·op(R) with (L, tl) = Left() and (R, tr) =
// Right(): the pair a backend's Mul multiplies into the m×n approximation
// whatever the orientation.
type Factors struct {
	Q, B  Matrix
	Trans bool
	// SquaredNormA and SquaredNormB are ‖s·A‖_F² and ‖s·B‖_F² with
	// s = NormScale, a power of two that is 1 unless ‖A‖_F² would overflow
	// or underflow float64. The relative error of the approximation is
	// ErrorFromSquaredNorms(SquaredNormA, SquaredNormB), whatever s.
	SquaredNormA, SquaredNormB float64
	NormScale                  float64
	// Spectrum holds, when the decomposition computed them (a sketch wider
	// than k, a tolerance, or the Spectrum option of packages sampling and
	// rsvd), the squared singular values σ_i(s·B_ℓ)², i < ℓ, of the
	// full-width sketch's B_ℓ = qᵀ·op(A) before truncation to k (ℓ the
	// sketch width, s = NormScale), non-increasing: the error of the
	// truncation of that sketch to any j ≤ ℓ terms is
	// ‖A − Q_jQ_jᵀA‖_F² = (SquaredNormA − Σ_{i<j} Spectrum[i])/s².
	// It is empty otherwise.
	Spectrum []float64
}

// Dims returns the shape of the approximated matrix A, or 0×0 for an empty
// Factors.
func (f *Factors) Dims() (m, n int) {
	if f.Q == nil || f.B == nil {
		return 0, 0
	}
	p, _ := f.Q.Dims()
	_, s := f.B.Dims()
	if f.Trans {
		return s, p
	}
	return p, s
}

// Rank returns k, or 0 for an empty Factors.
func (f *Factors) Rank() int {
	if f.Q == nil {
		return 0
	}
	_, k := f.Q.Dims()
	return k
}

// Left returns the left factor of A ≈ op(L)·op(R) and whether it is to be
// transposed: (Q, false) when A ≈ Q·B, and (B, true) when A ≈ Bᵀ·Qᵀ.
func (f *Factors) Left() (l Matrix, trans bool) {
	if f.Trans {
		return f.B, true
	}
	return f.Q, false
}

// Right returns the right factor of A ≈ op(L)·op(R); see Left.
func (f *Factors) Right() (r Matrix, trans bool) {
	if f.Trans {
		return f.Q, true
	}
	return f.B, false
}

// RelError returns the relative Frobenius error ‖A − QB‖_F/‖A‖_F from the
// norms (ErrorFromSquaredNorms).
func (f *Factors) RelError() float64 { return ErrorFromSquaredNorms(f.SquaredNormA, f.SquaredNormB) }

// ToQB downloads the factors from backend b into a host QB. It returns an
// error wrapping ErrEmpty for an empty Factors, ErrShape if Q and B do not
// fit together, and any error of the download.
func (f *Factors) ToQB(b Backend) (*QB, error) {
	if f.Q == nil || f.B == nil {
		return nil, fmt.Errorf("%w: Factors holds no matrices", ErrEmpty)
	}
	_, kq := f.Q.Dims()
	kb, _ := f.B.Dims()
	if kq != kb {
		return nil, fmt.Errorf("%w: Q has %d columns, B %d rows", ErrShape, kq, kb)
	}
	var q, bb mat.Dense
	if err := b.Download(&q, f.Q); err != nil {
		return nil, err
	}
	if err := b.Download(&bb, f.B); err != nil {
		return nil, err
	}
	return NewQB(&q, &bb, f.Trans), nil
}

// Free releases the matrices on backend b and empties f.
func (f *Factors) Free(b Backend) {
	if f.Q != nil {
		b.Free(f.Q)
	}
	if f.B != nil {
		b.Free(f.B)
	}
	*f = Factors{}
}
