package vec

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDotAxpy checks DotAxpy against sums in 256-bit arithmetic for lengths
// around the kernel's 32 elements and the loop's 4. With unit roundoff u
// the dot product of n terms is within γ_n·Σ|a_j·x_j| (γ_n = n·u/(1 − n·u),
// any order of summation), and each y_j + alpha·a_j within 2u·(|y_j| +
// |alpha·a_j|) (the loop rounds the product and the sum, the kernel
// rounds once). x and y longer than a are used up to len(a) only.
func TestDotAxpy(t *testing.T) {
	const u = 0x1p-53
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3, 4, 5, 31, 32, 33, 63, 64, 67, 96, 100, 1000, 1024, 1055} {
		a, x := make([]float64, n), make([]float64, n+3)
		y, y0 := make([]float64, n+3), make([]float64, n+3)
		for i := range a {
			a[i] = rng.NormFloat64() * math.Ldexp(1, rng.IntN(40)-20)
		}
		for i := range x {
			x[i] = rng.NormFloat64()
			y[i] = rng.NormFloat64()
		}
		copy(y0, y)
		alpha := rng.NormFloat64()
		got := DotAxpy(a, x, y, alpha)

		want, abs := new(big.Float).SetPrec(256), 0.0
		for i, v := range a {
			want.Add(want, new(big.Float).SetPrec(256).Mul(big.NewFloat(v), big.NewFloat(x[i])))
			abs += math.Abs(v * x[i])
		}
		w, _ := want.Float64()
		gamma := float64(n) * u / (1 - float64(n)*u)
		assert.InDelta(t, w, got, gamma*abs, "n %d: the dot product", n)
		for i := range y {
			if i >= n {
				assert.Equal(t, y0[i], y[i], "n %d: y[%d] beyond a changed", n, i)
				continue
			}
			e := new(big.Float).SetPrec(256).Mul(big.NewFloat(alpha), big.NewFloat(a[i]))
			e.Add(e, big.NewFloat(y0[i]))
			ew, _ := e.Float64()
			assert.InDelta(t, ew, y[i], 2*u*(math.Abs(y0[i])+math.Abs(alpha*a[i])), "n %d: y[%d]", n, i)
		}
	}
}

// TestDotAxpyKernelOrder checks the AVX-512 kernel's dot product bit for
// bit against its documented order: lane j of accumulator c takes the
// products of i = 32·t + 8·c + j by fused multiply-add, and the 32 lanes
// are summed pairwise as reduce32 does (the kernel reduces its registers
// itself).
func TestDotAxpyKernelOrder(t *testing.T) {
	if !hasVecKernels {
		t.Skip("no AVX-512 on this CPU (or a noasm build): the kernel does not run")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{32, 64, 96, 1024} {
		a, x, y := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range a {
			a[i] = rng.NormFloat64() * math.Ldexp(1, rng.IntN(40)-20)
			x[i] = rng.NormFloat64()
		}
		var acc [32]float64
		for i := range a {
			acc[i%32] = math.FMA(a[i], x[i], acc[i%32])
		}
		want := reduce32(&acc)
		got := dotAxpyAVX512(&a[0], &x[0], &y[0], n, 0.5)
		assert.Equal(t, math.Float64bits(want), math.Float64bits(got), "n %d", n)
	}
}

// BenchmarkDotAxpy times the row step of the tridiagonalization's
// symmetric product on a 1024-element row held in L1.
func BenchmarkDotAxpy(b *testing.B) {
	const n = 1024
	a, x, y := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range a {
		a[i], x[i] = float64(i%7)-3, float64(i%5)-2
	}
	b.SetBytes(8 * n)
	var s float64
	for b.Loop() {
		s += DotAxpy(a, x, y, 1e-9)
	}
	_ = s
}
