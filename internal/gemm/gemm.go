// Package gemm is a dense matrix–matrix product for the CPU, the kernel
// beneath every host algorithm in loract.
//
// It computes C = alpha·op(A)·op(B) + beta·C for row-major operands, with
// op(X) = X or Xᵀ, in the Goto/BLIS scheme: op(B) is packed kc×nc at a time
// and op(A) mc×kc at a time into contiguous micro-panels, and a
// register-blocked micro-kernel (AVX-512 or AVX2+FMA assembly on amd64,
// chosen at run time from CPUID; portable Go elsewhere or with the noasm
// build tag) computes one mr×nr tile of C per call. Dgemm computes in
// float64, and so does Gemm, whose A and B may be float32 (they are
// converted to float64 inside the packing); Sgemm computes in float32 from
// float32 panels, with its own micro-kernels of twice as many elements per
// vector. No copy of A or B is made: the only transient memory is the
// packing buffers, whose size does not depend on m, n or k. Products of at
// least 64³ multiply–adds are split over GOMAXPROCS persistent workers by
// rows or columns of C; the workers pack the operand that is not split
// together, a share each, into blocks that they all read, or, where it is
// small, each packs it itself and the pieces go to whichever goroutine
// (the caller's or a worker) is free to take one.
package gemm

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas64"
)

// Blocking of the Goto/BLIS loops: op(B) is packed kcBlock×ncTarget and
// op(A) mcTarget×kcBlock at a time (rounded to the micro-tile). With the
// 8×24 AVX-512 tile, an mr×kc panel of A is 32 KiB (L1), the mc×kc block
// of A 384 KiB and a kc×nr panel of B 96 KiB (L2), and the kc×nc block of
// B 8 MiB (L3). Larger kc than the classic L1-sized choice measured better
// on the Zen 5 we develop on, because each packed row of A is then a 4 KiB
// run that the hardware prefetchers stream well and each micro-kernel call
// is longer: BenchmarkBlocking, GOMAXPROCS=1, best of 3, GFLOP per CPU-second,
// kc×mc = 192×192 / 384×96 / 512×96: Y = A·Ω (8192×4096·4096×128) 53 / 69 /
// 72, 1024³ 72 / 80 / 81, QᵀA (128×8192·8192×4096) 49 / 50 / 50.
const (
	kcBlock  = 512
	mcTarget = 96
	ncTarget = 2048
)

// A piece of C with at most thinRows rows (QᵀA, with Q p×l, l ≲ 160) packs
// all its rows of A once per kc block and B ncThinTarget columns at a time
// (serialThin), so that packed B is used from L2 right after it is
// written instead of after a round trip through L3 (8 MiB blocks).
// BenchmarkBlocking, QᵀA (128×8192·8192×4096), GOMAXPROCS=1, best of 2,
// GFLOP per CPU-second: 62 without, 72 / 71 / 73 with 48 / 96 / 192
// columns at a time.
const (
	thinRows     = 160
	ncThinTarget = 96
)

// The float32 product's blocks, in elements. kc is twice kcBlock, so that
// a packed row of a row-major A is again a 4 KiB run and the kc×nc block of
// B is again 8 MiB; mc is larger for a transposed A, whose packing reads
// mc contiguous elements of each row of the stored A, so that they are a
// 768-byte run rather than 384 bytes; the thin path's B blocks are 192
// columns wide for the same reason. BenchmarkSgemmBlocking, GOMAXPROCS=1,
// best of 3, GFLOP per CPU-second, kc×mc×ncThin = 512×96×192 / 1024×96×192
// / 1024×192×192: Y = A·Ω 90 / 100 / 99, AᵀQ 84 / 79 / 85, QᵀA 88 / 85 /
// 87, 4096×1024·1024×64 82 / 87 / 82, 1024³ 106 / 105 / 106, Gram
// (4096×1024)ᵀ·4096×1024 100 / 96 / 98, Yᵀ·Xᵀ 92 / 96 / 96; ncThin = 96
// instead of 192 gave QᵀA 80.
const (
	kcBlock32       = 1024
	mcTarget32      = 96
	mcTransTarget32 = 192
	ncThinTarget32  = 192
)

