package plots

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loract/loract/cmd/loract/internal/bench"
)

// ParetoFamilies groups the records that ran into one series per
// implementation and method (Record.Label), in order of first
// appearance, with points (ms, error ÷ opt).
func ParetoFamilies(recs []bench.Record, opt float64) []Series {
	byName := map[string]int{}
	var out []Series
	for _, r := range recs {
		if !r.Ok() {
			continue
		}
		name := r.Label()
		i, ok := byName[name]
		if !ok {
			i = len(out)
			byName[name] = i
			out = append(out, Series{Name: name, Rec: r})
		}
		out[i].XY = append(out[i].XY, plotter.XY{X: r.Ms, Y: r.Err() / opt})
	}
	return out
}

// Pareto writes the accuracy-vs-time plot to path: error ÷ opt against
// time for every record of recs (a grid over q ∈ qs, p ∈ ps on the
// matrix named by shape), one marker per family, the Pareto front
// (bench.ParetoFront) as a step line and the fair comparison's target
// bench.FairFactor × optimal.
func Pareto(path string, recs []bench.Record, opt float64, shape string, qs, ps []int) error {
	fams := ParetoFamilies(recs, opt)
	if len(fams) == 0 {
		return fmt.Errorf("%w: no Pareto record ran", ErrNoData)
	}
	p := newPlot(fmt.Sprintf("Accuracy vs time: %s float32, q ∈ %s, p ∈ %s (and scikit-learn's default)", shape, intSet(qs), intSet(ps)),
		"time (ms)", "error ÷ optimal", true, false)
	p.Legend.Top = true
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, f := range fams {
		s, err := plotter.NewScatter(f.XY)
		if err != nil {
			return err
		}
		s.Color = PeerColor(f.Rec.Peer, f.Rec.Device)
		s.Shape = methodGlyph(f.Rec.Method)
		s.Radius = vg.Points(4)
		p.Add(s)
		p.Legend.Add(f.Name, s)
		for _, v := range f.XY {
			xmin, xmax = math.Min(xmin, v.X), math.Max(xmax, v.X)
		}
	}
	var fx plotter.XYs
	for _, r := range bench.ParetoFront(recs) {
		fx = append(fx, plotter.XY{X: r.Ms, Y: r.Err() / opt})
	}
	l, err := plotter.NewLine(fx)
	if err != nil {
		return err
	}
	l.Color = color.Black
	l.StepStyle = plotter.PreStep
	p.Add(l)
	p.Legend.Add("Pareto front", l)
	tl, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: bench.FairFactor}, {X: xmax, Y: bench.FairFactor}})
	if err != nil {
		return err
	}
	tl.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	tl.Color = color.Gray{Y: 100}
	p.Add(tl)
	p.Legend.Add(fmt.Sprintf("%.2f× optimal", bench.FairFactor), tl)
	return save(p, path)
}

// intSet formats v as {1, 2, 3}.
func intSet(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "{" + strings.Join(s, ", ") + "}"
}
