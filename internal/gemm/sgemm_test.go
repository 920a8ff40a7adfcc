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
)

// shapes32 adds to shapes the widths where the float32 tiles (8×48 with
// 8×32 and 8×16 variants on AVX-512, 6×16 with 6×8 on AVX2) change: the
// sketch widths ℓ = 32, 64, 128, 256 and odd ones.
var shapes32 = []shape{
	{16, 48, 7, 0},    // one full 8×48 tile per row of tiles
	{16, 80, 9, 0},    // 8×48 then 8×32
	{8, 64, 5, 1},     // 8×48 then 8×16
	{24, 128, 40, 0},  // 48 + 48 + 32
	{9, 256, 20, 2},   // 5·48 + 16, and one row past a tile
	{13, 100, 30, 0},  // 48 + 48 + 4: the 16-wide variant, padded
	{40, 32, 600, 0},  // 8×32 only; k crosses kc
	{12, 24, 17, 3},   // 6×16 + 6×8 on AVX2
	{64, 33, 1030, 1}, // threaded, k crosses two kc blocks
}

// gamma is γ_n = n·u/(1−n·u) (Higham, Accuracy and Stability of Numerical
// Algorithms, §3.1) for unit roundoff u.
func gamma(n int, u float64) float64 { return float64(n) * u / (1 - float64(n)*u) }

// checkSgemm runs gemmWith with the float32 kernel mk on one case and
// compares every element of C with a float64 triple loop on the same
// float32 data.
//
// Tolerance. Take one element c = alpha·Σ_p a_p·b_p + beta·c₀. Sgemm forms
// each product a_p·b_p (rounded, or exact inside an FMA), adds it into one
// float32 accumulator over a kc block (≤ kc−1 additions), multiplies the
// block's sum by alpha (1 rounding) and adds it into C (1 rounding, in the
// kernel's FMA or in macro's merge of an edge tile); the L = ⌈k/kc⌉ blocks
// add into C one after another, so a product of block l goes through at
// most 1 + (kc−1) + 1 + (L−l+1) ≤ kc + L + 1 ≤ k + 2 roundings (for L ≥ 2,
// k ≥ (L−1)·kc + 1 ≥ kc + L − 1), and beta·c₀ through at most 1 + L ≤ k + 2.
// Each rounding is a factor (1+δ), |δ| ≤ u = 2⁻²⁴, and a product of at most
// n of them is 1+θ with |θ| ≤ γ_n (Higham, Lemma 3.1), so
//
//	|ĉ − c| ≤ γ_{k+2}·(|alpha|·Σ_p |a_p|·|b_p| + |beta|·|c₀|).
//
// The reference is computed the same way in float64 from the exact
// float64 images of the float32 inputs (products of two float32 values are
// exact in float64), so it is within γ_{k+2} with u = 2⁻⁵³ of c; the two
// differ by at most the sum of the two bounds. The bound itself is summed
// in float64, a relative error below 10⁻⁹ for these k, covered by the
// factor 1 + 10⁻⁶.
func checkSgemm(t *testing.T, mk microKernel[float32], rnd *rand.Rand, s shape, tA, tB bool, alpha, beta float32) {
	t.Helper()
	a, lda := operand[float32](rnd, s.m, s.k, tA, s.pad)
	b, ldb := operand[float32](rnd, s.k, s.n, tB, s.pad)
	ldc := max(1, s.n+s.pad)
	c := randSlice[float32](rnd, max(0, (s.m-1)*ldc+s.n))
	if beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN()) // must be overwritten, not scaled
		}
	}
	a0, b0, c0 := slices.Clone(a), slices.Clone(b), slices.Clone(c)
	gemmWith(mk, false, tA, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc)
	require.Equal(t, a0, a, "A modified")
	require.Equal(t, b0, b, "B modified")
	rel := (gamma(s.k+2, 0x1p-24) + gamma(s.k+2, 0x1p-53)) * (1 + 1e-6)
	for i := 0; i < s.m; i++ {
		for j := 0; j < s.n; j++ {
			var sum, abs float64
			for p := 0; p < s.k; p++ {
				x := at(a, lda, tA, i, p) * at(b, ldb, tB, p, j)
				sum += x
				abs += math.Abs(x)
			}
			want := float64(alpha) * sum
			bound := math.Abs(float64(alpha)) * abs
			if beta != 0 {
				want += float64(beta) * float64(c0[i*ldc+j])
				bound += math.Abs(float64(beta) * float64(c0[i*ldc+j]))
			}
			tol := rel * bound
			got := float64(c[i*ldc+j])
			if !(math.Abs(got-want) <= tol) {
				t.Fatalf("C[%d,%d] = %v, want %v ± %v", i, j, got, want, tol)
			}
		}
		for j := s.n; j < ldc && i*ldc+j < len(c); j++ {
			if math.Float32bits(c[i*ldc+j]) != math.Float32bits(c0[i*ldc+j]) {
				t.Fatalf("C[%d,%d] in the padding changed", i, j)
			}
		}
	}
}

