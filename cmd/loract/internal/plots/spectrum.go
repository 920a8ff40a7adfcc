package plots

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/internal/testmat"
)

// SpectrumPoints returns (j, σ_j/σ_1) for j = 1, 2, … while σ_j/σ_1 >
// 1e-12 (the log axis has no room for rounding noise and zeros).
func SpectrumPoints(s []float64) plotter.XYs {
	var xys plotter.XYs
	for j, v := range s {
		if v > 0 && s[0] > 0 && v/s[0] > 1e-12 {
			xys = append(xys, plotter.XY{X: float64(j + 1), Y: v / s[0]})
		}
	}
	return xys
}

// Spectrum writes the spectrum plot to path: the normalised singular
// values σ_j/σ_1 of each saved activation of layers (later blocks dashed:
// the palette has 7 colours), beside the benchmarks' activation-like
// spectrum 1/j + 1e-3 (black, dashed), log-log, under title.
func Spectrum(path, title string, layers []vit.LayerSpectrum) error {
	if len(layers) == 0 {
		return fmt.Errorf("%w: no layer spectrum", ErrNoData)
	}
	p := newPlot(title, "index j", "σ_j / σ_1", true, true)
	p.Legend.Left = true
	for i, ls := range layers {
		name := strings.Join(ls.Layers, ",")
		dashed := strings.HasPrefix(name, "blk") && !strings.HasPrefix(name, "blk0")
		if err := addLine(p, fmt.Sprintf("%s (%d×%d)", name, ls.Rows, ls.Cols), SpectrumPoints(ls.Values), i, dashed, false); err != nil {
			return err
		}
	}
	l, err := plotter.NewLine(SpectrumPoints(testmat.ActivationLike(128)))
	if err != nil {
		return err
	}
	l.Color = color.Black
	l.Width = vg.Points(2.5)
	l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	p.Add(l)
	p.Legend.Add("benchmark spectrum 1/j + 1e-3", l)
	return save(p, path)
}
