package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// EqualBytesPoint is one setting of the demo's equal-bytes sweep.
type EqualBytesPoint struct {
	// Label names the setting on the figure.
	Label string
	// MeanError is the mean relative error of the compressed activations,
	// Drop the test-accuracy drop against the float32 baseline in points
	// and Cos the cosine of the gradients against uncompressed ones.
	MeanError, Drop, Cos float64
	// Budget marks a byte-budget policy (else one rank ratio for all).
	Budget bool
	// Reference marks the plain bf16 factors the others are compared with.
	Reference bool
}

// EqualBytes writes the sweep's figure to path: three panels of
// horizontal bars, one bar per setting (top to bottom in the order
// given) — the mean activation error, the accuracy drop and 1 − the
// gradient cosine, lower is better in each — black for the reference,
// blue for a single rank ratio, red for the byte-budget policy, with a
// dotted line at the reference's value.
func EqualBytes(path, title string, pts []EqualBytesPoint) error {
	if len(pts) == 0 {
		return fmt.Errorf("%w: no setting", ErrNoData)
	}
	names := make([]string, len(pts))
	for i, pt := range pts {
		for _, v := range []float64{pt.MeanError, pt.Drop, pt.Cos} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("plots: setting %q: a value is not finite (error %g, drop %g, cosine %g)", pt.Label, pt.MeanError, pt.Drop, pt.Cos)
			}
		}
		names[len(pts)-1-i] = pt.Label // the first setting on top
	}
	panels := []struct {
		title string
		value func(EqualBytesPoint) float64
	}{
		{"mean relative error of the compressed activations", func(p EqualBytesPoint) float64 { return p.MeanError }},
		{"test-accuracy drop (points)", func(p EqualBytesPoint) float64 { return p.Drop }},
		{"1 − gradient cosine", func(p EqualBytesPoint) float64 { return 1 - p.Cos }},
	}
	row := make([]*plot.Plot, len(panels))
	for c, pn := range panels {
		p := plot.New()
		p.X.Label.Text = pn.title
		p.Add(plotter.NewGrid())
		lo, hi := 0.0, 0.0
		var ref float64
		for i, pt := range pts {
			v := pn.value(pt)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			bar, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(12))
			if err != nil {
				return err
			}
			bar.Horizontal = true
			bar.XMin = float64(len(pts) - 1 - i)
			bar.LineStyle.Width = 0
			switch {
			case pt.Reference:
				bar.Color, ref = color.Black, v
			case pt.Budget:
				bar.Color = PeerColor("loract", "")
			default:
				bar.Color = PeerColor("numpy", "")
			}
			p.Add(bar)
		}
		ln, err := plotter.NewLine(plotter.XYs{{X: ref, Y: -0.5}, {X: ref, Y: float64(len(pts)) - 0.5}})
		if err != nil {
			return err
		}
		ln.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		ln.Color = color.Gray{Y: 100}
		p.Add(ln)
		p.X.Min, p.X.Max = lo-0.05*(hi-lo), hi+0.05*(hi-lo)
		if p.X.Max == p.X.Min {
			p.X.Max = p.X.Min + 1
		}
		p.NominalY(names...)
		if c > 0 {
			p.Y.Tick.Label.Font.Size = 0
			p.Y.Tick.Marker = plot.ConstantTicks(nil)
		}
		row[c] = p
	}
	h := vg.Length(4+0.75*float64(len(pts))) * vg.Centimeter
	return saveRowTitled(path, title, row, 30*vg.Centimeter, h)
}