// smallWork is the number of multiply–adds below which a product runs on
// the calling goroutine alone.
const smallWork = 64 * 64 * 64

// maxParts bounds how many pieces a product is split into.
const maxParts = 64

var (
	kernel   = sync.OnceValue(func() microKernel[float64] { return kernels()[0] })
	kernel32 = sync.OnceValue(func() microKernel[float32] { return kernels32()[0] })
)

// Kernel returns the name of the micro-kernels in use: "avx512", "avx2" or
// "go" (the float64 and float32 ones are chosen from the same CPU
// features).
func Kernel() string { return kernel().name }

// Dgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float64
// matrices, with the semantics of gonum's blas64 Dgemm: op(A) is m×k and is
// A (stored m×k with stride lda) or, if tA, Aᵀ (A stored k×m); op(B) is k×n
// and is B (k×n, stride ldb) or, if tB, Bᵀ (B stored n×k); C is m×n with
// stride ldc. When beta is zero C is not read, so NaN there is overwritten;
// when alpha is zero or k is zero A and B are not read. C must not overlap
// A or B. Dgemm panics if a dimension is negative, a stride is smaller than
// the row length it holds (or 1) or a slice is too short.
//
// Cost: 2·m·n·k flops, plus (m·k + k·n) conversions per pass of packing.
func Dgemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	Gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Gemm is Dgemm with A and B each of float32 or float64 elements. float32
// elements are converted exactly to float64 as they are packed, and the
// product is computed in float64, so the result equals Dgemm on the
// converted matrices; no float64 copy of A or B is made.
func Gemm[TA, TB Float](tA, tB bool, m, n, k int, alpha float64, a []TA, lda int, b []TB, ldb int, beta float64, c []float64, ldc int) {
	gemmWith(kernel(), false, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float32
// matrices, with the arguments, aliasing rules and panics of Dgemm: op(A)
// is m×k (A stored m×k with stride lda, or k×m if tA), op(B) is k×n (B
// stored k×n with stride ldb, or n×k if tB), C is m×n with stride ldc;
// beta = 0 does not read C, alpha = 0 or k = 0 does not read A or B, and C
// must not overlap A or B. Sgemm panics if a dimension is negative, a
// stride is smaller than the row length it holds (or 1) or a slice is too
// short.
//
// The products and sums are float32 and accumulate in float32, so each
// element of C is within γ_{k+2}·(|alpha|·|op(A)|·|op(B)| + |beta|·|C|) of
// the exact result, γ_n = n·u/(1−n·u) with u = 2⁻²⁴ (Higham, Accuracy and
// Stability of Numerical Algorithms, §3.5): about 2²⁹ times the bound of
// Dgemm. Use Gemm for float32 operands with a float64 product.
//
// Cost: 2·m·n·k flops, at twice the vector width of Dgemm, and one copy of
// each operand per pass of packing.
func Sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmWith(kernel32(), false, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func checkOperand(name string, rows, cols, ld, length int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("gemm: bad ld%s %d for %d columns", name, ld, cols))
	}
	if rows > 0 && cols > 0 && length < (rows-1)*ld+cols {
		panic(fmt.Sprintf("gemm: %s has %d elements, needs %d", name, length, (rows-1)*ld+cols))
	}
}

// gemmWith is the product with micro-kernel mk, computed in E. With upper
// set (m = n), only the mr×nr tiles of C that hold an element on or above
// the diagonal are computed: every element of the upper triangle, and no
// tile below it (the lower triangle is then partly written, partly left).
func gemmWith[TA, TB, E Float](mk microKernel[E], upper, tA, tB bool, m, n, k int, alpha E, a []TA, lda int, b []TB, ldb int, beta E, c []E, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	if upper && m != n {
		panic(fmt.Sprintf("gemm: upper triangle of a %d×%d C", m, n))
	}
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	checkOperand("a", ar, ac, lda, len(a))
	checkOperand("b", br, bc, ldb, len(b))
	checkOperand("c", m, n, ldc, len(c))
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		scale(m, n, beta, c, ldc)
		return
	}
	g := getCall[TA, TB, E]()
	packed := g.packed
	*g = call[TA, TB, E]{
		mk: mk, upper: upper, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: matrix[TA]{data: a, ld: lda, trans: tA},
		b: matrix[TB]{data: b, ld: ldb, trans: tB},
		c: c, ldc: ldc, packed: packed,
	}
	g.blk = chooseBlocking(mk, tA)
	g.plan()
	if g.parts == 1 {
		g.runPart(0)
	} else {
		if g.shared {
			g.prepareShared()
		}
		// Every piece queued has a worker to run it, even while the
		// workers are busy with other calls' pieces, so that the pieces of
		// a call reach its barriers.
		ensureWorkers(int(outstanding.Add(int64(g.parts - 1))))
		g.wg.Add(g.parts - 1)
		for i := 1; i < g.parts; i++ {
			work <- workItem{r: g, part: i}
		}
		// The first worker woken is readied on this goroutine's P, where
		// it would wait until this goroutine blocks: an idle P takes it
		// only after tens of microseconds, so a product under a
		// millisecond ran its pieces one after the other. Yielding lets
		// it start here while an idle P takes this goroutine from the
		// global queue (docs/gemm.md, "Thirtieth session").
		runtime.Gosched()
		if g.shared {
			g.runPart(0)
		} else {
			g.claimParts()
		}
		g.wg.Wait()
	}
	putCall(g)
}

