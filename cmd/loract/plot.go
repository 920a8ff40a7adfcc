package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/cmd/loract/internal/experiment"
	"github.com/loract/loract/cmd/loract/internal/mnist"
	"github.com/loract/loract/cmd/loract/internal/plots"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/cmd/loract/internal/vitgpu"
	"github.com/loract/loract/internal/testmat"
)

func init() {
	commands["plot"] = command{
		summary: "write the accuracy and timing plots (PNG) to docs/img",
		run:     runPlot,
	}
}

// committedFigures is where the repository keeps the figures the docs
// show; 'loract plot' writes there only with all their data (or -force).
var committedFigures = filepath.Join("docs", "img")

// plotNames are the plots of 'loract plot', in the order they are made.
var plotNames = []string{"rank", "time", "pareto", "spectrum", "lsweep", "gpurank", "gpusweep", "gpustep", "gpukernels"}

// The peer modules each timing plot draws series of.
var plotPeers = map[string][]string{
	"time":   {"numpy", "scipy", "sklearn", "torch"},
	"pareto": {"numpy", "sklearn", "torch"},
}

// The committed time-vs-size figure includes the GPU runs of this file.
const gpuRecords = "bench/results/gpu_h100.jsonl"

// lsweepRecords is the GPU ℓ sweep the lsweep figure draws (recorded by
// gpu.test -test.run TestQRSweep -gpu.prof on the device).
const lsweepRecords = "bench/results/gpu/qr_sweep_h200_2026-12-02b.jsonl"

// gpuRankRecords is the GPU demo's rank sweep the gpurank figure draws:
// the -json outputs of 'loract demo -device gpu' at several rank ratios,
// one after the other (bench/gpudemo/ranksweep.sh).
const gpuRankRecords = "bench/results/gpu/demo_rank_h200_2026-12-02.json"

// gpuSweepRecord is the GPU equal-bytes sweep the gpusweep figure draws:
// the -json output of 'loract demo -device gpu -sweep bytes'.
const gpuSweepRecord = "bench/results/gpu/demo_sweep_h200_2026-12-02f.json"

// gpuStepRecords is the step benchmark run the gpustep figure draws: the
// -json output of 'loract bench -step -batch' on the device.
const gpuStepRecords = "bench/results/gpu/step_layout_h200_2026-12-03.jsonl"

// gpuKernelTables are the kernel tables the gpukernels figure draws, as
// LABEL=FILE pairs: bench/gpudemo/ncu_kernels.py --json of the GPU demo's
// phases under ncu, before and after the twenty-fifth and twenty-sixth
// sessions' kernels (each label the commit of its binary).
const gpuKernelTables = "6a2f694=bench/results/gpu/chol64_variants_h100_2026-12-07/kernel_groups.json," +
	"55f2e59=bench/results/gpu/demo_grid_h100_2026-12-07/kernel_groups.json"

// stepTarget is issue 11's step-time target, drawn in the gpustep figure.
const stepTarget = 1.10

// plotOptions are the validated flags of 'loract plot'.
type plotOptions struct {
	out      string
	only     []string
	peers    bool
	records  []string
	lsweep   string
	gpuRank  string
	gpuSweep string
	gpuStep  string
	kernels  []labelled
	trials   int
	repeats  int
	seed     uint64
	preSteps int
	jsonOut  string
	force    bool
}

