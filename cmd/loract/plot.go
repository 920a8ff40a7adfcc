package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/cmd/loract/internal/experiment"
	"github.com/loract/loract/cmd/loract/internal/mnist"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
)

func init() {
	commands["plot"] = command{
		summary: "write the accuracy and timing plots (PNG) to docs/img",
		run:     runPlot,
	}
}

func runPlot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	out := fs.String("out", filepath.Join("docs", "img"), "directory for the PNG files")
	only := fs.String("only", "rank,time,pareto,spectrum", "comma-separated plots to make: rank, time, pareto, spectrum")
	peers := fs.Bool("peers", true, "include the Python peers in the time and Pareto plots")
	records := fs.String("records", "", "comma-separated JSON-lines files of extra records (e.g. GPU runs of torch_peer.py or 'loract bench -json') to add to the time-vs-size plot")
	trials := fs.Int("trials", 5, "draws per point of the error-vs-rank plot")
	repeats := fs.Int("repeats", 3, "timed calls per point (median)")
	seed := fs.Uint64("seed", 1, "seed of the matrices and draws")
	preSteps := fs.Int("pretrain-steps", 300, "pre-training steps of the demo ViT before its activations are captured")
	jsonOut := fs.String("json", "", "also write the timing records as JSON lines to this file")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	b := &benchRun{start: time.Now(), log: os.Stderr, repeats: *repeats, seed: *seed, useT: *peers}
	if *peers {
		b.py = bench.FindPython(ctx)
		if err := b.describePeers(); err != nil {
			return err
		}
	}
	dir, err := b.writePeerScripts("loract-plot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var extra []bench.Record
	if *records != "" {
		for _, f := range strings.Split(*records, ",") {
			recs, err := readRecords(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			extra = append(extra, recs...)
		}
	}
	for _, what := range strings.Split(*only, ",") {
		var err error
		switch strings.TrimSpace(what) {
		case "rank":
			err = b.plotErrorVsRank(*out, *trials)
		case "time":
			err = b.plotTimeVsSize(ctx, dir, *out, extra)
		case "pareto":
			err = b.plotPareto(ctx, dir, *out)
		case "spectrum":
			err = b.plotSpectrum(*out, *preSteps)
		default:
			err = fmt.Errorf("unknown plot %q (rank, time, pareto, spectrum)", what)
		}
		if err != nil {
			return err
		}
	}
	b.progress("done")
	if *jsonOut != "" {
		return writeJSON(*jsonOut, b.records)
	}
	return nil
}

func readRecords(name string) ([]bench.Record, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []bench.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var r bench.Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Method != "" {
			recs = append(recs, r)
		}
	}
	return recs, sc.Err()
}

// newPlot returns a plot with log axes as asked.
func newPlot(title, x, y string, logX, logY bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	return p
}

func savePlot(b *benchRun, p *plot.Plot, dir, name string) error {
	path := filepath.Join(dir, name)
	if err := p.Save(9*vg.Inch, 6*vg.Inch, path); err != nil {
		return err
	}
	b.progress("wrote %s", path)
	return nil
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, i int, dashed, points bool) error {
	if len(xys) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	p.Add(l)
	if points {
		s.Color = l.Color
		s.Shape = plotutil.Shape(i)
		p.Add(s)
		p.Legend.Add(name, l, s)
	} else {
		p.Legend.Add(name, l)
	}
	return nil
}

// peerColor gives each implementation one colour across the plots.
func peerColor(peer, device string) color.Color {
	gpu := device != "" && device != "cpu"
	switch peer {
	case "loract":
		if gpu {
			return color.RGBA{R: 120, G: 0, B: 0, A: 255}
		}
		return color.RGBA{R: 220, G: 30, B: 30, A: 255}
	case "numpy":
		return color.RGBA{R: 30, G: 90, B: 220, A: 255}
	case "sklearn":
		return color.RGBA{R: 150, G: 60, B: 200, A: 255}
	case "scipy":
		return color.RGBA{R: 230, G: 140, B: 0, A: 255}
	case "torch":
		if gpu {
			return color.RGBA{R: 0, G: 90, B: 40, A: 255}
		}
		return color.RGBA{R: 30, G: 170, B: 80, A: 255}
	}
	return color.Gray{Y: 80}
}

