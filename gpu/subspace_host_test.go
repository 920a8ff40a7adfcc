package gpu

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestChebShifts checks, without a GPU, the subspace route's cycle of
// shifts (subspacePredict): for each degree the shifts are the roots of
// T_D on [0, β] — T_D(2μ/β − 1) = 0 to the rounding of D cosines, in
// (0, β) —, in the order largest, smallest, second largest, …; the
// cycle's product p(λ) = Π (λ − μ_i) is T_D((2λ − β)/β) up to the scale
// 2·(β/4)^D, so that on [0, β] its magnitude is at most that scale and at
// a wanted eigenvalue λ > β it is the scale times T_D(y), y = (2λ − β)/β,
// which logChebT gives (within D·u relative per factor, margin 4); and
// logChebT stays finite where cosh overflows.
func TestChebShifts(t *testing.T) {
	const beta = 3.0
	for _, d := range []int{1, 2, 3, 4, 8} {
		mu := chebShifts(beta, d)
		require.Len(t, mu, d)
		for i, m := range mu {
			assert.Greater(t, m, 0.0, "D=%d μ_%d", d, i)
			assert.Less(t, m, beta, "D=%d μ_%d", d, i)
			y := 2*m/beta - 1
			assert.InDelta(t, 0, math.Cos(float64(d)*math.Acos(y)), 8*float64(d)*0x1p-52, "D=%d: μ_%d is a root", d, i)
			switch {
			case i == 0:
			case i%2 == 1:
				assert.Less(t, m, mu[i-1], "D=%d: μ_%d, a smallest, after a largest", d, i)
			default:
				assert.Greater(t, m, mu[i-1], "D=%d: μ_%d, a largest, after a smallest", d, i)
				assert.Less(t, m, mu[i-2], "D=%d: μ_%d, inwards", d, i)
			}
		}
		scale := 2 * math.Pow(beta/4, float64(d))
		p := func(l float64) float64 {
			r := 1.0
			for _, m := range mu {
				r *= l - m
			}
			return r
		}
		for i := 0; i <= 100; i++ {
			l := beta * float64(i) / 100
			assert.LessOrEqual(t, math.Abs(p(l)), scale*(1+4*float64(d)*0x1p-52), "D=%d: |p(%g)| on [0, β]", d, l)
		}
		for _, l := range []float64{1.2 * beta, 3.4 * beta, 50 * beta} {
			y := (2*l - beta) / beta
			assert.InDelta(t, math.Log(p(l)/scale), logChebT(d, y), 4*float64(d)*0x1p-52*math.Abs(logChebT(d, y))+1e-14, "D=%d: log T_D at λ = %g", d, l)
		}
	}
	assert.False(t, math.IsInf(logChebT(4, 1e300), 0), "log T_4(1e300) is finite")
	assert.InDelta(t, 4*math.Log(2e300)-math.Ln2, logChebT(4, 1e300), 1e-9)
	assert.Equal(t, 0.0, logChebT(4, 1), "T_D(1) = 1")
}
