package exact

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/loract/loract/internal/testmat"
)

// BenchmarkTallOperand times the scaled copy TruncatedSVD makes of a
// Gaussian 4096×1024 *mat.Dense (max|a_ij| ≈ 5, so it is scaled by 2⁻²),
// and of the same numbers as a *lowrank.Dense32 (widened in the copy).
func BenchmarkTallOperand(b *testing.B) {
	a := testmat.Gaussian(4096, 1024, 1)
	b.Run("dtype=f64", func(b *testing.B) {
		for b.Loop() {
			tallOperand(a, false)
		}
	})
	a32 := testmat.To32(a)
	b.Run("dtype=f32", func(b *testing.B) {
		for b.Loop() {
			tallOperand(a32, false)
		}
	})
}

// BenchmarkRefineRoute times TruncatedSVD of the 4096×1024 spectra that
// need refinement with it on W itself (route=W) and on the R factor of
// W = Q·R (route=R, svdViaR): the measurement behind qrRoute. cpu-ms/op
// is the CPU time of all threads per call.
func BenchmarkRefineRoute(b *testing.B) {
	const m, n = 4096, 1024
	for _, sp := range []struct {
		name  string
		sigma []float64
	}{
		{"activation", testmat.ActivationLike(n)},
		{"graded", testmat.Exponential(n, 14*math.Ln10/float64(n-1))},
		{"rank100", testmat.RankPlusNoise(n, 100, 0)},
	} {
		a := testmat.Incoherent(m, n, sp.sigma, 1)
		for _, route := range []string{"W", "R"} {
			b.Run(fmt.Sprintf("route=%s/spectrum=%s/m=%d/n=%d", route, sp.name, m, n), func(b *testing.B) {
				old := qrRoute
				qrRoute = route == "R"
				defer func() { qrRoute = old }()
				c0 := cpuSeconds()
				for b.Loop() {
					if _, err := TruncatedSVD(a, n); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time of all threads: robust to other programs on a
				// shared machine, unlike ns/op.
				b.ReportMetric((cpuSeconds()-c0)*1e3/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// TestOrthNearIdentity: for z = I + K with K skew at ‖K‖_F from 10⁻¹⁰
// (z kept) through the series of one and two terms to 10⁻² (the
// Householder LQ), the result is orthogonal within 4·l·ε in the max norm
// (the rounding of its l-term products) and within 2·‖K‖_F² of z (the
// polar factor differs from z by z·((I+S)^{−1/2} − I), at most ‖S‖₂ ≤
// ‖K‖_F² to first order; the LQ's Q by as much).
func TestOrthNearIdentity(t *testing.T) {
	const l = 96
	eps := 0x1p-52
	rng := rand.New(rand.NewPCG(21, 22))
	for _, size := range []float64{1e-10, 1e-6, 1e-4, 1e-3, 1e-2} {
		k := make([]float64, l*l)
		var f float64
		for a := range l {
			for b := a + 1; b < l; b++ {
				v := rng.NormFloat64()
				k[a*l+b], k[b*l+a] = v, -v
				f += 2 * v * v
			}
		}
		z := make([]float64, l*l)
		for i := range k {
			z[i] = k[i] * size / math.Sqrt(f)
		}
		for a := range l {
			z[a*l+a] = 1
		}
		z0 := slices.Clone(z)
		orthNearIdentity(z, l)
		var orth, dist float64
		for a := range l {
			for b := range l {
				var d float64
				for c := range l {
					d += z[c*l+a] * z[c*l+b] // (zᵀz)_ab
				}
				if a == b {
					d--
				}
				orth = math.Max(orth, math.Abs(d))
				dist = math.Max(dist, math.Abs(z[a*l+b]-z0[a*l+b]))
			}
		}
		assert.LessOrEqual(t, orth, 4*l*eps, "‖K‖_F = %g: orthogonality", size)
		assert.LessOrEqual(t, dist, 2*size*size+4*eps, "‖K‖_F = %g: distance to I + K", size)
		if size*size <= eps {
			assert.Equal(t, z0, z, "‖K‖_F² ≤ ε: z is kept")
		}
	}
}
