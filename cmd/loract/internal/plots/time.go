package plots

import (
	"fmt"
	"sort"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loract/loract/cmd/loract/internal/bench"
)

// Series is one named set of points of a plot, with a record of the
// series for its style (implementation, device, method).
type Series struct {
	Name string
	XY   plotter.XYs
	Rec  bench.Record
}

// TimeRecord reports whether r belongs in the time-vs-size plot: a shape
// with m = 4n and k = n/16, and the exact SVD or a QB method at p = 0,
// q = 0. It selects the extra (GPU) records given to 'loract plot'.
func TimeRecord(r bench.Record) bool {
	return r.M == 4*r.N && r.K*16 == r.N &&
		(r.Method == "exact" || ((r.Method == "rows" || r.Method == "gaussian") && r.P == 0 && r.Q == 0))
}

// TimeSeries groups the records that ran into one series per
// implementation, method, device, setting (unless p = q = 0) and input
// type, named e.g. "loract rows (cpu) fp32" or "torch rows (cuda) bf16",
// with points (m·n in millions, ms) sorted by size; series come sorted by
// name.
func TimeSeries(recs []bench.Record) []Series {
	byName := map[string]*Series{}
	var names []string
	for _, r := range recs {
		if !r.Ok() {
			continue
		}
		name := r.Label()
		if r.Peer == "loract" {
			name += " (" + r.Device + ")"
		}
		if r.Method != "exact" && (r.P != 0 || r.Q != 0) {
			name += " " + r.Setting()
		}
		name += " " + r.Dtype
		s := byName[name]
		if s == nil {
			s = &Series{Name: name, Rec: r}
			byName[name] = s
			names = append(names, name)
		}
		s.XY = append(s.XY, plotter.XY{X: float64(r.M) * float64(r.N) / 1e6, Y: r.Ms})
	}
	sort.Strings(names)
	out := make([]Series, len(names))
	for i, name := range names {
		out[i] = *byName[name]
		sort.SliceStable(out[i].XY, func(a, b int) bool { return out[i].XY[a].X < out[i].XY[b].X })
	}
	return out
}

// TimeVsSize writes the time-vs-size plot of recs to path: the time of
// each method and backend against the number of elements, log-log, in the
// colour of its implementation (dashed for the exact SVD, dotted for the
// Gaussian methods, thick on a GPU).
func TimeVsSize(path string, recs []bench.Record) error {
	series := TimeSeries(recs)
	if len(series) == 0 {
		return fmt.Errorf("%w: no time-vs-size record ran", ErrNoData)
	}
	p := newPlot("Time vs size: activation-like m×n, m = 4n, k = n/16; median of calls", "elements m·n (millions)", "time (ms)", true, true)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	for _, s := range series {
		l, sc, err := plotter.NewLinePoints(s.XY)
		if err != nil {
			return err
		}
		r := s.Rec
		c := PeerColor(r.Peer, r.Device)
		l.Color, sc.Color = c, c
		l.Width = vg.Points(1.5)
		if r.Device != "cpu" {
			l.Width = vg.Points(2.5)
		}
		switch r.Method {
		case "exact":
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		case "gaussian", "randomized_svd", "svd_lowrank", "svd":
			l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		}
		sc.Shape = methodGlyph(r.Method)
		sc.Radius = vg.Points(3)
		p.Add(l, sc)
		p.Legend.Add(s.Name, l, sc)
	}
	return save(p, path)
}