// parsePlot parses and checks the flags of 'loract plot'; nil options
// (and no error) for -h.
func parsePlot(args []string, stderr io.Writer) (*plotOptions, error) {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", committedFigures, "directory for the PNG files")
	only := fs.String("only", strings.Join(plotNames, ","), "comma-separated plots to make: "+strings.Join(plotNames, ", "))
	peers := fs.Bool("peers", true, "include the Python peers in the time and Pareto plots")
	records := fs.String("records", "", "comma-separated JSON-lines files of extra records (e.g. GPU runs of torch_peer.py or 'loract bench -json') to add to the time-vs-size plot; the committed figure has "+gpuRecords)
	lsweep := fs.String("lsweep", lsweepRecords, "the GPU ℓ-sweep records (gpu.test -test.run TestQRSweep -gpu.prof) of the lsweep plot")
	gpuRank := fs.String("gpurank", gpuRankRecords, "the GPU demo's -json outputs at several rank ratios (bench/gpudemo/ranksweep.sh) of the gpurank plot")
	gpuSweep := fs.String("gpusweep", gpuSweepRecord, "the -json output of 'loract demo -device gpu -sweep bytes' of the gpusweep plot")
	gpuStep := fs.String("gpustep", gpuStepRecords, "the -json output of 'loract bench -step' (paired ratios) of the gpustep plot")
	kernels := fs.String("gpukernels", gpuKernelTables, "comma-separated LABEL=FILE kernel tables (bench/gpudemo/ncu_kernels.py --json) of the gpukernels plot, one bar per phase and table")
	trials := fs.Int("trials", 5, "draws per point of the error-vs-rank plot")
	repeats := fs.Int("repeats", 3, "timed calls per point (median)")
	seed := fs.Uint64("seed", 1, "seed of the matrices and draws")
	preSteps := fs.Int("pretrain-steps", 300, "pre-training steps of the demo ViT before its activations are captured")
	jsonOut := fs.String("json", "", "also write the timing records as JSON lines to this file")
	force := fs.Bool("force", false, "write into "+committedFigures+" even when a peer, the MNIST data or a -records file is missing (the figures then lack what the committed ones show)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	o := &plotOptions{out: *out, lsweep: *lsweep, gpuRank: *gpuRank, gpuSweep: *gpuSweep, gpuStep: *gpuStep, peers: *peers, trials: *trials, repeats: *repeats, seed: *seed, preSteps: *preSteps,
		jsonOut: *jsonOut, force: *force}
	for _, w := range strings.Split(*only, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(plotNames, w) {
			return nil, fmt.Errorf("unknown plot %q in -only (%s)", w, strings.Join(plotNames, ", "))
		}
		if !slices.Contains(o.only, w) {
			o.only = append(o.only, w)
		}
	}
	for _, pr := range strings.Split(*kernels, ",") {
		label, file, ok := strings.Cut(strings.TrimSpace(pr), "=")
		if !ok || label == "" || file == "" {
			return nil, fmt.Errorf("-gpukernels %q: want LABEL=FILE pairs separated by commas", pr)
		}
		o.kernels = append(o.kernels, labelled{label, file})
	}
	if *records != "" {
		for _, f := range strings.Split(*records, ",") {
			o.records = append(o.records, strings.TrimSpace(f))
		}
	}
	switch {
	case *trials < 1:
		return nil, fmt.Errorf("-trials %d: need at least one draw per point", *trials)
	case *repeats < 1:
		return nil, fmt.Errorf("-repeats %d: need at least one timed call", *repeats)
	case *preSteps < 0:
		return nil, fmt.Errorf("-pretrain-steps %d is negative", *preSteps)
	case *out == "":
		return nil, errors.New("-out is empty")
	}
	if err := writableDir(*jsonOut); err != nil {
		return nil, fmt.Errorf("-json: %w", err)
	}
	return o, nil
}

func (o *plotOptions) makes(name string) bool { return slices.Contains(o.only, name) }

// intoCommitted reports whether the plots go to the committed figures:
// a folder docs/img, wherever the command runs from.
func (o *plotOptions) intoCommitted() bool {
	abs, err := filepath.Abs(o.out)
	if err != nil {
		return true
	}
	return filepath.Base(abs) == "img" && filepath.Base(filepath.Dir(abs)) == "docs"
}

