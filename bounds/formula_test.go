package bounds

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
)

// TestClosedForms checks each a-priori formula against a hand evaluation
// on σ = (8, 4, 2, 1, 1/2, 1/4): τ_2² = 4+1+1/4+1/16 = 5.3125.
func TestClosedForms(t *testing.T) {
	s := []float64{8, 4, 2, 1, 0.5, 0.25}
	// Hand values are exact to a few ulps; 8ε relative covers the
	// rounding of pow/sqrt chains of length ≤ 8.
	const rel = 8 * machEps
	assert.InEpsilon(t, math.Sqrt(5.3125), OptimalFrobenius(s, 2), rel)
	assert.Equal(t, 2.0, OptimalSpectral(s, 2))
	assert.Equal(t, 0.0, OptimalFrobenius(s, 6))
	// Thm 10.5, k = 2, p = 3: (1 + 2/2)^{1/2}·τ_2.
	assert.InEpsilon(t, math.Sqrt(2*5.3125), GaussianFrobenius(s, 2, 3), rel)
	// Thm 10.6: (1 + √(2/2))·σ₃ + e·√5/3·τ_2.
	assert.InEpsilon(t, 2*2+math.E*math.Sqrt(5)/3*math.Sqrt(5.3125), GaussianSpectral(s, 2, 3), rel)
	// Cor 10.10, q = 1: [2·σ₃³ + e√5/3·(Σ_{j>2} σ_j⁶)^{1/2}]^{1/3}.
	t6 := math.Pow(2, 6) + 1 + math.Pow(0.5, 6) + math.Pow(0.25, 6)
	want := math.Cbrt(2*8 + math.E*math.Sqrt(5)/3*math.Sqrt(t6))
	assert.InEpsilon(t, want, GaussianPower(s, 2, 3, 1), rel)
	// The power bound decreases to σ_{k+1} as q grows (the bracket's
	// 1/(2q+1)-th root tends to 1 relative to σ_{k+1}).
	prev := math.Inf(1)
	for q := range 8 {
		b := GaussianPower(s, 2, 3, q)
		assert.Less(t, b, prev)
		assert.Greater(t, b, s[2])
		prev = b
	}
	// No underflow at large q: the bound stays above σ_{k+1} and tends to
	// it, as σ_{k+1}·b^{1/(2q+1)} with b ≈ 2 + e·√5/3 ≈ 4: 1.0035·σ_{k+1} at
	// q = 200, well inside 5%.
	tiny := []float64{1, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10}
	assert.GreaterOrEqual(t, GaussianPower(tiny, 2, 3, 200), tiny[2])
	assert.InEpsilon(t, tiny[2], GaussianPower(tiny, 2, 3, 200), 0.05)
	assert.Panics(t, func() { OptimalFrobenius(s, -1) })
	assert.Panics(t, func() { OptimalSpectral(s, 7) })
	// Scale invariance: bounds are homogeneous of degree 1 in σ.
	big := make([]float64, len(s))
	for i, v := range s {
		big[i] = 1e150 * v
	}
	assert.InEpsilon(t, 1e150*GaussianPower(s, 2, 3, 3), GaussianPower(big, 2, 3, 3), rel)
	// Uniform sampling (Gittens): ℓ = ⌈2·μ·k·ln(k/δ)/(1−ε)²⌉.
	assert.Equal(t, int(math.Ceil(2*1.5*4*math.Log(4/0.1)/0.25)), UniformSampleSize(1.5, 4, 0.1, 0.5))
	assert.InEpsilon(t, 100/(0.5*20), UniformPinvBound(100, 20, 0.5), rel)
	// The probable bound is the coherence form at ‖(SU₁)†‖² = m/(εℓ).
	pr := RowSamplingProbable(s, 2, 0, 100, 20, 0.5)
	t4 := 16 + 1 + 1.0/16 + 1.0/256
	assert.InEpsilon(t, math.Sqrt(5.3125+t4*10/16), pr, rel)
}

// TestGittensUniform checks the probabilistic statement of the uniform
// sampling lemma: with ℓ ≥ UniformSampleSize(μ, k, δ, ε), the fraction of
// draws with ‖(SU₁)†‖² > m/(εℓ) is at most δ (plus zMargin binomial
// standard errors), and every draw has full rank when ε·ℓ/m > 0.
func TestGittensUniform(t *testing.T) {
	const m, n, k, N = 240, 120, 4, 400
	const delta, epsilon = 0.2, 0.3
	// DCT bases: μ ≤ 2, and the structured rows of §"incoherent (DCT)"
	// make ‖(SU₁)†‖ heavier-tailed than for a Haar basis.
	a := testmat.Incoherent(m, n, testmat.PowerLaw(n, 1, 0), 9)
	ex, err := NewExact(a)
	require.NoError(t, err)
	mu := ex.Coherence(k)
	l := UniformSampleSize(mu, k, delta, epsilon)
	require.LessOrEqual(t, l, m, "μ = %.3g needs ℓ = %d rows", mu, l)
	rng := rand.New(rand.NewPCG(1, 2))
	bound := UniformPinvBound(m, l, epsilon)
	var fail int
	for range N {
		idx := rng.Perm(m)[:l]
		pn := ex.PinvNorm(idx, k)
		if pn*pn > bound {
			fail++
		}
	}
	// Binomial margin: δ + zMargin·√(δ(1−δ)/N).
	assert.LessOrEqual(t, float64(fail)/N, delta+zMargin*math.Sqrt(delta*(1-delta)/N),
		"μ = %.3g, ℓ = %d: %d of %d draws exceed m/(εℓ) = %.3g", mu, l, fail, N, bound)
	t.Logf("μ = %.3g, ℓ = %d, bound m/(εℓ) = %.3g: %d of %d draws exceed it", mu, l, bound, fail, N)
}

// TestCoherence checks μ on the two extremes: coordinate vectors give
// μ = m/k, a DCT basis (all entries ≤ √(2/m)) gives μ ≤ 2.
func TestCoherence(t *testing.T) {
	const m, n, k = 64, 32, 4
	s := testmat.PowerLaw(n, 1, 0)
	co, err := NewExact(testmat.Coherent(m, n, s, true, 1))
	require.NoError(t, err)
	// U₁ = coordinate vectors up to signs: exactly m/k to rounding.
	assert.InEpsilon(t, float64(m)/k, co.Coherence(k), float64(m)*machEps)
	inc, err := NewExact(testmat.Incoherent(m, n, s, 1))
	require.NoError(t, err)
	assert.LessOrEqual(t, inc.Coherence(k), 2*(1+float64(m)*machEps))
	assert.GreaterOrEqual(t, inc.Coherence(k), 1-float64(m)*machEps)
	// Coherence of any orthonormal U₁ lies in [1, m/k].
	u := mat.NewDense(m, k, nil)
	for j := 0; j < k; j++ {
		u.Set(j, j, 1)
	}
	assert.Equal(t, float64(m)/k, Coherence(u, k))
}