// scale sets C = beta·C, writing zeros without reading C when beta is 0.
func scale[E Float](m, n int, beta E, c []E, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// call is one product in flight, shared by the goroutines computing it.
type call[TA, TB, E Float] struct {
	wg          sync.WaitGroup
	next        atomic.Int32 // the next piece to claim (without shared packing)
	mk          microKernel[E]
	upper       bool // only the tiles on and above the diagonal
	m, n, k     int
	alpha, beta E
	a           matrix[TA]
	b           matrix[TB]
	c           []E
	ldc         int
	parts       int
	splitM      bool
	blk         blocking
	// With shared set, the pieces pack the operand that is not split
	// together, each a share of every block, into one of two buffers
	// that they all then read (see sharedRows and sharedCols).
	shared bool
	bar    barrier
	packed [2][]E
}

// blocking holds the cache block sizes of one product. A piece of C with
// at most thin rows is computed by serialThin with ncThin-column blocks of
// B (thin = 0 disables it).
type blocking struct{ kc, mc, nc, thin, ncThin int }

// testBlocking, when set, overrides the block sizes (for benchmarks).
var testBlocking *blocking

func chooseBlocking[E Float](mk microKernel[E], tA bool) blocking {
	if testBlocking != nil {
		return *testBlocking
	}
	kc, mc, ncThin := kcBlock, mcTarget, ncThinTarget
	if isF32[E]() == 1 {
		kc, mc, ncThin = kcBlock32, mcTarget32, ncThinTarget32
		if tA {
			mc = mcTransTarget32
		}
	}
	return blocking{
		kc:     kc,
		mc:     max(mk.mr, mc/mk.mr*mk.mr),
		nc:     max(mk.nr, ncTarget/mk.nr*mk.nr),
		thin:   thinRows,
		ncThin: max(mk.nr, ncThin/mk.nr*mk.nr),
	}
}

// plan chooses how many pieces C is cut into and along which side. The
// operand that is not split is needed by every piece, so the rows of C are
// split when op(B) (k×n) is the smaller operand, the columns otherwise;
// an upper-triangle product always splits its rows.
// The pieces pack the unsplit operand together (shared) when they cut C
// into row blocks of more than blk.thin rows of a C of more than blk.thin
// columns (op(B) shared, block by block) or into column blocks of a C of
// at most blk.thin rows (op(A) shared); otherwise each piece packs what it
// needs of it itself. A narrow op(B) (a sketch's Ω or a basis Q: n ≤
// thin) is not shared: packing all of it costs each piece k·n copies
// against its own rows·n·k multiply–adds, less than the barrier a shared
// block costs every piece. On the 2-core Zen 5 (GOMAXPROCS=2, three
// rounds each, docs/gemm.md) Y = Xᵀ·Ω of a 4096×1024 X at ℓ = 64 took
// 1.79–2.05 ms unshared against 2.12–2.41 shared, and AᵀQ of 8192×4096 at
// ℓ = 128 21.6–21.9 against 22.6–23.4; the others within their noise.
func (g *call[TA, TB, E]) plan() {
	g.parts = 1
	if float64(g.m)*float64(g.n)*float64(g.k) < smallWork {
		return
	}
	p := min(runtime.GOMAXPROCS(0), maxParts)
	mt := (g.m + g.mk.mr - 1) / g.mk.mr // tiles along each side
	nt := (g.n + g.mk.nr - 1) / g.mk.nr
	g.splitM = g.n <= g.m
	if g.upper {
		g.splitM = true // rows of equal triangle area (chunkUpper)
	} else if g.splitM && mt < p && nt > mt {
		g.splitM = false
	} else if !g.splitM && nt < p && mt > nt {
		g.splitM = true
	}
	if g.splitM {
		g.parts = max(1, min(p, mt))
		g.shared = g.parts > 1 && mt/g.parts*g.mk.mr > g.blk.thin && g.n > g.blk.thin
	} else {
		g.parts = max(1, min(p, nt))
		g.shared = g.parts > 1 && g.m <= g.blk.thin
	}
	g.shared = g.shared && !testNoShare
}

// testNoShare, when set, makes every piece pack its own operands (for
// benchmarks).
var testNoShare bool

// prepareShared sizes the two shared packing buffers for the largest
// block, before the pieces start.
func (g *call[TA, TB, E]) prepareShared() {
	mk, kc := g.mk, min(g.blk.kc, g.k)
	n := (g.m + mk.mr - 1) / mk.mr * mk.mr * kc // all rows of op(A)
	if g.splitM {
		n = (min(g.blk.nc, g.n) + mk.step - 1) / mk.step * mk.step * kc // a kc×nc block of op(B)
	}
	for i := range g.packed {
		g.packed[i] = grow(&g.packed[i], n)
	}
	g.bar.init(g.parts)
}

// chunk returns the i-th of parts contiguous ranges splitting [0, n), each
// a multiple of unit long except the last.
func chunk(n, parts, i, unit int) (lo, hi int) {
	units := (n + unit - 1) / unit
	return min(n, units*i/parts*unit), min(n, units*(i+1)/parts*unit)
}

// chunkUpper is chunk for the rows of the upper triangle of an n×n C:
// the rows [0, r) hold the fraction r·(2n − r)/n² of its area, so the
// i-th of parts ranges ends at r = n·(1 − √(1 − (i+1)/parts)), rounded to
// a multiple of unit.
func chunkUpper(n, parts, i, unit int) (lo, hi int) {
	end := func(i int) int {
		if i >= parts {
			return n
		}
		r := float64(n) * (1 - math.Sqrt(1-float64(i)/float64(parts)))
		return min(n, int(math.Round(r/float64(unit)))*unit)
	}
	return end(i), end(i + 1)
}

func (g *call[TA, TB, E]) runPart(i int) {
	i0, i1, j0, j1 := 0, g.m, 0, g.n
	if g.parts > 1 {
		switch {
		case g.upper:
			i0, i1 = chunkUpper(g.m, g.parts, i, g.mk.mr)
		case g.splitM:
			i0, i1 = chunk(g.m, g.parts, i, g.mk.mr)
		default:
			j0, j1 = chunk(g.n, g.parts, i, g.mk.nr)
		}
	}
	switch {
	case g.shared:
		// Every piece takes part in every block's packing and barrier.
		buf := getBuffers[E]()
		if g.splitM {
			g.sharedRows(buf, i, i0, i1)
		} else {
			g.sharedCols(buf, i, j0, j1)
		}
		bufPools[isF32[E]()].Put(buf)
	case i0 < i1 && j0 < j1:
		buf := getBuffers[E]()
		serial(g.mk, g.blk, buf, g.upper, g.a, g.b, g.k, g.alpha, g.beta, g.c, g.ldc, i0, i1, j0, j1)
		bufPools[isF32[E]()].Put(buf)
	}
}

// claimParts runs the pieces of a call without shared packing that no
// goroutine has taken yet, until none is left.
func (g *call[TA, TB, E]) claimParts() {
	for i := int(g.next.Add(1) - 1); i < g.parts; i = int(g.next.Add(1) - 1) {
		g.runPart(i)
	}
}

// help is a worker's share of the call: piece part of a call with shared
// packing (each piece must run on its own goroutine, since the pieces meet
// at barriers), and otherwise any pieces still unclaimed.
func (g *call[TA, TB, E]) help(part int) {
	if g.shared {
		g.runPart(part)
	} else {
		g.claimParts()
	}
	g.wg.Done()
}

// sharedRows is serial for piece part, rows [i0, i1) of C, when the pieces
// share op(B): piece part packs its share of the panels of each kc×nc
// block of op(B) into g.packed[t%2] (t counts the blocks), and all of them
// wait at the barrier before computing their rows from the whole block.
// A piece reaches block t+2, which overwrites the buffer of block t, only
// after the barrier of block t+1, which every piece passes after it has
// finished block t; so one barrier per block suffices. The arithmetic is
// serial's, so the result is the same bit for bit.
func (g *call[TA, TB, E]) sharedRows(buf *buffers[E], part, i0, i1 int) {
	mk, blk := g.mk, g.blk
	mr := mk.mr
	tile := buf.tileFor(mr * mk.nr)
	t := 0
	for jc := 0; jc < g.n; jc += blk.nc {
		nc := min(blk.nc, g.n-jc)
		ncPad := (nc + mk.step - 1) / mk.step * mk.step
		for pc := 0; pc < g.k; pc += blk.kc {
			kc := min(blk.kc, g.k-pc)
			bp := g.packed[t%2][:ncPad*kc]
			t++
			// Panels start nr columns apart up to the tail, so a share cut
			// at multiples of nr, moved to the start of the tail where it
			// would cut it, is whole panels laid out as in the whole block.
			p0, p1 := chunk(nc, g.parts, part, mk.nr)
			if p0, p1 = mk.panelStart(nc, p0), mk.panelStart(nc, p1); p0 < p1 {
				packB(bp[p0*kc:], g.b, pc, kc, jc+p0, p1-p0, &mk)
			}
			g.bar.wait()
			bt, useBeta := g.beta, g.beta != 0
			if pc > 0 {
				bt, useBeta = 1, true
			}
			for ic := i0; ic < i1 && !(g.upper && ic >= jc+nc); ic += blk.mc {
				mc := min(blk.mc, i1-ic)
				ap := buf.aFor((mc + mr - 1) / mr * mr * kc)
				packA(ap, g.a, ic, mc, pc, kc, mr)
				macro(mk, kc, ap, bp, g.c, g.ldc, ic, mc, jc, nc, g.alpha, bt, useBeta, g.upper, tile, inPlace[E]{})
			}
		}
	}
}

// sharedCols is serialThin for piece part, columns [j0, j1) of a C of at
// most blk.thin rows, when the pieces share op(A): for each kc block,
// piece part packs its share of the mr-row panels of all of op(A) into
// g.packed[t%2], and after the barrier computes its columns from them, as
// in sharedRows.
func (g *call[TA, TB, E]) sharedCols(buf *buffers[E], part, j0, j1 int) {
	mk, blk := g.mk, g.blk
	mr := mk.mr
	tile := buf.tileFor(mr * mk.nr)
	mPad := (g.m + mr - 1) / mr * mr
	t := 0
	for pc := 0; pc < g.k; pc += blk.kc {
		kc := min(blk.kc, g.k-pc)
		ap := g.packed[t%2][:mPad*kc]
		t++
		if r0, r1 := chunk(g.m, g.parts, part, mr); r0 < r1 {
			packA(ap[r0*kc:], g.a, r0, r1-r0, pc, kc, mr)
		}
		g.bar.wait()
		bt, useBeta := g.beta, g.beta != 0
		if pc > 0 {
			bt, useBeta = 1, true
		}
		for jc := j0; jc < j1; jc += blk.ncThin {
			nc := min(blk.ncThin, j1-jc)
			ncPad := (nc + mk.step - 1) / mk.step * mk.step
			bp := buf.bFor(ncPad * kc)
			packB(bp, g.b, pc, kc, jc, nc, &mk)
			macro(mk, kc, ap, bp, g.c, g.ldc, 0, g.m, jc, nc, g.alpha, bt, useBeta, g.upper, tile, inPlace[E]{})
		}
	}
}

// barrier holds n goroutines until all of them have called wait; it can
// be used again at once.
type barrier struct {
	mu       sync.Mutex
	cond     sync.Cond
	n, count int
	gen      uint64
}

func (b *barrier) init(n int) {
	b.n, b.count = n, 0
	b.cond.L = &b.mu
}

func (b *barrier) wait() {
	b.mu.Lock()
	gen := b.gen
	b.count++
	if b.count == b.n {
		b.count = 0
		b.gen++
		b.cond.Broadcast()
	} else {
		for gen == b.gen {
			b.cond.Wait()
		}
	}
	b.mu.Unlock()
}

// serial computes rows [i0, i1) and columns [j0, j1) of C on the calling
// goroutine: the five loops around the micro-kernel.
func serial[TA, TB, E Float](mk microKernel[E], blk blocking, buf *buffers[E], upper bool, a matrix[TA], b matrix[TB], k int, alpha, beta E, c []E, ldc, i0, i1, j0, j1 int) {
	mr, nr := mk.mr, mk.nr
	mcb, ncb, kcb := blk.mc, blk.nc, blk.kc
	tile := buf.tileFor(mr * nr)
	if i1-i0 <= blk.thin {
		serialThin(mk, blk, buf, upper, a, b, k, alpha, beta, c, ldc, i0, i1, j0, j1)
		return
	}
	ad, direct := directA(mk, a)
	for jc := j0; jc < j1; jc += ncb {
		nc := min(ncb, j1-jc)
		ncPad := (nc + mk.step - 1) / mk.step * mk.step
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			bp := buf.bFor(ncPad * kc)
			packB(bp, b, pc, kc, jc, nc, &mk)
			// The first pass over k applies beta; later ones accumulate.
			bt, useBeta := beta, beta != 0
			if pc > 0 {
				bt, useBeta = 1, true
			}
			for ic := i0; ic < i1 && !(upper && ic >= jc+nc); ic += mcb {
				mc := min(mcb, i1-ic)
				ap := buf.aFor((mc + mr - 1) / mr * mr * kc)
				var in inPlace[E]
				if direct {
					// The full panels are read in place, a last partial
					// one is packed where macro looks for it.
					in = inPlace[E]{data: ad, ld: a.ld, pc: pc}
					if full := mc / mr * mr; full < mc {
						packA(ap[full*kc:], a, ic+full, mc-full, pc, kc, mr)
					}
				} else {
					packA(ap, a, ic, mc, pc, kc, mr)
				}
				macro(mk, kc, ap, bp, c, ldc, ic, mc, jc, nc, alpha, bt, useBeta, upper, tile, in)
			}
		}
	}
}

