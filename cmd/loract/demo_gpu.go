package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/plots"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/cmd/loract/internal/vitgpu"
	"github.com/loract/loract/gpu"
)

// The GPU demo (issue 12): 'loract demo -device gpu' runs the ViT of
// package vitgpu on CUDA device 0, pre-trains it, and fine-tunes it three
// times — activations kept as they are (bf16), compressed with
// checkpointing, compressed per op — then times the same baseline in
// PyTorch. Flags not set take the defaults below; the flags of the CPU
// demo keep their meaning.

// gpuDefaultValues are the values of the shared flags under -device gpu.
var gpuDefaultValues = map[string]any{
	"dim": 384, "heads": 6, "mlp": 1536, "depth": 6, "patch": 4, "batch": 256,
	"pretrain-steps": 800, "finetune-steps": 400, "pretrain-lr": 1e-3, "finetune-lr": 2e-3,
	"ratio": 0.3, "mode": "both", "ckpt-ends": true,
}

// gpuDefaultOrder is the order in which -device's help lists the GPU
// defaults.
var gpuDefaultOrder = []string{"dim", "heads", "mlp", "depth", "patch", "batch", "pretrain-steps", "finetune-steps",
	"pretrain-lr", "finetune-lr", "ratio", "mode", "ckpt-ends"}

