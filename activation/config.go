package activation

import (
	"errors"
	"fmt"
	"math"

	"github.com/loract/loract/lowrank"
)

// Sentinel errors; returned errors wrap them (test with errors.Is).
var (
	// ErrReleased is returned when a handle is used after its last Release.
	ErrReleased = errors.New("activation: handle already released")
	// ErrShapeMismatch is returned when a tensor given at backward time
	// does not match the shape of the activation saved at forward time.
	ErrShapeMismatch = errors.New("activation: shape mismatch between forward and backward")
	// ErrClosed is returned by Compress after Close.
	ErrClosed = errors.New("activation: compressor is closed")
	// ErrPanic is wrapped by the error of a compression that panicked (a
	// malformed input, a backend fault): the panic is recovered on the
	// worker and becomes that handle's error.
	ErrPanic = errors.New("activation: compression panicked")
)

// LayerError is the error of one layer's activation: Compress returns it
// for a non-finite activation (Err wraps a *lowrank.NotFiniteError), for
// factors that overflow their storage precision (Err wraps
// lowrank.ErrNotFinite), for a malformed input (lowrank.ErrShape) and for a
// compression that panicked (ErrPanic); every method of a Saved wraps its
// failures in it.
type LayerError struct {
	Layer string
	Err   error
}

func (e *LayerError) Error() string { return fmt.Sprintf("activation: layer %q: %v", e.Layer, e.Err) }

// Unwrap returns the underlying error.
func (e *LayerError) Unwrap() error { return e.Err }

// Method chooses how an activation is compressed.
type Method int

const (
	// RowSampling is LoRAct's row-sampled QB (package sampling): the
	// sketch is built from ℓ = k+Oversample sampled rows (for an activation,
	// channels) of the activation itself, so no Gaussian matrix is drawn
	// (default). Its String form is "rows".
	RowSampling Method = iota
	// Gaussian is the randomized SVD's Gaussian QB (package rsvd),
	// "gaussian".
	Gaussian
	// ExactSVD is the truncated exact SVD (exact.TruncatedSVD): optimal
	// error, cost O(L·d·min(L,d)); for reference runs on small sizes,
	// "exact".
	ExactSVD
	// Uncompressed saves the activation as it is (a copy at the storage
	// precision): the baseline, "none".
	Uncompressed
)

