package activation

import (
	"errors"
	"fmt"
	"math"

	"github.com/loract/loract/gpu"
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
	// ErrBudget is wrapped by the error of a Compress under a Budget
	// policy when not even rank 1 of the activation fits in the bytes the
	// budget has left.
	ErrBudget = errors.New("activation: byte budget exceeded")
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
	rankBudget
)

// RankPolicy chooses the rank k of each activation. The zero value is
// Ratio(0.25).
type RankPolicy struct {
	kind  rankKind
	k     int
	ratio float64
	tol   float64
	// budget is a Budget policy's bytes, floor BudgetFloor's floor.
	budget int
	floor  float64
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

// Budget keeps the bytes of the live compressed activations — every
// handle not yet released, and every compression under way — at most
// bytes, and allocates ranks across layers to minimise the summed squared
// relative error Σ ‖X − X̃‖_F²/‖X‖_F² of a step within it.
//
// The allocation for a step is made at the Join that ends the previous
// one, from the spectra measured there: each compression's sketch is
// ℓ = min(2k+8, break-even) wide (the break-even rank is the largest k
// with k·(L+d) < L·d), its factors are the leading k directions of that
// sketch, and the squared singular values of the sketch's B give the
// error of every rank ≤ ℓ (‖X − Q_jQ_jᵀX‖_F² = ‖X‖_F² − Σ_{i≤j} σ_i(B)²);
// ranks are then given greedily, each next rank to the layer whose error
// falls most per byte (water-filling on the tail energies; see Plan for
// the optimality margin). The first step, before any spectrum is known,
// is a calibration step: every compression is stored at rank 1 from a
// sketch as wide as the break-even rank, the least bytes and the most
// spectrum; so is a layer the plan does not know. Its gradients come
// from rank-1 activations: a training loop should not apply that step's
// update (docs/activation.md, "Steps"). Rank 1 everywhere is
// the cheapest allocation there is and every plan is within the budget,
// so a loop whose steps compress the same layers at the same shapes and
// release them before the next step never has a Compress fail for want
// of bytes if the budget holds rank 1 of one step's activations.
//
// A layer compressed at another shape than the plan's (a step of a
// larger batch) gets at most the rank its planned bytes buy at the new
// shape, so that a step's layers share the budget as planned.
//
// The budget is enforced at Compress: a rank the remaining bytes cannot
// hold is cut to fit (LayerStats.BudgetCuts counts it: activations held
// beyond their step, or a step that compresses more than the last), and
// if not even rank 1 fits Compress returns an error wrapping ErrBudget
// naming the layer and the bytes. The bytes counted are those the storage
// of the compressor's configuration takes (Config.StoredBytes: Precision,
// FactorBits, a residual, a device's padding of the rank), reserved when
// Compress is called and returned at the last Release. The allocation is
// deterministic for a seed: it depends only on the spectra and on the
// order of the Compress, Release and Join calls, not on the timing of
// asynchronous compressions.
//
// Call Join once per step, between forward and backward (also without
// Workers): it is where the next step is planned. Method must be
// RowSampling, Gaussian or ExactSVD (the exact SVD measures the whole
// spectrum); bytes must be ≥ 1.
func Budget(bytes int) RankPolicy {
	return RankPolicy{kind: rankBudget, budget: bytes}
}

// BudgetFloor is Budget with a floor under every layer's rank: each
// planned layer first gets ⌊floor·k_eq⌋ ranks (at least 1; fewer if the
// energy its sketch shows beyond fewer ranks is below the factors'
// rounding: Σ_{j>r} λ_j/‖X‖_F² ≤ u², u the unit roundoff of Precision or
// 1/254 for int8 factors), where k_eq is the equal split — the
// largest rank that every planned layer can hold at once within the
// budget, what one rank for all would be — and the greedy allocates the
// bytes left. 0 ≤ floor ≤ 1: 0 is Budget, 1 the equal split with the
// remainder allocated. Plan's Margin is then against the best allocation
// that holds the floor.
//
// The floor is for training. The greedy gives a layer whose spectrum
// falls fast few ranks; a fine-tuned model whose adapters only ever see
// that layer's kept directions can drift towards weights where its
// spectrum falls faster still and the compressed gradient is nearly
// orthogonal to the true one — on the GPU demo, bf16 factors under Budget
// trained to a gradient cosine of −0.03 on their own weights while the
// same compressor gave 0.97 on the uncompressed run's weights
// (docs/results.md, "On the GPU"). A floor keeps every layer's share from
// falling below a fraction of the equal one: at 0.8, with the calibration
// step's update skipped, the same bf16 budget trained level with the
// single ratio of its bytes over three seeds (int8 factors: 0.55 points
// below it in the mean).
func BudgetFloor(bytes int, floor float64) RankPolicy {
	return RankPolicy{kind: rankBudget, budget: bytes, floor: floor}
}

func (r RankPolicy) String() string {
	switch r.kind {
	case rankBudget:
		if r.floor > 0 {
			return fmt.Sprintf("budget %d bytes, floor %g", r.budget, r.floor)
		}
		return fmt.Sprintf("budget %d bytes", r.budget)
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
	case rankBudget:
		if r.budget < 1 {
			return fmt.Errorf("%w: budget of %d bytes: must be ≥ 1", lowrank.ErrOption, r.budget)
		}
		if !(r.floor >= 0 && r.floor <= 1) {
			return fmt.Errorf("%w: budget floor %g outside [0, 1]", lowrank.ErrOption, r.floor)
		}
	}
	return nil
}

// rank returns the rank to compute for an m×n activation: the target rank,
// or for a tolerance the largest rank searched. A Budget's ranks come
// from the plan (Compressor.reserve), never from here: it returns 1.
func (r RankPolicy) rank(m, n int) int {
	kmax := min(m, n)
	var k int
	switch r.kind {
	case rankBudget:
		return 1
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
	// BatchStreams is the number of streams a device batch (CompressBatch
	// of two or more row-sampled activations of one rank) is spread over:
	// 0 or 1 keeps it on the worker's stream; 2 splits it into two groups
	// of about equal bytes, one on the worker's stream and one on a
	// second stream of its own (a Fork made on first use), joined with
	// events, so that one group's latency-bound QR overlaps the other's
	// reads. Measured on an H200 (docs/results.md, "GPU step"): a Llama
	// layer's four inputs compress in 7–9 % less time, the step is 1–5
	// points faster at 8192 tokens and level at 16384 and 32768, and the
	// second stream's scratch adds about 0.25 GiB to the step's peak at
	// 16384 tokens. Ignored on the CPU.
	BatchStreams int
	// MeasureError computes each handle's relative error exactly, from a
	// reconstruction of the stored (rounded) factors, at the cost of one
	// more pass of 2·L·d·k flops. Otherwise RelError is the identity
	// ‖X − QQᵀX‖² = ‖X‖² − ‖QᵀX‖², which omits the rounding to Precision
	// (relative ≤ u·(1+√k), u its unit roundoff) and the quantization of
	// int8 factors; with a residual it is the exact error of the stored
	// approximation, accumulated while the residual is quantized.
	MeasureError bool

	// FactorBits 8 stores the factors P and R in int8 instead of at
	// Precision, with one float32 scale per rank-one term (per column of P
	// and per row of R): k·(L+d) + 8·k bytes, about half of bf16's. Each
	// element is within half its scale of the factor it stores (scale =
	// the largest magnitude of its column of P or row of R ÷ 127). 0, the
	// default, stores them at Precision.
	FactorBits int
	// ResidualBits 4 or 8 also stores the residual E = X − P̂·R̂ of the
	// stored factors, quantized to that many bits per element with one
	// float32 scale per block of ResidualBlock consecutive elements of a
	// row: L·⌈d·bits/8⌉ + 4·L·⌈d/ResidualBlock⌉ bytes more. Reconstruct
	// and the weight gradients add its contribution block by block, so
	// that X̃ = P̂·R̂ + Ê is never formed beyond a block of rows, and every
	// element of X̃ is within half its block's scale (max|E| in the block
	// ÷ 7 or 127) of X. 0, the default, stores no residual.
	ResidualBits int
	// ResidualBlock is the number of elements per scale of the residual;
	// 0 means 64. With 4 bits it must be even (a block then starts on a
	// byte).
	ResidualBlock int
}

// StoredBytes returns the bytes that c's storage keeps for an rows×cols
// activation compressed at rank k (1 ≤ k ≤ min(rows, cols)): the factors
// at Precision (on a *gpu.Backend with their rank dimension rounded up to
// a multiple of 8, the padding zero: cuBLAS's fast kernels want the
// products' inner dimension so) or in int8 with their scales, plus the
// residual if one is configured; past the break-even rank
// (k·(rows+cols) ≥ rows·cols) the activation itself at Precision, as
// Compress stores it. It is what a
// compression's Saved.Bytes reports, and what a Budget policy reserves.
// It panics with lowrank.ErrRank for k outside [1, min(rows, cols)].
func (c Config) StoredBytes(rows, cols, k int) int {
	if rows < 1 || cols < 1 || k < 1 || k > min(rows, cols) {
		panic(fmt.Errorf("%w: k = %d for %d×%d", lowrank.ErrRank, k, rows, cols))
	}
	if c.Method == Uncompressed || k*(rows+cols) >= rows*cols {
		return c.denseBytes(rows, cols)
	}
	return c.factorBytes(rows, cols, k) + c.residualBytes(rows, cols)
}

// Rank returns the rank that a Fixed or Ratio policy keeps for an
// rows×cols activation, and false for the policies that decide per
// activation (Tolerance, Budget).
func (r RankPolicy) Rank(rows, cols int) (int, bool) {
	if r.kind == rankTol || r.kind == rankBudget {
		return 0, false
	}
	return r.rank(rows, cols), true
}

// residualBlock returns the block of the residual, the default applied.
func (c *Config) residualBlock() int {
	if c.ResidualBlock == 0 {
		return 64
	}
	return c.ResidualBlock
}

// factorBytes returns the bytes of rank-k factors of an m×n activation
// (without a residual), their padding included.
func (c *Config) factorBytes(m, n, k int) int { return c.storedRank(k) * c.rankBytes(m, n) }

// rankBytes returns the bytes of one rank of the factors of an m×n
// activation: a column of P and a row of R, at Precision or in int8 with
// their two float32 scales.
func (c *Config) rankBytes(m, n int) int {
	if c.FactorBits == 8 {
		return m + n + 8
	}
	return (m + n) * c.Precision.Size()
}

// factorPad is the multiple to which a device's factors at Precision
// round their rank dimension (storeFactorsDevice says why).
const factorPad = 8

// storedRank returns the rank dimension with which rank-k factors are
// stored: on a *gpu.Backend with factors at Precision k rounded up to a
// multiple of factorPad where that adds at most an eighth of the factors'
// bytes (k ≥ 8·(k₈ − k)), else k. A rank too small for that makes
// products too small to gain from the padding, and the padding could
// undo the compression (rank 4 of a 16-wide activation stored at 8).
func (c *Config) storedRank(k int) int {
	if !c.pads() {
		return k
	}
	k8 := (k + factorPad - 1) / factorPad * factorPad
	if 8*(k8-k) > k {
		return k
	}
	return k8
}

// pads reports whether c's storage may round a rank up (storedRank).
func (c *Config) pads() bool {
	_, dev := c.Backend.(*gpu.Backend)
	return dev && c.FactorBits != 8
}

// fitRank returns the largest rank whose factors of an m×n activation take
// at most bytes (0 if none).
func (c *Config) fitRank(m, n, bytes int) int {
	rb := c.rankBytes(m, n)
	k := max(0, bytes) / rb
	for k > 0 && c.storedRank(k)*rb > bytes { // at most factorPad − 1 steps
		k--
	}
	return k
}

// residualBytes returns the bytes of the residual of an m×n activation, or
// 0 without one.
func (c *Config) residualBytes(m, n int) int {
	if c.ResidualBits == 0 {
		return 0
	}
	return quantBytes(m, n, c.ResidualBits, c.residualBlock(), false)
}

// denseBytes returns the bytes of an m×n activation stored as it is.
func (c *Config) denseBytes(m, n int) int { return m * n * c.Precision.Size() }

func (c *Config) check() error {
	if c.Method < RowSampling || c.Method > Uncompressed {
		return fmt.Errorf("%w: method %d", lowrank.ErrOption, int(c.Method))
	}
	if c.BatchStreams < 0 || c.BatchStreams > 2 {
		return fmt.Errorf("%w: BatchStreams %d: want 0, 1 or 2", lowrank.ErrOption, c.BatchStreams)
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
	if c.FactorBits != 0 && c.FactorBits != 8 {
		return fmt.Errorf("%w: FactorBits %d (0: at Precision, or 8)", lowrank.ErrOption, c.FactorBits)
	}
	if c.ResidualBits != 0 && c.ResidualBits != 4 && c.ResidualBits != 8 {
		return fmt.Errorf("%w: ResidualBits %d (0: none, 4 or 8)", lowrank.ErrOption, c.ResidualBits)
	}
	if c.ResidualBlock < 0 || (c.ResidualBits == 4 && c.residualBlock()%2 != 0) {
		return fmt.Errorf("%w: ResidualBlock %d must be ≥ 0, and even with 4-bit residuals", lowrank.ErrOption, c.ResidualBlock)
	}
	if c.Method == Uncompressed && (c.FactorBits != 0 || c.ResidualBits != 0) {
		return fmt.Errorf("%w: method %v stores the activation as it is: FactorBits and ResidualBits do not apply", lowrank.ErrOption, c.Method)
	}
	if c.Rank.kind == rankBudget && c.Method == Uncompressed {
		return fmt.Errorf("%w: a byte budget allocates ranks; method %v has none", lowrank.ErrOption, c.Method)
	}
	return c.Rank.check()
}
