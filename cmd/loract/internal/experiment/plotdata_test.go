package experiment

import (
	"math"
	"testing"

	"github.com/loract/loract/bounds"
	"github.com/loract/loract/internal/testmat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// machEps is the float64 machine epsilon.
const machEps = 0x1p-52

func TestErrorCurves(t *testing.T) {
	cfg := CurveConfig{M: 90, N: 60, Spectrum: testmat.Spectra()[0], Structure: testmat.Structures()[0],
		Ks: []int{4, 8, 12}, P: 3, Trials: 3, Seed: 1}
	cs, err := ErrorCurves(cfg)
	require.NoError(t, err)
	require.Len(t, cs, 6)
	sigma := cfg.Spectrum.Values(60, 12)
	var norm float64
	for _, s := range sigma {
		norm += s * s
	}
	norm = math.Sqrt(norm)
	byName := map[string]Curve{}
	for _, c := range cs {
		byName[c.Name] = c
		require.Equal(t, len(c.K), len(c.Y), c.Name)
	}
	opt := byName["optimal (Eckart–Young)"]
	require.Equal(t, cfg.Ks, opt.K)
	for i, k := range opt.K {
		// Relative optimum, to the rounding of a sum of ≤ 60 squares.
		assert.InEpsilon(t, bounds.OptimalFrobenius(sigma, k)/norm, opt.Y[i], 64*machEps)
		for _, name := range []string{"rows: mean error", "gaussian: mean error"} {
			c := byName[name]
			// Eckart–Young at rank ℓ = k+P bounds every draw, so the mean;
			// ε·(m+n) is the rounding allowance of the computed errors.
			assert.GreaterOrEqual(t, c.Y[i], bounds.OptimalFrobenius(sigma, k+cfg.P)/norm-machEps*150, "%s k=%d", name, k)
		}
		// Median certificate ≥ the median error would need pairing; the
		// certificate is at least τ_k on every draw, hence its median too.
		assert.GreaterOrEqual(t, byName["rows: median certificate"].Y[i], opt.Y[i]*(1-4*machEps))
		assert.InEpsilon(t, bounds.GaussianFrobenius(sigma, k, cfg.P)/norm, byName["gaussian: HMT Thm 10.5"].Y[i], 64*machEps)
	}
	_, err = ErrorCurves(CurveConfig{M: 20, N: 10, Spectrum: testmat.Spectra()[0], Structure: testmat.Structures()[0], Ks: []int{9}, P: 3, Trials: 1})
	assert.Error(t, err)
}