// TestSgemm checks every float32 micro-kernel this CPU can run (and the Go
// one) on the shapes of TestGemm and shapes32, all four transposes and the
// alpha/beta pairs of TestGemm, with NaN in C when beta = 0.
func TestSgemm(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {2.5, -1}, {0, 0.5}, {0, 0}}
	if raceEnabled {
		scalars = scalars[3:4] // as TestGemm: one general (α, β) in the race pass
	}
	for _, mk := range kernels32() {
		for _, s := range append(slices.Clone(shapes), shapes32...) {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					name := fmt.Sprintf("kernel=%s/m=%d/n=%d/k=%d/pad=%d/ta=%t/tb=%t", mk.name, s.m, s.n, s.k, s.pad, tA, tB)
					t.Run(name, func(t *testing.T) {
						for _, ab := range scalars {
							checkSgemm(t, mk, rnd, s, tA, tB, ab[0], ab[1])
						}
					})
				}
			}
		}
	}
}

// TestSgemmLarge checks one product of loract's size class, 8192×4096 ·
// 4096×128 cut down to 256×2048 · 2048×128 so that the float64 reference
// stays quick, with the kernel chosen for this CPU; k spans 4 kc blocks
// and the product is threaded.
func TestSgemmLarge(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	for _, tA := range []bool{false, true} {
		checkSgemm(t, kernel32(), rnd, shape{256, 128, 2048, 0}, tA, false, 1, 0)
	}
}

func TestSgemmPanics(t *testing.T) {
	a := make([]float32, 6)
	c := make([]float32, 4)
	assert.Panics(t, func() { Sgemm(false, false, 2, -1, 3, 1, a, 3, a, 2, 0, c, 2) }, "negative n")
	assert.Panics(t, func() { Sgemm(false, false, 2, 2, 3, 1, a, 2, a, 2, 0, c, 2) }, "lda < k")
	assert.Panics(t, func() { Sgemm(false, true, 2, 2, 3, 1, a, 3, a, 2, 0, c, 2) }, "ldb < k for Bᵀ")
	assert.Panics(t, func() { Sgemm(false, false, 2, 2, 3, 1, a, 3, a, 2, 0, c, 1) }, "ldc < n")
	assert.Panics(t, func() { Sgemm(false, false, 2, 2, 3, 1, a, 3, a, 2, 0, c[:3], 2) }, "short c")
	assert.Panics(t, func() { Sgemm(false, false, 2, 2, 3, 1, a[:5], 3, a, 2, 0, c, 2) }, "short a")
	assert.Panics(t, func() { Sgemm(false, false, 2, 2, 3, 1, a, 3, a[:5], 2, 0, c, 2) }, "short b")
	assert.NotPanics(t, func() { Sgemm(false, false, 2, 2, 3, 1, a, 3, a, 2, 0, c, 2) })
	// Empty operands need no storage.
	assert.NotPanics(t, func() { Sgemm(false, false, 0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 1) })
	assert.NotPanics(t, func() { Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2) })
}

// TestSgemmZeroK checks that k = 0 and alpha = 0 scale C without reading
// A and B (here too short to hold anything, and NaN where they exist).
func TestSgemmZeroK(t *testing.T) {
	nan := float32(math.NaN())
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 3, c, 2)
	assert.Equal(t, []float32{3, 6, 9, 12}, c)
	a := []float32{nan, nan, nan, nan}
	Sgemm(false, false, 2, 2, 2, 0, a, 2, a, 2, 0.5, c, 2)
	assert.Equal(t, []float32{1.5, 3, 4.5, 6}, c)
	c = []float32{nan, nan, nan, nan}
	Sgemm(false, false, 2, 2, 2, 0, a, 2, a, 2, 0, c, 2)
	assert.Equal(t, []float32{0, 0, 0, 0}, c)
}

