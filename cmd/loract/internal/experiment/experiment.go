package experiment

import (
	"fmt"
	"math"

	"github.com/loract/loract/bounds"
	"github.com/loract/loract/internal/testmat"
)

// RegimeConfig sets the size of the regime experiment.
type RegimeConfig struct {
	M, N, K int
	// P is the oversampling: both methods use sketch width ℓ = K+P.
	P int
	// Q lists the power-iteration counts to run.
	Q      []int
	Trials int
	Seed   uint64
	// Progress, if not nil, is called after each spectrum × structure
	// with the number done, the total and the pair's names.
	Progress func(done, total int, what string)
}

// Regime is one row of the regime table: one method on one spectrum ×
// structure at one q. Ratios are to the optimal rank-k Frobenius error
// (Σ_{j>k} σ_j²)^{1/2}; errors are of the width-ℓ sketch.
type Regime struct {
	Spectrum, Structure, Method string
	Q                           int
	// Mu is the coherence μ(U₁) of the sampled side of op(A) at rank k.
	Mu float64
	// MeanErr and WorstErr are the mean and largest measured Frobenius
	// error over the trials, ÷ optimal.
	MeanErr, WorstErr float64
	// MeanCert is the mean per-draw Frobenius certificate ÷ optimal (+Inf
	// if any draw had a rank-deficient Ω₁); Finite counts the draws with a
	// finite certificate.
	MeanCert float64
	Finite   int
	// Apriori is HMT Thm 10.5 ÷ optimal for the Gaussian method at q = 0
	// and P ≥ 2, else NaN.
	Apriori float64
}

// Regimes runs cfg.Trials draws of row sampling and of the Gaussian
// sketch for every spectrum × structure × q and summarises them.
func Regimes(cfg RegimeConfig, spectra []testmat.Spectrum, structures []testmat.Structure) ([]Regime, error) {
	var out []Regime
	r := min(cfg.M, cfg.N)
	l := cfg.K + cfg.P
	done := 0
	for si, sp := range spectra {
		sigma := sp.Values(r, cfg.K)
		opt := bounds.OptimalFrobenius(sigma, cfg.K)
		for ti, st := range structures {
			a := st.Matrix(cfg.M, cfg.N, sigma, cfg.Seed+uint64(100*si+ti))
			ex, err := bounds.NewExact(a)
			if err != nil {
				return nil, fmt.Errorf("exact SVD of %s × %s: %w", sp.Name, st.Name, err)
			}
			mu := opOf(ex, cfg.M > cfg.N).Coherence(cfg.K)
			for _, q := range cfg.Q {
				for _, method := range []string{"rows", "gaussian"} {
					g := Regime{Spectrum: sp.Name, Structure: st.Name, Method: method, Q: q, Mu: mu, Apriori: math.NaN()}
					if method == "gaussian" && q == 0 && cfg.P >= 2 && l <= r {
						g.Apriori = bounds.GaussianFrobenius(sigma, cfg.K, cfg.P) / opt
					}
					var sumE, sumC float64
					for t := range cfg.Trials {
						seed := cfg.Seed + uint64(t)
						var tr bounds.Trial
						if method == "rows" {
							tr, err = bounds.RowsTrial(a, ex, cfg.K, l, q, seed)
						} else {
							tr, err = bounds.GaussianTrial(a, ex, cfg.K, l, q, seed)
						}
						if err != nil {
							return nil, err
						}
						sumE += tr.ErrF / opt
						g.WorstErr = max(g.WorstErr, tr.ErrF/opt)
						sumC += tr.Cert.Frobenius / opt
						if !math.IsInf(tr.Cert.Frobenius, 1) {
							g.Finite++
						}
					}
					g.MeanErr = sumE / float64(cfg.Trials)
					g.MeanCert = sumC / float64(cfg.Trials)
					out = append(out, g)
				}
			}
			done++
			if cfg.Progress != nil {
				cfg.Progress(done, len(spectra)*len(structures), sp.Name+" × "+st.Name)
			}
		}
	}
	return out, nil
}

// opOf returns the exact SVD of op(A): of Aᵀ if trans.
func opOf(ex *bounds.Exact, trans bool) *bounds.Exact {
	if trans {
		return ex.T()
	}
	return ex
}
