package exact

import (
	"fmt"
	"math"
	"testing"

	"github.com/loract/loract/internal/testmat"
)

// BenchmarkTallOperand times the scaled copy TruncatedSVD makes of a
// Gaussian 4096×1024 *mat.Dense (max|a_ij| ≈ 5, so it is scaled by 2⁻²).
func BenchmarkTallOperand(b *testing.B) {
	a := testmat.Gaussian(4096, 1024, 1)
	for b.Loop() {
		tallOperand(a, false)
	}
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
