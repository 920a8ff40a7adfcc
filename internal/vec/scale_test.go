package vec

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScaleExp(t *testing.T) {
	for _, c := range []struct {
		x    float64
		e    int
		want float64
	}{
		{3, 0, 3},
		{3, 4, 48},
		{-3, -2, -0.75},
		{math.SmallestNonzeroFloat64, 1074, 1}, // 2^1074 is not a float64
		{math.SmallestNonzeroFloat64 * 3, 1073, 1.5},              // subnormal to normal, exact
		{1.5, -1074, 0x1p-1074 * 2},                               // rounds to even: 1.5·2^−1074 → 2^−1073
		{math.MaxFloat64, -2200, 0},                               // underflows
		{math.MaxFloat64, 1, math.Inf(1)},                         // overflows
		{0x1p-1022, -1, 0x1p-1023},                                // normal to subnormal, exact
		{math.Ldexp(1, 1023), -2098, 0},                           // half the smallest subnormal: to even, 0
		{math.Ldexp(1, 1023), -2097, math.SmallestNonzeroFloat64}, // exactly the smallest subnormal
	} {
		x := []float64{c.x}
		ScaleExp(x, c.e)
		assert.Equal(t, c.want, x[0], "%g·2^%d", c.x, c.e)
		assert.Equal(t, math.Ldexp(c.x, c.e), x[0], "%g·2^%d against math.Ldexp", c.x, c.e)
	}
}