// gpuDefaultsHelp lists the GPU defaults as flags.
func gpuDefaultsHelp() string {
	var parts []string
	for _, n := range gpuDefaultOrder {
		f := "-%s %v"
		if _, ok := gpuDefaultValues[n].(bool); ok {
			f = "-%s=%v"
		}
		parts = append(parts, fmt.Sprintf(f, n, gpuDefaultValues[n]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// gpuOnlyFlags are the flags that only -device gpu reads.
var gpuOnlyFlags = []string{"ops-ratio", "ckpt-group", "ops-group", "budget", "torch", "json", "activations", "lr-warmup", "twin-steps", "calibration-update", "profile-phase"}

// gpuFlags holds the flags of -device gpu.
type gpuFlags struct {
	opsRatio, budget *float64
	torch, calUpdate *bool
	ends             *bool
	rebuild          *string
	json, acts       *string
	profile          *string
	warmup, twin     *int
	group, opsGroup  *int
}

func gpuDemoFlags(fs *flag.FlagSet) *gpuFlags {
	return &gpuFlags{
		opsRatio:  fs.Float64("ops-ratio", 0.15, "-device gpu: the rank ratio of -mode ops (-ratio is checkpointing's; -rank and -tol set both)"),
		rebuild:   fs.String("ops-rebuild", "ln,gelu,att", "-mode ops (or both): the tensors backward rebuilds instead of their being compressed, a comma-separated list: ln (q/k/v's and fc1's inputs, x̂·γ + β from the LayerNorms' kept x̂), gelu (fc2's input, GELU of GELU's rebuilt input), att (o's input, P·V from attention's kept probabilities and values); none compresses all five of a block"),
		group:     fs.Int("ckpt-group", 0, "-device gpu: block inputs that compressed checkpointing compresses together, in one batched compression (0: all of them; 1: each before its block runs)"),
		opsGroup:  fs.Int("ops-group", 3, "-device gpu -mode ops (or both): blocks whose compressions are made together, in one batched compression at the group's last block (1: each block's at its end; a group of n holds up to n − 1 blocks' tensors as they are until they are compressed)"),
		ends:      fs.Bool("ckpt-ends", false, "compressed checkpointing leaves its ends uncompressed — recomputes the first block's input from the images and keeps the last block's tape from the forward — and compresses the other block inputs (false: every block input compressed, every block recomputed; true by default with -device gpu; at depth ≤ 2 it compresses nothing)"),
		budget:    fs.Float64("budget", 8, "-device gpu: the activation-memory budget in GiB for the largest batch that fits"),
		torch:     fs.Bool("torch", true, "-device gpu: time the PyTorch twin of the baseline (python3 with torch, or $LORACT_PYTHON) after the Go runs"),
		json:      fs.String("json", "", "-device gpu: also write the results as JSON to this file"),
		acts:      fs.String("activations", "bf16", "-device gpu: the activations' type, bf16 or float32 (exact float32 products)"),
		warmup:    fs.Int("lr-warmup", 50, "-device gpu: steps of linear learning-rate warm-up in each phase"),
		twin:      fs.Int("twin-steps", 30, "-device gpu: timed steps of the PyTorch twin (after 10 warm-up steps)"),
		profile:   fs.String("profile-phase", "", "-device gpu: make the training phases whose names contain this text (pre-train, as they are, loract checkpoint, loract ops) the CUDA profiler's capture range, for nsys profile --capture-range=cudaProfilerApi (docs/gpu-demo.md)"),
		calUpdate: fs.Bool("calibration-update", false, "-device gpu -sweep bytes: apply the update of a byte budget's first, rank-1 calibration step (by default the budget runs take that step on the first batch without an update, as docs/activation.md advises)"),
	}
}

// gpuDefaults sets every flag in ptrs that the command line did not set
// to its -device gpu default.
func gpuDefaults(fs *flag.FlagSet, ptrs map[string]any) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, p := range ptrs {
		if set[name] {
			continue
		}
		switch p := p.(type) {
		case *int:
			*p = gpuDefaultValues[name].(int)
		case *float64:
			*p = gpuDefaultValues[name].(float64)
		case *string:
			*p = gpuDefaultValues[name].(string)
		case *bool:
			*p = gpuDefaultValues[name].(bool)
		default:
			panic("gpuDefaults: flag " + name)
		}
	}
}

// gpuDemoOptions are the validated settings of -device gpu.
type gpuDemoOptions struct {
	cfg     vitgpu.DemoConfig
	torch   bool
	json    string
	twinRun int
	// sweep holds the settings of -sweep bytes, one per cfg.Runs entry.
	sweep []sweepSetting
}

// options checks the GPU flags and builds the device demo's configuration
// from the parsed CPU one (o.cfg, whose compression settings it reuses);
// fixedRank says that -rank or -tol chose the rank of both modes.
func (g *gpuFlags) options(fs *flag.FlagSet, o *demoOptions, fixedRank bool) (*gpuDemoOptions, error) {
	cc := o.cfg.Compression
	switch {
	case cc.Workers != 0:
		return nil, errors.New("-workers: -device gpu compresses on the model's stream (synchronously); asynchronous workers are not supported")
	case o.cache != "":
		return nil, errors.New("-pretrained caches the CPU model's weights; -device gpu pre-trains on the device")
	case !(*g.opsRatio > 0 && *g.opsRatio <= 1):
		return nil, fmt.Errorf("-ops-ratio %g: the rank ratio is in (0, 1]", *g.opsRatio)
	case !(*g.budget > 0) || math.IsInf(*g.budget, 0):
		return nil, fmt.Errorf("-budget %g: a positive number of GiB", *g.budget)
	case *g.warmup < 0:
		return nil, fmt.Errorf("-lr-warmup %d: must be ≥ 0", *g.warmup)
	case *g.group < 0:
		return nil, fmt.Errorf("-ckpt-group %d: must be ≥ 0 (0: all blocks)", *g.group)
	case *g.opsGroup < 1:
		return nil, fmt.Errorf("-ops-group %d: must be ≥ 1 (1: each block's compressions at its end)", *g.opsGroup)
	case *g.twin < 1:
		return nil, fmt.Errorf("-twin-steps %d: must be ≥ 1", *g.twin)
	case o.mode == "ops" && len(setFlags(fs, "ckpt-group", "ckpt-ends")) > 0:
		return nil, fmt.Errorf("%s applies to compressed checkpointing (-mode checkpoint or both, or -sweep bytes), not to -mode ops", strings.Join(setFlags(fs, "ckpt-group", "ckpt-ends"), " and "))
	case (o.mode == "checkpoint" || o.sweep != "") && len(setFlags(fs, "ops-rebuild", "ops-group")) > 0:
		return nil, fmt.Errorf("%s applies to -mode ops (or both): checkpointing recomputes the blocks instead", strings.Join(setFlags(fs, "ops-rebuild", "ops-group"), " and "))
	case *g.json != "":
		if err := writableDir(*g.json); err != nil {
			return nil, fmt.Errorf("-json: %w", err)
		}
	}
	var dt gpu.DType
	switch *g.acts {
	case "bf16":
		dt = gpu.BFloat16
	case "float32":
		dt = gpu.Float32
	default:
		return nil, fmt.Errorf("unknown -activations %q (bf16, float32)", *g.acts)
	}
	// Each compression's error comes from the factors' identity
	// ‖X‖² − ‖B‖² (activation.Config.MeasureError off): a measured error
	// would add a product and an L×d buffer to every compression, inside
	// the timed step.
	cc.MeasureError = false
	ops := cc
	if !fixedRank {
		ops.Rank = activation.Ratio(*g.opsRatio)
	}
	c := o.cfg
	d := vitgpu.DemoConfig{Model: c.Model, Batch: c.Batch, DType: dt, PretrainSteps: c.PretrainSteps,
		FineTuneSteps: c.FineTuneSteps, PretrainLR: c.PretrainLR, FineTuneLR: c.FineTuneLR, Warmup: *g.warmup,
		LoRARank: c.LoRARank, LoRAScale: c.LoRAScale, Budget: int64(*g.budget * (1 << 30)), TimedFrom: 5,
		ProfilePhase: *g.profile}
	var sweep []sweepSetting
	switch {
	case o.sweep != "":
		modeSet := false
		fs.Visit(func(f *flag.Flag) { modeSet = modeSet || f.Name == "mode" })
		if modeSet && o.mode != "checkpoint" {
			return nil, fmt.Errorf("-sweep bytes with -device gpu runs compressed checkpointing: not with -mode %s", o.mode)
		}
		var err error
		shapes := gpuCheckpointShapes(c.Model, c.Batch, *g.ends)
		if len(shapes) == 0 {
			return nil, fmt.Errorf("-sweep bytes: with -ckpt-ends (the default) a model of depth %d compresses no block input: use a depth ≥ 3 or -ckpt-ends=false", c.Model.Depth)
		}
		if sweep, err = sweepSettings(cc, shapes, o.floor); err != nil {
			return nil, err
		}
		for _, st := range sweep {
			sc := st.Compression
			sc.MeasureError = false // as above
			rc := vitgpu.RunConfig{Mode: vitgpu.Checkpoint, Compression: sc, Name: st.Name, Group: *g.group, Ends: *g.ends}
			if st.budget && !*g.calUpdate {
				rc.PlanSteps = 1 // the calibration step, without its update
			}
			d.Runs = append(d.Runs, rc)
		}
	default:
		if o.mode == "checkpoint" || o.mode == "both" {
			d.Runs = append(d.Runs, vitgpu.RunConfig{Mode: vitgpu.Checkpoint, Compression: cc, Group: *g.group, Ends: *g.ends})
		}
		if o.mode == "ops" || o.mode == "both" {
			rc := vitgpu.RunConfig{Mode: vitgpu.PerOp, Compression: ops, OpsGroup: *g.opsGroup}
			rb, err := parseRebuild(*g.rebuild)
			if err != nil {
				return nil, err
			}
			rc.RecomputeLN, rc.RecomputeGELU, rc.RecomputeAttention = rb.LN, rb.GELU, rb.Attention
			d.Runs = append(d.Runs, rc)
		}
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return &gpuDemoOptions{cfg: d, torch: *g.torch && o.sweep == "", json: *g.json, twinRun: *g.twin, sweep: sweep}, nil
}

// rebuildText names the tensors rb rebuilds ("" for none).
func rebuildText(rb vit.Rebuild) string {
	var names []string
	if rb.LN {
		names = append(names, "the LayerNorm outputs from their normalised inputs")
	}
	if rb.Attention {
		names = append(names, "o's input from the attention probabilities and values")
	}
	if rb.GELU {
		names = append(names, "fc2's input from GELU's")
	}
	return strings.Join(names, ", ")
}

// parseRebuild returns the per-op run's rebuilds named by -ops-rebuild.
func parseRebuild(v string) (vit.Rebuild, error) {
	var rb vit.Rebuild
	if strings.TrimSpace(v) == "none" {
		return rb, nil
	}
	for _, f := range strings.Split(v, ",") {
		switch strings.TrimSpace(f) {
		case "ln":
			rb.LN = true
		case "gelu":
			rb.GELU = true
		case "att":
			rb.Attention = true
		default:
			return rb, fmt.Errorf("-ops-rebuild %q: a comma-separated list of ln, gelu and att, or none", v)
		}
	}
	return rb, nil
}

// gpuCheckpointShapes are the tensors the device model compresses in a
// step of compressed checkpointing: each block's input, batch·tokens × d;
// with ends (-ckpt-ends) every block's but the first's and the last's.
func gpuCheckpointShapes(m vit.Config, batch int, ends bool) []vit.Shape {
	var shapes []vit.Shape
	for i := range m.Depth {
		if vit.CompressedInput(i, m.Depth, ends) {
			shapes = append(shapes, vit.Shape{Layer: fmt.Sprintf("blk%d.in", i), Rows: batch * m.Tokens(), Cols: m.Dim})
		}
	}
	return shapes
}

// openGPU and runGPUDemo are replaced by tests.
var (
	openGPU    = func() (*gpu.Backend, error) { return gpu.Open(0, nil) }
	runGPUDemo = vitgpu.RunDemo
)

// runGPU runs the device demo: the device is opened first, so that
// without CUDA the command fails at once, saying why.
func (o *demoOptions) runGPU(stdout io.Writer, stderr *os.File) (err error) {
	b, err := openGPU()
	if err != nil {
		return fmt.Errorf("-device gpu: %w", err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	log := progress.NewLog(stderr)
	dev, arch := b.Device()
	drv, _ := gpu.DriverVersion()
	log.Printf("GPU: %s (%s), CUDA driver API %d", dev, arch, drv)
	d, err := loadDemoData()
	if err != nil {
		return err
	}
	cfg := o.gpu.cfg
	writeGPUHeader(stdout, &cfg, dev, arch, drv, len(d.pre.Labels), len(d.fine.Labels), d.dir)
	stop, err := startProfile(o.cpuprof)
	if err != nil {
		return err
	}
	defer stop()
	steps := progress.NewSteps(stderr)
	cfg.Progress = steps.Step
	cfg.Log = log.Printf
	res, err := runGPUDemo(b, cfg, d.pre, d.fine, d.testPre, d.testFine)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if o.gpu.sweep != nil {
		return o.reportGPUSweep(stdout, res, &cfg, log)
	}
	reportGPU(stdout, res, &cfg)
	out := gpuOutput{Args: o.args, Result: res}
	var twinErr error
	if o.gpu.torch {
		if err := b.TrimPool(); err != nil {
			return err
		}
		out.Twin, out.TwinEnv, twinErr = runTwin(&cfg, o.gpu.twinRun, log)
		reportTwin(stdout, res, out.Twin, out.TwinEnv)
		if twinErr != nil {
			fmt.Fprintf(stdout, "PyTorch twin failed: %v\n", twinErr)
		}
	}
	if o.markdown {
		fmt.Fprintln(stdout, "\n---- markdown ----")
		markdownGPU(stdout, res, &cfg, out.Twin, o.args)
	}
	o.writeGPUJSON(out, log)
	return twinErr
}

// writeGPUJSON writes out to -json's file, if one was given. A diverged
// run's NaN has no JSON form: the tables printed hold everything, so a
// failed write is reported, not fatal.
func (o *demoOptions) writeGPUJSON(out gpuOutput, log *progress.Log) {
	if o.gpu.json == "" {
		return
	}
	buf, err := json.MarshalIndent(out, "", "  ")
	if err == nil {
		err = os.WriteFile(o.gpu.json, buf, 0o644)
	}
	if err != nil {
		log.Printf("-json %s: %v", o.gpu.json, err)
	}
}

// gpuOutput is what -json writes.
type gpuOutput struct {
	Args    []string
	Result  *vitgpu.DemoResult
	Twin    []vitgpu.TwinResult `json:",omitempty"`
	TwinEnv string              `json:",omitempty"`
}

// runTwin runs the PyTorch twin with $LORACT_PYTHON or python3, within
// three minutes.
func runTwin(cfg *vitgpu.DemoConfig, repeats int, log *progress.Log) ([]vitgpu.TwinResult, string, error) {
	py := os.Getenv("LORACT_PYTHON")
	if py == "" {
		var err error
		if py, err = exec.LookPath("python3"); err != nil {
			return nil, "", fmt.Errorf("no python3 for the PyTorch twin: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return vitgpu.RunTwin(ctx, vitgpu.TwinConfig{Python: py, Demo: cfg, Warmup: 10, Repeats: repeats,
		Modes: []string{"eager", "sdpa"}}, log.Printf)
}

func writeGPUHeader(w io.Writer, cfg *vitgpu.DemoConfig, dev, arch string, drv, nPre, nFine int, dir string) {
	mc := cfg.Model
	fmt.Fprintf(w, "loract demo -device gpu: %s (%s), CUDA driver API %d; MNIST from %s\n", dev, arch, drv, dir)
	fmt.Fprintf(w, "ViT d=%d heads=%d mlp=%d depth=%d patch=%d (%d tokens), batch %d, %v activations, float32 weights and Adam\n",
		mc.Dim, mc.Heads, mc.MLP, mc.Depth, mc.Patch, mc.Tokens(), cfg.Batch, cfg.DType)
	fmt.Fprintf(w, "pre-train %d steps on digits 0–4 (%d images, lr %g); fine-tune LoRA r=%d %d steps on 5–9 (%d images, lr %g); warm-up %d steps\n",
		cfg.PretrainSteps, nPre, cfg.PretrainLR, cfg.LoRARank, cfg.FineTuneSteps, nFine, cfg.FineTuneLR, cfg.Warmup)
	for _, r := range cfg.Runs {
		c := r.Compression
		name := "loract " + r.Mode.String()
		if r.Name != "" {
			name = r.Name + " (" + r.Mode.String() + ")"
		}
		storage := c.Precision.String() + " factors"
		if c.FactorBits == 8 {
			storage = "int8 factors"
		}
		if c.ResidualBits > 0 {
			storage += fmt.Sprintf(" + %d-bit residual", c.ResidualBits)
		}
		group := ""
		if r.Mode == vitgpu.PerOp {
			if t := rebuildText(vit.Rebuild{LN: r.RecomputeLN, Attention: r.RecomputeAttention, GELU: r.RecomputeGELU}); t != "" {
				group = "; rebuilt in backward: " + t
			}
			if r.OpsGroup > 1 {
				group += fmt.Sprintf("; compressed %d blocks at a time", r.OpsGroup)
			}
		}
		if r.Mode == vitgpu.Checkpoint {
			group = "; block inputs compressed all together"
			if r.Group > 0 && r.Group < mc.Depth {
				group = fmt.Sprintf("; block inputs compressed %d at a time", r.Group)
			}
			switch {
			case r.Ends && mc.Depth <= 2:
				group = fmt.Sprintf("; no block input compressed: at depth %d every block is an end (the first's input recomputed from the images, the last block's tape kept)", mc.Depth)
			case r.Ends:
				group += fmt.Sprintf(" (%d of %d: the first recomputed from the images, the last block's tape kept)", mc.Depth-2, mc.Depth)
			}
		}
		fmt.Fprintf(w, "%s: method %s, rank %v, oversample %d, power %d, %s%s\n",
			name, c.Method, c.Rank, c.Oversample, c.PowerIters, storage, group)
	}
}

func gib(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }
func mib64(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// pct64 formats a/b as a percentage.
func pct64(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// gpuRow is one row of the fine-tuning table: a label and a cell per run
// (the baseline first).
type gpuRow struct {
	label string
	cells []string
}

// gpuRows returns the fine-tuning table: every figure of issue 12 per run.
func gpuRows(res *vitgpu.DemoResult, cfg *vitgpu.DemoConfig) []gpuRow {
	runs := append([]vitgpu.RunResult{res.Baseline}, res.Runs...)
	b := &res.Baseline
	row := func(label string, f func(r *vitgpu.RunResult, base bool) string) gpuRow {
		g := gpuRow{label: label}
		for i := range runs {
			g.cells = append(g.cells, f(&runs[i], i == 0))
		}
		return g
	}
	dash := func(base bool, s string) string {
		if base {
			return "-"
		}
		return s
	}
	share := func(part, whole float64) string { return fmt.Sprintf("%.2f ms (%.1f%%)", part, 100*part/whole) }
	return []gpuRow{
		row("test accuracy (digits 5–9)", func(r *vitgpu.RunResult, _ bool) string { return fmt.Sprintf("%.2f%%", 100*r.Accuracy) }),
		row("  accuracy drop", func(r *vitgpu.RunResult, base bool) string {
			return dash(base, fmt.Sprintf("%.2f points", 100*(b.Accuracy-r.Accuracy)))
		}),
		row("saved activations, peak (allocator)", func(r *vitgpu.RunResult, _ bool) string { return mib64(r.Saved) }),
		row("  of the baseline's", func(r *vitgpu.RunResult, base bool) string { return dash(base, pct64(r.Saved, b.Saved)) }),
		row("  as tensor bytes", func(r *vitgpu.RunResult, _ bool) string { return mib64(r.SavedTensors) }),
		row("whole step, peak (allocator)", func(r *vitgpu.RunResult, _ bool) string { return gib(r.Peak) }),
		row("step time (median, CUDA events)", func(r *vitgpu.RunResult, _ bool) string { return fmt.Sprintf("%.2f ms", r.StepMs) }),
		row("  overhead", func(r *vitgpu.RunResult, base bool) string {
			return dash(base, fmt.Sprintf("%+.1f%%", 100*(r.StepMs/b.StepMs-1)))
		}),
		row("  in Compress calls", func(r *vitgpu.RunResult, base bool) string {
			return dash(base, share(r.CompressMs, r.StepMs))
		}),
		row("  rebuilding and recomputing", func(r *vitgpu.RunResult, base bool) string {
			if r.Mode != vitgpu.Checkpoint && r.Mode != vitgpu.PerOp {
				return "-"
			}
			return share(r.RecomputeMs, r.StepMs)
		}),
		row("fastest timed step (overhead)", func(r *vitgpu.RunResult, base bool) string {
			if base {
				return fmt.Sprintf("%.2f ms", r.StepMsMin)
			}
			return fmt.Sprintf("%.2f ms (%+.1f%%)", r.StepMsMin, 100*(r.StepMsMin/b.StepMsMin-1))
		}),
		row(fmt.Sprintf("largest batch in %s of saved activations", gib(cfg.Budget)), func(r *vitgpu.RunResult, _ bool) string {
			return fmt.Sprint(r.MaxBatch)
		}),
		row("  per sample + fixed (fit at two batches)", func(r *vitgpu.RunResult, _ bool) string {
			return fmt.Sprintf("%.3f MiB + %.1f MiB", r.PerSample/(1<<20), r.Fixed/(1<<20))
		}),
		row("gradient cosine against plain (one batch)", func(r *vitgpu.RunResult, base bool) string {
			return dash(base, fmt.Sprintf("%.4f", r.GradCos))
		}),
		row("  lowest parameter", func(r *vitgpu.RunResult, base bool) string {
			return dash(base, fmt.Sprintf("%s %.4f", r.MinParam, r.MinCos))
		}),
		row("  on the baseline's fine-tuned weights", func(r *vitgpu.RunResult, base bool) string {
			return dash(base, fmt.Sprintf("%.4f", r.RefGradCos))
		}),
		row("final loss (mean of the last 20 steps)", func(r *vitgpu.RunResult, _ bool) string { return fmt.Sprintf("%.4f", tail(r.Losses)) }),
		row("fine-tuning wall time", func(r *vitgpu.RunResult, _ bool) string { return fmt.Sprintf("%.1f s", r.Wall.Seconds()) }),
		row("cuMemAlloc calls in the timed steps", func(r *vitgpu.RunResult, _ bool) string { return fmt.Sprint(r.Mallocs) }),
	}
}

// reportGPU prints the device demo's tables.
func reportGPU(w io.Writer, res *vitgpu.DemoResult, cfg *vitgpu.DemoConfig) {
	p := &res.Pretrain
	fmt.Fprintf(w, "pre-trained on 0–4: test accuracy %.2f%%; step %.2f ms (median of %d), %.1f s\n\n",
		100*res.PretrainAccuracy, p.StepMs, p.Timed, p.Wall.Seconds())
	names := []string{"as they are (bf16)"}
	if cfg.DType == gpu.Float32 {
		names[0] = "as they are (float32)"
	}
	for _, r := range res.Runs {
		names = append(names, r.Name)
	}
	fmt.Fprintf(w, "%-44s", "fine-tuned on 5–9")
	for _, n := range names {
		fmt.Fprintf(w, " %22s", n)
	}
	fmt.Fprintln(w)
	for _, r := range gpuRows(res, cfg) {
		fmt.Fprintf(w, "%-44s", r.label)
		for _, c := range r.cells {
			fmt.Fprintf(w, " %22s", c)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nSaved activations: the largest excess of the pool's Live bytes over the step's start, sampled at the end of\n"+
		"forward, before each compression of checkpointed block inputs and after each recomputed block (steps %d on);\n"+
		"the largest batch is where the line through the same measurement at batch %d and %d reaches the budget.\n"+
		"Whole step: the pool's high-water mark, with weights, Adam state, workspace and data (%s before the first\n"+
		"step, %s of it data).\n",
		cfg.TimedFrom, cfg.Batch, max(1, cfg.Batch/2), gib(res.Setup), mib64(res.DataBytes))
	m := res.Memory
	fmt.Fprintf(w, "Memory pool against the driver: the pool took %s from cuMemAlloc during the demo (%d calls; high-water mark\n"+
		"of Live %s); cuMemGetInfo shows %s less free, a difference of %s (the driver rounds each allocation to 2 MiB\n"+
		"pages: up to %s; cuBLAS, NVRTC modules and events take the rest).\n",
		gib(m.PoolReserved), m.Mallocs, gib(m.PoolPeak), gib(m.DriverUsed), mib64(m.DriverUsed-m.PoolReserved), mib64(2<<20*m.Mallocs))
	for _, r := range res.Runs {
		reportLayers(w, &r)
	}
	fmt.Fprintf(w, "\ntotal wall time of the device demo %.1f s\n", res.Wall.Seconds())
}

// reportLayers prints a compressed run's per-layer ranks and errors.
func reportLayers(w io.Writer, r *vitgpu.RunResult) {
	fmt.Fprintf(w, "\n%s, compressed tensors (peak bytes, rank, relative error last/max from ‖X‖² − ‖B‖²):\n", r.Name)
	fmt.Fprintf(w, "  %-14s %10s %10s %7s %6s %9s %9s %6s\n", "layer", "peak", "float32", "ratio", "rank", "err", "max err", "calls")
	for _, s := range r.Layers {
		fmt.Fprintf(w, "  %-14s %10s %10s %7s %6d %9.4f %9.4f %6d\n", s.Layer, mib(s.Peak), mib(s.DensePeak),
			pct(s.Peak, s.DensePeak), s.Rank, s.RelError, s.MaxRelError, s.Calls)
	}
}

// reportTwin prints the PyTorch twin beside the Go baseline.
func reportTwin(w io.Writer, res *vitgpu.DemoResult, twin []vitgpu.TwinResult, env string) {
	b := &res.Baseline
	fmt.Fprintf(w, "\nPyTorch twin of the baseline on the same card (same model and batch, fp32 weights, autocast bf16; %s):\n", env)
	fmt.Fprintf(w, "  %-28s %10s %12s %12s %14s\n", "", "step ms", "saved", "step peak", "Go ÷ this")
	fmt.Fprintf(w, "  %-28s %10.2f %12s %12s %14s\n", "Go, as they are", b.StepMs, mib64(b.Saved), gib(b.Peak), "1")
	for _, t := range twin {
		fmt.Fprintf(w, "  %-28s %10.2f %12s %12s %13.2f×\n", "PyTorch "+t.Mode, t.Ms, mib64(t.SavedBytes), gib(t.StepPeakBytes), b.StepMs/t.Ms)
	}
}

// markdownGPU prints the tables for docs/results.md.
func markdownGPU(w io.Writer, res *vitgpu.DemoResult, cfg *vitgpu.DemoConfig, twin []vitgpu.TwinResult, args []string) {
	fmt.Fprintf(w, "Command: `go run ./cmd/loract demo %s`; card %s (%s), CUDA driver API %d.\n\n",
		strings.Join(args, " "), res.Device, res.Arch, res.Driver)
	fmt.Fprintf(w, "Pre-trained on 0–4: %.2f %%, step %.2f ms.\n\n", 100*res.PretrainAccuracy, res.Pretrain.StepMs)
	fmt.Fprintf(w, "| fine-tuned on 5–9 | as they are |")
	for _, r := range res.Runs {
		fmt.Fprintf(w, " %s |", r.Name)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|", len(res.Runs)))
	for _, r := range gpuRows(res, cfg) {
		fmt.Fprintf(w, "| %s | %s |\n", strings.TrimSpace(r.label), strings.Join(r.cells, " | "))
	}
	if len(twin) > 0 {
		fmt.Fprintf(w, "\n| step, same card | ms | saved | step peak |\n|---|---|---|---|\n")
		fmt.Fprintf(w, "| Go, as they are | %.2f | %s | %s |\n", res.Baseline.StepMs, mib64(res.Baseline.Saved), gib(res.Baseline.Peak))
		for _, t := range twin {
			fmt.Fprintf(w, "| PyTorch %s | %.2f | %s | %s |\n", t.Mode, t.Ms, mib64(t.SavedBytes), gib(t.StepPeakBytes))
		}
	}
}

// reportGPUSweep prints the equal-bytes sweep of -device gpu: one row per
// setting against the bf16 baseline, writes -json and the -sweep-plot
// figure.
func (o *demoOptions) reportGPUSweep(w io.Writer, res *vitgpu.DemoResult, cfg *vitgpu.DemoConfig, log *progress.Log) error {
	rows := gpuSweepRows(res, o.gpu.sweep)
	b := &res.Baseline
	fmt.Fprintf(w, "pre-trained on 0–4: test accuracy %.2f%%; baseline (activations as they are): test accuracy %.2f%%, step %.2f ms, saved activations %s (allocator)\n",
		100*res.PretrainAccuracy, 100*b.Accuracy, b.StepMs, mib64(b.Saved))
	fmt.Fprintf(w, "compressed checkpointing at the bytes of %s: every setting stores at most %s a step in its compressed block inputs\n",
		o.gpu.sweep[0].Name, mib64(int64(o.gpu.sweep[0].bytes)))
	cal := "the budget rows take their rank-1 calibration step on the first batch without an update (-calibration-update applies it)"
	for i, st := range o.gpu.sweep {
		if st.budget && cfg.Runs[i].PlanSteps == 0 {
			cal = "the budget rows apply the update of their rank-1 calibration step (-calibration-update)"
		}
	}
	fmt.Fprintf(w, "%s\n\n", cal)
	fmt.Fprintf(w, "%-50s %-10s %11s %11s %9s %8s %8s %7s %7s %8s %9s %8s\n", "setting", "ranks", "stored/step", "saved peak", "of base", "mean err", "accuracy", "drop", "cosine", "base cos", "step", "overhead")
	for _, r := range rows {
		fmt.Fprintf(w, "%-50s %-10s %11s %11s %8.1f%% %8.4f %7.2f%% %7.2f %7.4f %8.4f %6.2f ms %+7.1f%%\n", r.label, r.ranks, mib64(int64(r.stored)),
			mib64(r.saved), 100*float64(r.saved)/float64(b.Saved), r.meanErr, 100*r.acc, r.drop, r.cos, r.refCos, r.stepMs, 100*(r.stepMs/b.StepMs-1))
	}
	fmt.Fprintf(w, "\nstored/step: the compressor's peak of live compressed bytes (the sum of its per-layer peaks), against the\n"+
		"budget of the budget rows; saved peak: the allocator's, with the block rebuilt and recomputed at a time (docs/results.md);\n"+
		"cosine: of one batch's gradients against plain backpropagation on the run's own fine-tuned weights, base cos: on the baseline's.\n")
	if o.markdown {
		fmt.Fprintln(w, "\n---- markdown ----")
		fmt.Fprintf(w, "Command: `go run ./cmd/loract demo %s` on %s (%s), CUDA driver API %d.\n\n", strings.Join(o.args, " "), res.Device, res.Arch, res.Driver)
		fmt.Fprintln(w, "| setting | policy | ranks | stored a step | saved peak (allocator) | of baseline | mean act. error | accuracy | drop (points) | grad cosine | on baseline weights | step | overhead |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.1f %% | %.4f | %.2f %% | %.2f | %.4f | %.4f | %.2f ms | %+.1f %% |\n", r.storage, r.policy, r.ranks,
				mib64(int64(r.stored)), mib64(r.saved), 100*float64(r.saved)/float64(b.Saved), r.meanErr, 100*r.acc, r.drop, r.cos, r.refCos, r.stepMs, 100*(r.stepMs/b.StepMs-1))
		}
	}
	o.writeGPUJSON(gpuOutput{Args: o.args, Result: res}, log)
	if o.sweepPlot == "" {
		return nil
	}
	if err := plotGPUSweep(o.sweepPlot, res, o.gpu.sweep, cfg.Model.Dim); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwrote %s\n", o.sweepPlot)
	return nil
}

// plotGPUSweep draws the GPU sweep's figure (the equal-bytes bars) to path.
func plotGPUSweep(path string, res *vitgpu.DemoResult, settings []sweepSetting, dim int) error {
	var pts []plots.EqualBytesPoint
	for _, r := range gpuSweepRows(res, settings) {
		pts = append(pts, plots.EqualBytesPoint{Label: r.short, MeanError: r.meanErr, Drop: r.drop, Cos: r.cos, Budget: r.budget, Reference: r.ref})
	}
	title := fmt.Sprintf("Equal bytes on the GPU: %s a step (compressed checkpointing), ViT d=%d on MNIST, %s",
		mib64(int64(settings[0].bytes)), dim, res.Device)
	return plots.EqualBytes(path, title, pts)
}

// readGPUSweep reads the -json output of a GPU sweep and rebuilds its
// settings from the recorded arguments (without -json and -sweep-plot,
// whose paths were the device's).
func readGPUSweep(name string) (*vitgpu.DemoResult, []sweepSetting, int, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, 0, err
	}
	var out gpuOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	var args []string
	for i := 0; i < len(out.Args); i++ {
		if a := out.Args[i]; a == "-json" || a == "-sweep-plot" {
			i++
			continue
		}
		args = append(args, out.Args[i])
	}
	o, err := parseDemo(args, io.Discard)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s: its arguments %q: %w", name, out.Args, err)
	}
	if o.gpu == nil || o.gpu.sweep == nil {
		return nil, nil, 0, fmt.Errorf("%s: its arguments %q are not those of a GPU sweep", name, out.Args)
	}
	if out.Result == nil || len(out.Result.Runs) != len(o.gpu.sweep) {
		return nil, nil, 0, fmt.Errorf("%s: not the output of a GPU sweep with its %d settings", name, len(o.gpu.sweep))
	}
	return out.Result, o.gpu.sweep, o.gpu.cfg.Model.Dim, nil
}

// gpuSweepRow is one setting of the GPU sweep, measured.
type gpuSweepRow struct {
	sweepSetting
	label          string
	ranks          string
	acc, drop, cos float64
	refCos         float64
	meanErr        float64
	stored         int
	saved          int64
	stepMs         float64
}

func gpuSweepRows(res *vitgpu.DemoResult, settings []sweepSetting) []gpuSweepRow {
	var rows []gpuSweepRow
	for i, r := range res.Runs {
		st := settings[i]
		row := gpuSweepRow{sweepSetting: st, label: st.Name, ranks: st.ranks, acc: r.Accuracy,
			drop: 100 * (res.Baseline.Accuracy - r.Accuracy), cos: r.GradCos, refCos: r.RefGradCos, saved: r.Saved, stepMs: r.StepMs}
		var ks []string
		for _, l := range r.Layers {
			row.meanErr += l.MeanRelError / float64(len(r.Layers))
			row.stored += l.Peak
			ks = append(ks, fmt.Sprint(l.Rank))
		}
		if st.budget {
			row.ranks = strings.Join(ks, "/")
		}
		rows = append(rows, row)
	}
	return rows
}
