package vitgpu

import (
	"context"
	"fmt"
	"math"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
)

// DemoConfig configures RunDemo: the protocol of vit.RunDemo on the
// device.
type DemoConfig struct {
	Model vit.Config
	Batch int
	// DType is the activations' type (gpu.BFloat16 in the demo).
	DType                        gpu.DType
	PretrainSteps, FineTuneSteps int
	PretrainLR, FineTuneLR       float64
	// Warmup is the number of steps over which each phase's learning rate
	// rises linearly to its value (step s uses lr·min(1, (s+1)/Warmup)).
	Warmup    int
	LoRARank  int
	LoRAScale float64
	// Runs are the compressed fine-tuning runs, after the baseline (which
	// keeps every activation as it is); RunDemo sets each compressor's
	// Backend.
	Runs []RunConfig
	// Budget is the activation-memory budget in bytes for the largest
	// batch that fits (RunResult.MaxBatch).
	Budget int64
	// TimedFrom is the first step of each phase that is timed and
	// measured: the steps before it warm the pool, cuBLAS and the
	// compressor's workspaces up.
	TimedFrom int
	// EvalBatch is the batch of the accuracy passes (0: Batch).
	EvalBatch int
	// Progress, if not nil, is called every ProgressEvery steps and at the
	// last step of a phase with the step's loss (read back from the
	// device: a synchronisation).
	Progress      func(phase string, step, steps int, loss float64)
	ProgressEvery int
	// Log, if not nil, gets one line per phase.
	Log func(format string, args ...any)
	// ProfilePhase, if not empty, makes the training phases whose names
	// contain it (such as "pre-train" or "loract ops") the CUDA profiler's
	// capture range (gpu.Backend.ProfilerStart and ProfilerStop), so that
	// nsys profile --capture-range=cudaProfilerApi records those steps
	// alone.
	ProfilePhase string
}

// RunConfig is one compressed fine-tuning run.
type RunConfig struct {
	Mode        Mode
	Compression activation.Config
	// Name names the run in RunResult ("loract " and the mode if empty).
	Name string
	// PlanSteps is the number of steps run before fine-tuning without an
	// update, on the first batch: a Budget policy's first step is its
	// calibration at rank 1 (activation.Budget), whose gradient a
	// training loop may prefer not to apply.
	PlanSteps int
	// Group is the number of block inputs a Checkpoint run compresses
	// together (Model.SetCheckpointGroup; 0: all of them).
	Group int
	// Ends makes a Checkpoint run leave its ends uncompressed: the first
	// block's input recomputed, the last block's tape kept
	// (Model.SetCheckpointEnds).
	Ends bool
	// OpsGroup is the number of blocks whose compressions a PerOp run
	// makes together (Model.SetOpsGroup; 0 or 1: each block's at its end).
	OpsGroup int
	// RecomputeGELU makes a PerOp run rebuild fc2's input from GELU's
	// instead of saving it (Model.SetRecomputeGELU), RecomputeLN the
	// LayerNorm outputs from their normalised inputs (Model.SetRecomputeLN)
	// and RecomputeAttention o's input from the attention probabilities
	// and values (Model.SetRecomputeAttention).
	RecomputeGELU, RecomputeLN, RecomputeAttention bool
}

// Check returns an error for an invalid configuration.
func (c *DemoConfig) Check() error {
	mc := Config{Model: c.Model, MaxBatch: c.Batch, DType: c.DType, LoRARank: c.LoRARank, LoRAScale: c.LoRAScale}
	if err := mc.Check(); err != nil {
		return err
	}
	switch {
	case c.PretrainSteps < 0 || c.FineTuneSteps < 1:
		return fmt.Errorf("vitgpu: %d pre-training and %d fine-tuning steps", c.PretrainSteps, c.FineTuneSteps)
	case !(c.PretrainLR > 0) || !(c.FineTuneLR > 0) || math.IsInf(c.PretrainLR, 0) || math.IsInf(c.FineTuneLR, 0):
		return fmt.Errorf("vitgpu: learning rates %g and %g", c.PretrainLR, c.FineTuneLR)
	case c.Warmup < 0 || c.TimedFrom < 0 || c.EvalBatch < 0 || c.ProgressEvery < 0:
		return fmt.Errorf("vitgpu: negative warm-up, timed-from, evaluation batch or progress interval")
	case c.Budget <= 0:
		return fmt.Errorf("vitgpu: activation budget %d bytes", c.Budget)
	}
	for _, r := range c.Runs {
		if r.Mode != PerOp && r.Mode != Checkpoint {
			return fmt.Errorf("vitgpu: compressed run of mode %v", r.Mode)
		}
		if r.Group < 0 || r.OpsGroup < 0 {
			return fmt.Errorf("vitgpu: checkpoint group %d, per-op group %d: must be ≥ 0", r.Group, r.OpsGroup)
		}
		if r.Compression.Workers != 0 {
			return fmt.Errorf("vitgpu: asynchronous compression (Workers %d) is not supported: the model reuses its buffers in stream order", r.Compression.Workers)
		}
	}
	return nil
}

