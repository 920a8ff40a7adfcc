// Package plots draws the figures of 'loract plot' and 'loract theory
// -plot' (gonum.org/v1/plot) from measured records and computed curves:
// error against rank (ErrorVsRank), time against size (TimeVsSize), the
// accuracy/time Pareto front (Pareto), the singular values of the demo
// ViT's saved activations (Spectrum), the panels of the theory's
// error-vs-k plot (CurvePanels) and the GPU figures (LSweep, RankSweep,
// EqualBytes, StepOverhead, and KernelSteps: a demo step's device time by
// kernel group). Each writes one PNG through a temporary
// file renamed over the target only once the image is complete, so that a
// failed run never leaves a truncated or half-drawn figure in place.
//
// The grouping of records into series (TimeSeries, ParetoFamilies) is
// separate from the drawing so that it can be tested on fixed records.
package plots

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of the single-panel figures.
const (
	width  = 9 * vg.Inch
	height = 6 * vg.Inch
)

// readJSONLines calls fn with each line of the JSON-lines file name (up
// to 1 MiB a line); an error of fn is returned naming the file and line.
func readJSONLines(name string, fn func(line []byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	return sc.Err()
}

// ErrNoData is returned (wrapped) when a plot would have no series.
var ErrNoData = errors.New("plots: nothing to plot")

// WriteFile writes the file name through write, into a temporary file in
// the same folder renamed to name only if write and the close succeed;
// otherwise the temporary file is removed and any existing name is left
// as it was.
func WriteFile(name string, write func(w io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes the file 0600; a figure is for reading.
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// save writes p as a width×height PNG to path.
func save(p *plot.Plot, path string) error { return saveSized(p, path, width, height) }

// saveSized writes p as a wd×ht PNG to path.
func saveSized(p *plot.Plot, path string, wd, ht vg.Length) error {
	wt, err := p.WriterTo(wd, ht, "png")
	if err != nil {
		return err
	}
	return WriteFile(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}

// newPlot returns a plot with a grid and log axes as asked.
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

// addLine adds a line in palette colour i, dashed as asked, with points
// (in shape i) if points.
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

// PeerColor gives each implementation one colour across the plots, a
// darker one on a GPU.
func PeerColor(peer, device string) color.Color {
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

// saveRow writes the plots side by side, aligned, as a w×h PNG to path.
func saveRow(path string, row []*plot.Plot, w, h vg.Length) error {
	return saveRowTitled(path, "", row, w, h)
}

// saveRowTitled is saveRow with a title centred over the whole row (a
// plot's own title is centred over that plot, and one wider than it is
// cut at the image's edge). A margin on the left keeps the first plot's
// tick labels inside the image.
func saveRowTitled(path, title string, row []*plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Centimeter / 2, PadLeft: vg.Centimeter / 2}
	if title != "" {
		sty := draw.TextStyle{Color: color.Black, Font: row[0].X.Label.TextStyle.Font, XAlign: draw.XCenter, YAlign: draw.YTop, Handler: row[0].X.Label.TextStyle.Handler}
		sty.Font.Size = vg.Points(13)
		dc.FillText(sty, vg.Point{X: w / 2, Y: h - vg.Points(4)}, title)
		t.PadTop = sty.Height(title) + vg.Points(10)
	}
	canvases := plot.Align([][]*plot.Plot{row}, t, dc)
	for c := range row {
		row[c].Draw(canvases[0][c])
	}
	return WriteFile(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
		return err
	})
}
