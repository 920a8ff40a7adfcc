package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// shape is one product in the test table: op(A) is m×k, op(B) k×n, and pad
// is added to every leading dimension.
type shape struct{ m, n, k, pad int }

var shapes = []shape{
	{1, 1, 1, 0},
	{1, 1, 1, 3},
	{3, 5, 7, 0},
	{13, 17, 11, 2}, // not a multiple of any micro-tile
	{12, 16, 4, 0},  // exactly one AVX-512 tile
	{25, 33, 300, 1},
	{20, 30, 1100, 1}, // k crosses two kc blocks
	{1, 200, 3, 0},    // one row
	{200, 1, 3, 0},    // one column
	{2, 3, 1000, 5},   // long inner dimension
	{3, 4100, 2, 0},   // n crosses an nc block
	{70, 70, 70, 0},   // just above the threading threshold
	{16, 40, 9, 0},    // 8×24 then a full 8×16 tile
	{16, 32, 5, 1},    // 8×24 then a full 8×8 tile
	{131, 75, 210, 3}, // threaded, edges in m and n, k crosses kc
	{5, 300, 200, 0},  // split by columns: fewer rows than workers' tiles
	{600, 7, 100, 1},
	{170, 40, 530, 2}, // more rows than a thin piece: several mc blocks, two kc blocks  // split by rows
}

func randSlice[T Float](rnd *rand.Rand, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = T(rnd.NormFloat64())
	}
	return s
}

// operand returns storage for an r×c operand of op with transpose t and
// padding pad, and its leading dimension.
func operand[T Float](rnd *rand.Rand, r, c int, t bool, pad int) ([]T, int) {
	if t {
		r, c = c, r
	}
	ld := c + pad
	if ld == 0 {
		ld = 1
	}
	return randSlice[T](rnd, max(0, (r-1)*ld+c)), ld
}

func at[T Float](s []T, ld int, t bool, i, j int) float64 {
	if t {
		return float64(s[j*ld+i])
	}
	return float64(s[i*ld+j])
}

// checkGemm runs gemmWith with kernel mk on one case and compares every
// element of C with a naive triple loop. The tolerance is the elementwise
// forward bound for inner products (Higham, Accuracy and Stability of
// Numerical Algorithms, §3.5): each of the two results differs from the
// exact one by at most γ_{k+2}·(|alpha|·|op(A)|·|op(B)| + |beta|·|C|)
// (k products and sums, plus the alpha and beta roundings), with
// γ_n = n·ε/(1−n·ε), so they differ from each other by at most twice that;
// we allow 2·(k+2)·ε·bound·(1+1e-6) for the 1/(1−nε) factor.
func checkGemm[TA, TB Float](t *testing.T, mk microKernel[float64], rnd *rand.Rand, s shape, tA, tB bool, alpha, beta float64) {
	t.Helper()
	a, lda := operand[TA](rnd, s.m, s.k, tA, s.pad)
	b, ldb := operand[TB](rnd, s.k, s.n, tB, s.pad)
	ldc := max(1, s.n+s.pad)
	c := randSlice[float64](rnd, max(0, (s.m-1)*ldc+s.n))
	if beta == 0 {
		for i := range c {
			c[i] = math.NaN() // must be overwritten, not scaled
		}
	}
	a0, b0, c0 := slices.Clone(a), slices.Clone(b), slices.Clone(c)
	gemmWith(mk, false, tA, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc)
	require.Equal(t, a0, a, "A modified")
	require.Equal(t, b0, b, "B modified")
	eps := math.Nextafter(1, 2) - 1
	for i := 0; i < s.m; i++ {
		for j := 0; j < s.n; j++ {
			var sum, abs float64
			for p := 0; p < s.k; p++ {
				x := at(a, lda, tA, i, p) * at(b, ldb, tB, p, j)
				sum += x
				abs += math.Abs(x)
			}
			want := alpha * sum
			bound := math.Abs(alpha) * abs
			if beta != 0 {
				want += beta * c0[i*ldc+j]
				bound += math.Abs(beta * c0[i*ldc+j])
			}
			tol := 2 * float64(s.k+2) * eps * bound * (1 + 1e-6)
			got := c[i*ldc+j]
			if !(math.Abs(got-want) <= tol) {
				t.Fatalf("C[%d,%d] = %v, want %v ± %v", i, j, got, want, tol)
			}
		}
		// The padding of C is not touched.
		for j := s.n; j < ldc && i*ldc+j < len(c); j++ {
			if !(c[i*ldc+j] == c0[i*ldc+j] || math.IsNaN(c0[i*ldc+j]) && math.IsNaN(c[i*ldc+j])) {
				t.Fatalf("C[%d,%d] in the padding changed", i, j)
			}
		}
	}
}

