package experiment

import (
	"fmt"
	"io"
	"math"
)

// WriteRegimeTable writes the regimes as the Markdown table of
// docs/theory.md: one line per spectrum × structure × q with row
// sampling's and the Gaussian sketch's mean and worst error ÷ optimal,
// their mean certificates and HMT Thm 10.5. rs must alternate rows and
// Gaussian regimes of the same cell, as Regimes returns them.
func WriteRegimeTable(w io.Writer, rs []Regime) {
	fmt.Fprintln(w, "| spectrum | structure | μ | q | rows mean | rows worst | rows cert | gauss mean | gauss worst | gauss cert | HMT 10.5 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for i := 0; i+1 < len(rs); i += 2 {
		r, g := rs[i], rs[i+1]
		fmt.Fprintf(w, "| %s | %s | %.1f | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Spectrum, r.Structure, r.Mu, r.Q,
			num(r.MeanErr), num(r.WorstErr), cert(r), num(g.MeanErr), num(g.WorstErr), cert(g), num(g.Apriori))
	}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 1):
		return "∞"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// cert prints the mean certificate, or the number of draws on which it was
// finite when some were not.
func cert(r Regime) string {
	if math.IsInf(r.MeanCert, 1) {
		return fmt.Sprintf("∞ (%d finite)", r.Finite)
	}
	return num(r.MeanCert)
}