// missing returns what the plots asked for would lack: peers the timing
// plots draw (have: the importable modules), the MNIST data of the
// spectrum (mnistErr from mnist.Dir), -records files that are absent,
// unreadable or without a time-vs-size record, and (into the committed
// figures) the GPU records the committed time-vs-size plot shows. extra
// holds the time-vs-size records of the readable files.
func (o *plotOptions) missing(have map[string]bool, mnistErr error) (miss []string, extra []bench.Record) {
	for _, p := range []string{"time", "pareto"} {
		if !o.makes(p) {
			continue
		}
		if !o.peers {
			miss = append(miss, fmt.Sprintf("the Python peers of the %s plot (-peers=false)", p))
			continue
		}
		for _, m := range plotPeers[p] {
			if !have[m] {
				miss = append(miss, fmt.Sprintf("the %s peer of the %s plot (python3 module %s)", m, p, m))
			}
		}
	}
	if o.makes("time") {
		for _, f := range o.records {
			recs, err := bench.ReadRecords(f)
			n := 0
			for _, r := range recs {
				if plots.TimeRecord(r) {
					extra = append(extra, r)
					n++
				}
			}
			switch {
			case err != nil:
				miss = append(miss, fmt.Sprintf("-records %s: %v", f, err))
			case n == 0:
				miss = append(miss, fmt.Sprintf("-records %s: no time-vs-size record (m = 4n, k = n/16) in %d records", f, len(recs)))
			}
		}
		if len(o.records) == 0 && o.intoCommitted() {
			miss = append(miss, "the GPU records of the committed time-vs-size plot (-records "+gpuRecords+")")
		}
	}
	if o.makes("lsweep") {
		if _, err := os.Stat(o.lsweep); err != nil {
			miss = append(miss, fmt.Sprintf("the ℓ-sweep records of the lsweep plot (%v)", err))
		}
	}
	if o.makes("gpurank") {
		if _, err := os.Stat(o.gpuRank); err != nil {
			miss = append(miss, fmt.Sprintf("the GPU demo's rank sweep of the gpurank plot (%v)", err))
		}
	}
	if o.makes("gpusweep") {
		if _, err := os.Stat(o.gpuSweep); err != nil {
			miss = append(miss, fmt.Sprintf("the GPU equal-bytes sweep of the gpusweep plot (%v)", err))
		}
	}
	if o.makes("gpustep") {
		if _, err := os.Stat(o.gpuStep); err != nil {
			miss = append(miss, fmt.Sprintf("the step benchmark's records of the gpustep plot (%v)", err))
		}
	}
	if o.makes("gpukernels") {
		for _, k := range o.kernels {
			if _, err := os.Stat(k.file); err != nil {
				miss = append(miss, fmt.Sprintf("the kernel table %s of the gpukernels plot (%v)", k.label, err))
			}
		}
	}
	if o.makes("spectrum") && mnistErr != nil {
		miss = append(miss, fmt.Sprintf("the MNIST data of the spectrum plot (%v)", mnistErr))
	}
	return miss, extra
}

// check refuses to write into the committed figures with data missing,
// unless forced.
func (o *plotOptions) check(miss []string) error {
	if len(miss) == 0 || !o.intoCommitted() || o.force {
		return nil
	}
	return fmt.Errorf("refusing to overwrite the committed figures in %s with ones that lack:\n  - %s\n(install or pass what is missing, write elsewhere with -out DIR, or overwrite anyway with -force)",
		o.out, strings.Join(miss, "\n  - "))
}

func runPlot(args []string) error {
	o, err := parsePlot(args, os.Stderr)
	if err != nil || o == nil {
		return err
	}
	return o.run(context.Background(), progress.NewLog(os.Stderr))
}

