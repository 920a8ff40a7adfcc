package plots

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/loract/loract/cmd/loract/internal/experiment"
)

// Panel is one panel of CurvePanels: a title and the curves of
// experiment.ErrorCurves.
type Panel struct {
	Title  string
	Curves []experiment.Curve
}

// CurvePanels writes the panels side by side as one 26 cm × 11 cm PNG to
// path: relative Frobenius error against k, log scale, one line per curve
// in the order of experiment.ErrorCurves (optimal black, rows red,
// Gaussian blue, certificates dashed, HMT dotted). A curve without points
// (every draw had a rank-deficient Ω₁, so the bound is infinite) is named
// in the legend only.
func CurvePanels(path string, panels []Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("%w: no panel", ErrNoData)
	}
	plots := make([][]*plot.Plot, 1)
	for _, pn := range panels {
		pl, err := curvePlot(pn.Curves, pn.Title)
		if err != nil {
			return err
		}
		plots[0] = append(plots[0], pl)
	}
	return saveRow(path, plots[0], 26*vg.Centimeter, 11*vg.Centimeter)
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
		st := styles[i%len(styles)]
		if len(c.K) == 0 {
			l := &plotter.Line{LineStyle: draw.LineStyle{Color: st.c, Dashes: st.dash, Width: vg.Points(1.5)}}
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
		l.Color = st.c
		l.Dashes = st.dash
		l.Width = vg.Points(1.5)
		pl.Add(l)
		pl.Legend.Add(c.Name, l)
	}
	return pl, nil
}
