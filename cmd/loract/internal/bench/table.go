package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// FairFactor is the accuracy target of the fair comparison: the cheapest
// setting of each method whose error is at most FairFactor × optimal.
const FairFactor = 1.05

// sklearnNorm is scikit-learn's power_iteration_normalizer='auto': no
// normalisation for n_iter ≤ 2, LU beyond.
func sklearnNorm(q int) string {
	if q <= 2 {
		return "none"
	}
	return "lu"
}

// Matches reports whether peer runs the same algorithm with the same
// setting on the same problem as the loract record l:
//
//	loract rows p,q      numpy rows, torch rows (same p, q)
//	loract gaussian p,q  numpy gaussian, torch gaussian
//	loract svd p,q,lu/none  sklearn randomized_svd (its normaliser for q)
//	loract svd p,q,qr    torch svd_lowrank (QR after every half step)
//	loract exact         scipy exact (gesdd), torch exact
func Matches(l, peer Record) bool {
	if l.M != peer.M || l.N != peer.N || l.K != peer.K || l.Dtype != peer.Dtype {
		return false
	}
	if l.Method == "exact" {
		return peer.Method == "exact"
	}
	if l.P != peer.P || l.Q != peer.Q {
		return false
	}
	switch l.Method {
	case "rows", "gaussian":
		return peer.Method == l.Method && (peer.Peer == "numpy" || peer.Peer == "torch")
	case "svd":
		switch peer.Method {
		case "randomized_svd":
			return l.Norm == sklearnNorm(l.Q) || l.Q == 0
		case "svd_lowrank":
			return l.Norm == "qr" || l.Q == 0
		}
	}
	return false
}

// Ratio is loract's time divided by the peer's: below 1 loract is faster.
func Ratio(l, peer Record) float64 { return l.Ms / peer.Ms }

func errOpt(r Record, opt float64) string {
	if !r.Ok() {
		return "-"
	}
	return fmt.Sprintf("%.3f", r.Err()/opt)
}

func ms(r Record) string {
	if !r.Ok() {
		return "-"
	}
	switch {
	case r.Ms >= 100:
		return fmt.Sprintf("%.0f", r.Ms)
	case r.Ms >= 10:
		return fmt.Sprintf("%.1f", r.Ms)
	}
	return fmt.Sprintf("%.2f", r.Ms)
}

// Table writes the side-by-side table of the loract records (in order)
// and the peer records they match: time, error ÷ optimal (opt), loract
// time ÷ peer time, and the same ratio of CPU time (core-seconds, on the
// CPU only), which other programs sharing the cores inflate less. Peer records that could not run are listed with
// their reason. If md is set the table is Markdown, else aligned text.
func Table(w io.Writer, loract, peers []Record, opt float64, md bool) {
	rows := [][]string{{"loract method", "setting", "ms", "err/opt", "peer", "ms", "err/opt", "loract÷peer", "CPU-time ratio"}}
	for _, l := range loract {
		lcells := []string{l.Method, l.Setting(), ms(l), errOpt(l, opt)}
		if !l.Ok() {
			lcells[2] = "error: " + l.Error
		}
		n := 0
		for _, p := range peers {
			if !Matches(l, p) {
				continue
			}
			ratio, cpu := "-", "-"
			if l.Ok() && p.Ok() {
				ratio = fmtRatio(Ratio(l, p))
				if l.CPUMs > 0 && p.CPUMs > 0 && l.Device == "cpu" && p.Device == "cpu" {
					cpu = fmtRatio(l.CPUMs / p.CPUMs)
				}
			}
			pm := ms(p)
			if !p.Ok() {
				pm = "n/a: " + p.Error
			}
			c := lcells
			if n > 0 && !md {
				c = []string{"", "", "", ""}
			}
			rows = append(rows, append(append([]string{}, c...), p.Label(), pm, errOpt(p, opt), ratio, cpu))
			n++
		}
		if n == 0 {
			rows = append(rows, append(append([]string{}, lcells...), "(no peer)", "", "", "", ""))
		}
	}
	writeRows(w, rows, md)
}

// FairRow is one method's cheapest setting at the accuracy target.
type FairRow struct {
	// Family names the implementation and method, e.g. "sklearn randomized_svd".
	Family string
	// Best is the fastest record at or under the target; Reached is false
	// (and Best the most accurate record) if no setting reached it.
	Best    Record
	Reached bool
	Tried   int
}

// Fair returns, for every implementation and method among recs, the
// fastest setting whose error (Record.Err) is at most FairFactor × opt,
// sorted by time; families that never reach it come last.
func Fair(recs []Record, opt float64) []FairRow {
	byFam := map[string]*FairRow{}
	var order []string
	for _, r := range recs {
		if !r.Ok() {
			continue
		}
		fam := r.Label()
		if r.Peer == "loract" && r.Norm != "" && r.Method == "svd" {
			fam += " (" + r.Norm + ")"
		}
		f := byFam[fam]
		if f == nil {
			f = &FairRow{Family: fam}
			byFam[fam] = f
			order = append(order, fam)
		}
		f.Tried++
		ok := r.Err() <= FairFactor*opt
		switch {
		case ok && (!f.Reached || r.Ms < f.Best.Ms):
			f.Best, f.Reached = r, true
		case !ok && !f.Reached && (f.Tried == 1 || r.Err() < f.Best.Err()):
			f.Best = r
		}
	}
	out := make([]FairRow, 0, len(order))
	for _, fam := range order {
		out = append(out, *byFam[fam])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Reached != out[j].Reached {
			return out[i].Reached
		}
		if out[i].Reached {
			return out[i].Best.Ms < out[j].Best.Ms
		}
		return out[i].Best.Err() < out[j].Best.Err()
	})
	return out
}

// FairTable writes the fair comparison: each method's cheapest setting at
// error ≤ FairFactor × opt, its time and error ÷ optimal, and its time ÷
// the fastest loract method's.
func FairTable(w io.Writer, rows []FairRow, opt float64, md bool) {
	best := math.Inf(1)
	for _, r := range rows {
		if r.Reached && r.Best.Peer == "loract" && r.Best.Ms < best {
			best = r.Best.Ms
		}
	}
	out := [][]string{{"method", "cheapest setting", "ms", "err/opt", "÷ best loract", "settings tried"}}
	for _, r := range rows {
		set, t, ratio := r.Best.Setting(), ms(r.Best), "-"
		if !r.Reached {
			set = fmt.Sprintf("none reached %.2f× (best: %s)", FairFactor, r.Best.Setting())
			t = "-"
		} else if !math.IsInf(best, 1) {
			ratio = fmt.Sprintf("%.2f", r.Best.Ms/best)
		}
		out = append(out, []string{r.Family, set, t, errOpt(r.Best, opt), ratio, fmt.Sprint(r.Tried)})
	}
	writeRows(w, out, md)
}

func writeRows(w io.Writer, rows [][]string, md bool) {
	if md {
		for i, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
			if i == 0 {
				seps := make([]string, len(r))
				for j := range seps {
					seps[j] = "---"
				}
				fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// fmtRatio formats a time ratio with two decimals, and below 0.1 with
// three significant digits (0.0142, not 0.01: targets such as 0.01× sit
// there).
func fmtRatio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.3g", r)
	}
	return fmt.Sprintf("%.2f", r)
}