// Phase summarises the steps of one training phase: medians over the
// timed steps (TimedFrom on) and the largest memory figures.
type Phase struct {
	Steps, Timed            int
	StepMs, StepMsMin       float64
	CompressMs, RecomputeMs float64 // medians per step
	Compressions            int     // per step
	Saved, SavedTensors     int64   // max over the timed steps (StepStats)
	Peak                    int64   // max over the timed steps
	Live                    int64   // the pool's Live at the first timed step's start
	Mallocs                 int64   // summed over the timed steps
	Wall                    time.Duration
	Losses                  []float64
}

// RunResult is one fine-tuning run.
type RunResult struct {
	Name        string
	Mode        Mode
	Compression activation.Config // without its Backend; zero for the baseline
	// Method and Rank name the compression (empty for the baseline);
	// Group, Ends, OpsGroup and the Recompute fields are RunConfig's.
	Method, Rank                                   string
	Group                                          int
	Ends                                           bool
	OpsGroup                                       int
	RecomputeGELU, RecomputeLN, RecomputeAttention bool
	Phase
	Accuracy float64
	// Saved at Batch and at Batch/2 (one step each without an update,
	// after training), the line through them — Fixed + PerSample·batch
	// bytes — and the largest batch it keeps within the budget.
	SavedFull, SavedHalf int64
	HalfBatch            int
	PerSample, Fixed     float64
	MaxBatch             int
	// Layers is the compressor's accounting (ranks, errors) at the end.
	Layers []activation.LayerStats
	// GradCos is the cosine between the trainable gradients of one batch
	// computed with this run's saving and with plain backpropagation, on
	// the run's final weights; MinCos and MinParam the lowest
	// per-parameter cosine.
	GradCos  float64
	MinCos   float64
	MinParam string
	// RefGradCos, RefMinCos and RefMinParam are the same on the baseline
	// run's fine-tuned weights, which every run is measured on alike (the
	// CPU demo's measurement): they separate the compression's effect on
	// one gradient from its effect on training.
	RefGradCos  float64
	RefMinCos   float64
	RefMinParam string
}

// MemCheck sets the memory pool's accounting beside the driver's.
type MemCheck struct {
	// PoolReserved is what the pool holds from the driver (Live + Cached)
	// above its value when RunDemo started; DriverUsed how much less
	// cuMemGetInfo reports free over the same time; Mallocs the
	// cuMemAlloc calls in between (the driver rounds each to its 2 MiB
	// pages). Both are measured after a synchronisation.
	PoolReserved, DriverUsed, Mallocs int64
	// PoolPeak is the pool's high-water mark over the whole demo.
	PoolPeak int64
}

// DemoResult is what RunDemo measured.
type DemoResult struct {
	Device, Arch     string
	Driver           int
	PretrainAccuracy float64
	Pretrain         Phase
	Baseline         RunResult
	Runs             []RunResult
	Memory           MemCheck
	// Setup is the pool's Live bytes before the first step: parameters,
	// their copies and Adam state, the workspace and the data sets;
	// DataBytes the data sets' part.
	Setup, DataBytes int64
	Wall             time.Duration
}

