package rsvd

import (
	"fmt"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Normalizer is how power iterations are re-normalised.
type Normalizer int

const (
	// QR orthonormalises after every half step (default; HMT Alg. 4.4).
	QR Normalizer = iota
	// LU keeps the unit lower factor of a pivoted LU, as scikit-learn does:
	// cheaper, not orthonormal, stable enough between products.
	LU
	// None does not normalise: fine for q ≤ 2 in float64, loses the small
	// directions to rounding beyond.
	None
)

func (n Normalizer) String() string {
	switch n {
	case QR:
		return "qr"
	case LU:
		return "lu"
	case None:
		return "none"
	}
	return fmt.Sprintf("Normalizer(%d)", int(n))
}

// Options configures RSVD. It is read-only: a call never writes into it,
// so one Options value may be shared by concurrent calls. A nil *Options
// means the zero value: p = 0 oversampling (as the LoRAct reference uses;
// HMT's bounds need p ≥ 2), q = 0, QR normalisation, automatic
// orientation, seed 0.
type Options struct {
	// Oversample is p ≥ 0: ℓ = min(k+p, rows of op(A)).
	Oversample int
	// PowerIters is q ≥ 0.
	PowerIters int
	// Normalizer re-normalises power iterations.
	Normalizer Normalizer
	// Orientation chooses op(A).
	Orientation lowrank.Orientation
	// Tolerance, if > 0, truncates the result to the smallest rank k' ≤ k
	// whose relative Frobenius error is at most Tolerance (read from the
	// singular values of the small B: ‖A − Q_k'Q_k'ᵀA‖_F² = ‖A‖_F² −
	// Σ_{i≤k'} σ_i(B)²; resolved down to about 1e-7). If no rank ≤ k meets
	// it, the rank-k result is returned with an error wrapping
	// lowrank.ErrTolerance.
	Tolerance float64
	// Seed determines the test matrix: Ω's stream is seeded by the first
	// output of a PCG seeded with (Seed, Seed).
	Seed uint64
}

func (o *Options) check() error {
	if err := skeleton.CheckTolerance(o.Tolerance); err != nil {
		return err
	}
	switch o.Normalizer {
	case QR, LU, None:
	default:
		return fmt.Errorf("%w: normalizer %d", lowrank.ErrOption, int(o.Normalizer))
	}
	return nil
}
