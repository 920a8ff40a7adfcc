package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMicroKernel times one micro-kernel call on panels resident in
// L1, the ceiling for the whole product; width=nr is the main kernel, the
// others its narrower variants.
func BenchmarkMicroKernel(b *testing.B) {
	for _, mk := range kernels() {
		for v := len(mk.fns) - 1; v >= 0; v-- {
			vk := mk
			vk.nr, vk.fns = (v+1)*mk.step, mk.fns[v:v+1]
			for _, kc := range []int{64, 192, 256} {
				b.Run(fmt.Sprintf("kernel=%s/width=%d/kc=%d", mk.name, vk.nr, kc), func(b *testing.B) {
					benchMicroKernel(b, vk, kc)
				})
			}
		}
	}
}

// BenchmarkSgemmMicroKernel is BenchmarkMicroKernel for the float32
// micro-kernels and each of their narrower variants (width=nr is the main
// kernel).
func BenchmarkSgemmMicroKernel(b *testing.B) {
	for _, mk := range kernels32() {
		for v := len(mk.fns) - 1; v >= 0; v-- {
			vk := mk
			vk.nr, vk.fns = (v+1)*mk.step, mk.fns[v:v+1]
			for _, kc := range []int{64, 256, 512} {
				b.Run(fmt.Sprintf("kernel=%s/width=%d/kc=%d", mk.name, vk.nr, kc), func(b *testing.B) {
					benchMicroKernel(b, vk, kc)
				})
			}
		}
	}
}

