package activation

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// TestSkipErrorEstimate checks Config.SkipErrorEstimate on the CPU: the
// stored factors are those of the default (the reconstructions equal bit
// for bit), the error is NaN unless MeasureError measures it (then the
// default's measurement), bad input gets the default's error, and the
// combinations that need ‖X‖² are refused.
func TestSkipErrorEstimate(t *testing.T) {
	x := testmat.Haar(300, 24, testmat.ActivationLike(24), 5)
	for _, measure := range []bool{false, true} {
		base := Config{Method: RowSampling, Rank: Fixed(6), Precision: lowrank.Float32, MeasureError: measure, Seed: 7}
		skip := base
		skip.SkipErrorEstimate = true
		var rec [2]mat.Dense
		var errs [2]float64
		for i, cfg := range []Config{base, skip} {
			c, err := New(cfg)
			require.NoError(t, err)
			s, err := c.Compress("fc1", x)
			require.NoError(t, err)
			require.NoError(t, s.Reconstruct(&rec[i]))
			errs[i] = s.RelError()
			st := c.Stats().Total
			if cfg.SkipErrorEstimate && !measure {
				assert.True(t, math.IsNaN(st.MeanRelError) && math.IsNaN(st.MaxRelError), "stats: %+v", st)
			}
			require.NoError(t, s.Release())
			c.Close()
		}
		assert.True(t, mat.Equal(&rec[0], &rec[1]), "measure %v: the same factors", measure)
		if measure {
			assert.Equal(t, errs[0], errs[1], "the measured error")
		} else {
			assert.False(t, math.IsNaN(errs[0]))
			assert.True(t, math.IsNaN(errs[1]), "not estimated: %v", errs[1])
		}
	}

	bad := mat.DenseCopyOf(x)
	bad.Set(17, 3, math.Inf(-1))
	c, err := New(Config{Method: RowSampling, Rank: Fixed(4), SkipErrorEstimate: true})
	require.NoError(t, err)
	_, err = c.Compress("fc2", bad)
	var nf *lowrank.NotFiniteError
	require.True(t, errors.As(err, &nf), "%v", err)
	assert.Equal(t, [2]int{17, 3}, [2]int{nf.Row, nf.Col})
	c.Close()

	for _, cfg := range []Config{
		{Method: Gaussian, Rank: Fixed(4), SkipErrorEstimate: true},
		{Method: ExactSVD, Rank: Fixed(4), SkipErrorEstimate: true},
		{Method: RowSampling, Rank: Tolerance(0.1, 8), SkipErrorEstimate: true},
		{Method: RowSampling, Rank: Budget(1 << 20), SkipErrorEstimate: true},
		{Method: RowSampling, Rank: Fixed(4), ResidualBits: 8, SkipErrorEstimate: true},
	} {
		_, err := New(cfg)
		assert.ErrorIs(t, err, lowrank.ErrOption, "%+v", cfg)
		assert.ErrorContains(t, err, "SkipErrorEstimate")
	}
}
