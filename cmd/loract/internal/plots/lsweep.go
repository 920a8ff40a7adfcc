package plots

import (
	"encoding/json"
	"fmt"
	"sort"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
)

// LPoint is one width of the GPU ℓ sweep (gpu.TestQRSweep, -gpu.prof):
// the thin QR of a 4096×ℓ float32 matrix and the whole rows QB of a
// 16384×4096 bf16 activation at k = ℓ (p = 0) and k = ℓ − 10 (p = 10), in
// milliseconds (0 where not measured); the _before fields time the same
// QBs with the padded products and the dsyevd truncation switched off
// (records from 2026-12-02 on).
type LPoint struct {
	L           int     `json:"l"`
	QR          float64 `json:"qr_ms"`
	QB          float64 `json:"qb_ms"`
	QBP10       float64 `json:"qb_p10_ms"`
	QBBefore    float64 `json:"qb_ms_before"`
	QBP10Before float64 `json:"qb_p10_ms_before"`
	Device      string  `json:"device"`
}

// ReadLSweep reads the sweep's JSON lines ("sweep": "qr") from name,
// sorted by ℓ.
func ReadLSweep(name string) ([]LPoint, error) {
	var pts []LPoint
	err := readJSONLines(name, func(line []byte) error {
		var probe struct {
			Sweep string `json:"sweep"`
		}
		if err := json.Unmarshal(line, &probe); err != nil {
			return err
		}
		if probe.Sweep != "qr" {
			return nil
		}
		var p LPoint
		if err := json.Unmarshal(line, &p); err != nil {
			return err
		}
		pts = append(pts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].L < pts[j].L })
	return pts, nil
}

// LSweep writes the ℓ-sweep figure: the QR's time and the QB's at p = 0
// and p = 10 against ℓ, log-log, so that a cliff at a width shows as a
// step above its neighbours; where the records have them, the QBs
// without padding and dsyevd are drawn dashed in the same colours.
func LSweep(path string, pts []LPoint) error {
	series := []struct {
		name   string
		get    func(LPoint) float64
		color  int
		dashed bool
	}{
		{"thin QR of 4096×ℓ (fp32)", func(p LPoint) float64 { return p.QR }, 0, false},
		{"rows QB 16384×4096 bf16, k = ℓ, p = 0", func(p LPoint) float64 { return p.QB }, 1, false},
		{"rows QB, k = ℓ − 10, p = 10", func(p LPoint) float64 { return p.QBP10 }, 2, false},
		{"p = 0, before (unpadded products)", func(p LPoint) float64 { return p.QBBefore }, 1, true},
		{"p = 10, before (Jacobi SVD truncation)", func(p LPoint) float64 { return p.QBP10Before }, 2, true},
	}
	device := ""
	if len(pts) > 0 {
		device = " (" + pts[0].Device + ")"
	}
	p := newPlot("Time against the sketch width ℓ"+device, "ℓ", "time (ms)", true, true)
	p.Legend.Top = true
	p.Legend.Left = true
	drawn := 0
	for _, s := range series {
		var xy plotter.XYs
		for _, pt := range pts {
			if v := s.get(pt); v > 0 {
				xy = append(xy, plotter.XY{X: float64(pt.L), Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, sc.Color = plotutil.Color(s.color), plotutil.Color(s.color)
		if s.dashed {
			l.Dashes = plotutil.Dashes(1)
		}
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("%w: no ℓ-sweep point", ErrNoData)
	}
	return save(p, path)
}