func (o *plotOptions) run(ctx context.Context, log *progress.Log) error {
	timing := o.makes("time") || o.makes("pareto")
	s, cleanup, err := newSession(ctx, log, o.peers && timing, o.repeats, o.seed, true, "loract-plot-")
	if err != nil {
		return err
	}
	defer cleanup()
	mdir, mnistErr := "", error(nil)
	if o.makes("spectrum") {
		mdir, mnistErr = mnist.Dir()
	}
	miss, extra := o.missing(s.Have, mnistErr)
	if err := o.check(miss); err != nil {
		return err
	}
	for _, m := range miss {
		log.Printf("missing: %s", m)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	for i, what := range o.only {
		log.Printf("plot %d/%d: %s", i+1, len(o.only), what)
		var err error
		switch what {
		case "rank":
			err = o.errorVsRank(log)
		case "time":
			err = o.timeVsSize(ctx, s, extra)
		case "pareto":
			err = o.pareto(ctx, s)
		case "lsweep":
			var pts []plots.LPoint
			if pts, err = plots.ReadLSweep(o.lsweep); err == nil {
				err = plots.LSweep(o.path(log, "qr_sweep_h200.png"), pts)
			}
		case "gpurank":
			var pts []plots.RankPoint
			var title string
			if pts, title, err = readGPURank(o.gpuRank); err == nil {
				err = plots.RankSweep(o.path(log, "gpu_rank_h200.png"), title, pts)
			}
		case "gpusweep":
			var res *vitgpu.DemoResult
			var settings []sweepSetting
			var dim int
			if res, settings, dim, err = readGPUSweep(o.gpuSweep); err == nil {
				err = plotGPUSweep(o.path(log, "equal_bytes_gpu_h200.png"), res, settings, dim)
			}
		case "gpustep":
			var pts []plots.StepPoint
			var device string
			if pts, device, err = plots.ReadStepRecords(o.gpuStep); err == nil {
				title := fmt.Sprintf("one Llama-7B layer's seven LoRA projections, compressed step ÷ kept step, %s", device)
				err = plots.StepOverhead(o.path(log, "gpu_step_h200.png"), title, pts, stepTarget)
			}
		case "gpukernels":
			err = o.gpuKernels(log)
		case "spectrum":
			if mnistErr != nil {
				log.Printf("spectrum plot skipped: %v", mnistErr)
				continue
			}
			err = o.spectrum(log, mdir)
		}
		if err != nil {
			return err
		}
	}
	log.Printf("done")
	if o.jsonOut != "" {
		return bench.WriteJSON(o.jsonOut, s.Records)
	}
	return nil
}

// labelled is one LABEL=FILE pair of a flag.
type labelled struct{ label, file string }

// gpuKernels: the device time of one GPU demo step per phase, one bar
// per phase and kernel table (phase by phase, the tables in the order
// given), split into cuBLAS's kernels and ours (ncu_kernels.py's groups;
// a cuSOLVER group, where a table has one, joins cuBLAS's).
func (o *plotOptions) gpuKernels(log *progress.Log) error {
	bars, err := kernelBars(o.kernels)
	if err != nil {
		return err
	}
	title := "GPU demo, one training step's device time by phase (ncu, NVIDIA H100), binaries by commit"
	return plots.KernelSteps(o.path(log, "gpu_kernels_h100.png"), title, "device time of one step (ms)",
		[]string{"cuBLAS, cuSOLVER", "ours (gpu, the model)"}, bars)
}

// kernelBars reads the kernel tables: one bar a phase and table, phase
// by phase in their first order, each in ms as (library, ours).
func kernelBars(tables []labelled) ([]plots.StepBar, error) {
	var order []string
	byPhase := map[string][]plots.StepBar{}
	for _, k := range tables {
		phases, err := plots.ReadKernelPhases(k.file)
		if err != nil {
			return nil, err
		}
		for _, ph := range phases {
			lib, own := 0.0, 0.0
			for g, us := range ph.ByGroup {
				if g == "own" {
					own += us
				} else {
					lib += us
				}
			}
			if _, ok := byPhase[ph.Phase]; !ok {
				order = append(order, ph.Phase)
			}
			byPhase[ph.Phase] = append(byPhase[ph.Phase], plots.StepBar{Label: ph.Phase + ", " + k.label, Parts: []float64{lib / 1e3, own / 1e3}})
		}
	}
	var bars []plots.StepBar
	for _, ph := range order {
		bars = append(bars, byPhase[ph]...)
	}
	return bars, nil
}

func (o *plotOptions) path(log *progress.Log, name string) string {
	p := filepath.Join(o.out, name)
	log.Printf("writing %s", p)
	return p
}

// errorVsRank: relative error against k for row sampling and Gaussian
// sketches on a 2048×512 activation-like matrix, with the Eckart–Young
// optimum, the median per-draw certificates (HMT Thm 9.1) and HMT's
// Thm 10.5 expectation bound (package bounds).
func (o *plotOptions) errorVsRank(log *progress.Log) error {
	const m, n = 2048, 512
	spec := testmat.Spectrum{Name: "activation-like", Values: func(r, _ int) []float64 { return testmat.ActivationLike(r) }}
	str := testmat.Structure{Name: "incoherent (DCT)", Matrix: testmat.Incoherent}
	var curves []plots.RankCurves
	for _, over := range []int{0, 10} {
		log.Printf("error-vs-rank curves, p = %d (%d draws per k; one exact SVD of %d×%d)", over, o.trials, m, n)
		cs, err := experiment.ErrorCurves(experiment.CurveConfig{M: m, N: n, Spectrum: spec, Structure: str, Ks: []int{4, 8, 16, 32, 64, 128},
			P: over, Trials: o.trials, Seed: o.seed, Progress: func(done, total int, what string) { log.Printf("  %d/%d ranks (%s)", done, total, what) }})
		if err != nil {
			return err
		}
		curves = append(curves, plots.RankCurves{P: over, Curves: cs})
	}
	return plots.ErrorVsRank(o.path(log, "error_vs_rank.png"), m, n, o.trials, curves)
}

// timeVsSize: time of each method and backend against the number of
// elements, k = n/16, float32 input, with the extra (GPU) records.
func (o *plotOptions) timeVsSize(ctx context.Context, s *bench.Session, extra []bench.Record) error {
	recs, err := s.TimeVsSize(ctx, bench.TimeSizes)
	if err != nil {
		return err
	}
	return plots.TimeVsSize(o.path(s.Log, "time_vs_size.png"), append(recs, extra...))
}

// pareto: error ÷ optimal against time for every method × power
// iterations × oversampling on 4096×1024 k=64 (float32), with the front.
func (o *plotOptions) pareto(ctx context.Context, s *bench.Session) error {
	const m, n, k = 4096, 1024, 64
	qs, ps := []int{0, 1, 2, 3}, []int{0, 10, 32}
	recs, opt, err := s.ParetoGrid(ctx, m, n, k, qs, ps)
	if err != nil {
		return err
	}
	for _, r := range bench.ParetoFront(recs) {
		s.Logf("front: %-24s %-14s %8.2f ms  err/opt %.3f", r.Label(), r.Setting(), r.Ms, r.Err()/opt)
	}
	return plots.Pareto(o.path(s.Log, "pareto.png"), recs, opt, bench.Shape(m, n, k), qs, ps)
}

// spectrum: normalised singular values σ_j/σ_1 of the activations the
// demo ViT (loract demo's default model) saves for backward, after
// pre-training on MNIST digits 0–4, on a batch of digits 5–9 (the
// fine-tuning data), beside the synthetic activation-like spectrum.
func (o *plotOptions) spectrum(log *progress.Log, dir string) error {
	train, _, err := mnist.Load(dir)
	if err != nil {
		return err
	}
	pre := train.Filter(func(l int) bool { return l < 5 })
	fine := train.Filter(func(l int) bool { return l >= 5 })
	cfg := vit.Config{Side: mnist.Side, Patch: 7, Dim: 64, Heads: 4, MLP: 128, Depth: 2, Classes: 10, Seed: o.seed}
	model := vit.New(cfg)
	log.Printf("pre-training the demo ViT (d=%d, depth %d, %d tokens) for %d steps on digits 0–4", cfg.Dim, cfg.Depth, cfg.Tokens(), o.preSteps)
	if _, err := vit.Train(model, pre.Pixels, pre.Labels, vit.TrainConfig{Steps: o.preSteps, Batch: 64, Seed: o.seed,
		Run: vit.PlainRun, Adam: vit.Adam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		Progress: func(step int, loss float64) {
			if (step+1)%50 == 0 || step+1 == o.preSteps {
				log.Printf("  pre-training step %d/%d, loss %.4f", step+1, o.preSteps, loss)
			}
		}}); err != nil {
		return err
	}
	const batch = 256
	layers, err := vit.SavedSpectra(model, fine.Pixels, batch)
	if err != nil {
		return err
	}
	for _, l := range layers {
		s := l.Values
		log.Printf("layer %-14s %d×%d  σ_2/σ_1 %.3f  σ_{n/4}/σ_1 %.2e", strings.Join(l.Layers, ","), l.Rows, l.Cols, s[1]/s[0], s[len(s)/4]/s[0])
	}
	title := fmt.Sprintf("Singular values of the demo ViT's saved activations (batch %d × %d tokens, after %d pre-training steps)", batch, cfg.Tokens(), o.preSteps)
	return plots.Spectrum(o.path(log, "spectrum.png"), title, layers)
}

// readGPURank reads the GPU demo's -json outputs (one after another, as
// bench/gpudemo/ranksweep.sh collects them) from name: one RankPoint per
// compressed run with a rank-ratio policy, against that output's own
// uncompressed baseline, and a title naming the card and the model.
func readGPURank(name string) ([]plots.RankPoint, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var pts []plots.RankPoint
	title := ""
	for i := 1; ; i++ {
		var out gpuOutput
		if err := dec.Decode(&out); err == io.EOF {
			break
		} else if err != nil {
			return nil, "", fmt.Errorf("%s: output %d: %w", name, i, err)
		}
		r := out.Result
		if r == nil || r.Baseline.Saved <= 0 || r.Baseline.StepMs <= 0 {
			return nil, "", fmt.Errorf("%s: output %d has no uncompressed baseline", name, i)
		}
		if title == "" {
			title = fmt.Sprintf("GPU demo against the rank (%s)", r.Device)
		}
		for _, run := range r.Runs {
			var ratio float64
			if _, err := fmt.Sscanf(run.Rank, "ratio %g", &ratio); err != nil {
				continue // a fixed rank or a tolerance: not on a ratio axis
			}
			pts = append(pts, plots.RankPoint{Mode: run.Name, Ratio: ratio,
				Saved:    float64(run.Saved) / float64(r.Baseline.Saved),
				Drop:     100 * (r.Baseline.Accuracy - run.Accuracy),
				Overhead: run.StepMs/r.Baseline.StepMs - 1})
		}
	}
	if len(pts) == 0 {
		return nil, "", fmt.Errorf("%s: %w: no compressed run with a rank ratio", name, plots.ErrNoData)
	}
	return pts, title, nil
}
