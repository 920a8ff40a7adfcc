package rsvd

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Orientation chooses whether the algorithm works on A or Aᵀ.
type Orientation = skeleton.Orientation

// Orientations, as in package sampling.
const (
	Auto = skeleton.Auto
	Rows = skeleton.Rows
	Cols = skeleton.Cols
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

// Options configures RSVD. A nil *Options means the zero value: p = 0
// oversampling (as the LoRAct reference uses; HMT's bounds need p ≥ 2),
// q = 0, QR normalisation, automatic orientation, seed 0.
type Options struct {
	// Oversample is p ≥ 0: ℓ = min(k+p, rows of op(A)).
	Oversample int
	// PowerIters is q ≥ 0.
	PowerIters int
	// Normalizer re-normalises power iterations.
	Normalizer Normalizer
	// Orientation chooses op(A).
	Orientation Orientation
	// Rand is the source of the test matrix's seed. If nil, a PCG seeded
	// with (Seed, Seed) is used.
	Rand *rand.Rand
	Seed uint64
	// TestMatrix, if not nil, receives the Gaussian test matrix Ω (s×ℓ,
	// s the columns of op(A)) of the call, and TransOut whether op(A) = Aᵀ.
	TestMatrix *mat.Dense
	TransOut   *bool
}

func (o *Options) rng() *rand.Rand {
	if o.Rand != nil {
		return o.Rand
	}
	return rand.New(rand.NewPCG(o.Seed, o.Seed))
}

func (o *Options) check() error {
	if o.Oversample < 0 {
		return fmt.Errorf("%w: Oversample = %d < 0", lowrank.ErrOption, o.Oversample)
	}
	if o.PowerIters < 0 {
		return fmt.Errorf("%w: PowerIters = %d < 0", lowrank.ErrOption, o.PowerIters)
	}
	switch o.Normalizer {
	case QR, LU, None:
	default:
		return fmt.Errorf("%w: normalizer %d", lowrank.ErrOption, int(o.Normalizer))
	}
	return nil
}
