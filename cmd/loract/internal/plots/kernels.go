package plots

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// KernelPhase is one phase of the GPU demo's training step in a kernel
// table (bench/gpudemo/ncu_kernels.py --json): the device time of one
// step, µs, in all and by kernel group (cuBLAS, own).
type KernelPhase struct {
	Phase   string             `json:"phase"`
	Kernels int                `json:"kernels"`
	Us      float64            `json:"us"`
	ByGroup map[string]float64 `json:"by_group_us"`
}

// ReadKernelPhases reads the phases of one kernel table written by
// ncu_kernels.py --json.
func ReadKernelPhases(name string) ([]KernelPhase, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var t struct {
		Phases []KernelPhase `json:"phases"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(t.Phases) == 0 {
		return nil, fmt.Errorf("%w: %s has no phase", ErrNoData, name)
	}
	return t.Phases, nil
}

// StepBar is one bar of KernelSteps: Label on the axis, Parts the lengths
// of its stacked segments, in the order of KernelSteps' parts.
type StepBar struct {
	Label string
	Parts []float64
}

// KernelSteps writes a figure of horizontal stacked bars to path, one per
// bar, the first on top: segment i of every bar in the colour of parts[i]
// (named in the legend), the bar's total written at its end. A bar whose
// parts differ in number from parts, or a part that is negative or not
// finite, is an error.
func KernelSteps(path, title, xLabel string, parts []string, bars []StepBar) error {
	if len(bars) == 0 || len(parts) == 0 {
		return fmt.Errorf("%w: %d bars of %d parts", ErrNoData, len(bars), len(parts))
	}
	names := make([]string, len(bars))
	totals := make(plotter.XYs, len(bars))
	labels := make([]string, len(bars))
	hi := 0.0
	for i, b := range bars {
		if len(b.Parts) != len(parts) {
			return fmt.Errorf("plots: bar %q has %d parts, the figure %d", b.Label, len(b.Parts), len(parts))
		}
		sum := 0.0
		for j, v := range b.Parts {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("plots: bar %q: part %s is %g", b.Label, parts[j], v)
			}
			sum += v
		}
		y := float64(len(bars) - 1 - i) // the first bar on top
		names[len(bars)-1-i] = b.Label
		totals[i] = plotter.XY{X: sum, Y: y}
		labels[i] = fmt.Sprintf(" %.2f", sum)
		hi = math.Max(hi, sum)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Add(plotter.NewGrid())
	below := make([]*plotter.BarChart, len(bars)) // per bar, its last segment so far
	for j, part := range parts {
		for i, b := range bars {
			seg, err := plotter.NewBarChart(plotter.Values{b.Parts[j]}, vg.Points(14))
			if err != nil {
				return err
			}
			seg.Horizontal = true
			seg.XMin = float64(len(bars) - 1 - i)
			seg.LineStyle.Width = 0
			seg.Color = plotutil.Color(j)
			if below[i] != nil {
				seg.StackOn(below[i])
			}
			below[i] = seg
			p.Add(seg)
			if i == 0 {
				p.Legend.Add(part, seg)
			}
		}
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: totals, Labels: labels})
	if err != nil {
		return err
	}
	lb.Offset = vg.Point{Y: -vg.Points(4)}
	p.Add(lb)
	p.X.Min, p.X.Max = 0, 1.45*hi // room for the totals and, top right, the legend
	p.NominalY(names...)
	p.Legend.Top = true
	p.Legend.Left = false
	return saveSized(p, path, 24*vg.Centimeter, vg.Length(4+1.1*float64(len(bars)))*vg.Centimeter)
}
