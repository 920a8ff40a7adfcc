package sampling

import (
	"fmt"
	"math/rand/v2"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Orientation chooses whether the decomposition works on A or Aᵀ.
type Orientation = skeleton.Orientation

// Orientations.
const (
	// Auto puts the orthonormal factor in the smaller dimension (default).
	Auto = skeleton.Auto
	// Rows works on A: Q is m×k and rows of A are sampled.
	Rows = skeleton.Rows
	// Cols works on Aᵀ: Q is n×k and columns of A are sampled.
	Cols = skeleton.Cols
)

// Sampler chooses how the row indices are drawn.
type Sampler int

const (
	// Uniform draws ℓ distinct rows uniformly without replacement, as the
	// reference implementation does (default).
	Uniform Sampler = iota
	// LengthSquared draws ℓ distinct rows without replacement with
	// probabilities proportional to their squared norms (Efraimidis–Spirakis
	// keys). It favours the heavy rows of coherent matrices — attention-sink
	// tokens, outlier rows — where uniform sampling misses the dominant
	// directions. Costs one extra read of A.
	LengthSquared
)

func (s Sampler) String() string {
	switch s {
	case Uniform:
		return "uniform"
	case LengthSquared:
		return "length-squared"
	}
	return fmt.Sprintf("Sampler(%d)", int(s))
}

// Options configures the decomposition. A nil *Options means the zero value:
// no oversampling, no power iterations, uniform sampling, automatic
// orientation, seed 0.
type Options struct {
	// Oversample is p ≥ 0: ℓ = min(k+p, rows of op(A)) rows are sampled.
	Oversample int
	// PowerIters is the number q ≥ 0 of power iterations.
	PowerIters int
	// Sampler chooses the row distribution.
	Sampler Sampler
	// Orientation chooses op(A).
	Orientation Orientation
	// Rand is the source of the draw. If nil, a PCG seeded with
	// (Seed, Seed) is used, so equal seeds give bit-identical results.
	Rand *rand.Rand
	Seed uint64
	// Draw, if not nil, receives the draw of the call.
	Draw *Draw
	// Indices, if not nil, are used as the sampled rows of op(A) instead
	// of a random draw: distinct, in [0, rows of op(A)), at least k of them
	// (ℓ = len(Indices); Oversample and Sampler are ignored). It serves
	// experiments that control the sample, e.g. nested index sets.
	Indices []int
}

// Draw records the random choices of one decomposition, so that its error
// certificate can be computed for the exact draw (package bounds).
type Draw struct {
	// Trans reports whether op(A) = Aᵀ.
	Trans bool
	// Indices are the sampled row indices of op(A), in draw order.
	Indices []int
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
	seen := make(map[int]bool, len(o.Indices))
	for _, i := range o.Indices {
		if i < 0 || seen[i] {
			return fmt.Errorf("%w: Indices must be distinct and non-negative, got %d twice or negative", lowrank.ErrOption, i)
		}
		seen[i] = true
	}
	if o.Sampler != Uniform && o.Sampler != LengthSquared {
		return fmt.Errorf("%w: sampler %d", lowrank.ErrOption, int(o.Sampler))
	}
	return nil
}