// RunDemo pre-trains a model on pre, fine-tunes LoRA adapters on fine
// with the same seed and batches once keeping the activations as they are
// and once per cfg.Runs entry compressing them, and evaluates on testPre
// and testFine, all on b. The initial weights are vit.New's for the same
// configuration, the adapters vit.Model.AddLoRA's.
func RunDemo(b *gpu.Backend, cfg DemoConfig, pre, fine, testPre, testFine vit.Data) (*DemoResult, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := &DemoResult{}
	res.Device, res.Arch = b.Device()
	res.Driver, _ = gpu.DriverVersion()
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			cfg.Log(format, args...)
		}
	}
	if err := b.Synchronize(); err != nil {
		return nil, err
	}
	free0, _, err := b.MemInfo()
	if err != nil {
		return nil, err
	}
	st0 := b.MemStats()
	cpu := vit.New(cfg.Model)
	m, err := New(b, Config{Model: cfg.Model, MaxBatch: cfg.Batch, DType: cfg.DType, LoRARank: cfg.LoRARank, LoRAScale: cfg.LoRAScale})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.LoadBase(cpu); err != nil {
		return nil, err
	}
	live := b.MemStats().Live
	var sets [4]*Dataset
	for i, d := range []vit.Data{pre, fine, testPre, testFine} {
		if sets[i], err = m.Upload(d); err != nil {
			return nil, err
		}
		defer sets[i].Free(m)
	}
	res.DataBytes = b.MemStats().Live - live
	r := &runner{m: m, cfg: &cfg}

	logf("pre-training %d steps on %d images", cfg.PretrainSteps, len(pre.Labels))
	m.SetLoRA(false)
	if res.Pretrain, err = r.train("pre-train", sets[0], cfg.PretrainSteps, cfg.PretrainLR, Plain, nil, cfg.Model.Seed); err != nil {
		return nil, err
	}
	res.Setup = res.Pretrain.Live
	if res.PretrainAccuracy, err = m.Accuracy(sets[2], r.evalBatch()); err != nil {
		return nil, err
	}
	logf("pre-trained: test accuracy %.2f%%, step %.2f ms", 100*res.PretrainAccuracy, res.Pretrain.StepMs)
	if err := m.Snapshot(); err != nil {
		return nil, err
	}
	cpu.AddLoRA(cfg.LoRARank, cfg.LoRAScale, cfg.Model.Seed+1)
	if err := m.LoadLoRA(cpu); err != nil {
		return nil, err
	}
	runs := append([]RunConfig{{Mode: Plain}}, cfg.Runs...)
	for i, rc := range runs {
		rr, err := r.fineTune(rc, sets[1], sets[3])
		if err != nil {
			return nil, fmt.Errorf("fine-tuning run %q: %w", rr.Name, err)
		}
		logf("%s: accuracy %.2f%%, step %.2f ms, saved %.1f MiB", rr.Name, 100*rr.Accuracy, rr.StepMs, float64(rr.Saved)/(1<<20))
		if i == 0 {
			res.Baseline = rr
			if err := m.KeepTrained(); err != nil {
				return nil, err
			}
			r.trained = true
		} else {
			res.Runs = append(res.Runs, rr)
		}
	}
	if err := b.Synchronize(); err != nil {
		return nil, err
	}
	free1, _, err := b.MemInfo()
	if err != nil {
		return nil, err
	}
	st1 := b.MemStats()
	res.Memory = MemCheck{PoolReserved: st1.Reserved - st0.Reserved, DriverUsed: int64(free0) - int64(free1),
		Mallocs: st1.Mallocs - st0.Mallocs, PoolPeak: st1.Peak}
	res.Wall = time.Since(start)
	return res, nil
}

// runner runs the phases of one demo.
type runner struct {
	m   *Model
	cfg *DemoConfig
	// trained says the model holds the baseline's weights (KeepTrained).
	trained bool
}

func (r *runner) evalBatch() int {
	if r.cfg.EvalBatch > 0 {
		return r.cfg.EvalBatch
	}
	return r.cfg.Batch
}

// train runs steps training steps on ds, batches drawn by Schedule with
// seed, the learning rate warmed up, and summarises them. A CPU profile
// taken meanwhile (loract demo -cpuprofile) has its samples labelled
// phase=name, so that pprof's -tagfocus picks one run out of the demo;
// the goroutine's own labels come back afterwards (pprof.Do).
func (r *runner) train(name string, ds *Dataset, steps int, lr float64, mode Mode, c *activation.Compressor, seed uint64) (ph Phase, err error) {
	pprof.Do(context.Background(), pprof.Labels("phase", name), func(context.Context) {
		ph, err = r.trainSteps(name, ds, steps, lr, mode, c, seed)
	})
	return ph, err
}