// directA returns a's elements if mk's kernels can read op(A) in place:
// a row-major (not transposed) A of the kernels' own element type, and
// kernels with direct variants (the AVX-512 tiles). serial then
// skips packing A: the kernel reads its 8 rows as 8 streams, each a new
// cache line every 16 steps, which the hardware and the kernel's own
// prefetches keep ahead of. Packing read and wrote all of A once per
// product; for 8192×128·4096 (A read once, each element used by 128
// columns) that was 5–6 % of the product in float32 and 4–5 % in float64
// (BenchmarkSgemm, BenchmarkDgemm; docs/gemm.md, "Thirty-fifth session").
// A transposed A stays packed: a panel of its rows is a new cache line
// every step (docs/gemm.md, "Thirtieth session"). The pieces that share
// their packing (sharedRows, sharedCols) and serialThin pack as before.
func directA[T, E Float](mk microKernel[E], a matrix[T]) ([]E, bool) {
	if mk.direct == nil || a.trans || !useDirect {
		return nil, false
	}
	ad, ok := any(a.data).([]E)
	return ad, ok
}

// useDirect enables the direct kernels (for benchmarks against packing).
var useDirect = true

// serialThin is serial for a piece of C with few rows: all of them are
// packed once per kc block of A, and B is packed a few panels at a time
// just before they are used, so that the packed B stays in L2 instead of
// making a round trip through L3.
func serialThin[TA, TB, E Float](mk microKernel[E], blk blocking, buf *buffers[E], upper bool, a matrix[TA], b matrix[TB], k int, alpha, beta E, c []E, ldc, i0, i1, j0, j1 int) {
	mr := mk.mr
	tile := buf.tileFor(mr * mk.nr)
	mc := i1 - i0
	for pc := 0; pc < k; pc += blk.kc {
		kc := min(blk.kc, k-pc)
		ap := buf.aFor((mc + mr - 1) / mr * mr * kc)
		packA(ap, a, i0, mc, pc, kc, mr)
		bt, useBeta := beta, beta != 0
		if pc > 0 {
			bt, useBeta = 1, true
		}
		for jc := j0; jc < j1; jc += blk.ncThin {
			nc := min(blk.ncThin, j1-jc)
			if upper && i0 >= jc+nc {
				continue // every tile below the diagonal
			}
			ncPad := (nc + mk.step - 1) / mk.step * mk.step
			bp := buf.bFor(ncPad * kc)
			packB(bp, b, pc, kc, jc, nc, &mk)
			macro(mk, kc, ap, bp, c, ldc, i0, mc, jc, nc, alpha, bt, useBeta, upper, tile, inPlace[E]{})
		}
	}
}

