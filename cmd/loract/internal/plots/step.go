package plots

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loract/loract/cmd/loract/internal/step"
)

// StepPoint is one compressed run of the GPU step benchmark ('loract
// bench -step -json'): its paired ratio to the kept step at L tokens and
// compression rank K.
type StepPoint struct {
	Run    string // "one by one", "batched", …: one line per run
	Tokens int
	K      int
	Ratio  float64
}

// ReadStepRecords reads the compressed runs with a paired ratio from a
// step benchmark's JSON lines, and the card they ran on.
func ReadStepRecords(name string) ([]StepPoint, string, error) {
	var pts []StepPoint
	device := ""
	err := readJSONLines(name, func(line []byte) error {
		var r step.Result
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if r.Mode != "loract" || r.PairedRatio == 0 {
			return nil
		}
		run := r.Variant()
		if run == "" {
			run = "one by one"
		}
		pts = append(pts, StepPoint{Run: run, Tokens: r.Tokens, K: r.K, Ratio: r.PairedRatio})
		device = r.Device
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(pts) == 0 {
		return nil, "", fmt.Errorf("%w: no compressed run with a paired ratio in %s", ErrNoData, name)
	}
	return pts, device, nil
}

// StepOverhead writes the step benchmark's figure to path: one panel per
// compression rank, the paired step-time ratio (compressed ÷ kept) against
// the tokens L on a log scale, one line per run, and the target
// (target, dashed) when it is > 0.
func StepOverhead(path, title string, pts []StepPoint, target float64) error {
	if len(pts) == 0 {
		return fmt.Errorf("%w: no compressed run", ErrNoData)
	}
	var ks []int
	var runs []string
	for _, pt := range pts {
		if math.IsNaN(pt.Ratio) || math.IsInf(pt.Ratio, 0) || pt.Tokens < 1 {
			return fmt.Errorf("plots: %s at L = %d, k = %d: ratio %g", pt.Run, pt.Tokens, pt.K, pt.Ratio)
		}
		if !slices.Contains(ks, pt.K) {
			ks = append(ks, pt.K)
		}
		if !slices.Contains(runs, pt.Run) {
			runs = append(runs, pt.Run)
		}
	}
	sort.Ints(ks)
	row := make([]*plot.Plot, len(ks))
	for c, k := range ks {
		p := newPlot(fmt.Sprintf("k = %d", k), "tokens L", "step time ÷ kept step (paired)", true, false)
		lo, hi, ymax := math.Inf(1), math.Inf(-1), target
		for i, run := range runs {
			var xy plotter.XYs
			for _, pt := range pts {
				if pt.K == k && pt.Run == run {
					xy = append(xy, plotter.XY{X: float64(pt.Tokens), Y: pt.Ratio})
					lo, hi = math.Min(lo, float64(pt.Tokens)), math.Max(hi, float64(pt.Tokens))
					ymax = math.Max(ymax, pt.Ratio)
				}
			}
			sort.Slice(xy, func(a, b int) bool { return xy[a].X < xy[b].X })
			if err := addLine(p, run, xy, i, false, true); err != nil {
				return err
			}
		}
		if target > 0 && lo <= hi {
			ln, err := plotter.NewLine(plotter.XYs{{X: lo, Y: target}, {X: hi, Y: target}})
			if err != nil {
				return err
			}
			ln.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			ln.Color = color.Gray{Y: 90}
			p.Add(ln)
			p.Legend.Add(fmt.Sprintf("target %.2f×", target), ln)
		}
		// Below the lines, which fall with L: the legend at the lower
		// left; ticks at the measured token counts and every 0.05×.
		p.Y.Min, p.Y.Max = 1, 1+1.15*(ymax-1)
		p.Legend.Left = true
		p.Y.Tick.Marker = stepTicks(p.Y.Max)
		p.X.Tick.Marker = tokenTicks(pts)
		row[c] = p
	}
	return saveRowTitled(path, title, row, vg.Length(len(ks))*11*vg.Centimeter, 10*vg.Centimeter)
}

// stepTicks marks the ratio axis every 0.05 from 1 to hi, labelled every
// 0.1 (every 0.05 below 1.2).
func stepTicks(hi float64) plot.Ticker {
	var ts []plot.Tick
	for i := 0; 1+0.05*float64(i) <= hi+1e-9; i++ {
		v := 1 + 0.05*float64(i)
		label := ""
		if i%2 == 0 || hi < 1.2 {
			label = fmt.Sprintf("%.2f×", v)
		}
		ts = append(ts, plot.Tick{Value: v, Label: label})
	}
	return plot.ConstantTicks(ts)
}

// tokenTicks marks the token axis at the measured token counts.
func tokenTicks(pts []StepPoint) plot.Ticker {
	var ls []int
	for _, pt := range pts {
		if !slices.Contains(ls, pt.Tokens) {
			ls = append(ls, pt.Tokens)
		}
	}
	sort.Ints(ls)
	ts := make([]plot.Tick, len(ls))
	for i, l := range ls {
		ts[i] = plot.Tick{Value: float64(l), Label: fmt.Sprint(l)}
	}
	return plot.ConstantTicks(ts)
}