func TestGemm(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	scalars := [][2]float64{{1, 0}, {1, 1}, {-0.5, 2}, {2.5, -1}, {0, 0.5}, {0, 0}}
	if raceEnabled {
		// The race pass (CI's second, for the threads) takes one general
		// (α, β) and one mixed-precision product per case; the plain pass
		// checks every combination.
		scalars = scalars[3:4]
	}
	for _, mk := range kernels() {
		for _, s := range shapes {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					name := fmt.Sprintf("kernel=%s/m=%d/n=%d/k=%d/pad=%d/ta=%t/tb=%t", mk.name, s.m, s.n, s.k, s.pad, tA, tB)
					t.Run(name, func(t *testing.T) {
						for _, ab := range scalars {
							checkGemm[float64, float64](t, mk, rnd, s, tA, tB, ab[0], ab[1])
						}
						// Mixed precision: float32 operands on either or both sides.
						checkGemm[float32, float32](t, mk, rnd, s, tA, tB, 1, 1)
						if !raceEnabled {
							checkGemm[float32, float64](t, mk, rnd, s, tA, tB, 1.5, 0)
							checkGemm[float64, float32](t, mk, rnd, s, tA, tB, -1, 0.5)
						}
					})
				}
			}
		}
	}
}

// TestDgemmMatchesGonum checks the argument conventions against gonum's
// blas64 on the same row-major data; the tolerance is the bound of
// checkGemm with a unit scale (entries are O(1) normals, so
// |A|·|B| ≤ k·max|a|·max|b| and the bound is taken per element).
func TestDgemmMatchesGonum(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	eps := math.Nextafter(1, 2) - 1
	for _, s := range []shape{{37, 53, 29, 3}, {130, 90, 260, 0}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				a, lda := operand[float64](rnd, s.m, s.k, tA, s.pad)
				b, ldb := operand[float64](rnd, s.k, s.n, tB, s.pad)
				ldc := s.n + s.pad
				c := randSlice[float64](rnd, (s.m-1)*ldc+s.n)
				want := slices.Clone(c)
				ga := blas64.General{Rows: s.m, Cols: s.k, Stride: lda, Data: a}
				if tA {
					ga.Rows, ga.Cols = s.k, s.m
				}
				gb := blas64.General{Rows: s.k, Cols: s.n, Stride: ldb, Data: b}
				if tB {
					gb.Rows, gb.Cols = s.n, s.k
				}
				tr := func(t bool) blas.Transpose {
					if t {
						return blas.Trans
					}
					return blas.NoTrans
				}
				blas64.Gemm(tr(tA), tr(tB), 0.7, ga, gb, -1.3, blas64.General{Rows: s.m, Cols: s.n, Stride: ldc, Data: want})
				Dgemm(tA, tB, s.m, s.n, s.k, 0.7, a, lda, b, ldb, -1.3, c, ldc)
				maxA := maxAbs(a)
				maxB := maxAbs(b)
				maxC := maxAbs(want)
				for i := range c {
					tol := 2 * float64(s.k+2) * eps * (0.7*float64(s.k)*maxA*maxB + 1.3*maxC)
					assert.InDelta(t, want[i], c[i], tol, "ta=%t tb=%t element %d", tA, tB, i)
				}
			}
		}
	}
}

