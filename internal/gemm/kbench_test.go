package gemm

import (
	"fmt"
	"testing"
)

// BenchmarkMicroKernel times one micro-kernel call on panels resident in
// L1, the ceiling for the whole product.
func BenchmarkMicroKernel(b *testing.B) {
	for _, mk := range kernels() {
		for _, kc := range []int{64, 192, 256} {
			b.Run(fmt.Sprintf("kernel=%s/kc=%d", mk.name, kc), func(b *testing.B) {
				ap := make([]float64, mk.mr*kc)
				bp := make([]float64, mk.nr*kc)
				c := make([]float64, mk.mr*mk.nr)
				for b.Loop() {
					mk.fns[len(mk.fns)-1](kc, ap, bp, c, mk.nr, 1, 1, true)
				}
				b.ReportMetric(2*float64(mk.mr*mk.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkMicroKernelParallel runs the micro-kernel on every P at once:
// the ratio to BenchmarkMicroKernel shows whether the cores share FMA units.
func BenchmarkMicroKernelParallel(b *testing.B) {
	for _, mk := range kernels()[:1] {
		const kc = 192
		b.Run("kernel="+mk.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				ap := make([]float64, mk.mr*kc)
				bp := make([]float64, mk.nr*kc)
				c := make([]float64, mk.mr*mk.nr)
				for pb.Next() {
					mk.fns[len(mk.fns)-1](kc, ap, bp, c, mk.nr, 1, 1, true)
				}
			})
			b.ReportMetric(2*float64(mk.mr*mk.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
