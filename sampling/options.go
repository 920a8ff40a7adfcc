package sampling

import (
	"fmt"

	"github.com/loract/loract/lowrank"
)

// Sampler chooses how the row indices are drawn.
type Sampler int

const (
	// Uniform draws ℓ distinct rows uniformly without replacement, as the
	// reference implementation does (default).
	Uniform Sampler = iota
	// LengthSquared draws ℓ distinct rows without replacement with
	// probabilities proportional to their squared norms (Efraimidis–Spirakis
	// keys). It favours the heavy rows of coherent matrices — outlier
	// channels of an activation — where uniform sampling misses the
	// dominant directions (docs/theory.md §5). Costs one extra read of A.
	LengthSquared
)

var samplerNames = [...]string{Uniform: "uniform", LengthSquared: "length-squared"}

func (s Sampler) String() string {
	if s >= 0 && int(s) < len(samplerNames) {
		return samplerNames[s]
	}
	return fmt.Sprintf("Sampler(%d)", int(s))
}

// Options configures the decomposition. It is read-only: a call never
// writes into it, so one Options value may be shared by concurrent calls.
// A nil *Options means the zero value: no oversampling, no power
// iterations, uniform sampling, automatic orientation, seed 0.
type Options struct {
	// Oversample is p ≥ 0: ℓ = min(k+p, rows of op(A)) rows are sampled.
	Oversample int
	// PowerIters is the number q ≥ 0 of power iterations.
	PowerIters int
	// Sampler chooses the row distribution.
	Sampler Sampler
	// Orientation chooses op(A).
	Orientation lowrank.Orientation
	// Tolerance, if > 0, truncates the result to the smallest rank k' ≤ k
	// whose relative Frobenius error is at most Tolerance (read from the
	// singular values of the small B: ‖A − Q_k'Q_k'ᵀA‖_F² = ‖A‖_F² −
	// Σ_{i≤k'} σ_i(B)²; resolved down to about 1e-7). If no rank ≤ k meets
	// it, the rank-k result is returned with an error wrapping
	// lowrank.ErrTolerance.
	Tolerance float64
	// Spectrum, if true, reports the squared singular values of the
	// full-width sketch's B in lowrank.Factors.Spectrum (they are reported
	// anyway when ℓ > k or with a Tolerance; with ℓ = k this costs one
	// ℓ×ℓ eigen-decomposition and a rotation of the factors, O(ℓ²·(m+n))).
	Spectrum bool
	// Seed determines the draw: a PCG seeded with (Seed, Seed), so equal
	// seeds give bit-identical results.
	Seed uint64
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

func (o *Options) check() error {
	if o.Sampler != Uniform && o.Sampler != LengthSquared {
		return fmt.Errorf("%w: sampler %d", lowrank.ErrOption, int(o.Sampler))
	}
	seen := make(map[int]bool, len(o.Indices))
	for _, i := range o.Indices {
		if i < 0 || seen[i] {
			return fmt.Errorf("%w: Indices must be distinct and non-negative, got %d twice or negative", lowrank.ErrOption, i)
		}
		seen[i] = true
	}
	return nil
}
