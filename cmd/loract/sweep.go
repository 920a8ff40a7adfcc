package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/cputime"
	"github.com/loract/loract/cmd/loract/internal/plots"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/lowrank"
)

// sweepDemo runs the sweep; tests replace it.
var sweepDemo = vit.RunSweep

// sweepSetting is a setting of the equal-bytes sweep with what the command
// computed for it before training: the bytes a step stores and the ranks
// per activation width.
type sweepSetting struct {
	vit.Setting
	storage string // the storage, for the table
	short   string // a short label, for the figure
	policy  string // "ratio r" or "budget"
	bytes   int    // stored bytes per step (the budget, for a Budget)
	ranks   string // ranks by width, "k for d=64, ..." (ratio settings)
	ref     bool   // the plain bf16 factors at the reference rank
	budget  bool
}

// storages are the storage options of the sweep, beside the reference's
// bf16 factors.
var storages = []struct {
	name, short        string
	factorBits, resBit int
}{
	{"int8 factors", "int8", 8, 0},
	{"bf16 factors + 4-bit residual", "bf16 + int4 residual", 0, 4},
	{"int8 factors + 4-bit residual", "int8 + int4 residual", 8, 4},
	{"bf16 factors + 8-bit residual", "bf16 + int8 residual", 0, 8},
}

// stepBytes returns the bytes one step stores under cfg with rank policy
// r (Fixed or Ratio) for the compressed-set shapes, and the ranks by
// activation width.
func stepBytes(cfg activation.Config, shapes []vit.Shape) (int, map[int]int) {
	total := 0
	ranks := map[int]int{}
	for _, s := range shapes {
		k, _ := cfg.Rank.Rank(s.Rows, s.Cols)
		total += cfg.StoredBytes(s.Rows, s.Cols, k)
		ranks[s.Cols] = k
	}
	return total, ranks
}

// rankString formats ranks by width: "29/64, 58/128" (k/d).
func rankString(ranks map[int]int) string {
	var ws []int
	for w := range ranks {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%d/%d", ranks[w], w)
	}
	return strings.Join(parts, ", ")
}

// shortRanks formats ranks by width as "k 29/58" (the k of each width, in
// order of width).
func shortRanks(ranks map[int]int) string {
	var ws []int
	for w := range ranks {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprint(ranks[w])
	}
	return "k " + strings.Join(parts, "/")
}

// sweepSettings returns the settings at the stored bytes of ref (bf16
// factors at its rank policy, Fixed or Ratio) over shapes: ref itself;
// for every storage the largest single ratio r = j/1024 whose step stores
// no more bytes (a storage that cannot fit is left out); and the byte-
// budget policy at ref's bytes for bf16 factors and for each storage, and
// with floor > 0 the same under BudgetFloor(·, floor).
func sweepSettings(ref activation.Config, shapes []vit.Shape, floor float64) ([]sweepSetting, error) {
	if len(shapes) == 0 {
		return nil, fmt.Errorf("the model saves no compressible tensor")
	}
	ref.Precision, ref.FactorBits, ref.ResidualBits, ref.ResidualBlock = lowrank.BFloat16, 0, 0, 0
	ref.MeasureError = true
	b, ranks := stepBytes(ref, shapes)
	out := []sweepSetting{{Setting: vit.Setting{Name: "bf16 factors, " + ref.Rank.String(), Compression: ref},
		storage: "bf16 factors", short: "bf16, " + shortRanks(ranks) + " (reference)", policy: ref.Rank.String(),
		bytes: b, ranks: rankString(ranks), ref: true}}
	type opt struct {
		name, short string
		fbits, res  int
	}
	all := []opt{{"bf16 factors", "bf16", 0, 0}}
	for _, st := range storages {
		all = append(all, opt{st.name, st.short, st.factorBits, st.resBit})
		cfg := ref
		cfg.FactorBits, cfg.ResidualBits = st.factorBits, st.resBit
		best, bestBytes, bestRanks := 0.0, 0, map[int]int(nil)
		for j := 1; j <= 1024; j++ {
			cfg.Rank = activation.Ratio(float64(j) / 1024)
			if n, rk := stepBytes(cfg, shapes); n <= b {
				best, bestBytes, bestRanks = float64(j)/1024, n, rk
			}
		}
		if best == 0 {
			continue
		}
		cfg.Rank = activation.Ratio(best)
		out = append(out, sweepSetting{Setting: vit.Setting{Name: st.name + ", " + cfg.Rank.String(), Compression: cfg},
			storage: st.name, short: st.short + ", " + shortRanks(bestRanks), policy: cfg.Rank.String(),
			bytes: bestBytes, ranks: rankString(bestRanks)})
	}
	for _, st := range all {
		cfg := ref
		cfg.FactorBits, cfg.ResidualBits = st.fbits, st.res
		cfg.Rank = activation.Budget(b)
		// Not even rank 1 of every tensor fits: no budget run.
		min1 := 0
		for _, s := range shapes {
			min1 += cfg.StoredBytes(s.Rows, s.Cols, 1)
		}
		if min1 > b {
			continue
		}
		out = append(out, sweepSetting{Setting: vit.Setting{Name: st.name + ", budget", Compression: cfg},
			storage: st.name, short: st.short + ", budget", policy: "budget", bytes: b, budget: true})
		if floor > 0 {
			cfg.Rank = activation.BudgetFloor(b, floor)
			pol := fmt.Sprintf("budget, floor %g", floor)
			out = append(out, sweepSetting{Setting: vit.Setting{Name: st.name + ", " + pol, Compression: cfg},
				storage: st.name, short: st.short + ", " + pol, policy: pol, bytes: b, budget: true})
		}
	}
	return out, nil
}