// TestSgemmNoAllocs checks that a threaded float32 product in steady state
// allocates nothing, as TestGemmNoAllocs does for float64.
func TestSgemmNoAllocs(t *testing.T) {
	if raceEnabled {
		// Counted by the plain go test run; under -race the pools drop
		// items on purpose.
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	rnd := rand.New(rand.NewPCG(15, 16))
	const m, n, k = 300, 200, 100
	a := randSlice[float32](rnd, k*m)
	b := randSlice[float32](rnd, k*n)
	c := make([]float32, m*n)
	run := func() { Sgemm(true, false, m, n, k, 1, a, m, b, n, 0, c, n) }
	run()
	allocs := testing.AllocsPerRun(20, run)
	// As in TestGemmNoAllocs: a GC emptying the sync.Pools during the runs
	// costs at most one allocation per part and run.
	t.Logf("%v allocations per call", allocs)
	assert.LessOrEqual(t, allocs, 0.5*float64(runtime.GOMAXPROCS(0)), "allocations per call")
}

// TestSgemmConcurrent runs threaded float32 products from several
// goroutines at once, mixed with float64 ones that share the worker pool;
// each must equal its serial result bit for bit.
func TestSgemmConcurrent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(17, 18))
	const m, n, k, callers = 150, 90, 80, 6
	a := randSlice[float32](rnd, m*k)
	a64 := randSlice[float64](rnd, m*k)
	bs := make([][]float32, callers)
	want := make([][]float32, callers)
	want64 := make([]float64, m*n)
	for i := range bs {
		bs[i] = randSlice[float32](rnd, k*n)
		want[i] = make([]float32, m*n)
		serial(kernel32(), chooseBlocking(kernel32(), false), new(buffers[float32]), false, matrix[float32]{data: a, ld: k}, matrix[float32]{data: bs[i], ld: n}, k, 1, 0, want[i], n, 0, m, 0, n)
	}
	b64 := randSlice[float64](rnd, k*n)
	serial(kernel(), chooseBlocking(kernel(), false), new(buffers[float64]), false, matrix[float64]{data: a64, ld: k}, matrix[float64]{data: b64, ld: n}, k, 1, 0, want64, n, 0, m, 0, n)
	got := make([][]float32, callers)
	got64 := make([][]float64, callers)
	done := make(chan int)
	for i := range callers {
		go func() {
			got[i] = make([]float32, m*n)
			got64[i] = make([]float64, m*n)
			for range 5 {
				Sgemm(false, false, m, n, k, 1, a, k, bs[i], n, 0, got[i], n)
				Dgemm(false, false, m, n, k, 1, a64, k, b64, n, 0, got64[i], n)
			}
			done <- i
		}()
	}
	for range callers {
		i := <-done
		assert.Equal(t, want[i], got[i], "caller %d", i)
		assert.Equal(t, want64, got64[i], "caller %d, float64", i)
	}
}

// TestGemmDirect checks the kernels that read a row-major A in place
// (macro with inPlace), float32 and float64, against the packed path they
// replace: the same products with useDirect off must give the same bits —
// the kernels do the same multiply–adds in the same order — on pieces of
// more than thinRows rows, so that serial takes them, with a last partial
// panel of rows, every tail width of B, k across kc blocks, padded strides
// and general α, β; and the result must be the product (checkSgemm's and
// checkGemm's bounds).
func TestGemmDirect(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	shapesD := []shape{{203, 128, 1030, 0}, {400, 7, 33, 3}, {331, 100, 64, 1}, {170, 80, 5, 0}, {264, 48, 2100, 2}}
	scalars := [][2]float64{{1, 0}, {-0.5, 2}}
	if raceEnabled { // as TestSgemm: the small shapes, one (α, β)
		shapesD, scalars = shapesD[1:4], scalars[1:]
	}
	rnd := rand.New(rand.NewPCG(15, 16))
	t.Run("float32", func(t *testing.T) {
		checkDirect(t, kernel32(), rnd, shapesD, scalars, func(s shape, tB bool, alpha, beta float32) {
			checkSgemm(t, kernel32(), rnd, s, false, tB, alpha, beta)
		})
	})
	t.Run("float64", func(t *testing.T) {
		checkDirect(t, kernel(), rnd, shapesD, scalars, func(s shape, tB bool, alpha, beta float64) {
			checkGemm[float64, float64](t, kernel(), rnd, s, false, tB, alpha, beta)
		})
	})
}

// checkDirect is TestGemmDirect for the kernel mk of element type E;
// check verifies a product of the shape against its reference.
func checkDirect[E Float](t *testing.T, mk microKernel[E], rnd *rand.Rand, shapes []shape, scalars [][2]float64, check func(s shape, tB bool, alpha, beta E)) {
	if mk.direct == nil {
		t.Skipf("kernel %s has no direct variant on this CPU", mk.name)
	}
	_, ok := directA(mk, matrix[E]{data: make([]E, 1), ld: 1})
	require.True(t, ok, "a row-major A is read in place")
	_, ok = directA(mk, matrix[E]{data: make([]E, 1), ld: 1, trans: true})
	require.False(t, ok, "a transposed A is packed")
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for _, s := range shapes {
			for _, tB := range []bool{false, true} {
				for _, ab := range scalars {
					alpha, beta := E(ab[0]), E(ab[1])
					name := fmt.Sprintf("procs=%d/m=%d/n=%d/k=%d/pad=%d/tb=%t/alpha=%g/beta=%g", procs, s.m, s.n, s.k, s.pad, tB, ab[0], ab[1])
					a, lda := operand[E](rnd, s.m, s.k, false, s.pad)
					b, ldb := operand[E](rnd, s.k, s.n, tB, s.pad)
					ldc := s.n + s.pad
					c := randSlice[E](rnd, (s.m-1)*ldc+s.n)
					packed := slices.Clone(c)
					gemmWith(mk, false, false, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc)
					useDirect = false
					gemmWith(mk, false, false, tB, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, packed, ldc)
					useDirect = true
					require.Equal(t, packed, c, "%s: direct and packed differ", name)
					check(s, tB, alpha, beta)
				}
			}
		}
	}
}
