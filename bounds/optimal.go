package bounds

import (
	"errors"
	"fmt"
	"math"
)

// ErrParam is the panic value for a parameter outside a bound's hypotheses
// (k < 1, p < 2 for the Gaussian bounds, q < 0, unsorted singular values,
// more target rank than singular values).
var ErrParam = errors.New("bounds: parameter out of range")

func paramPanic(format string, args ...any) {
	panic(fmt.Errorf("%w: "+format, append([]any{ErrParam}, args...)...))
}

// checkSigma panics with ErrParam unless sigma is non-increasing and
// non-negative and 1 ≤ k ≤ len(sigma).
func checkSigma(sigma []float64, k int) {
	if k < 1 || k > len(sigma) {
		paramPanic("k = %d, want 1 ≤ k ≤ len(sigma) = %d", k, len(sigma))
	}
	for j, s := range sigma {
		if !(s >= 0) || math.IsInf(s, 1) || (j > 0 && s > sigma[j-1]) {
			paramPanic("sigma must be finite, non-negative and non-increasing (index %d is %v)", j, s)
		}
	}
}

// TailPower returns Σ_{j>k} σ_j^pow (1-based j, so sigma[k:]), accumulated
// from the smallest term up.
func TailPower(sigma []float64, k int, pow float64) float64 {
	var s float64
	for j := len(sigma) - 1; j >= k; j-- {
		s += math.Pow(sigma[j], pow)
	}
	return s
}

// OptimalFrobenius returns the Eckart–Young optimal rank-k error in the
// Frobenius norm, ‖A − A_k‖_F = (Σ_{j>k} σ_j²)^{1/2}, for the singular
// values sigma (sorted non-increasing) of A. 0 ≤ k ≤ len(sigma).
func OptimalFrobenius(sigma []float64, k int) float64 {
	if k < 0 || k > len(sigma) {
		paramPanic("k = %d, want 0 ≤ k ≤ len(sigma) = %d", k, len(sigma))
	}
	if k == len(sigma) {
		return 0
	}
	checkSigma(sigma, max(k, 1))
	// In units of the largest tail value: no overflow or underflow of the
	// squares whatever the magnitude of σ.
	sk := sigma[k]
	if sk == 0 {
		return 0
	}
	var t float64
	for j := len(sigma) - 1; j >= k; j-- {
		r := sigma[j] / sk
		t += r * r
	}
	return sk * math.Sqrt(t)
}

// OptimalSpectral returns the Eckart–Young optimal rank-k error in the
// spectral norm, ‖A − A_k‖₂ = σ_{k+1} (0 if k = len(sigma)).
func OptimalSpectral(sigma []float64, k int) float64 {
	if k < 0 || k > len(sigma) {
		paramPanic("k = %d, want 0 ≤ k ≤ len(sigma) = %d", k, len(sigma))
	}
	if k == len(sigma) {
		return 0
	}
	checkSigma(sigma, max(k, 1))
	return sigma[k]
}