// inPlace is the row-major A a macro block reads in place (see directA):
// its elements, leading dimension and the block's first column pc. The
// zero value means that A is packed.
type inPlace[E Float] struct {
	data   []E
	ld, pc int
}

// macro multiplies a packed mc×kc block of A by a packed kc×nc block of B
// into C[ic:ic+mc, jc:jc+nc], one mr×nr tile per micro-kernel call; with
// upper set it skips the tiles wholly below the diagonal of C. Tiles cut
// by the edge of C go through tile and are merged here. With in set, the
// full panels of mr rows are read from A in place by mk's direct kernels
// (rows [ic, ic+mc) and columns [pc, pc+kc) of in.data), and only a last,
// partial panel is taken from ap.
func macro[E Float](mk microKernel[E], kc int, ap, bp, c []E, ldc, ic, mc, jc, nc int, alpha, beta E, useBeta, upper bool, tile []E, in inPlace[E]) {
	mr, nr := mk.mr, mk.nr
	for jr := 0; jr < nc; {
		w, fn := mk.panel(nc, jr)
		cols := min(w, nc-jr)
		bpan := bp[jr*kc : jr*kc+w*kc]
		for ir := 0; ir < mc && !(upper && ic+ir >= jc+jr+cols); ir += mr {
			rows := min(mr, mc-ir)
			off := (ic+ir)*ldc + jc + jr
			// A whole tile goes straight into C, an edge tile through tile.
			whole := rows == mr && cols == w
			dst, ld, bt, ub := c[off:], ldc, beta, useBeta
			if !whole {
				dst, ld, bt, ub = tile, nr, 0, false
			}
			if in.data != nil && rows == mr {
				mk.direct[w/mk.step-1](kc, in.data[(ic+ir)*in.ld+in.pc:], in.ld, bpan, dst, ld, alpha, bt, ub)
			} else {
				fn(kc, ap[ir*kc:(ir+mr)*kc], bpan, dst, ld, alpha, bt, ub)
			}
			if !whole {
				mergeTile(c[off:], ldc, tile, nr, rows, cols, beta, useBeta)
			}
		}
		jr += w
	}
}