func (o *demoOptions) runSweep(stdout io.Writer, stderr *os.File, dir string, pre, fine, testPre, testFine vit.Data) error {
	cfg := o.cfg
	cfg.CPUTime = cputime.Self
	if o.cache != "" {
		cfg.Pretrained, cfg.Save = weightCache(o.cache)
	}
	shapes, err := cfg.SavedShapes()
	if err != nil {
		return err
	}
	settings, err := sweepSettings(cfg.Compression, shapes, o.floor)
	if err != nil {
		return err
	}
	mc := cfg.Model
	fmt.Fprintf(stdout, "loract demo -sweep bytes: ViT d=%d heads=%d mlp=%d depth=%d patch=%d (%d tokens), batch %d, mode %s; MNIST from %s\n",
		mc.Dim, mc.Heads, mc.MLP, mc.Depth, mc.Patch, mc.Tokens(), cfg.Batch, o.mode, dir)
	fmt.Fprintf(stdout, "%d compressed tensors a step; every setting stores at most %s a step (the reference's bytes), method %s, oversample %d, power %d\n\n",
		len(shapes), kib(settings[0].bytes), cfg.Compression.Method, cfg.Compression.Oversample, cfg.Compression.PowerIters)
	vs := make([]vit.Setting, len(settings))
	for i, s := range settings {
		vs[i] = s.Setting
	}
	load0 := loadavg()
	start := time.Now()
	steps := progress.NewSteps(stderr)
	cfg.Progress = steps.Step
	res, err := sweepDemo(cfg, vs, pre, fine, testPre, testFine)
	if err != nil {
		return err
	}
	total := time.Since(start)
	fmt.Fprintln(stdout)
	rows := sweepRows(res, settings)
	sweepReport(stdout, res, rows, total)
	if o.markdown {
		fmt.Fprintln(stdout, "\n---- markdown ----")
		fmt.Fprintf(stdout, "Command: `go run ./cmd/loract demo %s`\n\n", strings.Join(o.args, " "))
		fmt.Fprintf(stdout, "Machine: %d cores (GOMAXPROCS %d), %s/%s, %s; load average before/after: %s / %s.\n\n",
			runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), load0, loadavg())
		sweepMarkdown(stdout, res, rows)
	}
	if o.sweepPlot != "" {
		var pts []plots.EqualBytesPoint
		for _, r := range rows {
			pts = append(pts, plots.EqualBytesPoint{Label: r.short, MeanError: r.meanErr, Drop: r.drop, Cos: r.cos, Budget: r.budget, Reference: r.ref})
		}
		title := fmt.Sprintf("Equal bytes: %s a step (%s), ViT on MNIST, %d fine-tuning steps", kib(settings[0].bytes), o.mode, cfg.FineTuneSteps)
		if err := plots.EqualBytes(o.sweepPlot, title, pts); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", o.sweepPlot)
	}
	return nil
}

func kib(b int) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

// sweepRow is one line of the sweep's table.
type sweepRow struct {
	sweepSetting
	label           string
	acc, drop       float64
	meanErr, maxErr float64
	cos             float64
	peak, dense     int
	wall, cpu       time.Duration
	over            int     // steps whose live bytes exceeded the budget
	useCal          float64 // the calibration (first) step's live bytes ÷ budget
	useMin, useMax  float64 // the same for the later steps, least and most
	planRanks       string
	margin          float64
}

