package activation

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// BenchmarkCompress times Compress plus Release of one activation, and
// Reconstruct and WeightGradOutIn of a saved one, at the demo's shapes.
func BenchmarkCompress(b *testing.B) {
	for _, sh := range []struct{ L, d, k int }{{1024, 64, 16}, {1024, 128, 32}, {4096, 256, 64}} {
		x := testmat.To32(testmat.Incoherent(sh.L, sh.d, testmat.ActivationLike(sh.d), 1))
		for _, m := range []Method{RowSampling, Gaussian, Uncompressed} {
			name := fmt.Sprintf("method=%v/L=%d/d=%d/k=%d/prec=bf16", m, sh.L, sh.d, sh.k)
			c, err := New(Config{Method: m, Rank: Fixed(sh.k), Precision: lowrank.BFloat16})
			if err != nil {
				b.Fatal(err)
			}
			b.Run("op=compress/"+name, func(b *testing.B) {
				for b.Loop() {
					s, err := c.Compress("x", x)
					if err != nil {
						b.Fatal(err)
					}
					_ = s.Release()
				}
			})
			s, err := c.Compress("x", x)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("op=reconstruct/"+name, func(b *testing.B) {
				var dst mat.Dense
				for b.Loop() {
					dst.Reset()
					_ = s.Reconstruct(&dst)
				}
			})
			g := mat.NewDense(sh.L, 8, nil)
			b.Run("op=weightgrad/o=8/"+name, func(b *testing.B) {
				var dst mat.Dense
				for b.Loop() {
					dst.Reset()
					_ = s.WeightGradOutIn(&dst, g)
				}
			})
		}
	}
}