// mergeTile writes the rows×cols corner of the edge tile (row stride nr)
// into C (row stride ldc): C = tile, or tile + beta·C with useBeta.
func mergeTile[E Float](c []E, ldc int, tile []E, nr, rows, cols int, beta E, useBeta bool) {
	for i := 0; i < rows; i++ {
		crow := c[i*ldc : i*ldc+cols]
		trow := tile[i*nr : i*nr+cols]
		if !useBeta {
			copy(crow, trow)
			continue
		}
		for j := range crow {
			crow[j] = trow[j] + beta*crow[j]
		}
	}
}

// buffers holds one goroutine's packing buffers of elements E; they grow
// to at most mc·kc and kc·nc elements of the blocking in use (plus
// rounding to the micro-tile; 4–8 MiB of B), whatever the size of the
// product. A call's shared blocks (call.packed) are two of kc·nc.
type buffers[E Float] struct{ a, b, tile []E }

// bufPools holds the float64 buffers at 0 and the float32 ones at 1.
var bufPools [2]sync.Pool

func getBuffers[E Float]() *buffers[E] {
	if v := bufPools[isF32[E]()].Get(); v != nil {
		return v.(*buffers[E])
	}
	return new(buffers[E])
}

func grow[E Float](s *[]E, n int) []E {
	if cap(*s) < n {
		*s = make([]E, n)
	}
	return (*s)[:n]
}

