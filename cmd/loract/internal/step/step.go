// Package step times one transformer decoder layer's linear projections,
// forward and backward with LoRA, on the GPU: the saved activations kept as
// bf16, or compressed by package activation with the weight gradients
// computed from the factors. It measures what the issue of device-resident
// activations asks for: the device allocator's bytes for the saved
// activations and the whole step, the step time from CUDA events, the
// compression's share, host transfers and allocations per step, and the
// cosine of each LoRA gradient against the uncompressed run.
//
// The layer is the seven projections of a Llama-7B decoder layer (q, k, v
// and o 4096→4096, gate and up 4096→11008, down 11008→4096) with frozen
// bf16 base weights and LoRA on each; attention, the norms and the SiLU
// are not run: each projection's input is a synthetic activation (a
// power-law spectrum, σ_j ∝ 1/(j+1) over 1024 directions) produced afresh
// in every step from a fixed source, as the previous operation of a real
// layer would produce it, and each output gradient is fixed Gaussian.
package step

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

// Input is one distinct input tensor of the layer (several projections
// may share it).
type Input struct {
	Name string
	Dim  int
}

// Proj is one linear projection y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ of input Inputs[In]:
// W is Out×Dim (frozen), A r×Dim and B Out×r the LoRA factors, s = α/r.
type Proj struct {
	Name  string
	Input int
	Out   int
}

// Layer is a set of projections on their inputs.
type Layer struct {
	Inputs []Input
	Projs  []Proj
}

// Llama7B is the linear part of one Llama-7B decoder layer.
var Llama7B = Layer{
	Inputs: []Input{{"attn_norm", 4096}, {"attn_out", 4096}, {"mlp_norm", 4096}, {"mlp_act", 11008}},
	Projs: []Proj{
		{"q", 0, 4096}, {"k", 0, 4096}, {"v", 0, 4096}, {"o", 1, 4096},
		{"gate", 2, 11008}, {"up", 2, 11008}, {"down", 3, 4096},
	},
}

// Mode is how the step saves the projections' inputs for backward.
type Mode int

const (
	// Kept saves each input as it is (bf16): ordinary autograd.
	Kept Mode = iota
	// Compressed saves each distinct input once as low-rank factors
	// (activation, rows QB, q = 0, bf16 factors) and computes the LoRA A
	// gradients from them.
	Compressed
)

func (m Mode) String() string {
	if m == Kept {
		return "bf16"
	}
	return "loract"
}

// LoRAAlpha is α: the LoRA branch is scaled by α/r.
const LoRAAlpha = 32

// sourceRank is the number of directions of the synthetic activations.
const sourceRank = 1024

// Runner holds the layer's device buffers for one token count.
type Runner struct {
	b      *gpu.Backend
	layer  Layer
	tokens int
	r      int
	scale  float64

	w, a, bm []*gpu.Matrix // per projection: W (Out×Dim), A (r×Dim), B (Out×r), as row-major views
	dy       []*gpu.Matrix // per projection: the output gradient, L×Out
	ga, gb   []*gpu.Matrix // per projection: the LoRA gradients (float32), r×Dim and Out×r
	src      []*gpu.Matrix // per input: the source its value is copied from, L×Dim
	dx       []*gpu.Matrix // per input: its gradient, L×Dim
	y        map[int]*gpu.Matrix
	dh       *gpu.Matrix // L×r scratch: s·dY·B
	owned    []*gpu.Matrix
}

