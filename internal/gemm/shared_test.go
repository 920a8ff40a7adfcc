package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallBlocks cuts products into many small blocks, so that small
// matrices cross many kc and nc blocks (and barriers) and the shared
// buffers are reused.
var smallBlocks = blocking{kc: 24, mc: 16, nc: 96, thin: 16, ncThin: 48}

// sharedCase is a product whose pieces share the packing of the operand
// that is not split, under smallBlocks and GOMAXPROCS ≥ 3.
type sharedCase struct {
	m, n, k int
	splitM  bool
}

var sharedCases = []sharedCase{
	{300, 250, 100, true}, // rows split, op(B) shared: 3 nc blocks × 5 kc blocks
	{150, 97, 49, true},   // edge panels in the shares, a short last kc block
	{12, 500, 100, false}, // columns split, op(A) shared
	{13, 301, 70, false},  // a short last row panel of op(A), a short last kc block
}

// runShared computes one case with gemmWith and with serial on the calling
// goroutine, and checks that the call took the shared path and that the
// two results are identical: the shared packing changes who packs, not
// the arithmetic.
func runShared[E Float](t *testing.T, mk microKernel[E], rnd *rand.Rand, sc sharedCase, tA, tB bool) {
	t.Helper()
	a, lda := operand[E](rnd, sc.m, sc.k, tA, 1)
	b, ldb := operand[E](rnd, sc.k, sc.n, tB, 2)
	ldc := sc.n + 3
	c := randSlice[E](rnd, (sc.m-1)*ldc+sc.n)
	want := append([]E(nil), c...)
	g := &call[E, E, E]{mk: mk, m: sc.m, n: sc.n, k: sc.k, blk: smallBlocks}
	g.plan()
	require.True(t, g.shared, "shared path not taken")
	require.Equal(t, sc.splitM, g.splitM, "split")
	require.Greater(t, g.parts, 2, "parts")
	gemmWith(mk, false, tA, tB, sc.m, sc.n, sc.k, 1.5, a, lda, b, ldb, -0.5, c, ldc)
	serial(mk, smallBlocks, new(buffers[E]), false, matrix[E]{data: a, ld: lda, trans: tA}, matrix[E]{data: b, ld: ldb, trans: tB}, sc.k, 1.5, -0.5, want, ldc, 0, sc.m, 0, sc.n)
	assert.Equal(t, want, c)
}

// TestSharedPacking runs products whose pieces pack op(B) (rows split) or
// op(A) (columns split) together, on 3 and 4 pieces, for every kernel and
// transpose, float64 and float32.
func TestSharedPacking(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	testBlocking = &smallBlocks
	defer func() { testBlocking = nil }()
	rnd := rand.New(rand.NewPCG(21, 22))
	for _, p := range []int{3, 4} {
		runtime.GOMAXPROCS(p)
		for _, sc := range sharedCases {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					name := fmt.Sprintf("procs=%d/m=%d/n=%d/k=%d/ta=%t/tb=%t", p, sc.m, sc.n, sc.k, tA, tB)
					t.Run(name, func(t *testing.T) {
						for _, mk := range kernels() {
							runShared(t, mk, rnd, sc, tA, tB)
						}
						for _, mk := range kernels32() {
							runShared(t, mk, rnd, sc, tA, tB)
						}
					})
				}
			}
		}
	}
}

// TestPlanNarrowB checks plan's choice of the shared path on 2 and 4
// cores with the default blocks: a row split shares op(B) only when C has
// more than thin columns (the sketch products Y = A·Ω, ℓ ≤ 160, pack all
// of Ω in each piece), and a column split of a C of at most thin rows
// shares op(A) as before.
func TestPlanNarrowB(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, p := range []int{2, 4} {
		runtime.GOMAXPROCS(p)
		for _, c := range []struct {
			m, n, k        int
			splitM, shared bool
		}{
			{1024, 64, 4096, true, false},  // Y = Xᵀ·Ω of a 4096×1024 X
			{4096, 128, 8192, true, false}, // AᵀQ of 8192×4096
			{4096, 160, 1024, true, false}, // ℓ = thin
			{4096, 161, 1024, true, true},  // one column more
			{1024, 1024, 1024, true, true},
			{64, 4096, 1024, false, true}, // B = Qᵀ·Xᵀ: op(A) shared
		} {
			mk := kernel()
			g := &call[float64, float64, float64]{mk: mk, m: c.m, n: c.n, k: c.k, blk: chooseBlocking(mk, false)}
			g.plan()
			name := fmt.Sprintf("procs=%d/m=%d/n=%d/k=%d", p, c.m, c.n, c.k)
			require.Greater(t, g.parts, 1, name)
			assert.Equal(t, c.splitM, g.splitM, "%s: split", name)
			assert.Equal(t, c.shared, g.shared, "%s: shared", name)
		}
	}
}