func maxAbs(s []float64) float64 {
	var m float64
	for _, v := range s {
		m = max(m, math.Abs(v))
	}
	return m
}

func TestGemmPanics(t *testing.T) {
	a := make([]float64, 6)
	c := make([]float64, 4)
	assert.Panics(t, func() { Dgemm(false, false, -1, 2, 3, 1, a, 3, a, 2, 0, c, 2) }, "negative m")
	assert.Panics(t, func() { Dgemm(false, false, 2, 2, 3, 1, a, 2, a, 2, 0, c, 2) }, "lda < k")
	assert.Panics(t, func() { Dgemm(false, false, 2, 2, 3, 1, a, 3, a, 1, 0, c, 2) }, "ldb < n")
	assert.Panics(t, func() { Dgemm(false, false, 2, 2, 3, 1, a, 3, a, 2, 0, c[:3], 2) }, "short c")
	assert.Panics(t, func() { Dgemm(true, false, 2, 2, 3, 1, a[:5], 2, a, 2, 0, c, 2) }, "short a")
	assert.NotPanics(t, func() { Dgemm(false, false, 2, 2, 3, 1, a, 3, a, 2, 0, c, 2) })
}

// TestGemmNoAllocs checks that a threaded product in steady state
// allocates nothing: workers, calls and packing buffers are reused.
func TestGemmNoAllocs(t *testing.T) {
	if raceEnabled {
		// Counted by the plain go test run; under -race the pools drop
		// items on purpose.
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 300, 200, 100
	a := randSlice[float32](rnd, m*k)
	b := randSlice[float64](rnd, k*n)
	c := make([]float64, m*n)
	run := func() { Gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n) }
	run()
	allocs := testing.AllocsPerRun(20, run)
	// sync.Pool may drop its contents at a GC during the runs, which
	// refills them; one allocation per part and run at most is that.
	t.Logf("%v allocations per call", allocs)
	assert.LessOrEqual(t, allocs, 0.5*float64(runtime.GOMAXPROCS(0)), "allocations per call")
}

// TestGemmConcurrent runs threaded products from several goroutines at
// once, as the activation compressor's workers do: they share the worker
// pool and the buffer pool, and each must get exactly its serial result
// (the same kernel and blocking, so the same rounding).
func TestGemmConcurrent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	const m, n, k, callers = 150, 90, 80, 6
	a := randSlice[float64](rnd, m*k)
	bs := make([][]float64, callers)
	want := make([][]float64, callers)
	for i := range bs {
		bs[i] = randSlice[float64](rnd, k*n)
		want[i] = make([]float64, m*n)
		serial(kernel(), chooseBlocking(kernel(), false), new(buffers[float64]), false, matrix[float64]{data: a, ld: k}, matrix[float64]{data: bs[i], ld: n}, k, 1, 0, want[i], n, 0, m, 0, n)
	}
	got := make([][]float64, callers)
	done := make(chan int)
	for i := range callers {
		go func() {
			got[i] = make([]float64, m*n)
			for range 5 {
				Dgemm(false, false, m, n, k, 1, a, k, bs[i], n, 0, got[i], n)
			}
			done <- i
		}()
	}
	for range callers {
		i := <-done
		assert.Equal(t, want[i], got[i], "caller %d", i)
	}
}

func TestGeneral(t *testing.T) {
	a := blas64.General{Rows: 2, Cols: 3, Stride: 3, Data: []float64{1, 2, 3, 4, 5, 6}}
	b := blas64.General{Rows: 2, Cols: 3, Stride: 3, Data: []float64{1, 0, 1, 0, 1, 0}}
	c := blas64.General{Rows: 2, Cols: 2, Stride: 2, Data: []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}}
	General(false, true, 1, a, b, 0, c) // a·bᵀ; beta = 0 overwrites the NaNs
	assert.Equal(t, []float64{4, 2, 10, 5}, c.Data)
	assert.Panics(t, func() { General(false, false, 1, a, b, 0, c) })
}