// methodGlyph gives each method one marker shape.
func methodGlyph(method string) draw.GlyphDrawer {
	switch method {
	case "rows":
		return draw.CircleGlyph{}
	case "gaussian":
		return draw.BoxGlyph{}
	case "exact":
		return draw.CrossGlyph{}
	}
	return draw.TriangleGlyph{}
}

// addStyled adds a line with points in the colour of its implementation,
// dashed for the exact SVD, thick on a GPU.
func addStyled(p *plot.Plot, name string, xys plotter.XYs, r bench.Record) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	c := peerColor(r.Peer, r.Device)
	l.Color, s.Color = c, c
	l.Width = vg.Points(1.5)
	if r.Device != "cpu" {
		l.Width = vg.Points(2.5)
	}
	switch r.Method {
	case "exact":
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	case "gaussian", "randomized_svd", "svd_lowrank", "svd":
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	}
	s.Shape = methodGlyph(r.Method)
	s.Radius = vg.Points(3)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// plotErrorVsRank: relative error against k for row sampling and Gaussian
// sketches on a 2048×512 activation-like matrix, with the Eckart–Young
// optimum, the median per-draw certificates (HMT Thm 9.1) and HMT's
// Thm 10.5 expectation bound (package bounds).
func (b *benchRun) plotErrorVsRank(out string, trials int) error {
	const m, n = 2048, 512
	ks := []int{4, 8, 16, 32, 64, 128}
	spec := testmat.Spectrum{Name: "activation-like", Values: func(r, _ int) []float64 { return testmat.ActivationLike(r) }}
	str := testmat.Structure{Name: "incoherent (DCT)", Matrix: testmat.Incoherent}
	p := newPlot(fmt.Sprintf("Error vs rank: %d×%d activation-like (σ_j = 1/j + 1e-3), sketch width k+p, mean of %d draws", m, n, trials),
		"target rank k", "‖A − P_Y A‖_F / ‖A‖_F", true, true)
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	// Certificates that do not apply on a draw are enormous: the axis
	// stops at 3 (lines beyond it are clipped).
	p.Y.Max = 3
	for _, over := range []int{0, 10} {
		b.progress("error-vs-rank curves, p = %d (%d draws per k; one exact SVD of %d×%d)", over, trials, m, n)
		curves, err := experiment.ErrorCurves(experiment.CurveConfig{M: m, N: n, Spectrum: spec, Structure: str, Ks: ks,
			P: over, Q: 0, Trials: trials, Seed: b.seed})
		if err != nil {
			return err
		}
		for _, c := range curves {
			if len(c.K) == 0 || (c.Name == "optimal (Eckart–Young)" && over != 0) {
				continue
			}
			xys := make(plotter.XYs, len(c.K))
			for i := range c.K {
				xys[i] = plotter.XY{X: float64(c.K[i]), Y: math.Min(c.Y[i], 1e3)}
			}
			l, sc, err := plotter.NewLinePoints(xys)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("p=%d %s", over, c.Name)
			var col color.Color = color.RGBA{R: 220, G: 30, B: 30, A: 255} // rows
			if strings.HasPrefix(c.Name, "gaussian") {
				col = color.RGBA{R: 30, G: 90, B: 220, A: 255}
			}
			l.Width = vg.Points(1.5)
			if over == 0 {
				sc.Shape = draw.CircleGlyph{}
			} else {
				sc.Shape = draw.BoxGlyph{}
				l.Width = vg.Points(2.5)
			}
			switch {
			case c.Name == "optimal (Eckart–Young)":
				name, col = c.Name, color.Black
				l.Width = vg.Points(3)
				sc.Shape = draw.CrossGlyph{}
			case strings.Contains(c.Name, "certificate"):
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			case strings.Contains(c.Name, "HMT"):
				col = color.RGBA{R: 0, G: 150, B: 150, A: 255}
				l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			}
			l.Color, sc.Color = col, col
			p.Add(l, sc)
			p.Legend.Add(name, l, sc)
		}
	}
	return savePlot(b, p, out, "error_vs_rank.png")
}

