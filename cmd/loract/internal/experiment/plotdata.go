package experiment

import (
	"fmt"
	"math"
	"sort"

	"github.com/loract/loract/bounds"
	"github.com/loract/loract/internal/testmat"
	"gonum.org/v1/gonum/mat"
)

// Curve is one line of an error-vs-k plot: Y[i] at K[i]. Points where a
// quantity is infinite (a certificate whose theorem does not apply on most
// draws) are left out, so len(K) may be shorter than the requested ks.
type Curve struct {
	Name string
	K    []int
	Y    []float64
}

// CurveConfig describes an error-vs-k experiment: one m×n matrix with the
// given spectrum and structure, target ranks Ks, both sketches of width
// k+P with Q power iterations, Trials seeds per k.
type CurveConfig struct {
	M, N      int
	Spectrum  testmat.Spectrum
	Structure testmat.Structure
	Ks        []int
	P, Q      int
	Trials    int
	Seed      uint64
	// Progress, if not nil, is called after each k with the number of
	// ranks done, their total and the rank.
	Progress func(done, total int, what string)
}

// ErrorCurves computes, for every k in cfg.Ks, relative Frobenius errors
// (÷ ‖A‖_F) of the width-(k+P) sketches, and returns the curves
//
//	"optimal (Eckart–Young)"  (Σ_{j>k} σ_j²)^{1/2}
//	"rows: mean error"         mean over the trials of ‖(I − P_Y)A‖_F, row sampling
//	"rows: median certificate" the median per-draw certificate (theory.md Thm 1)
//	"gaussian: mean error"     the same for a Gaussian test matrix
//	"gaussian: median certificate"
//	"gaussian: HMT Thm 10.5"   only if P ≥ 2 and Q = 0
//
// The matrix is built once (seed cfg.Seed) and its exact SVD computed
// once: cost O(m·n·min(m, n)) plus Trials·len(Ks) decompositions and
// residuals. It returns an error if the exact SVD fails or a decomposition
// rejects its arguments (k+P > min(m, n), say).
func ErrorCurves(cfg CurveConfig) ([]Curve, error) {
	r := min(cfg.M, cfg.N)
	kmax := 0
	for _, k := range cfg.Ks {
		kmax = max(kmax, k)
	}
	if cfg.Trials < 1 || len(cfg.Ks) == 0 || kmax+cfg.P > r {
		return nil, fmt.Errorf("bounds: ErrorCurves needs Trials ≥ 1 and k+P ≤ min(m, n) = %d for every k", r)
	}
	sigma := cfg.Spectrum.Values(r, kmax)
	a := cfg.Structure.Matrix(cfg.M, cfg.N, sigma, cfg.Seed)
	ex, err := bounds.NewExact(a)
	if err != nil {
		return nil, err
	}
	normA := mat.Norm(a, 2)
	names := []string{"optimal (Eckart–Young)", "rows: mean error", "rows: median certificate",
		"gaussian: mean error", "gaussian: median certificate", "gaussian: HMT Thm 10.5"}
	curves := make([]Curve, len(names))
	for i, nm := range names {
		curves[i].Name = nm
	}
	add := func(i, k int, y float64) {
		if math.IsInf(y, 0) || math.IsNaN(y) {
			return
		}
		curves[i].K = append(curves[i].K, k)
		curves[i].Y = append(curves[i].Y, y/normA)
	}
	for ki, k := range cfg.Ks {
		l := k + cfg.P
		add(0, k, bounds.OptimalFrobenius(sigma, k))
		for mi, run := range []func(*mat.Dense, *bounds.Exact, int, int, int, uint64) (bounds.Trial, error){bounds.RowsTrial, bounds.GaussianTrial} {
			var sum float64
			certs := make([]float64, cfg.Trials)
			for t := range cfg.Trials {
				tr, err := run(a, ex, k, l, cfg.Q, cfg.Seed+uint64(t)+1)
				if err != nil {
					return nil, err
				}
				sum += tr.ErrF
				certs[t] = tr.Cert.Frobenius
			}
			sort.Float64s(certs)
			add(1+2*mi, k, sum/float64(cfg.Trials))
			add(2+2*mi, k, certs[len(certs)/2])
		}
		if cfg.P >= 2 && cfg.Q == 0 && k >= 2 {
			add(5, k, bounds.GaussianFrobenius(sigma, k, cfg.P))
		}
		if cfg.Progress != nil {
			cfg.Progress(ki+1, len(cfg.Ks), fmt.Sprintf("k = %d", k))
		}
	}
	return curves, nil
}

// PanelRanks returns the ranks of the theory's error-vs-k plot: k = 4, 8,
// … up to 96 while k+p ≤ min(m, n).
func PanelRanks(m, n, p int) []int {
	var ks []int
	for k := 4; k+p <= min(m, n) && k <= 96; k += 4 {
		ks = append(ks, k)
	}
	return ks
}
