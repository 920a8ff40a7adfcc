package bounds

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/sampling"
)

// TestScaleInvariantBounds: every bound is homogeneous of degree one in σ
// (and the identity error in A), so multiplying σ or A by s from 1e-300 to
// 1e300 multiplies it by s; each is computed in units of a σ, so the
// scaled results agree to a few roundings.
func TestScaleInvariantBounds(t *testing.T) {
	sigma := testmat.PowerLaw(40, 1, 0)
	const k, p, q = 6, 4, 1
	base := map[string]float64{
		"OptimalFrobenius":    OptimalFrobenius(sigma, k),
		"GaussianFrobenius":   GaussianFrobenius(sigma, k, p),
		"GaussianPower":       GaussianPower(sigma, k, p, q),
		"RowSamplingProbable": RowSamplingProbable(sigma, k, q, 400, 60, 0.5),
	}
	a := testmat.Haar(60, 40, sigma, 1)
	f, err := sampling.QB(a, k, &sampling.Options{Seed: 1})
	require.NoError(t, err)
	base["IdentityError"] = IdentityError(a, f)
	for _, s := range []float64{1e-300, 1e-160, 1e160, 1e300} {
		ss := make([]float64, len(sigma))
		for i, v := range sigma {
			ss[i] = s * v
		}
		var as mat.Dense
		as.Scale(s, a)
		fs, err := sampling.QB(&as, k, &sampling.Options{Seed: 1})
		require.NoError(t, err)
		got := map[string]float64{
			"OptimalFrobenius":    OptimalFrobenius(ss, k),
			"GaussianFrobenius":   GaussianFrobenius(ss, k, p),
			"GaussianPower":       GaussianPower(ss, k, p, q),
			"RowSamplingProbable": RowSamplingProbable(ss, k, q, 400, 60, 0.5),
			"IdentityError":       IdentityError(&as, fs),
		}
		for name, v := range got {
			// A few roundings of ratios (and, for the identity, the
			// cancellation of ‖A‖² − ‖B‖²: √(ε·n) relative).
			tol := 64 * 0x1p-52
			if name == "IdentityError" {
				tol = 1e-6
			}
			assert.InEpsilon(t, s*base[name], v, tol, "%s at s = %g", name, s)
		}
	}
}

func TestParamsRejected(t *testing.T) {
	for name, f := range map[string]func(){
		"μ = NaN":       func() { UniformSampleSize(math.NaN(), 4, 0.1, 0.5) },
		"μ = +Inf":      func() { UniformSampleSize(math.Inf(1), 4, 0.1, 0.5) },
		"ℓ overflows":   func() { UniformSampleSize(1e300, 4, 0.1, 0.5) },
		"δ = NaN":       func() { UniformSampleSize(2, 4, math.NaN(), 0.5) },
		"σ with +Inf":   func() { OptimalFrobenius([]float64{math.Inf(1), 1}, 1) },
		"σ with NaN":    func() { GaussianFrobenius([]float64{3, math.NaN(), 1, 1, 1}, 2, 2) },
		"ε = 1":         func() { UniformPinvBound(10, 5, 1) },
		"q < 0":         func() { RowSamplingProbable([]float64{2, 1}, 1, -1, 4, 2, 0.5) },
		"k > len(σ)":    func() { OptimalSpectral([]float64{1}, 2) },
		"increasing σ":  func() { OptimalFrobenius([]float64{1, 2}, 1) },
		"p < 2 for HMT": func() { GaussianFrobenius(testmat.PowerLaw(10, 1, 0), 3, 1) },
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				assert.ErrorIs(t, err, ErrParam, name)
			}()
			f()
		}()
	}
}