func sweepRows(res *vit.SweepResult, settings []sweepSetting) []sweepRow {
	var rows []sweepRow
	for i, r := range res.Runs {
		st := settings[i]
		row := sweepRow{sweepSetting: st, label: st.Name, acc: r.Accuracy, drop: 100 * (res.Baseline.Accuracy - r.Accuracy),
			meanErr: r.Main.Total.MeanRelError, maxErr: r.Main.Total.MaxRelError, cos: r.GradCos,
			peak: r.Main.Total.Peak, dense: r.Main.Total.DensePeak, wall: r.Wall, cpu: r.CPU}
		if st.budget {
			row.useMin = math.Inf(1)
			for i, live := range r.StepLive {
				if live > st.bytes {
					row.over++
				}
				u := float64(live) / float64(st.bytes)
				if i == 0 {
					row.useCal = u
					continue
				}
				row.useMin, row.useMax = math.Min(row.useMin, u), math.Max(row.useMax, u)
			}
			var ks []string
			for _, l := range r.Plan.Layers {
				ks = append(ks, fmt.Sprintf("%s %d", l.Layer, l.Rank))
			}
			row.planRanks = strings.Join(ks, ", ")
			row.margin = r.Plan.Margin
		}
		rows = append(rows, row)
	}
	return rows
}

func sweepReport(w io.Writer, res *vit.SweepResult, rows []sweepRow, total time.Duration) {
	b := &res.Baseline
	fmt.Fprintf(w, "pre-trained on 0–4: test accuracy %.2f%% (%.1fs)\n", 100*res.PretrainAccuracy, res.PretrainWall.Seconds())
	fmt.Fprintf(w, "baseline (float32 copies): test accuracy %.2f%%, fine-tune %.1fs wall, %.1fs CPU\n\n", 100*b.Accuracy, b.Wall.Seconds(), b.CPU.Seconds())
	fmt.Fprintf(w, "%-42s %-16s %11s %7s %8s %8s %7s %7s %8s %8s\n", "setting", "ranks (k/d)", "bytes/step", "of f32", "mean err", "accuracy", "drop", "cosine", "wall", "CPU")
	for _, r := range rows {
		ranks := r.ranks
		if r.budget {
			ranks = "planned"
		}
		fmt.Fprintf(w, "%-42s %-16s %11s %6.1f%% %8.4f %7.2f%% %7.2f %7.4f %7.1fs %7.1fs\n", r.label, ranks, kib(r.peak),
			100*float64(r.peak)/float64(r.dense), r.meanErr, 100*r.acc, r.drop, r.cos, r.wall.Seconds(), r.cpu.Seconds())
	}
	for _, r := range rows {
		if !r.budget {
			continue
		}
		fmt.Fprintf(w, "\n%s: budget %s; steps over it %d of %d; live bytes at the forward/backward boundary: calibration step %.1f%%,\n"+
			"  later steps %.1f%%–%.1f%% of it; last plan (margin %.2g): %s\n", r.label, kib(r.bytes), r.over, len(res.Baseline.Losses),
			100*r.useCal, 100*r.useMin, 100*r.useMax, r.margin, r.planRanks)
	}
	fmt.Fprintf(w, "\ntotal wall time %.1fs\n", total.Seconds())
}

func sweepMarkdown(w io.Writer, res *vit.SweepResult, rows []sweepRow) {
	fmt.Fprintf(w, "Baseline (float32 copies of every activation): test accuracy %.2f %%; pre-trained accuracy on 0–4 %.2f %%.\n\n",
		100*res.Baseline.Accuracy, 100*res.PretrainAccuracy)
	fmt.Fprintln(w, "| setting | policy | ranks (k/d) | stored bytes a step | of float32 | mean act. error | max act. error | accuracy | drop (points) | grad cosine | fine-tune wall | CPU |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		ranks := r.ranks
		if r.budget {
			ranks = "per layer, planned"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f %% | %.4f | %.4f | %.2f %% | %.2f | %.4f | %.1f s | %.1f s |\n", r.storage, r.policy, ranks,
			kib(r.peak), 100*float64(r.peak)/float64(r.dense), r.meanErr, r.maxErr, 100*r.acc, r.drop, r.cos, r.wall.Seconds(), r.cpu.Seconds())
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		if r.budget {
			fmt.Fprintf(w, "- %s: budget %s; steps over it: %d of %d; live bytes at each step's forward/backward boundary: %.1f %% of it in the calibration step (rank 1), %.1f–%.1f %% in the later steps; last plan (margin %.2g): %s.\n",
				r.label, kib(r.bytes), r.over, len(res.Baseline.Losses), 100*r.useCal, 100*r.useMin, 100*r.useMax, r.margin, r.planRanks)
		}
	}
}
