package main

import (
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loract/loract/cmd/loract/internal/experiment"
	"github.com/loract/loract/internal/testmat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func init() {
	commands["theory"] = command{
		summary: "print the regime table of docs/theory.md (or -plot FILE.png: the error-vs-k plot)",
		run:     runTheory,
	}
}

func runTheory(args []string) error {
	fs := flag.NewFlagSet("theory", flag.ContinueOnError)
	m := fs.Int("m", 512, "rows of the test matrices (tall: the columns of A are sampled)")
	n := fs.Int("n", 256, "columns of the test matrices")
	k := fs.Int("k", 32, "target rank of the regime table")
	p := fs.Int("p", 5, "oversampling: both sketches have width k+p")
	qs := fs.String("q", "0,1", "comma-separated power-iteration counts")
	trials := fs.Int("trials", 30, "seeds per cell")
	seed := fs.Uint64("seed", 1, "base seed")
	plotPath := fs.String("plot", "", "write the error-vs-k plot to this PNG instead of printing the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var q []int
	for _, s := range strings.Split(*qs, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 0 {
			return fmt.Errorf("bad -q %q", *qs)
		}
		q = append(q, v)
	}
	if *plotPath != "" {
		return theoryPlot(*plotPath, *m, *n, *p, *trials, *seed)
	}
	start := time.Now()
	rs, err := experiment.Regimes(experiment.RegimeConfig{M: *m, N: *n, K: *k, P: *p, Q: q, Trials: *trials, Seed: *seed},
		testmat.Spectra(), testmat.Structures())
	if err != nil {
		return err
	}
	writeRegimeTable(os.Stdout, rs)
	fmt.Printf("\n`loract theory %s` (%d×%d, k = %d, ℓ = k+p = %d, %d seeds) in %.0f s.\n",
		strings.Join(args, " "), *m, *n, *k, *k+*p, *trials, time.Since(start).Seconds())
	return nil
}

// writeRegimeTable prints the regimes as a markdown table.
func writeRegimeTable(w io.Writer, rs []experiment.Regime) {
	fmt.Fprintln(w, "| spectrum | structure | μ | q | rows mean | rows worst | rows cert | gauss mean | gauss worst | gauss cert | HMT 10.5 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for i := 0; i+1 < len(rs); i += 2 {
		r, g := rs[i], rs[i+1]
		fmt.Fprintf(w, "| %s | %s | %.1f | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Spectrum, r.Structure, r.Mu, r.Q,
			num(r.MeanErr), num(r.WorstErr), cert(r), num(g.MeanErr), num(g.WorstErr), cert(g), num(g.Apriori))
	}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 1):
		return "∞"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// cert prints the mean certificate, or the number of draws on which it was
// finite when some were not.
func cert(r experiment.Regime) string {
	if math.IsInf(r.MeanCert, 1) {
		return fmt.Sprintf("∞ (%d finite)", r.Finite)
	}
	return num(r.MeanCert)
}

// theoryPlot writes the error-vs-k plot: relative Frobenius error of both
// sketches and their bounds, for an incoherent and a coherent matrix.
func theoryPlot(path string, m, n, p, trials int, seed uint64) error {
	var ks []int
	for k := 4; k+p <= min(m, n) && k <= 96; k += 4 {
		ks = append(ks, k)
	}
	var sp testmat.Spectrum
	for _, s := range testmat.Spectra() {
		if s.Name == "1/j" {
			sp = s
		}
	}
	st := testmat.Structures()
	panels := []testmat.Structure{st[0], st[3]}
	plots := make([][]*plot.Plot, 1)
	for _, s := range panels {
		cs, err := experiment.ErrorCurves(experiment.CurveConfig{M: m, N: n, Spectrum: sp, Structure: s, Ks: ks, P: p, Trials: trials, Seed: seed})
		if err != nil {
			return err
		}
		pl, err := curvePlot(cs, fmt.Sprintf("σ_j = 1/j, %s, %d×%d, ℓ = k+%d, q = 0", s.Name, m, n, p))
		if err != nil {
			return err
		}
		plots[0] = append(plots[0], pl)
	}
	const w, h = 26 * vg.Centimeter, 11 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Centimeter / 2}
	canvases := plot.Align(plots, t, dc)
	for j := range panels {
		plots[0][j].Draw(canvases[0][j])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func curvePlot(cs []experiment.Curve, title string) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = title
	pl.X.Label.Text = "target rank k"
	pl.Y.Label.Text = "‖A − QQᵀA‖_F / ‖A‖_F"
	pl.Y.Scale = plot.LogScale{}
	pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	pl.Legend.Left = true
	pl.Legend.XOffs = vg.Centimeter / 4
	pl.Legend.YOffs = vg.Centimeter / 4
	styles := []struct {
		c    color.Color
		dash []vg.Length
	}{
		{color.Black, nil},
		{color.RGBA{R: 200, A: 255}, nil},
		{color.RGBA{R: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}},
		{color.RGBA{B: 200, A: 255}, nil},
		{color.RGBA{B: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}},
		{color.RGBA{B: 120, G: 120, A: 255}, []vg.Length{vg.Points(1), vg.Points(2)}},
	}
	for i, c := range cs {
		if len(c.K) == 0 {
			// Every draw had a rank-deficient Ω₁: the bound is infinite.
			l := &plotter.Line{LineStyle: draw.LineStyle{Color: styles[i%len(styles)].c,
				Dashes: styles[i%len(styles)].dash, Width: vg.Points(1.5)}}
			pl.Legend.Add(c.Name+" = ∞ (Ω₁ rank deficient)", l)
			continue
		}
		xy := make(plotter.XYs, len(c.K))
		for j := range c.K {
			xy[j].X, xy[j].Y = float64(c.K[j]), c.Y[j]
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Color = styles[i%len(styles)].c
		l.Dashes = styles[i%len(styles)].dash
		l.Width = vg.Points(1.5)
		pl.Add(l)
		pl.Legend.Add(c.Name, l)
	}
	return pl, nil
}