// timeSizes are the shapes of the time-vs-size plot, k = n/16.
var timeSizes = [][2]int{{1024, 256}, {2048, 512}, {4096, 1024}, {8192, 2048}}

// plotTimeVsSize: time of each method and backend against the number of
// elements, k = n/16, float32 input, plus any extra recorded runs (GPU).
func (b *benchRun) plotTimeVsSize(ctx context.Context, dir, out string, extra []bench.Record) error {
	var recs []bench.Record
	for _, sz := range timeSizes {
		m, n := sz[0], sz[1]
		k := n / 16
		b.progress("time vs size: %s", bench.Shape(m, n, k))
		x := bench.Activation(m, n, b.seed)
		opt := x.Optimal(k)
		settings := []bench.Setting{{Method: "rows"}, {Method: "gaussian"}}
		exact := m*n <= 4096*1024
		if exact {
			settings = append(settings, bench.Setting{Method: "exact"})
		}
		for _, s := range settings {
			warm, reps := 1, b.repeats
			if s.Method == "exact" {
				warm, reps = 0, 1
			}
			r := bench.RunLoract(cpu.Backend{}, x.A32, nil, k, s, warm, reps, b.seed)
			b.show(r, opt)
			recs = append(recs, r)
		}
		if b.py.Exe != "" && b.py.Have["numpy"] {
			path, err := writeInput(dir, x, "fp32")
			if err != nil {
				return err
			}
			common := []string{"--input", path, "--k", strconv.Itoa(k), "--repeats", strconv.Itoa(b.repeats), "--exact-once"}
			if !exact {
				common = append(common, "--skip-exact")
			}
			rs, env, err := b.py.RunScript(ctx, b.cpuPy, append(common, "--methods", "rows,gaussian,randomized_svd,exact"), b.env, func(r bench.Record) { b.show(r, opt) })
			if err != nil {
				b.progress("cpu peers: %v", err)
			}
			b.envs = append(b.envs, env)
			recs = append(recs, rs...)
			if b.useT && b.py.Have["torch"] {
				rs, env, err := b.py.RunScript(ctx, b.torchPy, append(common, "--methods", "rows,svd_lowrank,exact", "--device", "cpu"), b.env, func(r bench.Record) { b.show(r, opt) })
				if err != nil {
					b.progress("torch peer: %v", err)
				}
				b.envs = append(b.envs, env)
				recs = append(recs, rs...)
			}
		}
	}
	b.records = append(b.records, recs...)

	// Extra (GPU) records join where they have this plot's shapes and the
	// plotted settings.
	for _, r := range extra {
		if r.M == 4*r.N && r.K*16 == r.N && (r.Method == "exact" || ((r.Method == "rows" || r.Method == "gaussian") && r.P == 0 && r.Q == 0)) {
			recs = append(recs, r)
		}
	}
	series := map[string]plotter.XYs{}
	first := map[string]bench.Record{}
	var names []string
	for _, r := range recs {
		if !r.Ok() {
			continue
		}
		name := r.Label()
		if r.Peer == "loract" {
			name += " (" + r.Device + ")"
		}
		if r.Method != "exact" && (r.P != 0 || r.Q != 0) {
			name += " " + r.Setting()
		}
		name += " " + r.Dtype
		if _, ok := series[name]; !ok {
			names = append(names, name)
			first[name] = r
		}
		series[name] = append(series[name], plotter.XY{X: float64(r.M) * float64(r.N) / 1e6, Y: r.Ms})
	}
	sort.Strings(names)
	p := newPlot("Time vs size: activation-like m×n, m = 4n, k = n/16; median of calls", "elements m·n (millions)", "time (ms)", true, true)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	for _, name := range names {
		xys := series[name]
		sort.Slice(xys, func(a, c int) bool { return xys[a].X < xys[c].X })
		if err := addStyled(p, name, xys, first[name]); err != nil {
			return err
		}
	}
	return savePlot(b, p, out, "time_vs_size.png")
}