func (bf *buffers[E]) aFor(n int) []E    { return grow(&bf.a, n) }
func (bf *buffers[E]) bFor(n int) []E    { return grow(&bf.b, n) }
func (bf *buffers[E]) tileFor(n int) []E { return grow(&bf.tile, n) }

// The worker pool: goroutines started on first need, as many as the
// largest number of pieces queued or running at once (outstanding), that
// live for the process. Since a piece may wait at its call's barrier for
// the call's other pieces, there must be a worker for every piece that is
// queued: one busy with another call must not hold it back.
type runner interface{ help(part int) }

type workItem struct {
	r    runner
	part int
}

var (
	work        = make(chan workItem, maxParts)
	workersMu   sync.Mutex
	nWorkers    atomic.Int64
	outstanding atomic.Int64 // pieces queued or running on workers
)

func ensureWorkers(n int) {
	if int(nWorkers.Load()) >= n {
		return
	}
	workersMu.Lock()
	defer workersMu.Unlock()
	for int(nWorkers.Load()) < n {
		go func() {
			for w := range work {
				w.r.help(w.part)
				outstanding.Add(-1)
			}
		}()
		nWorkers.Add(1)
	}
}

// Pools of call values, one per triple of element types (A, B, product).
var callPools [8]sync.Pool

