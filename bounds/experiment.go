package bounds

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// Spectrum is a named singular value profile for the experiments.
type Spectrum struct {
	Name string
	// Values returns r singular values, non-increasing, for target rank k.
	Values func(r, k int) []float64
	// Decaying reports whether the spectrum has low-rank structure at k
	// (the regimes where row sampling is claimed to win).
	Decaying bool
}

// Structure is a named way of placing singular vectors.
type Structure struct {
	Name string
	// Matrix returns an m×n matrix with exactly the singular values sigma.
	Matrix func(m, n int, sigma []float64, seed uint64) *mat.Dense
}

// Spectra returns the spectra of the property tests and the regime table:
// σ_j = 1/j, 1/j², exp(−j/4), exact rank k plus 1e-3 noise, flat, and a
// 100× gap at k on top of 1/j (j = 1..r).
func Spectra() []Spectrum {
	return []Spectrum{
		{"1/j", func(r, _ int) []float64 { return testmat.PowerLaw(r, 1, 0) }, true},
		{"1/j²", func(r, _ int) []float64 { return testmat.PowerLaw(r, 2, 0) }, true},
		{"exp(−j/4)", func(r, _ int) []float64 { return testmat.Exponential(r, 0.25) }, true},
		{"rank k + 1e-3", func(r, k int) []float64 { return testmat.RankPlusNoise(r, k, 1e-3) }, true},
		{"flat", func(r, _ int) []float64 { return testmat.Flat(r) }, false},
		{"gap 100× at k", func(r, k int) []float64 { return testmat.Gap(r, k, 0.01) }, true},
	}
}

// Structures returns the singular vector structures: incoherent (Haar
// random bases on both sides), incoherent but structured (randomly
// permuted and signed DCT bases: μ ≤ 2, yet a few rows of the leading
// singular vectors can be nearly dependent), coherent columns (V = I: the dominant
// directions are single columns), outlier columns (the 4 leading right
// singular vectors live on 4 columns, like LLM outlier channels; Haar
// elsewhere) and outlier rows (the same on 4 rows, like attention-sink
// tokens).
func Structures() []Structure {
	return []Structure{
		{"incoherent (Haar)", testmat.Haar},
		{"incoherent (DCT)", testmat.Incoherent},
		{"coherent V = I", func(m, n int, s []float64, seed uint64) *mat.Dense {
			return testmat.Coherent(m, n, s, false, seed)
		}},
		{"outlier cols", func(m, n int, s []float64, seed uint64) *mat.Dense {
			a, _ := testmat.OutlierCols(m, n, s, 4, seed)
			return a
		}},
		{"outlier rows", func(m, n int, s []float64, seed uint64) *mat.Dense {
			a, _ := testmat.OutlierRows(m, n, s, 4, seed)
			return a
		}},
	}
}

// Trial is one draw of one method on one matrix: the measured projection
// error of the width-ℓ sketch, ‖(I − P_Y)A‖ (Frobenius and spectral), and
// its certificate split at rank k.
type Trial struct {
	ErrF, ErrS float64
	Cert       Certificate
	// Row holds the row-sampling certificate; nil for a Gaussian trial.
	Row *RowCertificate
}

// RowsTrial runs sampling.QB with sketch width l (no truncation, so the
// factors span the whole sketch) and q power iterations on a, and returns
// the measured error and the certificate of the exact draw at rank k.
func RowsTrial(a *mat.Dense, ex *Exact, k, l, q int, seed uint64) (Trial, error) {
	var d sampling.Draw
	f, err := sampling.QB(a, l, &sampling.Options{Seed: seed, PowerIters: q, Draw: &d})
	if err != nil {
		return Trial{}, err
	}
	t := Trial{}
	t.ErrF, t.ErrS = Residual(a, f)
	rc := ex.ForSampling(&d, k, q)
	t.Cert, t.Row = rc.Certificate, &rc
	return t, nil
}

// GaussianTrial is RowsTrial for rsvd.QB (Gaussian test matrix, QR
// normalisation of the power iterations).
func GaussianTrial(a *mat.Dense, ex *Exact, k, l, q int, seed uint64) (Trial, error) {
	var omega mat.Dense
	var trans bool
	f, err := rsvd.QB(a, l, &rsvd.Options{Seed: seed, PowerIters: q, TestMatrix: &omega, TransOut: &trans})
	if err != nil {
		return Trial{}, err
	}
	t := Trial{}
	t.ErrF, t.ErrS = Residual(a, f)
	t.Cert = ex.ForGaussian(&omega, trans, k, q)
	return t, nil
}

// RegimeConfig sets the size of the regime experiment.
type RegimeConfig struct {
	M, N, K int
	// P is the oversampling: both methods use sketch width ℓ = K+P.
	P int
	// Q lists the power-iteration counts to run.
	Q      []int
	Trials int
	Seed   uint64
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
func Regimes(cfg RegimeConfig, spectra []Spectrum, structures []Structure) ([]Regime, error) {
	var out []Regime
	r := min(cfg.M, cfg.N)
	l := cfg.K + cfg.P
	for si, sp := range spectra {
		sigma := sp.Values(r, cfg.K)
		opt := OptimalFrobenius(sigma, cfg.K)
		for ti, st := range structures {
			a := st.Matrix(cfg.M, cfg.N, sigma, cfg.Seed+uint64(100*si+ti))
			ex, err := NewExact(a)
			if err != nil {
				return nil, fmt.Errorf("exact SVD of %s × %s: %w", sp.Name, st.Name, err)
			}
			mu := ex.op(cfg.M > cfg.N).Coherence(cfg.K)
			for _, q := range cfg.Q {
				for _, method := range []string{"rows", "gaussian"} {
					g := Regime{Spectrum: sp.Name, Structure: st.Name, Method: method, Q: q, Mu: mu, Apriori: math.NaN()}
					if method == "gaussian" && q == 0 && cfg.P >= 2 && l <= r {
						g.Apriori = GaussianFrobenius(sigma, cfg.K, cfg.P) / opt
					}
					var sumE, sumC float64
					for t := range cfg.Trials {
						seed := cfg.Seed + uint64(t)
						var tr Trial
						if method == "rows" {
							tr, err = RowsTrial(a, ex, cfg.K, l, q, seed)
						} else {
							tr, err = GaussianTrial(a, ex, cfg.K, l, q, seed)
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
		}
	}
	return out, nil
}