func (m Method) String() string {
	switch m {
	case RowSampling:
		return "rows"
	case Gaussian:
		return "gaussian"
	case ExactSVD:
		return "exact"
	case Uncompressed:
		return "none"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod returns the Method named by s (its String form).
func ParseMethod(s string) (Method, error) {
	for m := RowSampling; m <= Uncompressed; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown method %q (rows, gaussian, exact, none)", lowrank.ErrOption, s)
}

type rankKind int

const (
	rankRatio rankKind = iota
	rankFixed
	rankTol
)

// RankPolicy chooses the rank k of each activation. The zero value is
// Ratio(0.25).
type RankPolicy struct {
	kind  rankKind
	k     int
	ratio float64
	tol   float64
}

// Fixed keeps k terms (clamped to min(L, d)).
func Fixed(k int) RankPolicy { return RankPolicy{kind: rankFixed, k: k} }

// Ratio keeps k = ⌈r·d⌉ terms for an activation with hidden size d, as the
// reference implementation's rank ratio does; 0 < r ≤ 1.
func Ratio(r float64) RankPolicy { return RankPolicy{kind: rankRatio, ratio: r} }

// Tolerance keeps the smallest k whose relative Frobenius error
// ‖X − X̃‖_F/‖X‖_F is at most eps, searching k ≤ maxRank. With a
// randomized method the search computes one QB of rank maxRank and reads
// the error of every smaller rank from the singular values of its B
// (‖X − Q_kQ_kᵀX‖² = ‖X‖² − Σ_{i≤k} σ_i(B)²); the chosen factors are the
// leading k directions of that QB. maxRank ≤ 0 means the break-even rank
// ⌊L·d/(L+d)⌋, above which factors take more room than X.
//
// If no rank up to maxRank meets eps (a full-rank activation, a sketch
// that missed the dominant directions), the activation is stored as it is
// — error 0, at the storage precision — and Stats counts it under
// ToleranceMisses: the tolerance is a promise, never silently broken.
func Tolerance(eps float64, maxRank int) RankPolicy {
	return RankPolicy{kind: rankTol, tol: eps, k: maxRank}
}

func (r RankPolicy) String() string {
	switch r.kind {
	case rankFixed:
		return fmt.Sprintf("fixed k=%d", r.k)
	case rankTol:
		if r.k > 0 {
			return fmt.Sprintf("tolerance ε=%g (k ≤ %d)", r.tol, r.k)
		}
		return fmt.Sprintf("tolerance ε=%g", r.tol)
	}
	ratio := r.ratio
	if ratio == 0 {
		ratio = 0.25
	}
	return fmt.Sprintf("ratio %g", ratio)
}

func (r RankPolicy) check() error {
	switch r.kind {
	case rankFixed:
		if r.k < 1 {
			return fmt.Errorf("%w: fixed rank %d < 1", lowrank.ErrRank, r.k)
		}
	case rankRatio:
		if r.ratio < 0 || r.ratio > 1 || math.IsNaN(r.ratio) {
			return fmt.Errorf("%w: rank ratio %g outside (0, 1]", lowrank.ErrOption, r.ratio)
		}
	case rankTol:
		if !(r.tol > 0 && r.tol < 1) {
			return fmt.Errorf("%w: tolerance %g outside (0, 1)", lowrank.ErrOption, r.tol)
		}
	}
	return nil
}

// rank returns the rank to compute for an m×n activation: the target rank,
// or for a tolerance the largest rank searched.
func (r RankPolicy) rank(m, n int) int {
	kmax := min(m, n)
	var k int
	switch r.kind {
	case rankFixed:
		k = r.k
	case rankTol:
		k = r.k
		if k <= 0 {
			k = m * n / (m + n)
		}
	default:
		ratio := r.ratio
		if ratio == 0 {
			ratio = 0.25
		}
		k = int(math.Ceil(ratio * float64(n)))
	}
	return max(1, min(k, kmax))
}

// Config configures a Compressor. The zero value compresses with LoRAct's
// row sampling at rank ⌈d/4⌉, no oversampling or power iterations, bf16
// storage, synchronously on the CPU.
type Config struct {
	// Method chooses the decomposition.
	Method Method
	// Rank chooses k per activation.
	Rank RankPolicy
	// Oversample p ≥ 0 and PowerIters q ≥ 0 are passed to the randomized
	// methods: the sketch has k+p columns, truncated to k.
	Oversample int
	PowerIters int
	// Precision is the storage precision of the factors (and of the copy
	// kept by Uncompressed): lowrank.BFloat16 (the zero value), Float32 or
	// Float64. A factor element beyond the precision's range is an error
	// naming the layer, never a silent ±Inf.
	Precision lowrank.Precision
	// Backend runs the decompositions; nil means cpu.Backend{}. The CPU
	// backend takes *mat.Dense and *lowrank.Dense32 activations (and
	// mat.Transpose views of them) and keeps the factors in host memory.
	// A *gpu.Backend takes *gpu.Matrix activations (gpu.RowMajor wraps a
	// framework's buffer) and keeps the factors on the device, in its
	// memory pool, at Precision (BFloat16 or Float32; Float64 is refused);
	// the backward products then take and write device matrices. Its work
	// is queued on the backend's stream (Options.Stream: the caller's), so
	// it is ordered with the caller's kernels without synchronisation.
	// Any other backend's factors are downloaded into host memory.
	Backend lowrank.Backend
	// Seed seeds the random draws: call i of Compress uses a stream
	// determined by (Seed, i), so a run is reproducible.
	Seed uint64
	// Workers > 0 compresses on that many goroutines: Compress returns at
	// once and the caller must leave the activation unmodified until the
	// handle's Wait (or the compressor's Join) returns. On a *gpu.Backend
	// each worker has a stream of its own (Backend.Fork), made to wait for
	// the caller's stream at each Compress (an event), and synchronised
	// before the handle is done; the caller's later work sees the factors.
	Workers int
	// MeasureError computes each handle's relative error exactly, from a
	// reconstruction of the stored (rounded) factors, at the cost of one
	// more pass of 2·L·d·k flops. Otherwise RelError is the identity
	// ‖X − QQᵀX‖² = ‖X‖² − ‖QᵀX‖², which omits the rounding to Precision
	// (relative ≤ u·(1+√k), u its unit roundoff).
	MeasureError bool
}

func (c *Config) check() error {
	if c.Method < RowSampling || c.Method > Uncompressed {
		return fmt.Errorf("%w: method %d", lowrank.ErrOption, int(c.Method))
	}
	if c.Oversample < 0 || c.PowerIters < 0 || c.Workers < 0 {
		return fmt.Errorf("%w: Oversample %d, PowerIters %d, Workers %d must be ≥ 0",
			lowrank.ErrOption, c.Oversample, c.PowerIters, c.Workers)
	}
	switch c.Precision {
	case lowrank.Float64, lowrank.Float32, lowrank.BFloat16:
	default:
		return fmt.Errorf("%w: precision %v", lowrank.ErrOption, c.Precision)
	}
	return c.Rank.check()
}
