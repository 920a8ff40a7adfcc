package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// benchShapes are the products loract's CPU algorithms spend their time in.
var benchShapes = []struct {
	m, n, k int
	tA, tB  bool
}{
	{8192, 128, 4096, false, false}, // Y = A·Ω
	{4096, 128, 8192, true, false},  // AᵀQ
	{128, 4096, 8192, true, false},  // QᵀA
	{4096, 64, 1024, false, false},
	{1024, 1024, 1024, false, false},
	{1024, 1024, 4096, true, false}, // Gram AᵀA of a 4096×1024 A
	{128, 8192, 4096, true, true},   // B = Yᵀ·Xᵀ for an 8192×4096 activation X (op(X) = Xᵀ)
	{1024, 64, 4096, true, false},   // Y = Xᵀ·Ω for a 4096×1024 activation X (the core table's QB)
	{1024, 64, 64, false, false},    // Y·R⁻¹ in the CholeskyQR of that QB's 1024×64 sketch
	{64, 64, 1024, true, false},     // YᵀY, its Gram matrix (as a full product)
}

func benchName(m, n, k int, tA, tB bool) string {
	return fmt.Sprintf("m=%d/n=%d/k=%d/ta=%t/tb=%t", m, n, k, tA, tB)
}

func benchOperands[TA Float](m, n, k int, tA, tB bool) (a []TA, lda int, b []float64, ldb int, c []float64) {
	rnd := rand.New(rand.NewPCG(1, 1))
	a, lda = operand[TA](rnd, m, k, tA, 0)
	b, ldb = operand[float64](rnd, k, n, tB, 0)
	return a, lda, b, ldb, make([]float64, m*n)
}

// report records GFLOP/s over wall time and over the process's CPU time
// since cpu0: on a machine shared with other jobs the second is the work
// the product itself needed (GFLOP per CPU-second of all its threads).
func report(b *testing.B, cpu0 float64, m, n, k int) {
	flop := 2 * float64(m) * float64(n) * float64(k) * float64(b.N) / 1e9
	b.ReportMetric(flop/b.Elapsed().Seconds(), "GFLOP/s")
	b.ReportMetric(flop/(cpuSeconds()-cpu0), "GFLOP/cpu-s")
}

// BenchmarkDgemm times Dgemm with the micro-kernel chosen for this CPU.
func BenchmarkDgemm(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(benchName(s.m, s.n, s.k, s.tA, s.tB), func(b *testing.B) {
			a, lda, bb, ldb, c := benchOperands[float64](s.m, s.n, s.k, s.tA, s.tB)
			cpu0 := cpuSeconds()
			for b.Loop() {
				Dgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			report(b, cpu0, s.m, s.n, s.k)
		})
	}
}

// BenchmarkGemm32 times Gemm with a float32 A, as activations arrive.
func BenchmarkGemm32(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(benchName(s.m, s.n, s.k, s.tA, s.tB), func(b *testing.B) {
			a, lda, bb, ldb, c := benchOperands[float32](s.m, s.n, s.k, s.tA, s.tB)
			cpu0 := cpuSeconds()
			for b.Loop() {
				Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			report(b, cpu0, s.m, s.n, s.k)
		})
	}
}

// BenchmarkSgemm times Sgemm with every float32 micro-kernel this CPU can
// run (the Go one only on the products of at most 2³⁰ multiply–adds); the
// first kernel listed is the one Sgemm uses.
func BenchmarkSgemm(b *testing.B) {
	for _, mk := range kernels32() {
		for _, s := range benchShapes {
			if mk.name == "go" && s.m*s.n*s.k > 1<<30 {
				continue
			}
			b.Run("kernel="+mk.name+"/"+benchName(s.m, s.n, s.k, s.tA, s.tB), func(b *testing.B) {
				rnd := rand.New(rand.NewPCG(1, 1))
				a, lda := operand[float32](rnd, s.m, s.k, s.tA, 0)
				bb, ldb := operand[float32](rnd, s.k, s.n, s.tB, 0)
				c := make([]float32, s.m*s.n)
				cpu0 := cpuSeconds()
				for b.Loop() {
					gemmWith(mk, false, s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				report(b, cpu0, s.m, s.n, s.k)
			})
		}
	}
}

// BenchmarkDgemmKernel times every micro-kernel this CPU can run.
func BenchmarkDgemmKernel(b *testing.B) {
	for _, mk := range kernels() {
		for _, s := range benchShapes {
			if mk.name == "go" && s.m*s.n*s.k > 1<<30 {
				continue
			}
			b.Run("kernel="+mk.name+"/"+benchName(s.m, s.n, s.k, s.tA, s.tB), func(b *testing.B) {
				a, lda, bb, ldb, c := benchOperands[float64](s.m, s.n, s.k, s.tA, s.tB)
				cpu0 := cpuSeconds()
				for b.Loop() {
					gemmWith(mk, false, s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				report(b, cpu0, s.m, s.n, s.k)
			})
		}
	}
}

// BenchmarkGonumDgemm times gonum's blas64.Gemm, the peer, on the same
// shapes.
func BenchmarkGonumDgemm(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(benchName(s.m, s.n, s.k, s.tA, s.tB), func(b *testing.B) {
			a, lda, bb, ldb, c := benchOperands[float64](s.m, s.n, s.k, s.tA, s.tB)
			ga := blas64.General{Rows: s.m, Cols: s.k, Stride: lda, Data: a}
			ta := blas.NoTrans
			if s.tA {
				ga.Rows, ga.Cols, ta = s.k, s.m, blas.Trans
			}
			gb := blas64.General{Rows: s.k, Cols: s.n, Stride: ldb, Data: bb}
			tb := blas.NoTrans
			if s.tB {
				gb.Rows, gb.Cols, tb = s.n, s.k, blas.Trans
			}
			gc := blas64.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: c}
			cpu0 := cpuSeconds()
			for b.Loop() {
				blas64.Gemm(ta, tb, 1, ga, gb, 0, gc)
			}
			report(b, cpu0, s.m, s.n, s.k)
		})
	}
}

// BenchmarkGram times Gram of the m×n operands of the exact SVD (aᵀa of
// the input, WᵀW, RᵀR); GFLOP/s counts the m·n² multiply–adds of the
// triangle's n·(n+1)/2 dot products as 2·m·n·(n+1)/2 flops.
func BenchmarkGram(b *testing.B) {
	for _, s := range []struct{ m, n int }{{4096, 1024}, {1024, 1024}, {8192, 512}} {
		b.Run(fmt.Sprintf("m=%d/n=%d", s.m, s.n), func(b *testing.B) {
			a, lda := operand[float64](rand.New(rand.NewPCG(1, 1)), s.m, s.n, false, 0)
			ag := blas64.General{Rows: s.m, Cols: s.n, Stride: lda, Data: a}
			c := blas64.General{Rows: s.n, Cols: s.n, Stride: s.n, Data: make([]float64, s.n*s.n)}
			cpu0 := cpuSeconds()
			for b.Loop() {
				Gram(c, ag)
			}
			report(b, cpu0, s.n, s.n+1, s.m/2)
		})
	}
}
