package plots

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/loract/loract/cmd/loract/internal/experiment"
)

// optimalCurve is the name experiment.ErrorCurves gives the Eckart–Young
// curve.
const optimalCurve = "optimal (Eckart–Young)"

// RankCurves are the error-vs-rank curves at one oversampling P.
type RankCurves struct {
	P      int
	Curves []experiment.Curve
}

// ErrorVsRank writes the error-vs-rank plot to path: for each
// oversampling, the relative error of row sampling (red) and Gaussian
// sketches (blue) against k, their median certificates (dashed) and HMT
// Thm 10.5 (teal, dotted), with the Eckart–Young optimum once (black), on
// the m×n matrix named in the title, trials draws per point. Certificates
// beyond 3 are clipped (a certificate whose theorem does not apply on a
// draw is enormous).
func ErrorVsRank(path string, m, n, trials int, curves []RankCurves) error {
	p := newPlot(fmt.Sprintf("Error vs rank: %d×%d activation-like (σ_j = 1/j + 1e-3), sketch width k+p, mean of %d draws", m, n, trials),
		"target rank k", "‖A − P_Y A‖_F / ‖A‖_F", true, true)
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Y.Max = 3
	lines := 0
	optimalDrawn := false
	for _, rc := range curves {
		for _, c := range rc.Curves {
			if len(c.K) == 0 || (c.Name == optimalCurve && optimalDrawn) {
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
			name := fmt.Sprintf("p=%d %s", rc.P, c.Name)
			var col color.Color = color.RGBA{R: 220, G: 30, B: 30, A: 255} // rows
			if strings.HasPrefix(c.Name, "gaussian") {
				col = color.RGBA{R: 30, G: 90, B: 220, A: 255}
			}
			l.Width = vg.Points(1.5)
			if rc.P == 0 {
				sc.Shape = draw.CircleGlyph{}
			} else {
				sc.Shape = draw.BoxGlyph{}
				l.Width = vg.Points(2.5)
			}
			switch {
			case c.Name == optimalCurve:
				name, col = c.Name, color.Black
				l.Width = vg.Points(3)
				sc.Shape = draw.CrossGlyph{}
				optimalDrawn = true
			case strings.Contains(c.Name, "certificate"):
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			case strings.Contains(c.Name, "HMT"):
				col = color.RGBA{R: 0, G: 150, B: 150, A: 255}
				l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			}
			l.Color, sc.Color = col, col
			p.Add(l, sc)
			p.Legend.Add(name, l, sc)
			lines++
		}
	}
	if lines == 0 {
		return fmt.Errorf("%w: no error-vs-rank curve has a point", ErrNoData)
	}
	return save(p, path)
}
