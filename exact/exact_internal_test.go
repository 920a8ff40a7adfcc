package exact

import (
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
