package rsvd

import (
	"fmt"

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

// String returns "qr", "lu" or "none".
func (n Normalizer) String() string {
	if n < QR || n > None {
		return fmt.Sprintf("Normalizer(%d)", int(n))
	}
	return [...]string{"qr", "lu", "none"}[n]
}

// Options configures RSVD. It is read-only: a call never writes into it,
// so one Options value may be shared by concurrent calls. A nil *Options
// means the zero value: p = 0 oversampling (as the LoRAct reference uses;
// HMT's bounds need p ≥ 2), q = 0, QR normalisation, automatic
// orientation, seed 0.
type Options struct {
	// Normalizer re-normalises power iterations.
	Normalizer Normalizer
	// Oversample (p ≥ 0: ℓ = min(k+p, rows of op(A)) Gaussian columns),
	// PowerIters (q ≥ 0), Orientation, Tolerance, Spectrum and Seed mean
	// what they do in sampling.Options; the seed determines Ω's stream
	// (the first output of a PCG seeded with (Seed, Seed)).
	Oversample, PowerIters int
	Orientation            lowrank.Orientation
	Tolerance              float64
	Spectrum               bool
	Seed                   uint64
}

func (o *Options) check() error {
	switch o.Normalizer {
	case QR, LU, None:
	default:
		return fmt.Errorf("%w: normalizer %d", lowrank.ErrOption, int(o.Normalizer))
	}
	return nil
}