// NewRunner allocates and fills the layer's weights, sources and output
// gradients for tokens rows on b. The data depend only on seed.
func NewRunner(b *gpu.Backend, layer Layer, tokens, loraRank int, seed uint64) (*Runner, error) {
	if tokens < 1 || loraRank < 1 {
		return nil, fmt.Errorf("step: %d tokens, LoRA rank %d: both must be ≥ 1", tokens, loraRank)
	}
	r := &Runner{b: b, layer: layer, tokens: tokens, r: loraRank, scale: LoRAAlpha / float64(loraRank), y: map[int]*gpu.Matrix{}}
	if err := r.fill(seed); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close frees the runner's buffers.
func (r *Runner) Close() {
	for _, m := range r.owned {
		r.b.Free(m)
	}
	r.owned = nil
}

// rowMajor allocates a rows×cols row-major matrix of type dt.
func (r *Runner) rowMajor(rows, cols int, dt gpu.DType) (*gpu.Matrix, error) {
	m, err := r.b.NewMatrix(cols, rows, dt)
	if err != nil {
		return nil, err
	}
	r.owned = append(r.owned, m)
	return m.T(), nil
}

// gaussian returns a rows×cols row-major bf16 matrix of N(0, σ²) entries.
func (r *Runner) gaussian(rows, cols int, sigma float64, seed uint64) (*gpu.Matrix, error) {
	m, err := r.rowMajor(rows, cols, gpu.BFloat16)
	if err != nil {
		return nil, err
	}
	tmp, err := r.b.NewMatrix(cols, rows, gpu.Float32)
	if err != nil {
		return nil, err
	}
	defer r.b.Free(tmp)
	if err := r.b.Normal(tmp, seed); err != nil {
		return nil, err
	}
	if err := r.b.Scale(tmp, sigma); err != nil {
		return nil, err
	}
	return m, r.b.Copy(m.T(), tmp)
}

// source returns an L×d bf16 activation Z₁·diag(σ)·Z₂/√d with Gaussian
// Z₁ (L×R), Z₂ (R×d) and σ_j = 1/(j+1): a power-law spectrum over R =
// sourceRank directions.
func (r *Runner) source(d int, seed uint64) (*gpu.Matrix, error) {
	b, L := r.b, r.tokens
	rk := min(sourceRank, d, L)
	z1, err := b.NewMatrix(L, rk, gpu.Float32)
	if err != nil {
		return nil, err
	}
	defer b.Free(z1)
	z2, err := b.NewMatrix(rk, d, gpu.Float32)
	if err != nil {
		return nil, err
	}
	defer b.Free(z2)
	dg, err := b.NewMatrix(rk, rk, gpu.Float32)
	if err != nil {
		return nil, err
	}
	defer b.Free(dg)
	t, err := b.NewMatrix(L, rk, gpu.Float32)
	if err != nil {
		return nil, err
	}
	defer b.Free(t)
	if err := b.Normal(z1, seed); err != nil {
		return nil, err
	}
	if err := b.Normal(z2, seed+1); err != nil {
		return nil, err
	}
	sv := make([]float64, rk)
	for j := range sv {
		sv[j] = 1 / float64(j+1) / math.Sqrt(float64(d))
	}
	if err := b.Upload(dg, mat.NewDiagDense(rk, sv)); err != nil {
		return nil, err
	}
	if err := b.Mul(t, 1, z1, false, dg, false, 0); err != nil {
		return nil, err
	}
	x, err := r.rowMajor(L, d, gpu.BFloat16)
	if err != nil {
		return nil, err
	}
	return x, b.Mul(x, 1, t, false, z2, false, 0)
}

func (r *Runner) fill(seed uint64) error {
	b, L := r.b, r.tokens
	for i, in := range r.layer.Inputs {
		s, err := r.source(in.Dim, seed+uint64(100*i))
		if err != nil {
			return err
		}
		r.src = append(r.src, s)
		dx, err := r.rowMajor(L, in.Dim, gpu.BFloat16)
		if err != nil {
			return err
		}
		r.dx = append(r.dx, dx)
	}
	for i, p := range r.layer.Projs {
		d := r.layer.Inputs[p.Input].Dim
		s := seed + 1000 + uint64(10*i)
		w, err := r.gaussian(p.Out, d, 1/math.Sqrt(float64(d)), s)
		if err != nil {
			return err
		}
		a, err := r.gaussian(r.r, d, 1/math.Sqrt(float64(d)), s+1)
		if err != nil {
			return err
		}
		bm, err := r.gaussian(p.Out, r.r, 1/math.Sqrt(float64(r.r)), s+2)
		if err != nil {
			return err
		}
		dy, err := r.gaussian(L, p.Out, 1/math.Sqrt(float64(L)), s+3)
		if err != nil {
			return err
		}
		ga, err := r.rowMajor(r.r, d, gpu.Float32)
		if err != nil {
			return err
		}
		gb, err := r.rowMajor(p.Out, r.r, gpu.Float32)
		if err != nil {
			return err
		}
		r.w, r.a, r.bm, r.dy, r.ga, r.gb = append(r.w, w), append(r.a, a), append(r.bm, bm), append(r.dy, dy), append(r.ga, ga), append(r.gb, gb)
		if r.y[p.Out] == nil {
			y, err := r.rowMajor(L, p.Out, gpu.BFloat16)
			if err != nil {
				return err
			}
			r.y[p.Out] = y
		}
	}
	dh, err := r.rowMajor(L, r.r, gpu.BFloat16)
	if err != nil {
		return err
	}
	r.dh = dh
	return b.Synchronize()
}

// Flops returns the step's GEMM flops (forward, input gradients and LoRA
// gradients) and the compression's (rows QB with ℓ = k, q = 0: the sketch
// and the projection, 2·L·d·k each, and the Cholesky QR's three passes of
// Gram and product on the d×k sketch, 12·d·k², per distinct input).
func (r *Runner) Flops(k int) (gemm, compress float64) {
	L, rr := float64(r.tokens), float64(r.r)
	for _, p := range r.layer.Projs {
		d, o := float64(r.layer.Inputs[p.Input].Dim), float64(p.Out)
		gemm += 2*L*d*o + 2*L*d*o            // y = x·Wᵀ, dX = dY·W
		gemm += 2 * L * rr * (d + o)         // h = x·Aᵀ, y += s·h·Bᵀ
		gemm += 2 * L * rr * (o + o + d + d) // gB, dH, gA, dX += dH·A
	}
	for _, in := range r.layer.Inputs {
		d, kk := float64(in.Dim), float64(k)
		compress += 4*L*d*kk + 12*d*kk*kk
	}
	return gemm, compress
}

// Result is one configuration's measurement. Bytes are measured at the
// device allocator (the gpu package's pool, package-wide Live and Peak).
type Result struct {
	Mode     string `json:"mode"`
	Tokens   int    `json:"tokens"`
	K        int    `json:"k,omitempty"`
	LoRARank int    `json:"lora_rank"`
	Workers  int    `json:"workers,omitempty"`
	// Priority is the workers' stream priority (Options.Priority).
	Priority int `json:"priority,omitempty"`
	// LateJoin is Options.LateJoin.
	LateJoin bool `json:"late_join,omitempty"`
	// Batch is Options.Batch; BatchStreams Options.BatchStreams.
	Batch        bool `json:"batch,omitempty"`
	BatchStreams int  `json:"batch_streams,omitempty"`
	// Ms and MsMin: the step (forward and backward), median and minimum
	// over Repeats, from CUDA events on the caller's stream.
	Ms      float64 `json:"ms"`
	MsMin   float64 `json:"ms_min"`
	Repeats int     `json:"repeats"`
	// PairedRatio is the median over Repeats of t_compressed/t_kept for a
	// kept step run just before each compressed one (Options.Paired): the
	// overhead without the drift of the card's clocks between two
	// separate runs (which moved the ratio of separate medians by ±2 %
	// on an H200). PairedKeptMs is the median of those kept steps.
	PairedRatio  float64 `json:"paired_ratio,omitempty"`
	PairedKeptMs float64 `json:"paired_kept_ms,omitempty"`
	// CompressMs is the median per step of the compressions' summed time
	// (events around each Compress; synchronous mode only).
	CompressMs float64 `json:"compress_ms,omitempty"`
	// CompressMsEach is the median of each compression call of a step, in
	// order (one per input, or one per batch with Options.Batch).
	CompressMsEach []float64 `json:"compress_ms_each,omitempty"`
	// SavedBytes is the allocator's Live after forward minus at the step's
	// start: the saved activations (inputs or factors, and the LoRA
	// intermediates x·Aᵀ). DenseBytes is what the distinct inputs take in
	// bf16.
	SavedBytes int64 `json:"saved_bytes"`
	DenseBytes int64 `json:"dense_bytes"`
	// StepPeakBytes is the allocator's high-water mark during the step:
	// everything live (weights, sources, outputs, gradients, saved
	// tensors, the compressor's scratch); BaseBytes is Live before the
	// first step (without the compressor).
	StepPeakBytes int64 `json:"step_peak_bytes"`
	BaseBytes     int64 `json:"base_bytes"`
	// GEMMFlops and CompressFlops per step (see Runner.Flops).
	GEMMFlops     float64 `json:"gemm_flops"`
	CompressFlops float64 `json:"compress_flops,omitempty"`
	// Mallocs is the cuMemAlloc calls during the timed steps; ToDevice and
	// ToHost the host transfers per timed step, in bytes.
	Mallocs  int64 `json:"mallocs"`
	ToDevice int64 `json:"to_device_bytes"`
	ToHost   int64 `json:"to_host_bytes"`
	// Syncs is the host synchronisations per timed step made inside the
	// backend (gpu.Backend.Syncs: scalars read back, QR status, …), beside
	// the step's own event waits.
	Syncs float64 `json:"syncs_per_step"`
	// RelError is the largest relative error of a compressed input
	// (measured on the device, last step).
	RelError float64 `json:"rel_error,omitempty"`
	// CosA is the cosine of each projection's LoRA A gradient with the
	// kept run's (filled in by Compare); CosB the same for B.
	CosA map[string]float64 `json:"cos_a,omitempty"`
	CosB map[string]float64 `json:"cos_b,omitempty"`
	// Device names the card.
	Device string `json:"device"`

	gradA, gradB map[string]*mat.Dense
}

// Variant names how a compressed run differs from the plain one (each
// input compressed on the caller's stream after its own projections):
// "batched", "2 side streams", "priority -5", "no Join before backward",
// joined by commas; "" for the plain run and the kept one.
func (r *Result) Variant() string {
	var v []string
	if r.Batch {
		v = append(v, "batched")
		switch r.BatchStreams {
		case 1:
			v = append(v, "one stream")
		case 2:
			v = append(v, "two streams")
		}
	}
	if r.Workers > 0 {
		streams := "side streams"
		if r.Workers == 1 {
			streams = "side stream"
		}
		v = append(v, fmt.Sprintf("%d %s", r.Workers, streams))
		switch {
		case r.Priority != 0:
			v = append(v, fmt.Sprintf("priority %d", r.Priority))
		case r.LateJoin:
			v = append(v, "no Join before backward")
		}
	}
	return strings.Join(v, ", ")
}

// Options configures one Run.
type Options struct {
	Mode    Mode
	K       int // compression rank (Compressed)
	Workers int // activation.Config.Workers (Compressed)
	// Priority is the CUDA priority of the workers' streams
	// (gpu.Backend.SetForkPriority; 0 the default).
	Priority int
	// LateJoin, with Workers > 0, leaves out the Join between forward and
	// backward: each weight gradient waits for its own input's
	// compression (Saved.WeightGradOutIn waits), so the compressions
	// still under way at the end of forward overlap backward, and their
	// inputs, not yet freed, count in the saved bytes.
	LateJoin bool
	// Batch compresses the layer's inputs together, in one
	// Compressor.CompressBatch after the last input's projections, instead
	// of each after its own: every input is held until then (the step's
	// peak counts them), and all of them (L×4096 and L×11008) share one
	// fused read, one batched QR and one host synchronisation.
	Batch bool
	// BatchStreams is activation.Config.BatchStreams (0: its default).
	BatchStreams int
	// MeasureError makes the compressor measure each input's error (an
	// extra product per compression: not for timed runs).
	MeasureError bool
	// Paired runs a kept step before each compressed one and reports the
	// median ratio (Result.PairedRatio); Compressed mode only.
	Paired          bool
	Warmup, Repeats int
}

// saved is one input's saved state during a step.
type saved struct {
	x    *gpu.Matrix // the input (Kept), or nil
	xs   *gpu.Matrix // the input's storage, while it lives
	s    *activation.Saved
	uses int // consumers left in backward
}

// Run times opts.Repeats steps after opts.Warmup untimed ones and returns
// the measurement; the LoRA gradients of the last step are kept for
// Compare.
func (r *Runner) Run(opts Options) (*Result, error) {
	b := r.b
	if opts.Repeats < 1 || opts.Warmup < 0 {
		return nil, fmt.Errorf("step: %d repeats, %d warm-up steps", opts.Repeats, opts.Warmup)
	}
	name, _ := b.Device()
	res := &Result{Mode: opts.Mode.String(), Tokens: r.tokens, LoRARank: r.r, Repeats: opts.Repeats, Device: name}
	res.GEMMFlops, _ = r.Flops(0)
	for _, in := range r.layer.Inputs {
		res.DenseBytes += int64(2 * r.tokens * in.Dim)
	}
	if err := b.Synchronize(); err != nil {
		return nil, err
	}
	res.BaseBytes = b.MemStats().Live
	lateJoin := opts.Mode == Compressed && opts.LateJoin && opts.Workers > 0
	var c *activation.Compressor
	if opts.Mode == Compressed {
		res.K, res.Workers, res.Priority, res.LateJoin, res.Batch = opts.K, opts.Workers, opts.Priority, lateJoin, opts.Batch
		if opts.Batch {
			res.BatchStreams = opts.BatchStreams
		}
		_, res.CompressFlops = r.Flops(opts.K)
		var err error
		b.SetForkPriority(opts.Priority) // the compressor's workers fork now
		c, err = activation.New(activation.Config{Backend: b, Method: activation.RowSampling, Rank: activation.Fixed(opts.K),
			Precision: lowrank.BFloat16, Workers: opts.Workers, BatchStreams: opts.BatchStreams, MeasureError: opts.MeasureError, Seed: 1})
		b.SetForkPriority(0)
		if err != nil {
			return nil, err
		}
		defer c.Close()
	}
	var ms, cms, pk, ratios []float64
	var eachMs [][]float64
	var savedBytes, peak int64
	var mallocs0, up0, down0, syncs0 int64
	for i := -opts.Warmup; i < opts.Repeats; i++ {
		if i == 0 {
			mallocs0 = b.MemStats().Mallocs
			up0, down0 = b.Transfers()
			syncs0 = b.Syncs()
		}
		var tk float64
		if opts.Paired && opts.Mode == Compressed {
			var err error
			if tk, _, _, err = r.step(nil, Kept, false, false); err != nil {
				return nil, err
			}
		}
		if err := b.Synchronize(); err != nil {
			return nil, err
		}
		b.ResetPeak()
		live0 := b.MemStats().Live
		t, each, liveFwd, err := r.step(c, opts.Mode, lateJoin, opts.Batch)
		if err != nil {
			return nil, err
		}
		if i >= 0 && tk > 0 {
			pk = append(pk, tk)
			ratios = append(ratios, t/tk)
		}
		if i >= 0 {
			ms = append(ms, t)
			ct := 0.0
			for _, e := range each {
				ct += e
			}
			cms = append(cms, ct)
			for n, e := range each {
				if n == len(eachMs) {
					eachMs = append(eachMs, nil)
				}
				eachMs[n] = append(eachMs[n], e)
			}
			savedBytes = max(savedBytes, liveFwd-live0)
			peak = max(peak, b.MemStats().Peak)
		}
	}
	res.Mallocs = b.MemStats().Mallocs - mallocs0
	up1, down1 := b.Transfers()
	res.ToDevice, res.ToHost = (up1-up0)/int64(opts.Repeats), (down1-down0)/int64(opts.Repeats)
	res.Syncs = float64(b.Syncs()-syncs0) / float64(opts.Repeats)
	res.Ms, res.MsMin = median(ms), minOf(ms)
	if len(ratios) > 0 {
		res.PairedRatio, res.PairedKeptMs = median(ratios), median(pk)
	}
	if opts.Mode == Compressed && opts.Workers == 0 {
		res.CompressMs = median(cms)
		for _, e := range eachMs {
			res.CompressMsEach = append(res.CompressMsEach, median(e))
		}
	}
	res.SavedBytes, res.StepPeakBytes = savedBytes, peak
	if c != nil {
		res.RelError = c.Stats().Total.MaxRelError
	}
	res.gradA, res.gradB = map[string]*mat.Dense{}, map[string]*mat.Dense{}
	for i, p := range r.layer.Projs {
		var ga, gb mat.Dense
		if err := b.Download(&ga, r.ga[i]); err != nil {
			return nil, err
		}
		if err := b.Download(&gb, r.gb[i]); err != nil {
			return nil, err
		}
		res.gradA[p.Name], res.gradB[p.Name] = &ga, &gb
	}
	return res, nil
}

// step runs one forward and backward and returns its time, the time of
// each compression call (synchronous mode) and the allocator's Live after
// forward. lateJoin and batch are Options.LateJoin and Options.Batch.
func (r *Runner) step(c *activation.Compressor, mode Mode, lateJoin, batch bool) (ms float64, each []float64, liveFwd int64, err error) {
	b, L := r.b, r.tokens
	uses := make([]int, len(r.layer.Inputs))
	for _, p := range r.layer.Projs {
		uses[p.Input]++
	}
	var timers [][2]*gpu.Event
	defer func() {
		for _, t := range timers {
			t[0].Close()
			t[1].Close()
		}
	}()
	start, err := b.RecordTimed()
	if err != nil {
		return 0, nil, 0, err
	}
	defer start.Close()
	sv := make([]saved, len(r.layer.Inputs))
	hs := make([]*gpu.Matrix, len(r.layer.Projs))  // x·Aᵀ, L×r row-major views
	hst := make([]*gpu.Matrix, len(r.layer.Projs)) // their storage
	var pending []int                              // inputs whose asynchronous compression may still read them
	var group []int                                // inputs waiting for their compression (batch)
	freeInput := func(i int) {
		if sv[i].xs != nil {
			b.Free(sv[i].xs)
			sv[i].xs = nil
		}
	}
	defer func() { // on an error: give back what the step holds
		for i := range sv {
			freeInput(i)
			if sv[i].s != nil {
				for ; sv[i].uses > 0; sv[i].uses-- {
					sv[i].s.Release()
				}
			}
		}
		for _, h := range hst {
			if h != nil {
				b.Free(h)
			}
		}
	}()

	// Forward.
	for i, in := range r.layer.Inputs {
		xs, err := b.NewMatrix(in.Dim, L, gpu.BFloat16) // the previous operation's output
		if err != nil {
			return 0, nil, 0, err
		}
		sv[i].xs = xs
		if err := b.Copy(xs, r.src[i].T()); err != nil {
			return 0, nil, 0, err
		}
		x := xs.T()
		for j, p := range r.layer.Projs {
			if p.Input != i {
				continue
			}
			y := r.y[p.Out]
			if err := b.Mul(y, 1, x, false, r.w[j], true, 0); err != nil {
				return 0, nil, 0, err
			}
			h, err := b.NewMatrix(r.r, L, gpu.BFloat16)
			if err != nil {
				return 0, nil, 0, err
			}
			hst[j], hs[j] = h, h.T()
			if err := b.Mul(hs[j], 1, x, false, r.a[j], true, 0); err != nil {
				return 0, nil, 0, err
			}
			if err := b.Mul(y, r.scale, hs[j], false, r.bm[j], true, 1); err != nil {
				return 0, nil, 0, err
			}
		}
		sv[i].uses = uses[i]
		if mode == Kept {
			sv[i].x = x
			continue
		}
		if batch {
			group = append(group, i)
			if i < len(r.layer.Inputs)-1 {
				continue
			}
		} else {
			group = append(group[:0], i)
		}
		var t0, t1 *gpu.Event
		if t0, err = b.RecordTimed(); err != nil {
			return 0, nil, 0, err
		}
		ss, err := r.compress(c, group, sv, batch)
		if err == nil {
			t1, err = b.RecordTimed()
		}
		timers = append(timers, [2]*gpu.Event{t0, t1})
		if err != nil {
			for _, h := range ss {
				if h != nil {
					h.Release()
				}
			}
			return 0, nil, 0, err
		}
		for n, g := range group {
			sv[g].s = ss[n]
			for range uses[g] - 1 {
				if err := ss[n].Retain(); err != nil {
					return 0, nil, 0, err
				}
			}
			if c.Config().Workers == 0 {
				freeInput(g) // the compression's reads are queued before the free
				continue
			}
			// Asynchronous: the worker may read the input until Wait
			// returns; free the inputs of earlier compressions that have
			// finished.
			pending = append(pending, g)
		}
		for len(pending) > len(group) {
			j := pending[0]
			if err := sv[j].s.Wait(); err != nil {
				return 0, nil, 0, err
			}
			freeInput(j)
			pending = pending[1:]
		}
		group = group[:0]
	}
	if c != nil && !lateJoin {
		if err := c.Join(); err != nil {
			return 0, nil, 0, err
		}
		for _, j := range pending {
			freeInput(j)
		}
	}
	liveFwd = b.MemStats().Live

	// Backward, in reverse order of the projections.
	first := make([]bool, len(r.layer.Inputs))
	for j := len(r.layer.Projs) - 1; j >= 0; j-- {
		p := r.layer.Projs[j]
		i := p.Input
		beta := 1.0
		if !first[i] {
			beta, first[i] = 0, true
		}
		dy, dx := r.dy[j], r.dx[i]
		if err := b.Mul(dx, 1, dy, false, r.w[j], false, beta); err != nil { // dX = dY·W
			return 0, nil, 0, err
		}
		if err := b.Mul(r.gb[j], r.scale, dy, true, hs[j], false, 0); err != nil { // gB = s·dYᵀ·h
			return 0, nil, 0, err
		}
		if err := b.Mul(r.dh, r.scale, dy, false, r.bm[j], false, 0); err != nil { // dH = s·dY·B
			return 0, nil, 0, err
		}
		if mode == Kept { // gA = dHᵀ·X
			err = b.Mul(r.ga[j], 1, r.dh, true, sv[i].x, false, 0)
		} else {
			err = sv[i].s.WeightGradOutIn(r.ga[j], r.dh)
		}
		if err != nil {
			return 0, nil, 0, err
		}
		if lateJoin && sv[i].xs != nil { // the weight gradient waited: the compression is done
			freeInput(i)
		}
		if err := b.Mul(dx, 1, r.dh, false, r.a[j], false, 1); err != nil { // dX += dH·A
			return 0, nil, 0, err
		}
		b.Free(hst[j])
		hst[j], hs[j] = nil, nil
		sv[i].uses--
		if mode == Compressed {
			if err := sv[i].s.Release(); err != nil {
				return 0, nil, 0, err
			}
		} else if sv[i].uses == 0 {
			freeInput(i)
		}
	}
	if c != nil && lateJoin {
		if err := c.Join(); err != nil {
			return 0, nil, 0, err
		}
	}
	end, err := b.RecordTimed()
	if err != nil {
		return 0, nil, 0, err
	}
	defer end.Close()
	if ms, err = end.Elapsed(start); err != nil {
		return 0, nil, 0, err
	}
	for _, t := range timers {
		d, err := t[1].Elapsed(t[0])
		if err != nil {
			return 0, nil, 0, err
		}
		each = append(each, d)
	}
	return ms, each, liveFwd, nil
}

// compress compresses the inputs group of sv: by one CompressBatch if
// batch, else the one input by Compress.
func (r *Runner) compress(c *activation.Compressor, group []int, sv []saved, batch bool) ([]*activation.Saved, error) {
	if !batch {
		s, err := c.Compress(r.layer.Inputs[group[0]].Name, sv[group[0]].xs.T())
		return []*activation.Saved{s}, err
	}
	names, xs := make([]string, len(group)), make([]lowrank.Matrix, len(group))
	for n, g := range group {
		names[n], xs[n] = r.layer.Inputs[g].Name, sv[g].xs.T()
	}
	return c.CompressBatch(names, xs)
}

// Compare fills in the cosines of each run's LoRA gradients with the kept
// run's.
func Compare(kept *Result, runs ...*Result) {
	for _, r := range runs {
		r.CosA, r.CosB = map[string]float64{}, map[string]float64{}
		for name, g := range r.gradA {
			r.CosA[name] = cosine(kept.gradA[name], g)
			r.CosB[name] = cosine(kept.gradB[name], r.gradB[name])
		}
	}
}

func cosine(a, b *mat.Dense) float64 {
	if a == nil || b == nil {
		return math.NaN()
	}
	ra, rb := a.RawMatrix(), b.RawMatrix()
	var ab, aa, bb float64
	for i, x := range ra.Data {
		y := rb.Data[i]
		ab += x * y
		aa += x * x
		bb += y * y
	}
	return ab / math.Sqrt(aa*bb)
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(x []float64) float64 {
	m := math.Inf(1)
	for _, v := range x {
		m = min(m, v)
	}
	return m
}