// TestSharedPackingConcurrent runs shared-packing products of 4 pieces
// from 8 goroutines at once, more pieces than workers were started for
// any one call: each call's pieces must all get a worker and reach its
// barriers (a deadlock fails the test by its deadline), and every result
// must be the serial one.
func TestSharedPackingConcurrent(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	testBlocking = &smallBlocks
	defer func() { testBlocking = nil }()
	rnd := rand.New(rand.NewPCG(23, 24))
	const callers = 8
	type job struct {
		sc      sharedCase
		a, b    []float32
		want    []float32
		lda, ld int
	}
	jobs := make([]job, callers)
	for i := range jobs {
		sc := sharedCases[i%len(sharedCases)]
		a, lda := operand[float32](rnd, sc.m, sc.k, false, 0)
		b, _ := operand[float32](rnd, sc.k, sc.n, false, 0)
		want := make([]float32, sc.m*sc.n)
		serial(kernel32(), smallBlocks, new(buffers[float32]), false, matrix[float32]{data: a, ld: lda}, matrix[float32]{data: b, ld: sc.n}, sc.k, 1, 0, want, sc.n, 0, sc.m, 0, sc.n)
		jobs[i] = job{sc, a, b, want, lda, sc.n}
	}
	errs := make(chan error, callers)
	for i := range jobs {
		go func(j job) {
			c := make([]float32, j.sc.m*j.sc.n)
			for range 20 {
				Sgemm(false, false, j.sc.m, j.sc.n, j.sc.k, 1, j.a, j.lda, j.b, j.ld, 0, c, j.sc.n)
				for e := range c {
					if c[e] != j.want[e] {
						errs <- fmt.Errorf("m=%d n=%d k=%d: element %d = %v, want %v", j.sc.m, j.sc.n, j.sc.k, e, c[e], j.want[e])
						return
					}
				}
			}
			errs <- nil
		}(jobs[i])
	}
	deadline := time.After(2 * time.Minute)
	for range callers {
		select {
		case err := <-errs:
			assert.NoError(t, err)
		case <-deadline:
			t.Fatal("concurrent shared-packing products did not finish: deadlock")
		}
	}
}

// TestPanelLayout checks the cut of a block of B into panels for every
// kernel and block width up to 400: the panels tile [0, nc) in order, each
// a multiple of step no wider than nr with its own kernel variant, only
// the last padded (by less than a step), no panel of one step after a
// full panel where the kernel has a wider variant, and panelStart maps
// every multiple of nr to a panel start.
func TestPanelLayout(t *testing.T) {
	check := func(name string, nr, step, nfns int, panel func(nc, j int) int, start func(nc, j int) int) {
		for nc := 1; nc <= 400; nc++ {
			starts := map[int]bool{}
			var widths []int
			j := 0
			for j < nc {
				starts[j] = true
				w := panel(nc, j)
				require.True(t, w > 0 && w <= nr && w%step == 0, "%s nc=%d j=%d: width %d", name, nc, j, w)
				widths = append(widths, w)
				j += w
			}
			require.Less(t, j-nc, step, "%s nc=%d: padding", name, nc)
			if n := len(widths); nfns >= 3 && n >= 2 && widths[n-2] == nr {
				assert.Greater(t, widths[n-1], step, "%s nc=%d: a one-step tail after a full panel", name, nc)
			}
			for b := 0; b <= nc; b += nr {
				s := start(nc, b)
				assert.True(t, s == nc || starts[s], "%s nc=%d: panelStart(%d) = %d", name, nc, b, s)
			}
		}
	}
	for _, mk := range kernels() {
		check("float64/"+mk.name, mk.nr, mk.step, len(mk.fns), func(nc, j int) int { w, _ := mk.panel(nc, j); return w }, mk.panelStart)
	}
	for _, mk := range kernels32() {
		check("float32/"+mk.name, mk.nr, mk.step, len(mk.fns), func(nc, j int) int { w, _ := mk.panel(nc, j); return w }, mk.panelStart)
	}
}
