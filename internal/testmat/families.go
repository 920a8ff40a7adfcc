package testmat

import "gonum.org/v1/gonum/mat"

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
		{"1/j", func(r, _ int) []float64 { return PowerLaw(r, 1, 0) }, true},
		{"1/j²", func(r, _ int) []float64 { return PowerLaw(r, 2, 0) }, true},
		{"exp(−j/4)", func(r, _ int) []float64 { return Exponential(r, 0.25) }, true},
		{"rank k + 1e-3", func(r, k int) []float64 { return RankPlusNoise(r, k, 1e-3) }, true},
		{"flat", func(r, _ int) []float64 { return Flat(r) }, false},
		{"gap 100× at k", func(r, k int) []float64 { return Gap(r, k, 0.01) }, true},
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
		{"incoherent (Haar)", Haar},
		{"incoherent (DCT)", Incoherent},
		{"coherent V = I", func(m, n int, s []float64, seed uint64) *mat.Dense {
			return Coherent(m, n, s, false, seed)
		}},
		{"outlier cols", func(m, n int, s []float64, seed uint64) *mat.Dense {
			a, _ := OutlierCols(m, n, s, 4, seed)
			return a
		}},
		{"outlier rows", func(m, n int, s []float64, seed uint64) *mat.Dense {
			a, _ := OutlierRows(m, n, s, 4, seed)
			return a
		}},
	}
}