// plotPareto: error ÷ optimal against time for every method × power
// iterations × oversampling on 4096×1024 k=64 (float32), with the front.
func (b *benchRun) plotPareto(ctx context.Context, dir, out string) error {
	const m, n, k = 4096, 1024, 64
	qs := []int{0, 1, 2, 3}
	ps := []int{0, 10, 32}
	x := bench.Activation(m, n, b.seed)
	opt := x.Optimal(k)
	b.progress("Pareto front on %s: q ∈ %v, p ∈ %v", bench.Shape(m, n, k), qs, ps)
	var recs []bench.Record
	for _, meth := range []string{"rows", "gaussian"} {
		for _, q := range qs {
			for _, p := range ps {
				r := bench.RunLoract(cpu.Backend{}, x.A32, nil, k, bench.Setting{Method: meth, P: p, Q: q}, 1, b.repeats, b.seed)
				b.show(r, opt)
				recs = append(recs, r)
			}
		}
	}
	if b.py.Exe != "" && b.py.Have["numpy"] {
		path, err := writeInput(dir, x, "fp32")
		if err != nil {
			return err
		}
		common := []string{"--input", path, "--k", strconv.Itoa(k), "--repeats", strconv.Itoa(b.repeats), "--power-iters", ints(qs...), "--oversample", ints(ps...)}
		rs, env, err := b.py.RunScript(ctx, b.cpuPy, append(common, "--methods", "randomized_svd,randomized_svd_grid"), b.env, func(r bench.Record) { b.show(r, opt) })
		if err != nil {
			b.progress("cpu peers: %v", err)
		}
		b.envs = append(b.envs, env)
		recs = append(recs, rs...)
		if b.useT && b.py.Have["torch"] {
			rs, env, err := b.py.RunScript(ctx, b.torchPy, append(common, "--methods", "svd_lowrank", "--niter", ints(qs...), "--device", "cpu"), b.env, func(r bench.Record) { b.show(r, opt) })
			if err != nil {
				b.progress("torch peer: %v", err)
			}
			b.envs = append(b.envs, env)
			recs = append(recs, rs...)
		}
	}
	b.records = append(b.records, recs...)

	fams := map[string]plotter.XYs{}
	famRec := map[string]bench.Record{}
	var names []string
	for _, r := range recs {
		if !r.Ok() {
			continue
		}
		name := r.Label()
		if _, ok := fams[name]; !ok {
			names = append(names, name)
			famRec[name] = r
		}
		fams[name] = append(fams[name], plotter.XY{X: r.Ms, Y: r.Err() / opt})
	}
	p := newPlot(fmt.Sprintf("Accuracy vs time: %s float32, q = 0..3, p = 0, 10, 32 (and scikit-learn's default)", bench.Shape(m, n, k)),
		"time (ms)", "error ÷ optimal", true, false)
	p.Legend.Top = true
	for _, name := range names {
		s, err := plotter.NewScatter(fams[name])
		if err != nil {
			return err
		}
		r := famRec[name]
		s.Color = peerColor(r.Peer, r.Device)
		s.Shape = methodGlyph(r.Method)
		s.Radius = vg.Points(4)
		p.Add(s)
		p.Legend.Add(name, s)
	}
	front := bench.ParetoFront(recs)
	var fx plotter.XYs
	for _, r := range front {
		fx = append(fx, plotter.XY{X: r.Ms, Y: r.Err() / opt})
		b.progress("front: %-24s %-14s %8.2f ms  err/opt %.3f", r.Label(), r.Setting(), r.Ms, r.Err()/opt)
	}
	if len(fx) > 0 {
		l, err := plotter.NewLine(fx)
		if err != nil {
			return err
		}
		l.Color = color.Black
		l.StepStyle = plotter.PreStep
		p.Add(l)
		p.Legend.Add("Pareto front", l)
		xmin, xmax := fx[0].X, fx[len(fx)-1].X
		for _, xy := range fams {
			for _, v := range xy {
				xmin, xmax = math.Min(xmin, v.X), math.Max(xmax, v.X)
			}
		}
		tl, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: bench.FairFactor}, {X: xmax, Y: bench.FairFactor}})
		if err != nil {
			return err
		}
		tl.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		tl.Color = color.Gray{Y: 100}
		p.Add(tl)
		p.Legend.Add(fmt.Sprintf("%.2f× optimal", bench.FairFactor), tl)
	}
	return savePlot(b, p, out, "pareto.png")
}

