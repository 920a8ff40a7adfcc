package main

import (
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/cputime"
	"github.com/loract/loract/cmd/loract/internal/mnist"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/lowrank"
)

func init() {
	commands["demo"] = command{
		summary: "fine-tune a small ViT on MNIST with and without compressed activations",
		run:     runDemo,
	}
}

// demoOptions are the validated flags of 'loract demo'.
type demoOptions struct {
	args     []string
	cfg      vit.DemoConfig
	mode     string
	markdown bool
	cpuprof  string
	cache    string
	// gpu is the configuration of -device gpu (nil: the CPU demo).
	gpu *gpuDemoOptions
	// sweep is "" or "bytes" (the equal-bytes sweep, sweep.go), writing
	// its figure to sweepPlot if not empty (an existing file only with
	// force).
	sweep     string
	sweepPlot string
	force     bool
	// floor is -budget-floor: the sweep's budget rows with a floor.
	floor float64
}

// parseDemo parses and checks every flag of 'loract demo', so that a bad
// value fails at once rather than after minutes of training; nil options
// (and no error) for -h.
func parseDemo(args []string, stderr io.Writer) (*demoOptions, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dim      = fs.Int("dim", 64, "hidden size d")
		heads    = fs.Int("heads", 4, "attention heads (divides -dim)")
		mlp      = fs.Int("mlp", 128, "MLP hidden size")
		depth    = fs.Int("depth", 2, "transformer blocks")
		patch    = fs.Int("patch", 7, "patch side in pixels (divides 28)")
		batch    = fs.Int("batch", 64, "batch size")
		preSteps = fs.Int("pretrain-steps", 500, "pre-training steps on digits 0–4")
		ftSteps  = fs.Int("finetune-steps", 300, "fine-tuning steps on digits 5–9 (each run)")
		preLR    = fs.Float64("pretrain-lr", 2e-3, "pre-training Adam learning rate")
		ftLR     = fs.Float64("finetune-lr", 3e-3, "fine-tuning Adam learning rate")
		lora     = fs.Int("lora-rank", 8, "LoRA rank")
		method   = fs.String("method", "rows", "compression: rows (LoRAct), gaussian, exact, none")
		rank     = fs.Int("rank", 0, "fixed rank k (overrides -ratio)")
		ratio    = fs.Float64("ratio", 0.45, "rank as a fraction of the hidden size, in (0, 1] (0.45: k = 29 of 64, 24% of float32 bytes in bf16)")
		tol      = fs.Float64("tol", 0, "relative-error tolerance ε in (0, 1) choosing k per activation (overrides -rank, -ratio)")
		over     = fs.Int("oversample", 0, "oversampling p")
		power    = fs.Int("power", 0, "power iterations q")
		prec     = fs.String("precision", "bf16", "factor storage: bf16, float32")
		mode     = fs.String("mode", "checkpoint", "checkpoint (compressed block inputs, recompute) or ops (compress what each op saves); with -device gpu also both, its default")
		workers  = fs.Int("workers", 0, "asynchronous compression goroutines (0: synchronous)")
		seed     = fs.Uint64("seed", 1, "seed of the model, the batches and the sketches")
		markdown = fs.Bool("markdown", false, "also print the results as a markdown section for docs/results.md")
		cpuprof  = fs.String("cpuprofile", "", "write a CPU profile to this file")
		cache    = fs.String("pretrained", "", "file caching the pre-trained weights: loaded if it exists (for the same model flags and seed), else written after pre-training")
		device   = fs.String("device", "cpu", "cpu, or gpu: the model on CUDA device 0, the flags not set taking the GPU defaults "+gpuDefaultsHelp())
		gf       = gpuDemoFlags(fs)
		sweep    = fs.String("sweep", "", "bytes: instead of one compressed run, a sweep at the stored bytes of the -ratio or -rank bf16 factors: int8 factors, quantized residuals and the byte-budget policy beside them (with -device gpu: compressed checkpointing on the device)")
		sPlot    = fs.String("sweep-plot", "", "with -sweep: write the sweep's figure (PNG) to this file")
		floor    = fs.Float64("budget-floor", 0.8, "with -sweep: also run each storage's byte budget with this floor (activation.BudgetFloor; 0: none)")
		force    = fs.Bool("force", false, "with -sweep-plot: replace an existing file")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	switch *device {
	case "cpu":
		if set := setFlags(fs, gpuOnlyFlags...); len(set) > 0 {
			verb := "applies"
			if len(set) > 1 {
				verb = "apply"
			}
			return nil, fmt.Errorf("%s %s only with -device gpu", strings.Join(set, ", "), verb)
		}
	case "gpu":
		gpuDefaults(fs, map[string]any{"dim": dim, "heads": heads, "mlp": mlp, "depth": depth, "patch": patch,
			"batch": batch, "pretrain-steps": preSteps, "finetune-steps": ftSteps, "pretrain-lr": preLR,
			"finetune-lr": ftLR, "ratio": ratio, "mode": mode, "ckpt-ends": gf.ends})
	default:
		return nil, fmt.Errorf("unknown -device %q (cpu, gpu)", *device)
	}
	positive := []struct {
		name string
		v    int
	}{{"dim", *dim}, {"heads", *heads}, {"mlp", *mlp}, {"depth", *depth}, {"patch", *patch}, {"batch", *batch},
		{"finetune-steps", *ftSteps}, {"lora-rank", *lora}}
	for _, f := range positive {
		if f.v < 1 {
			return nil, fmt.Errorf("-%s %d: must be ≥ 1", f.name, f.v)
		}
	}
	nonNegative := []struct {
		name string
		v    int
	}{{"pretrain-steps", *preSteps}, {"rank", *rank}, {"oversample", *over}, {"power", *power}, {"workers", *workers}}
	for _, f := range nonNegative {
		if f.v < 0 {
			return nil, fmt.Errorf("-%s %d: must be ≥ 0", f.name, f.v)
		}
	}
	switch {
	case mnist.Side%*patch != 0:
		return nil, fmt.Errorf("-patch %d does not divide the image side %d (1, 2, 4, 7, 14 or 28)", *patch, mnist.Side)
	case *dim%*heads != 0:
		return nil, fmt.Errorf("-heads %d does not divide -dim %d", *heads, *dim)
	case !(*preLR > 0) || math.IsInf(*preLR, 0):
		return nil, fmt.Errorf("-pretrain-lr %g: must be a positive number", *preLR)
	case !(*ftLR > 0) || math.IsInf(*ftLR, 0):
		return nil, fmt.Errorf("-finetune-lr %g: must be a positive number", *ftLR)
	case *tol != 0 && !(*tol > 0 && *tol < 1):
		return nil, fmt.Errorf("-tol %g: the tolerance is in (0, 1) (0: off)", *tol)
	case *tol == 0 && *rank == 0 && !(*ratio > 0 && *ratio <= 1):
		return nil, fmt.Errorf("-ratio %g: the rank ratio is in (0, 1]", *ratio)
	case *mode == "both" && *device != "gpu":
		return nil, errors.New("-mode both needs -device gpu (the CPU demo runs one mode)")
	case *mode != "checkpoint" && *mode != "ops" && *mode != "both":
		return nil, fmt.Errorf("unknown -mode %q (checkpoint, ops; both with -device gpu)", *mode)
	case *sweep != "" && *sweep != "bytes":
		return nil, fmt.Errorf("unknown -sweep %q (bytes)", *sweep)
	case *sweep != "" && *tol > 0:
		return nil, fmt.Errorf("-sweep bytes compares at the bytes of a -ratio or -rank: not with -tol")
	case *sweep == "" && *sPlot != "":
		return nil, fmt.Errorf("-sweep-plot without -sweep")
	case !(*floor >= 0 && *floor <= 1):
		return nil, fmt.Errorf("-budget-floor %g outside [0, 1]", *floor)
	case *sPlot != "" && !*force && exists(*sPlot):
		return nil, fmt.Errorf("-sweep-plot %s exists (replace it with -force)", *sPlot)
	}
	m, err := activation.ParseMethod(*method)
	if err != nil {
		return nil, fmt.Errorf("-method: %w", err)
	}
	if *sweep != "" && m == activation.Uncompressed {
		return nil, fmt.Errorf("-sweep bytes compares compressed storage: not with -method none")
	}
	cc := activation.Config{Method: m, Oversample: *over, PowerIters: *power, Seed: *seed,
		Workers: *workers, MeasureError: true, Rank: activation.Ratio(*ratio)}
	switch {
	case *tol > 0:
		cc.Rank = activation.Tolerance(*tol, 0)
	case *rank > 0:
		cc.Rank = activation.Fixed(*rank)
	}
	switch *prec {
	case "bf16":
		cc.Precision = lowrank.BFloat16
	case "float32":
		cc.Precision = lowrank.Float32
	default:
		return nil, fmt.Errorf("unknown -precision %q (bf16, float32)", *prec)
	}
	// The compressor checks its configuration as a whole.
	c, err := activation.New(cc)
	if err != nil {
		return nil, fmt.Errorf("compression flags: %w", err)
	}
	c.Close()
	for _, f := range []struct{ flag, name string }{{"cpuprofile", *cpuprof}, {"pretrained", *cache}, {"sweep-plot", *sPlot}} {
		if err := writableDir(f.name); err != nil {
			return nil, fmt.Errorf("-%s: %w", f.flag, err)
		}
	}
	o := &demoOptions{args: args, mode: *mode, markdown: *markdown, cpuprof: *cpuprof, cache: *cache,
		sweep: *sweep, sweepPlot: *sPlot, force: *force, floor: *floor}
	o.cfg = vit.DemoConfig{
		Model: vit.Config{Side: mnist.Side, Patch: *patch, Dim: *dim, Heads: *heads, MLP: *mlp,
			Depth: *depth, Classes: 10, Seed: *seed},
		Batch: *batch, PretrainSteps: *preSteps, FineTuneSteps: *ftSteps,
		PretrainLR: *preLR, FineTuneLR: *ftLR, LoRARank: *lora, LoRAScale: 1,
		Checkpoint: *mode == "checkpoint", Compression: cc,
	}
	if *device == "cpu" {
		switch {
		case (*mode == "ops" || *sweep != "") && len(setFlags(fs, "ckpt-ends")) > 0:
			return nil, errors.New("-ckpt-ends applies to compressed checkpointing (-mode checkpoint) without -sweep on the CPU")
		case *mode == "checkpoint" && len(setFlags(fs, "ops-rebuild")) > 0:
			return nil, errors.New("-ops-rebuild applies to -mode ops without -sweep: checkpointing recomputes the blocks instead")
		case *sweep != "" && len(setFlags(fs, "ops-rebuild")) > 0:
			return nil, errors.New("-ops-rebuild applies to -mode ops without -sweep: the sweep compares storages of the compressible set as it is")
		case *mode == "ops" && *sweep == "":
			if o.cfg.Rebuild, err = parseRebuild(*gf.rebuild); err != nil {
				return nil, err
			}
		}
		o.cfg.Ends = *mode == "checkpoint" && *sweep == "" && *gf.ends
	}
	if *device == "gpu" {
		g, err := gf.options(fs, o, *rank > 0 || *tol > 0)
		if err != nil {
			return nil, err
		}
		o.gpu = g
	}
	return o, nil
}