func benchMicroKernel[E Float](b *testing.B, mk microKernel[E], kc int) {
	ap := make([]E, mk.mr*kc)
	bp := make([]E, mk.nr*kc)
	c := make([]E, mk.mr*mk.nr)
	cpu0 := cpuSeconds()
	for b.Loop() {
		mk.fns[len(mk.fns)-1](kc, ap, bp, c, mk.nr, 1, 1, true)
	}
	b.ReportMetric(2*float64(mk.mr*mk.nr*kc)*float64(b.N)/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
	b.ReportMetric(2*float64(mk.mr*mk.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
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

// BenchmarkPackA times packing a 192×192 block of a row-major A (the
// gather that Y = A·Ω pays for every element of A) into 8-row panels.
func BenchmarkPackA(b *testing.B) {
	const ld, mc, kc = 4096, 192, 192
	for _, trans := range []bool{false, true} {
		b.Run(fmt.Sprintf("type=float64/trans=%t", trans), func(b *testing.B) {
			a := matrix[float64]{data: make([]float64, ld*ld), ld: ld, trans: trans}
			dst := make([]float64, mc*kc)
			for b.Loop() {
				packA(dst, a, 64, mc, 128, kc, 8)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(mc*kc), "ns/elem")
		})
		b.Run(fmt.Sprintf("type=float32/trans=%t", trans), func(b *testing.B) {
			a := matrix[float32]{data: make([]float32, ld*ld), ld: ld, trans: trans}
			dst := make([]float64, mc*kc)
			for b.Loop() {
				packA(dst, a, 64, mc, 128, kc, 8)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(mc*kc), "ns/elem")
		})
	}
}

// BenchmarkPackB times packing kc×nc blocks of a 8192×4096 B into
// 24-column panels, walking through the whole matrix so that it streams
// from memory as in QᵀA; method=copy is a plain copy of the same rows, the
// memory-bandwidth bound.
func BenchmarkPackB(b *testing.B) {
	const rows, ld, kc, nc = 8192, 4096, 512, 2048
	mk := microKernel[float64]{mr: 8, nr: 24, step: 8, fns: make([]kernelFunc[float64], 3)}
	for _, method := range []string{"pack", "copy"} {
		for _, trans := range []bool{false, true} {
			if method == "copy" && trans {
				continue
			}
			b.Run(fmt.Sprintf("method=%s/trans=%t", method, trans), func(b *testing.B) {
				m := matrix[float64]{data: make([]float64, rows*ld), ld: ld, trans: trans}
				for i := range m.data {
					m.data[i] = 1
				}
				dst := make([]float64, (nc+24)*kc)
				blocks := 0
				cpu0 := cpuSeconds()
				for b.Loop() {
					p0 := blocks % (rows / kc) * kc
					j0 := blocks / (rows / kc) % (ld / nc) * nc
					if trans {
						p0, j0 = blocks%(ld/kc)*kc, blocks/(ld/kc)%(rows/nc)*nc
					}
					if method == "copy" {
						for p := 0; p < kc; p++ {
							copy(dst[p*nc:(p+1)*nc], m.data[(p0+p)*ld+j0:])
						}
					} else {
						packB(dst, m, p0, kc, j0, nc, &mk)
					}
					blocks++
				}
				b.ReportMetric((cpuSeconds()-cpu0)*1e9/float64(b.N)/(nc*kc), "cpu-ns/elem")
			})
		}
	}
}

// BenchmarkBlocking times products under several block sizes: kc×mc on
// three of benchShapes (without the thin path), and the thin path's column
// blocks on QᵀA.
func BenchmarkBlocking(b *testing.B) {
	type run struct {
		blk   blocking
		shape int
	}
	var runs []run
	for _, blk := range []blocking{{192, 192, 4080, 0, 0}, {256, 128, 4080, 0, 0}, {384, 96, 4080, 0, 0}, {512, 96, 4080, 0, 0}, {512, 48, 4080, 0, 0}} {
		for _, s := range []int{0, 2, 4} {
			runs = append(runs, run{blk, s})
		}
	}
	for _, nct := range []int{0, 48, 96, 192} {
		runs = append(runs, run{blocking{512, 96, 2040, 256 * min(nct, 1), nct}, 2})
	}
	for _, r := range runs {
		s, blk := benchShapes[r.shape], r.blk
		b.Run(fmt.Sprintf("kc=%d/mc=%d/nc=%d/thin=%d/ncthin=%d/%s", blk.kc, blk.mc, blk.nc, blk.thin, blk.ncThin, benchName(s.m, s.n, s.k, s.tA, s.tB)), func(b *testing.B) {
			a, lda, bb, ldb, c := benchOperands[float64](s.m, s.n, s.k, s.tA, s.tB)
			testBlocking = &blk
			defer func() { testBlocking = nil }()
			cpu0 := cpuSeconds()
			for b.Loop() {
				Dgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			report(b, cpu0, s.m, s.n, s.k)
		})
	}
}

// BenchmarkSgemmBlocking times float32 products under several block sizes
// (kc×mc, and the thin path's column blocks) on every shape of
// benchShapes, with the kernel chosen for this CPU.
func BenchmarkSgemmBlocking(b *testing.B) {
	mk := kernel32()
	var blks []blocking
	for _, kcmc := range [][2]int{{256, 192}, {512, 96}, {512, 192}, {1024, 96}, {1024, 192}, {1024, 384}, {2048, 96}} {
		blks = append(blks, blocking{kcmc[0], kcmc[1] / mk.mr * mk.mr, 4080 / mk.nr * mk.nr, thinRows, 192 / mk.nr * mk.nr})
	}
	for _, nct := range []int{96, 384} {
		blks = append(blks, blocking{1024, 96, 4080 / mk.nr * mk.nr, thinRows, nct / mk.nr * mk.nr})
	}
	for _, blk := range blks {
		for _, s := range benchShapes {
			b.Run(fmt.Sprintf("kc=%d/mc=%d/nc=%d/thin=%d/ncthin=%d/%s", blk.kc, blk.mc, blk.nc, blk.thin, blk.ncThin, benchName(s.m, s.n, s.k, s.tA, s.tB)), func(b *testing.B) {
				rnd := rand.New(rand.NewPCG(1, 1))
				a, lda := operand[float32](rnd, s.m, s.k, s.tA, 0)
				bb, ldb := operand[float32](rnd, s.k, s.n, s.tB, 0)
				c := make([]float32, s.m*s.n)
				testBlocking = &blk
				defer func() { testBlocking = nil }()
				cpu0 := cpuSeconds()
				for b.Loop() {
					Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				report(b, cpu0, s.m, s.n, s.k)
			})
		}
	}
}

// BenchmarkSgemmPrefetch times the float32 products whose packing deals
// out contiguous runs (columns of a transposed A, rows of B) with the
// packing prefetching 0 (no prefetch: the run itself), 2, 4, 8 or 16 rows
// ahead.
func BenchmarkSgemmPrefetch(b *testing.B) {
	for _, d := range []int{0, 2, 4, 8, 16} {
		for _, s := range benchShapes {
			if !s.tA {
				continue
			}
			b.Run(fmt.Sprintf("rows=%d/%s", d, benchName(s.m, s.n, s.k, s.tA, s.tB)), func(b *testing.B) {
				rnd := rand.New(rand.NewPCG(1, 1))
				a, lda := operand[float32](rnd, s.m, s.k, s.tA, 0)
				bb, ldb := operand[float32](rnd, s.k, s.n, s.tB, 0)
				c := make([]float32, s.m*s.n)
				defer func(d0 int) { prefetchRows = d0 }(prefetchRows)
				prefetchRows = d
				cpu0 := cpuSeconds()
				for b.Loop() {
					Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				report(b, cpu0, s.m, s.n, s.k)
			})
		}
	}
}

// BenchmarkSharedPacking times the threaded products with the pieces
// packing the operand that is not split together (share=true, the
// default) and each packing all of it itself (share=false), float64 and
// float32; the GFLOP/cpu-s metric shows the packing work saved.
func BenchmarkSharedPacking(b *testing.B) {
	for _, share := range []bool{true, false} {
		for _, s := range benchShapes {
			b.Run(fmt.Sprintf("share=%t/type=float64/%s", share, benchName(s.m, s.n, s.k, s.tA, s.tB)), func(b *testing.B) {
				a, lda, bb, ldb, c := benchOperands[float64](s.m, s.n, s.k, s.tA, s.tB)
				testNoShare = !share
				defer func() { testNoShare = false }()
				cpu0 := cpuSeconds()
				for b.Loop() {
					Dgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				report(b, cpu0, s.m, s.n, s.k)
			})
			b.Run(fmt.Sprintf("share=%t/type=float32/%s", share, benchName(s.m, s.n, s.k, s.tA, s.tB)), func(b *testing.B) {
				rnd := rand.New(rand.NewPCG(1, 1))
				a, lda := operand[float32](rnd, s.m, s.k, s.tA, 0)
				bb, ldb := operand[float32](rnd, s.k, s.n, s.tB, 0)
				c := make([]float32, s.m*s.n)
				testNoShare = !share
				defer func() { testNoShare = false }()
				cpu0 := cpuSeconds()
				for b.Loop() {
					Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				report(b, cpu0, s.m, s.n, s.k)
			})
		}
	}
}
