package bounds

import "math"

// checkHMT panics with ErrParam outside the hypotheses of HMT §10:
// k ≥ 2, p ≥ 2, k+p ≤ min(m, n) = len(sigma), q ≥ 0.
func checkHMT(sigma []float64, k, p, q int) {
	checkSigma(sigma, k)
	if k < 2 || p < 2 || k+p > len(sigma) || q < 0 {
		paramPanic("HMT §10 needs k ≥ 2, p ≥ 2, k+p ≤ min(m, n) = %d, q ≥ 0; got k = %d, p = %d, q = %d",
			len(sigma), k, p, q)
	}
}

// GaussianFrobenius returns the bound of HMT 2011, Theorem 10.5, on the
// expected Frobenius error of the range of A·Ω for a standard Gaussian
// n×(k+p) test matrix Ω:
//
//	E‖(I − P_Y)A‖_F ≤ (1 + k/(p−1))^{1/2} · (Σ_{j>k} σ_j²)^{1/2}.
//
// sigma holds all min(m, n) singular values of A, non-increasing. It
// panics with ErrParam unless k ≥ 2, p ≥ 2 and k+p ≤ len(sigma).
func GaussianFrobenius(sigma []float64, k, p int) float64 {
	checkHMT(sigma, k, p, 0)
	return math.Sqrt(1+float64(k)/float64(p-1)) * OptimalFrobenius(sigma, k)
}

// GaussianSpectral returns the bound of HMT 2011, Theorem 10.6, on the
// expected spectral error for a standard Gaussian n×(k+p) test matrix:
//
//	E‖(I − P_Y)A‖ ≤ (1 + √(k/(p−1)))·σ_{k+1} + (e·√(k+p)/p)·(Σ_{j>k} σ_j²)^{1/2}.
//
// Arguments and panics are as for GaussianFrobenius.
func GaussianSpectral(sigma []float64, k, p int) float64 {
	return GaussianPower(sigma, k, p, 0)
}

// GaussianPower returns the bound of HMT 2011, Corollary 10.10, on the
// expected spectral error of the power scheme Y = (AAᵀ)^q·A·Ω with a
// standard Gaussian n×(k+p) test matrix:
//
//	E‖(I − P_Y)A‖ ≤ [(1 + √(k/(p−1)))·σ_{k+1}^{2q+1}
//	                  + (e·√(k+p)/p)·(Σ_{j>k} σ_j^{2(2q+1)})^{1/2}]^{1/(2q+1)}.
//
// q = 0 is Theorem 10.6. It is computed in units of σ_{k+1}, so that every
// power is of a ratio ≤ 1 and the leading term is exactly representable:
// no overflow for any q, and underflow only of negligible tail terms.
// Panics as GaussianFrobenius, and for q < 0.
func GaussianPower(sigma []float64, k, p, q int) float64 {
	checkHMT(sigma, k, p, q)
	sk := sigma[k]
	if sk == 0 {
		// σ_{k+1} = 0: A has rank ≤ k and Y captures it almost surely.
		return 0
	}
	e := float64(2*q + 1)
	kf, pf := float64(k), float64(p)
	var tail float64
	for j := len(sigma) - 1; j >= k; j-- {
		tail += math.Pow(sigma[j]/sk, 2*e)
	}
	b := 1 + math.Sqrt(kf/(pf-1)) + math.E*math.Sqrt(kf+pf)/pf*math.Sqrt(tail)
	return sk * math.Pow(b, 1/e)
}
