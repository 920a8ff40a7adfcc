package cpu

import (
	"math/rand/v2"
	"testing"
)

// TestFillNormal checks fillNormal against math/rand/v2's NormFloat64 on
// the same PCG stream, bit for bit: 10⁷ draws reach every layer of the
// ziggurat, its wedges and its tail (about 10⁵ draws each leave the fast
// path), so the tables and every branch are compared.
func TestFillNormal(t *testing.T) {
	n := 10_000_000
	if testing.Short() {
		n = 1_000_000
	}
	for _, seed := range []uint64{0, 1, 0x9e3779b97f4a7c15} {
		got := make([]float64, n)
		p := pcg{seed, 7}
		p.fillNormal(got[:n/3])
		p.fillNormal(got[n/3:])
		ref := rand.New(rand.NewPCG(seed, 7))
		for i, g := range got {
			if w := ref.NormFloat64(); g != w {
				t.Fatalf("seed %d: draw %d is %v, NormFloat64 gives %v", seed, i, g, w)
			}
		}
	}
}

func BenchmarkFillNormal(b *testing.B) {
	dst := make([]float64, 1<<14)
	b.Run("fill", func(b *testing.B) {
		p := pcg{1, 2}
		for b.Loop() {
			p.fillNormal(dst)
		}
	})
	b.Run("NormFloat64", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			for i := range dst {
				dst[i] = rng.NormFloat64()
			}
		}
	})
}