func isF32[T Float]() int {
	var z T
	if _, ok := any(z).(float32); ok {
		return 1
	}
	return 0
}

func callPool[TA, TB, E Float]() *sync.Pool {
	return &callPools[isF32[TA]()+2*isF32[TB]()+4*isF32[E]()]
}

func getCall[TA, TB, E Float]() *call[TA, TB, E] {
	if v := callPool[TA, TB, E]().Get(); v != nil {
		return v.(*call[TA, TB, E])
	}
	return new(call[TA, TB, E])
}

func putCall[TA, TB, E Float](g *call[TA, TB, E]) {
	// The shared packing buffers stay with the call for the next product.
	g.a.data, g.b.data, g.c = nil, nil, nil
	callPool[TA, TB, E]().Put(g)
}

// General computes c = alpha·op(a)·op(b) + beta·c for row-major float64
// matrices held as blas64.General values, op(x) = xᵀ when the flag is set:
// Dgemm with the dimensions taken from the operands. c must not alias a or
// b; with beta = 0, c is not read. It panics if the shapes do not match.
func General(tA, tB bool, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	ar, k := a.Rows, a.Cols
	if tA {
		ar, k = k, ar
	}
	br, bc := b.Rows, b.Cols
	if tB {
		br, bc = bc, br
	}
	if ar != c.Rows || br != k || bc != c.Cols {
		panic(fmt.Sprintf("gemm: shape mismatch: op(a) %d×%d, op(b) %d×%d, c %d×%d", ar, k, br, bc, c.Rows, c.Cols))
	}
	Dgemm(tA, tB, c.Rows, c.Cols, k, alpha, a.Data, a.Stride, b.Data, b.Stride, beta, c.Data, c.Stride)
}
