package bounds

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// Coherence returns the coherence of the first k columns U₁ of u (m×r,
// orthonormal columns): μ(U₁) = (m/k)·max_i ‖row_i(U₁)‖², which lies in
// [1, m/k]. μ = 1 when every row carries the same share of U₁ (incoherent);
// μ = m/k when U₁ is spanned by coordinate vectors. It panics with
// ErrParam unless 1 ≤ k ≤ r.
func Coherence(u mat.Matrix, k int) float64 {
	m, r := u.Dims()
	if k < 1 || k > r {
		paramPanic("k = %d, want 1 ≤ k ≤ %d", k, r)
	}
	var mx float64
	for i := 0; i < m; i++ {
		var s float64
		for j := 0; j < k; j++ {
			v := u.At(i, j)
			s += v * v
		}
		mx = max(mx, s)
	}
	return float64(m) / float64(k) * mx
}

// Coherence returns μ(U₁) of the left singular vectors of A at rank k:
// the coherence that governs sampling rows of A. e.T().Coherence(k) gives
// that of V₁, which governs sampling columns.
func (e *Exact) Coherence(k int) float64 { return Coherence(e.u, k) }

// PinvNorm returns ‖(S·U₁)†‖₂ = 1/σ_min(S·U₁) for the rows idx of U₁, the
// coherence factor of the row-sampling certificate; +Inf if S·U₁ does not
// have full column rank k (fewer than k rows, or numerically deficient at
// the cut-off max(k, ℓ)·ε·σ_max).
func (e *Exact) PinvNorm(idx []int, k int) float64 {
	e.checkKQ(k, 0)
	if len(idx) < k {
		return math.Inf(1)
	}
	su := mat.NewDense(len(idx), k, nil)
	for j, i := range idx {
		for t := 0; t < k; t++ {
			su.Set(j, t, e.u.At(i, t))
		}
	}
	var sv mat.SVD
	if !sv.Factorize(su, mat.SVDNone) {
		return math.Inf(1)
	}
	d := sv.Values(nil)
	if d[k-1] <= float64(max(k, len(idx)))*eps*max(d[0], 1) {
		return math.Inf(1)
	}
	return 1 / d[k-1]
}

// UniformSampleSize returns the number of rows ℓ = ⌈2·μ·k·ln(k/δ)/(1−ε)²⌉
// that uniform sampling without replacement needs for the guarantee of
// UniformPinvBound to hold with probability at least 1 − δ (theory.md,
// Proposition 8, from the matrix Chernoff bound; the statement is that of
// Gittens 2011, Lemma 1). It panics with ErrParam unless μ ≥ 1, k ≥ 1 and
// δ, ε ∈ (0, 1).
//
// ℓ is returned even when it exceeds the rows a matrix has (the guarantee
// then needs more rows than exist); it panics with ErrParam if ℓ does not
// fit an int.
func UniformSampleSize(mu float64, k int, delta, epsilon float64) int {
	if !(mu >= 1) || math.IsInf(mu, 1) || k < 1 || !(delta > 0 && delta < 1) || !(epsilon > 0 && epsilon < 1) {
		paramPanic("need finite μ ≥ 1, k ≥ 1, δ, ε ∈ (0, 1); got μ = %v, k = %d, δ = %v, ε = %v", mu, k, delta, epsilon)
	}
	l := math.Ceil(2 * mu * float64(k) * math.Log(float64(k)/delta) / ((1 - epsilon) * (1 - epsilon)))
	if !(l < math.MaxInt64/2) {
		paramPanic("ℓ = %g overflows an int (μ = %v, k = %d, δ = %v, ε = %v)", l, mu, k, delta, epsilon)
	}
	return max(int(l), 1)
}

// UniformPinvBound returns m/(ε·ℓ), the bound on ‖(S·U₁)†‖₂² that holds
// with probability at least 1 − δ when ℓ ≥ UniformSampleSize(μ, k, δ, ε)
// rows of the m are sampled uniformly without replacement.
func UniformPinvBound(m, l int, epsilon float64) float64 {
	if m < 1 || l < 1 || !(epsilon > 0 && epsilon < 1) {
		paramPanic("need m, ℓ ≥ 1 and ε ∈ (0, 1)")
	}
	return float64(m) / (epsilon * float64(l))
}

// RowSamplingProbable returns the Frobenius bound that holds with
// probability at least 1 − δ for a uniformly row-sampled sketch of ℓ rows
// of an m-row A with q power iterations, when ℓ ≥ UniformSampleSize:
// the coherence form of the certificate with ‖(SU₁)†‖² ≤ m/(εℓ),
//
//	(Σ_{j>k} σ_j² + Σ_{j>k} σ_j^{2(2q+2)}·m/(ε·ℓ·σ_k^{2(2q+1)}))^{1/2}.
func RowSamplingProbable(sigma []float64, k, q, m, l int, epsilon float64) float64 {
	checkSigma(sigma, k)
	if q < 0 {
		paramPanic("q = %d < 0", q)
	}
	s1 := sigma[0]
	if s1 == 0 {
		return 0
	}
	a2, a1 := float64(2*q+2), float64(2*q+1)
	var tail float64
	for j := len(sigma) - 1; j >= k; j-- {
		tail += math.Pow(sigma[j]/s1, 2*a2)
	}
	t := tail * UniformPinvBound(m, l, epsilon) / math.Pow(sigma[k-1]/s1, 2*a1)
	opt := OptimalFrobenius(sigma, k) / s1
	return s1 * math.Sqrt(opt*opt+t)
}