// trainSteps is train without the profile label.
func (r *runner) trainSteps(name string, ds *Dataset, steps int, lr float64, mode Mode, c *activation.Compressor, seed uint64) (Phase, error) {
	m, cfg := r.m, r.cfg
	ph := Phase{Steps: steps}
	if steps == 0 {
		return ph, nil
	}
	if cfg.ProfilePhase != "" && strings.Contains(name, cfg.ProfilePhase) {
		if err := m.b.ProfilerStart(); err != nil {
			return ph, err
		}
		// A failed stop changes no result of the phase (the start
		// succeeded, so the driver has the call).
		defer func() { _ = m.b.ProfilerStop() }()
	}
	B := cfg.Batch
	idx, err := m.UploadIndices(Schedule(ds.N, B, steps, seed))
	if err != nil {
		return ph, err
	}
	defer m.b.Free(idx)
	losses, err := m.b.NewMatrix(steps, 1, gpu.Float32)
	if err != nil {
		return ph, err
	}
	defer m.b.Free(losses)
	readLosses := func() ([]float64, error) {
		var d mat.Dense
		if err := m.b.Download(&d, losses); err != nil {
			return nil, err
		}
		return mat.Col(nil, 0, &d), nil
	}
	from := min(cfg.TimedFrom, steps-1)
	var stats []StepStats
	o := NewAdam()
	t0 := time.Now()
	for s := 0; s < steps; s++ {
		rate := lr
		if cfg.Warmup > 0 {
			rate = lr * min(1, float64(s+1)/float64(cfg.Warmup))
		}
		st, err := m.TrainStep(Slice(ds, idx, s*B, B), mode, c, o, rate, losses.Ptr()+uintptr(4*s))
		if err != nil {
			return ph, fmt.Errorf("%s step %d: %w", name, s, err)
		}
		if s >= from {
			stats = append(stats, st)
		}
		every := cfg.ProgressEvery
		if every == 0 {
			every = 25
		}
		if cfg.Progress != nil && ((s+1)%every == 0 || s == steps-1) {
			l, err := readLosses()
			if err != nil {
				return ph, err
			}
			cfg.Progress(name, s, steps, l[s])
		}
	}
	ph.Wall = time.Since(t0)
	if ph.Losses, err = readLosses(); err != nil {
		return ph, err
	}
	summarize(&ph, stats)
	return ph, nil
}

// summarize fills the phase's figures from its timed steps.
func summarize(ph *Phase, stats []StepStats) {
	ph.Timed = len(stats)
	if len(stats) == 0 {
		return
	}
	var ms, cms, rms []float64
	ph.StepMsMin = math.Inf(1)
	ph.Live = stats[0].Live
	for _, s := range stats {
		ms, cms, rms = append(ms, s.Ms), append(cms, s.CompressMs), append(rms, s.RecomputeMs)
		ph.StepMsMin = min(ph.StepMsMin, s.Ms)
		ph.Saved, ph.SavedTensors, ph.Peak = max(ph.Saved, s.Saved), max(ph.SavedTensors, s.SavedTensors), max(ph.Peak, s.Peak)
		ph.Mallocs += s.Mallocs
		ph.Compressions = max(ph.Compressions, s.Compressions)
	}
	ph.StepMs, ph.CompressMs, ph.RecomputeMs = median(ms), median(cms), median(rms)
}

