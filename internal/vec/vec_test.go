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

// checkSpecials puts a NaN, +Inf and −Inf at places of x in the kernel's
// part and in the tail, one at a time, and checks that f at scale 1 gives
// NaN for both results with a NaN and +Inf for both with an infinity.
func checkSpecials[T float32 | float64](t *testing.T, x []T, f func([]T, float64) (float64, float64)) {
	t.Helper()
	n := len(x)
	for _, at := range []int{0, 5, min(31, n-1), n / 2, n - 1} {
		for _, sp := range []T{T(math.NaN()), T(math.Inf(1)), T(math.Inf(-1))} {
			y := append([]T(nil), x...)
			y[at] = sp
			s, m := f(y, 1)
			if sp != sp {
				assert.True(t, math.IsNaN(s) && math.IsNaN(m), "n %d NaN at %d: %v %v", n, at, s, m)
			} else {
				assert.Equal(t, [2]float64{math.Inf(1), math.Inf(1)}, [2]float64{s, m}, "n %d %v at %d", n, sp, at)
			}
		}
	}
}

// TestSumSq32Kernel checks ScaledSumSq32 at scale 1 on lengths that reach
// the AVX-512 kernel (multiples of 32 and beyond), against a plain float64
// loop (every square of a float32 is exact in float64: the sums differ by
// reassociation of n non-negative terms, n·ε relative), the largest
// magnitude exactly, SumSq32 bit for bit, and NaN and ±Inf anywhere in
// the kernel's part or the tail. Without the kernel (other CPUs, -tags
// noasm) it checks the loop the same way.
func TestSumSq32Kernel(t *testing.T) {
	t.Logf("kernel in use: %v", hasVecKernels)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{31, 32, 63, 64, 65, 96, 100, 1000, 1024, 1055} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(60)-30))
		}
		var want, wmax float64
		for _, v := range x {
			want += float64(v) * float64(v)
			wmax = math.Max(wmax, math.Abs(float64(v)))
		}
		s, m := ScaledSumSq32(x, 1)
		assert.InDelta(t, want, s, float64(n)*0x1p-52*want, "n %d", n)
		assert.Equal(t, wmax, m, "n %d", n)
		assert.Equal(t, SumSq32(x), s, "n %d: bit for bit with SumSq32", n)
		checkSpecials(t, x, ScaledSumSq32)
	}
	y := make([]float32, 64)
	y[40] = -math.SmallestNonzeroFloat32
	y[3] = float32(math.Copysign(0, -1))
	_, m := ScaledSumSq32(y, 1)
	assert.Equal(t, float64(math.SmallestNonzeroFloat32), m, "a subnormal counts by magnitude")
}

// TestSumSq64Kernel is TestSumSq32Kernel for float64 elements: the kernel
// rounds each step once (fused multiply-add) where the loop rounds twice,
// so the sum is checked against the loop within the n·ε of reassociation
// plus n·ε for the squares' rounding.
func TestSumSq64Kernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{31, 32, 63, 64, 65, 96, 100, 1000, 1024, 1055} {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64() * math.Ldexp(1, rng.IntN(200)-100)
		}
		var want, wmax float64
		for _, v := range x {
			want += v * v
			wmax = math.Max(wmax, math.Abs(v))
		}
		s, m := ScaledSumSq64(x, 1)
		assert.InDelta(t, want, s, 2*float64(n)*0x1p-52*want, "n %d", n)
		assert.Equal(t, wmax, m, "n %d", n)
		assert.Equal(t, SumSq64(x), s, "n %d: bit for bit with SumSq64", n)
		checkSpecials(t, x, ScaledSumSq64)
	}
	y := make([]float64, 64)
	y[40] = -math.SmallestNonzeroFloat64
	y[3] = math.Copysign(0, -1)
	_, m := ScaledSumSq64(y, 1)
	assert.Equal(t, math.SmallestNonzeroFloat64, m, "a subnormal counts by magnitude")
}