// trainDemo runs the demo's training; tests replace it to see that bad
// flags never reach it.
var trainDemo = vit.RunDemo

func runDemo(args []string) error {
	o, err := parseDemo(args, os.Stderr)
	if err != nil || o == nil {
		return err
	}
	return o.run(os.Stdout, os.Stderr)
}

func (o *demoOptions) run(stdout io.Writer, stderr *os.File) error {
	if o.gpu != nil {
		return o.runGPU(stdout, stderr)
	}
	cfg := o.cfg
	cfg.CPUTime = cputime.Self
	if o.cache != "" {
		cfg.Pretrained, cfg.Save = weightCache(o.cache)
	}
	d, err := loadDemoData()
	if err != nil {
		return err
	}
	if o.sweep != "" {
		return o.runSweep(stdout, stderr, d.dir, d.pre, d.fine, d.testPre, d.testFine)
	}
	mc, cc := cfg.Model, cfg.Compression
	fmt.Fprintf(stdout, "loract demo: ViT d=%d heads=%d mlp=%d depth=%d patch=%d (%d tokens), batch %d; MNIST from %s\n",
		mc.Dim, mc.Heads, mc.MLP, mc.Depth, mc.Patch, mc.Tokens(), cfg.Batch, d.dir)
	fmt.Fprintf(stdout, "pre-train %d steps on digits 0–4 (%d images); fine-tune LoRA r=%d %d steps on digits 5–9 (%d images)\n",
		cfg.PretrainSteps, len(d.pre.Labels), cfg.LoRARank, cfg.FineTuneSteps, len(d.fine.Labels))
	fmt.Fprintf(stdout, "compression: method %s, rank %v, oversample %d, power %d, %s factors, mode %s, workers %d\n\n",
		cc.Method, cc.Rank, cc.Oversample, cc.PowerIters, cc.Precision, o.mode, cc.Workers)

	stop, err := startProfile(o.cpuprof)
	if err != nil {
		return err
	}
	defer stop()
	load0 := loadavg()
	start := time.Now()
	steps := progress.NewSteps(stderr)
	cfg.Progress = steps.Step
	res, err := trainDemo(cfg, d.pre, d.fine, d.testPre, d.testFine)
	if err != nil {
		return err
	}
	total := time.Since(start)
	fmt.Fprintln(stdout)
	report(stdout, res, cfg, total)
	if o.markdown {
		fmt.Fprintln(stdout, "\n---- markdown ----")
		fmt.Fprintf(stdout, "Command: `go run ./cmd/loract demo %s`\n\n", strings.Join(o.args, " "))
		fmt.Fprintf(stdout, "Machine: %d cores (GOMAXPROCS %d), %s/%s, %s; load average before/after: %s / %s.\n\n",
			runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), load0, loadavg())
		fmt.Fprintln(stdout, "```")
		report(stdout, res, cfg, total)
		fmt.Fprintln(stdout, "```")
	}
	return nil
}

