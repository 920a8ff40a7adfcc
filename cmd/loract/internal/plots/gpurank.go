package plots

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// RankPoint is one compressed run of the GPU demo at one rank ratio.
type RankPoint struct {
	// Mode names the run's saving ("loract checkpoint", "loract ops"):
	// one line per mode.
	Mode string
	// Ratio is the rank as a fraction of each activation's width.
	Ratio float64
	// Saved is the peak of all saved activations as a fraction of the
	// uncompressed run's (allocator-measured), Drop the test-accuracy
	// drop against it in points and Overhead the step-time overhead as a
	// fraction.
	Saved, Drop, Overhead float64
}

// RankSweep writes the GPU demo's memory-and-accuracy-against-rank figure
// to path: three panels against the rank ratio, one line per mode — the
// saved activations in % of the uncompressed run's, the accuracy drop in
// points (a dotted line at 0) and the step-time overhead in %.
func RankSweep(path, title string, pts []RankPoint) error {
	if len(pts) == 0 {
		return fmt.Errorf("%w: no compressed run", ErrNoData)
	}
	byMode := map[string][]RankPoint{}
	var modes []string
	for _, pt := range pts {
		for _, v := range []float64{pt.Ratio, pt.Saved, pt.Drop, pt.Overhead} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("plots: %s at ratio %g: a value is not finite (saved %g, drop %g, overhead %g)", pt.Mode, pt.Ratio, pt.Saved, pt.Drop, pt.Overhead)
			}
		}
		if _, ok := byMode[pt.Mode]; !ok {
			modes = append(modes, pt.Mode)
		}
		byMode[pt.Mode] = append(byMode[pt.Mode], pt)
	}
	panels := []struct {
		y     string
		value func(RankPoint) float64
		zero  bool
	}{
		{"saved activations (% of uncompressed)", func(p RankPoint) float64 { return 100 * p.Saved }, false},
		{"test-accuracy drop (points)", func(p RankPoint) float64 { return p.Drop }, true},
		{"step-time overhead (%)", func(p RankPoint) float64 { return 100 * p.Overhead }, false},
	}
	row := make([]*plot.Plot, len(panels))
	for c, pn := range panels {
		p := newPlot("", "rank ratio k/d", pn.y, false, false)
		if c == 0 {
			p.Title.Text = title
		}
		lo, hi, ymax := math.Inf(1), math.Inf(-1), 0.0
		for i, m := range modes {
			ms := byMode[m]
			sort.Slice(ms, func(a, b int) bool { return ms[a].Ratio < ms[b].Ratio })
			xy := make(plotter.XYs, len(ms))
			for j, pt := range ms {
				xy[j] = plotter.XY{X: pt.Ratio, Y: pn.value(pt)}
				lo, hi = math.Min(lo, pt.Ratio), math.Max(hi, pt.Ratio)
				ymax = math.Max(ymax, xy[j].Y)
			}
			if err := addLine(p, m, xy, i, false, true); err != nil {
				return err
			}
		}
		if c == 0 { // one legend, above the lines
			p.Legend.Top = true
		} else {
			p.Legend = plot.NewLegend()
		}
		if !pn.zero { // from 0, with room for the legend
			p.Y.Min, p.Y.Max = 0, 1.25*ymax
		}
		if pn.zero {
			ln, err := plotter.NewLine(plotter.XYs{{X: lo, Y: 0}, {X: hi, Y: 0}})
			if err != nil {
				return err
			}
			ln.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			ln.Color = color.Gray{Y: 100}
			p.Add(ln)
		}
		row[c] = p
	}
	return saveRow(path, row, 33*vg.Centimeter, 11*vg.Centimeter)
}