// plotSpectrum: normalised singular values σ_j/σ_1 of the activations the
// demo ViT (cmd/loract demo's default model) saves for backward — the
// inputs of its linear layers and GELUs, captured through its Saver hook —
// after pre-training on MNIST digits 0–4, on a batch of digits 5–9 (the
// fine-tuning data), beside the synthetic activation-like spectrum.
func (b *benchRun) plotSpectrum(out string, preSteps int) error {
	mdir, err := mnist.Dir()
	if err != nil {
		b.progress("spectrum plot skipped: %v", err)
		return nil
	}
	train, _, err := mnist.Load(mdir)
	if err != nil {
		return err
	}
	pre := train.Filter(func(l int) bool { return l < 5 })
	fine := train.Filter(func(l int) bool { return l >= 5 })
	cfg := vit.Config{Side: mnist.Side, Patch: 7, Dim: 64, Heads: 4, MLP: 128, Depth: 2, Classes: 10, Seed: b.seed}
	model := vit.New(cfg)
	b.progress("pre-training the demo ViT (d=%d, depth %d, %d tokens) for %d steps on digits 0–4", cfg.Dim, cfg.Depth, cfg.Tokens(), preSteps)
	if _, err := vit.Train(model, pre.Pixels, pre.Labels, vit.TrainConfig{Steps: preSteps, Batch: 64, Seed: b.seed,
		Run: vit.PlainRun, Adam: vit.Adam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}}); err != nil {
		return err
	}
	const batch = 256
	px := cfg.Side * cfg.Side
	// q, k and v read the same tensor: it is captured once, under all
	// the names it is saved as.
	type capt struct {
		names []string
		x     *mat.Dense
		src   *mat.Dense
	}
	var caps []*capt
	capture := func(layer string, x *mat.Dense) (vit.Stash, error) {
		for _, c := range caps {
			if c.src == x {
				c.names = append(c.names, layer)
				return vit.Plain(layer, x)
			}
		}
		caps = append(caps, &capt{names: []string{layer}, x: mat.DenseCopyOf(x), src: x})
		return vit.Plain(layer, x)
	}
	if _, err := model.Forward(fine.Pixels[:batch*px], batch, vit.Run{Main: capture, Rest: vit.Plain}, &vit.Tape{}); err != nil {
		return err
	}
	p := newPlot(fmt.Sprintf("Singular values of the demo ViT's saved activations (batch %d × %d tokens, after %d pre-training steps)", batch, cfg.Tokens(), preSteps),
		"index j", "σ_j / σ_1", true, true)
	p.Legend.Left = true
	i := 0
	for _, cp := range caps {
		a := cp.x
		layer := strings.Join(cp.names, ",")
		var svd mat.SVD
		if !svd.Factorize(a, mat.SVDNone) {
			return fmt.Errorf("SVD of layer %s failed", layer)
		}
		s := svd.Values(nil)
		r, c := a.Dims()
		var xys plotter.XYs
		for j, v := range s {
			if v > 0 && s[0] > 0 && v/s[0] > 1e-12 {
				xys = append(xys, plotter.XY{X: float64(j + 1), Y: v / s[0]})
			}
		}
		b.progress("layer %-14s %d×%d  σ_2/σ_1 %.3f  σ_{n/4}/σ_1 %.2e", layer, r, c, s[1]/s[0], s[len(s)/4]/s[0])
		// Later blocks dashed: the palette has 7 colours.
		if err := addLine(p, fmt.Sprintf("%s (%d×%d)", layer, r, c), xys, i, strings.HasPrefix(layer, "blk") && !strings.HasPrefix(layer, "blk0"), false); err != nil {
			return err
		}
		i++
	}
	ref := testmat.ActivationLike(128)
	var xys plotter.XYs
	for j, v := range ref {
		xys = append(xys, plotter.XY{X: float64(j + 1), Y: v / ref[0]})
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = color.Black
	l.Width = vg.Points(2.5)
	l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	p.Add(l)
	p.Legend.Add("benchmark spectrum 1/j + 1e-3", l)
	return savePlot(b, p, out, "spectrum.png")
}