// weightCache returns the DemoConfig hooks that load the pre-trained
// weights from the file name if it exists and write them there after
// pre-training otherwise.
func weightCache(name string) (load func(*vit.Model) (bool, error), save func(*vit.Model) error) {
	load = func(m *vit.Model) (bool, error) {
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		defer f.Close()
		var w [][]float64
		if err := gob.NewDecoder(f).Decode(&w); err != nil {
			return false, fmt.Errorf("reading %s: %w", name, err)
		}
		return true, m.SetWeights(w)
	}
	save = func(m *vit.Model) error {
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		if err := gob.NewEncoder(f).Encode(m.Weights()); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return load, save
}

func mib(b int) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func pct(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

func report(w io.Writer, res *vit.DemoResult, cfg vit.DemoConfig, total time.Duration) {
	b, l := &res.Baseline, &res.Loract
	fmt.Fprintf(w, "pre-trained on 0–4: test accuracy %.2f%% (%.1fs)\n\n", 100*res.PretrainAccuracy, res.PretrainWall.Seconds())
	fmt.Fprintf(w, "%-36s %12s %12s\n", "fine-tuned on 5–9", "as they are", "loract")
	fmt.Fprintf(w, "%-36s %11.2f%% %11.2f%%\n", "test accuracy (digits 5–9)", 100*b.Accuracy, 100*l.Accuracy)
	fmt.Fprintf(w, "%-36s %12.4f %12.4f\n", "final loss (mean of last 20 steps)", tail(b.Losses), tail(l.Losses))
	fmt.Fprintf(w, "%-36s %11.1fs %11.1fs\n", "wall time", b.Wall.Seconds(), l.Wall.Seconds())
	if b.CPU > 0 {
		fmt.Fprintf(w, "%-36s %11.1fs %11.1fs\n", "CPU time (user+system)", b.CPU.Seconds(), l.CPU.Seconds())
	}
	fmt.Fprintf(w, "%-36s %12s %12s\n", "peak, all saved activations", mib(b.PeakAll), mib(l.PeakAll))
	fmt.Fprintf(w, "%-36s %12s %12s\n", "peak, loract's compressed set¹", "-", mib(l.Main.Total.Peak))
	fmt.Fprintf(w, "%-36s %12s %12s\n", "  the same tensors as float32 copies", "-", mib(l.Main.Total.DensePeak))
	if cfg.Checkpoint {
		fmt.Fprintf(w, "¹ each block's input, saved compressed; backward recomputes the block from it and keeps that block's\n"+
			"  tensors as float32 copies for its own backward only. The baseline compresses nothing: it saves every\n"+
			"  tensor as a float32 copy, so only \"all saved activations\" compares the two runs.\n")
		if cfg.Ends {
			fmt.Fprintf(w, "  With -ckpt-ends, but the first block's input, recomputed from the images, and the last block's,\n"+
				"  whose block keeps its tensors from the forward as float32 copies instead of being recomputed.\n")
		}
	} else {
		fmt.Fprintf(w, "¹ the inputs of the linear layers and GELUs, saved compressed; the other saved tensors (LayerNorm\n"+
			"  inputs, q/k/v heads, attention probabilities, LoRA's x·A) stay float32 copies, as every tensor is in\n"+
			"  the baseline, so only \"all saved activations\" compares the two runs.\n")
		if t := rebuildText(cfg.Rebuild); t != "" {
			fmt.Fprintf(w, "  Not saved at all but rebuilt in backward (-ops-rebuild): %s.\n", t)
		}
	}
	fmt.Fprintf(w, "\naccuracy drop: %.2f points\n", 100*(b.Accuracy-l.Accuracy))
	fmt.Fprintf(w, "memory: all saved activations peak at %s of the baseline's %s, for %s the baseline's wall time",
		pct(l.PeakAll, b.PeakAll), mib(b.PeakAll), times(l.Wall, b.Wall))
	if b.CPU > 0 {
		fmt.Fprintf(w, " (%s its CPU time)", times(l.CPU, b.CPU))
	}
	fmt.Fprintf(w, "\ncompressed set¹ alone: %s of its float32 bytes (peak %s of %s)\n",
		pct(l.Main.Total.Peak, l.Main.Total.DensePeak), mib(l.Main.Total.Peak), mib(l.Main.Total.DensePeak))
	fmt.Fprintf(w, "measured Go heap (live objects after GC) at the last step's forward/backward boundary, above the step's start:\n"+
		"  as they are %s (accounting %s), loract %s (accounting %s)\n",
		mib(int(b.HeapSaved)), mib(int(b.StatsLive)), mib(int(l.HeapSaved)), mib(int(l.StatsLive)))
	fmt.Fprintf(w, "overhead of loract: %+.1f%% wall time", 100*(l.Wall.Seconds()/b.Wall.Seconds()-1))
	if b.CPU > 0 {
		fmt.Fprintf(w, ", %+.1f%% CPU time", 100*(l.CPU.Seconds()/b.CPU.Seconds()-1))
	}
	fmt.Fprintf(w, "; %.1fs wall inside Compress\n", l.CompressTime.Seconds())
	fmt.Fprintf(w, "gradient fidelity: cosine(compressed, uncompressed) of all LoRA+head gradients on one batch = %.4f\n", res.GradCos)
	worst := res.PerParam[0]
	for _, p := range res.PerParam {
		if p.Cos < worst.Cos {
			worst = p
		}
	}
	fmt.Fprintf(w, "  lowest per-parameter cosine: %s %.4f\n", worst.Name, worst.Cos)

	fmt.Fprintf(w, "\nper layer, loract run (compressed set¹; peak bytes, rank, relative error last/max):\n")
	fmt.Fprintf(w, "  %-14s %10s %10s %7s %6s %9s %9s\n", "layer", "peak", "float32", "ratio", "rank", "err", "max err")
	for _, s := range l.Main.Layers {
		if s.Calls == 0 {
			fmt.Fprintf(w, "  %-14s %s\n", s.Layer, "the same tensor as an earlier layer: stored once (dedup cache)")
			continue
		}
		fmt.Fprintf(w, "  %-14s %10s %10s %7s %6d %9.4f %9.4f\n", s.Layer, mib(s.Peak), mib(s.DensePeak),
			pct(s.Peak, s.DensePeak), s.Rank, s.RelError, s.MaxRelError)
	}
	fmt.Fprintf(w, "\nper layer, baseline run (every saved tensor, float32 copies; peak bytes):\n")
	for _, s := range b.Main.Layers {
		if s.Calls == 0 {
			fmt.Fprintf(w, "  %-14s %10s\n", s.Layer, "dedup")
			continue
		}
		fmt.Fprintf(w, "  %-14s %10s\n", s.Layer, mib(s.Peak))
	}
	if len(l.Rest.Layers) > 0 {
		fmt.Fprintf(w, "loract run, tensors outside the compressed set (float32 copies), total peak %s\n", mib(l.Rest.Total.Peak))
	}
	fmt.Fprintf(w, "\ntotal wall time %.1fs\n", total.Seconds())
}

// times formats a ÷ b as "1.23×".
func times(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds())
}

func tail(x []float64) float64 {
	n := min(20, len(x))
	var s float64
	for _, v := range x[len(x)-n:] {
		s += v
	}
	return s / float64(max(n, 1))
}

// exists reports whether a file name exists.
func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// loadavg returns the 1-minute load average where /proc tells it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// demoData is the demo's MNIST split: pre-training on digits 0–4,
// fine-tuning on 5–9, and the test images of each, read from dir.
type demoData struct {
	dir                          string
	pre, fine, testPre, testFine vit.Data
}

// loadDemoData reads the MNIST data shipped in the GoMNIST module.
func loadDemoData() (*demoData, error) {
	dir, err := mnist.Dir()
	if err != nil {
		return nil, err
	}
	train, test, err := mnist.Load(dir)
	if err != nil {
		return nil, err
	}
	low := func(l int) bool { return l < 5 }
	high := func(l int) bool { return l >= 5 }
	data := func(s *mnist.Set) vit.Data { return vit.Data{Pixels: s.Pixels, Labels: s.Labels} }
	return &demoData{dir: dir, pre: data(train.Filter(low)), fine: data(train.Filter(high)),
		testPre: data(test.Filter(low)), testFine: data(test.Filter(high))}, nil
}

// startProfile starts a CPU profile into the file name ("": none) and
// returns what stops it.
func startProfile(name string) (stop func(), err error) {
	if name == "" {
		return func() {}, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
