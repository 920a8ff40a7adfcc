package vec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestScaledSumSq checks the sums of squares and the maximum magnitude
// against a plain loop, for lengths around the unrolling, both element
// types, scale 1 (bit for bit with SumSq) and other scales, and the
// special values: NaN makes both results NaN, ±Inf makes both +Inf, -0
// and subnormals count by magnitude.
func TestScaledSumSq(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 33} {
		x := make([]float64, n)
		x32 := make([]float32, n)
		for i := range x {
			x32[i] = float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(40)-20))
			x[i] = float64(x32[i])
		}
		for _, scale := range []float64{1, 0x1p-30, 3} {
			var want, wmax float64
			for _, v := range x {
				want += (v * scale) * (v * scale)
				wmax = math.Max(wmax, math.Abs(v))
			}
			s64, m64 := ScaledSumSq64(x, scale)
			s32, m32 := ScaledSumSq32(x32, scale)
			// Reassociation of n non-negative terms: n·ε relative.
			assert.InDelta(t, want, s64, float64(n)*0x1p-52*want, "n %d scale %g", n, scale)
			assert.InDelta(t, want, s32, float64(n)*0x1p-52*want, "n %d scale %g", n, scale)
			assert.Equal(t, wmax, m64)
			assert.Equal(t, wmax, m32)
			if scale == 1 {
				assert.Equal(t, SumSq64(x), s64, "bit for bit with SumSq64")
				assert.Equal(t, SumSq32(x32), s32, "bit for bit with SumSq32")
			}
		}
	}
	for _, special := range []struct {
		v       float64
		sum, mx float64
	}{{math.NaN(), math.NaN(), math.NaN()}, {math.Inf(-1), math.Inf(1), math.Inf(1)}, {math.Inf(1), math.Inf(1), math.Inf(1)}} {
		for _, at := range []int{0, 2, 5} {
			x := []float64{1, -2, 0.5, 3, -1, 2}
			x[at] = special.v
			x32 := make([]float32, len(x))
			for i, v := range x {
				x32[i] = float32(v)
			}
			s64, m64 := ScaledSumSq64(x, 1)
			s32, m32 := ScaledSumSq32(x32, 1)
			for _, got := range [][2]float64{{s64, m64}, {s32, m32}} {
				if math.IsNaN(special.sum) {
					assert.True(t, math.IsNaN(got[0]) && math.IsNaN(got[1]), "NaN at %d: %v", at, got)
				} else {
					assert.Equal(t, special.sum, got[0])
					assert.Equal(t, special.mx, got[1])
				}
			}
		}
	}
	_, m := ScaledSumSq64([]float64{math.Copysign(0, -1), math.SmallestNonzeroFloat64, -2 * math.SmallestNonzeroFloat64}, 1)
	assert.Equal(t, 2*math.SmallestNonzeroFloat64, m)
}