// fineTune runs one fine-tuning run from the snapshot: the baseline for
// mode Plain, else compressed as rc says.
func (r *runner) fineTune(rc RunConfig, fine, test *Dataset) (RunResult, error) {
	m, cfg := r.m, r.cfg
	rr := RunResult{Name: "as they are", Mode: rc.Mode}
	if rc.Mode != Plain {
		rr.Name, rr.Compression = "loract "+rc.Mode.String(), rc.Compression
		if rc.Name != "" {
			rr.Name = rc.Name
		}
		rr.Compression.Backend = nil
		rr.Method, rr.Rank, rr.Group, rr.Ends, rr.OpsGroup = rc.Compression.Method.String(), rc.Compression.Rank.String(), rc.Group, rc.Ends, rc.OpsGroup
		rr.RecomputeGELU, rr.RecomputeLN, rr.RecomputeAttention = rc.RecomputeGELU, rc.RecomputeLN, rc.RecomputeAttention
	}
	if err := m.Restore(); err != nil {
		return rr, err
	}
	m.SetLoRA(true)
	m.SetCheckpointGroup(rc.Group)
	m.SetCheckpointEnds(rc.Ends)
	m.SetOpsGroup(rc.OpsGroup)
	m.SetRecomputeGELU(rc.RecomputeGELU)
	m.SetRecomputeLN(rc.RecomputeLN)
	m.SetRecomputeAttention(rc.RecomputeAttention)
	var c *activation.Compressor
	if rc.Mode != Plain {
		cc := rc.Compression
		cc.Backend = m.b
		var err error
		if c, err = activation.New(cc); err != nil {
			return rr, err
		}
		defer c.Close()
	}
	phase := "fine-tune, " + rr.Name
	for range rc.PlanSteps {
		if _, err := m.TrainStep(Batch{Data: fine, Idx: fine.seq.Ptr(), Size: cfg.Batch}, rc.Mode, c, nil, 0, 0); err != nil {
			return rr, fmt.Errorf("%s, planning step: %w", phase, err)
		}
	}
	var err error
	if rr.Phase, err = r.train(phase, fine, cfg.FineTuneSteps, cfg.FineTuneLR, rc.Mode, c, cfg.Model.Seed+2); err != nil {
		return rr, err
	}
	if rr.Accuracy, err = m.Accuracy(test, r.evalBatch()); err != nil {
		return rr, err
	}
	if c != nil {
		rr.Layers = c.Stats().Layers
	}
	// Saved activations at the batch and at half of it, one step each
	// without an update, on the first images of the set.
	// Each is the second of two steps at its batch: the compressor's
	// workspace (its float32 factors, one per input of a batched
	// compression) is resized to a new batch in the first, and a workspace
	// freed inside the measured step would lower its excess over the
	// step's start.
	rr.HalfBatch = max(1, cfg.Batch/2)
	for _, n := range []int{cfg.Batch, rr.HalfBatch} {
		var st StepStats
		for range 2 {
			if st, err = m.TrainStep(Batch{Data: fine, Idx: fine.seq.Ptr(), Size: n}, rc.Mode, c, nil, 0, 0); err != nil {
				return rr, err
			}
		}
		if n == cfg.Batch {
			rr.SavedFull = st.Saved
		} else {
			rr.SavedHalf = st.Saved
		}
	}
	rr.PerSample, rr.Fixed, rr.MaxBatch = fitBudget(cfg.Batch, rr.SavedFull, rr.HalfBatch, rr.SavedHalf, cfg.Budget)
	if c != nil {
		if rr.GradCos, rr.MinCos, rr.MinParam, err = r.gradFidelity(fine, rc.Mode, c); err != nil {
			return rr, err
		}
		if r.trained {
			if err := m.LoadTrained(); err != nil {
				return rr, err
			}
			if rr.RefGradCos, rr.RefMinCos, rr.RefMinParam, err = r.gradFidelity(fine, rc.Mode, c); err != nil {
				return rr, err
			}
		}
	}
	return rr, nil
}

// fitBudget returns the line bytes = fixed + perSample·batch through the
// measurements (b1, s1) and (b2, s2) and the largest batch whose bytes it
// keeps within budget (0 if none). With one batch size it is the
// proportional rule s1/b1 per sample.
func fitBudget(b1 int, s1 int64, b2 int, s2 int64, budget int64) (perSample, fixed float64, maxBatch int) {
	if b1 == b2 {
		perSample = float64(s1) / float64(b1)
	} else {
		perSample = float64(s1-s2) / float64(b1-b2)
		fixed = float64(s1) - perSample*float64(b1)
	}
	if perSample <= 0 {
		return perSample, fixed, 0
	}
	n := (float64(budget) - fixed) / perSample
	if n < 1 {
		return perSample, fixed, 0
	}
	return perSample, fixed, int(math.Floor(n))
}

// gradFidelity returns the cosine between the trainable gradients of the
// first batch of fine computed with mode and c and with plain
// backpropagation (no update), overall and the lowest per parameter.
func (r *runner) gradFidelity(fine *Dataset, mode Mode, c *activation.Compressor) (cos, minCos float64, minName string, err error) {
	m := r.m
	bt := Batch{Data: fine, Idx: fine.seq.Ptr(), Size: r.cfg.Batch}
	var g [2]map[string]*mat.Dense
	for i, md := range []Mode{Plain, mode} {
		if _, err := m.TrainStep(bt, md, c, nil, 0, 0); err != nil {
			return 0, 0, "", err
		}
		if g[i], err = m.Grads(); err != nil {
			return 0, 0, "", err
		}
	}
	names := make([]string, 0, len(g[0]))
	for n := range g[0] {
		names = append(names, n)
	}
	sort.Strings(names)
	var dot, na, nb float64
	minCos = 2
	for _, n := range names {
		x, y := g[0][n].RawMatrix().Data, g[1][n].RawMatrix().Data
		var d, a, bb float64
		for i := range x {
			d, a, bb = d+x[i]*y[i], a+x[i]*x[i], bb+y[i]*y[i]
		}
		if a > 0 && bb > 0 {
			if c := d / math.Sqrt(a*bb); c < minCos {
				minCos, minName = c, n
			}
		}
		dot, na, nb = dot+d, na+a, nb+bb
	}
	return dot / math.Sqrt(na*nb), minCos, minName, nil
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
