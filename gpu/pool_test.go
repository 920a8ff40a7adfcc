package gpu

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// driverGranule is the granularity of cuMemAlloc as cuMemGetInfo sees it:
// allocations are carved from 2 MiB pages.
const driverGranule = 2 << 20

// TestPoolMatchesMemInfo checks the pool's accounting against the driver:
// what the pool says it reserves is what cuMemGetInfo says has gone, to
// the driver's page granularity per allocation; freed blocks stay cached
// (free memory unchanged) until TrimPool returns them.
func TestPoolMatchesMemInfo(t *testing.T) {
	b := open(t, nil)
	require.NoError(t, b.TrimPool())
	require.NoError(t, b.Synchronize())
	free0, _, err := b.MemInfo()
	require.NoError(t, err)
	st0 := b.MemStats()

	sizes := []int{64 << 20, 96 << 20, 200 << 20, 33 << 20}
	var ms []*Matrix
	for _, s := range sizes {
		m, err := b.NewMatrix(s/4, 1, Float32)
		require.NoError(t, err)
		ms = append(ms, m)
	}
	require.NoError(t, b.Synchronize())
	free1, _, err := b.MemInfo()
	require.NoError(t, err)
	st1 := b.MemStats()
	reserved := st1.Reserved - st0.Reserved
	used := int64(free0) - int64(free1)
	t.Logf("pool reserved %d MiB, cuMemGetInfo says %d MiB used", reserved>>20, used>>20)
	assert.InDelta(t, float64(used), float64(reserved), float64(len(sizes)*driverGranule), "cuMemGetInfo against the pool's Reserved")
	assert.Equal(t, st1.Live-st0.Live, reserved, "every reserved byte is live")
	assert.GreaterOrEqual(t, st1.Peak, st1.Live)
	assert.Equal(t, st0.Mallocs+int64(len(sizes)), st1.Mallocs)

	for _, m := range ms {
		b.Free(m)
	}
	require.NoError(t, b.Synchronize())
	st2 := b.MemStats()
	assert.Equal(t, st0.Live, st2.Live, "Live after Free")
	assert.Equal(t, reserved, st2.Cached-st0.Cached, "freed blocks are cached")
	free2, _, err := b.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, free1, free2, "cached blocks are not returned to the driver")

	// The same sizes again come from the cache: no cuMemAlloc.
	for _, s := range sizes {
		m, err := b.NewMatrix(s/4, 1, Float32)
		require.NoError(t, err)
		b.Free(m)
	}
	assert.Equal(t, st1.Mallocs, b.MemStats().Mallocs, "cuMemAlloc calls for cached sizes")

	require.NoError(t, b.TrimPool())
	free3, _, err := b.MemInfo()
	require.NoError(t, err)
	assert.InDelta(t, float64(free0), float64(free3), float64(driverGranule), "TrimPool returns the cache to the driver")
	assert.Equal(t, st0.Cached, int64(0))
	assert.Zero(t, b.MemStats().Cached)
}

func TestSizeClass(t *testing.T) {
	for _, n := range []int{1, 511, 512, 513, 1 << 20, 1<<20 + 1, 3 << 20, 100<<20 + 7, 1 << 33} {
		c := sizeClass(n)
		assert.GreaterOrEqual(t, c, n)
		// Waste: at most 511 bytes below 1 MiB, at most 1/8 above.
		if n <= 1<<20 {
			assert.Less(t, c-n, 512, "%d", n)
		} else {
			assert.LessOrEqual(t, float64(c-n), float64(n)/8, "%d", n)
		}
		assert.Equal(t, c, sizeClass(c), "a class size is its own class")
	}
}

// TestForkConcurrent runs decompositions on four sibling backends from
// four goroutines at once: each gives bit-for-bit the factors that the
// same call gives alone (cuBLAS and the package's kernels are
// deterministic for a given device; the streams only interleave them),
// and the shared pool's accounting returns to where it started.
func TestForkConcurrent(t *testing.T) {
	b := open(t, nil)
	const n, k = 4, 48
	var ins []*Matrix
	for i := range n {
		a, _ := activation(2048+256*i, 512, uint64(20+i))
		m, err := b.UploadDense32(testmat.To32(a), BFloat16)
		require.NoError(t, err)
		ins = append(ins, m)
	}
	qOf := func(be *Backend, a *Matrix, seed uint64) *mat.Dense {
		d := sampling.NewDecomposer(be)
		defer d.Close()
		var f lowrank.Factors
		require.NoError(t, d.QBTo(&f, a, k, &sampling.Options{Oversample: 8, Seed: seed}))
		var q mat.Dense
		require.NoError(t, be.Download(&q, f.Q))
		f.Free(be)
		return &q
	}
	want := make([]*mat.Dense, n)
	for i := range n {
		want[i] = qOf(b, ins[i], uint64(i))
	}
	require.NoError(t, b.Synchronize())
	live := b.MemStats().Live

	got := make([]*mat.Dense, n)
	var wg sync.WaitGroup
	for i := range n {
		f, err := b.Fork()
		require.NoError(t, err)
		assert.NotEqual(t, b.Stream(), f.Stream(), "a fork has its own stream")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			for range 3 {
				got[i] = qOf(f, ins[i], uint64(i))
			}
		}()
	}
	wg.Wait()
	for i := range n {
		assert.True(t, mat.Equal(want[i], got[i]), "fork %d: factors differ from the single-stream call", i)
	}
	assert.Equal(t, live, b.MemStats().Live, "pool Live after the forks closed")
	for _, m := range ins {
		b.Free(m)
	}
}

// TestEventOrdering checks that Record and Wait order one stream's work
// after another's: a fork reads a matrix that the primary is still
// filling (a large Normal fill queued just before), and must see the
// filled values, not the zeros the matrix held.
func TestEventOrdering(t *testing.T) {
	b := open(t, nil)
	f, err := b.Fork()
	require.NoError(t, err)
	defer f.Close()
	const r, c = 8192, 8192 // 256 MiB: the fill takes long enough to be overtaken
	x, err := b.NewMatrix(r, c, Float32)
	require.NoError(t, err)
	defer b.Free(x)
	require.NoError(t, b.Synchronize())
	for i := range 3 {
		require.NoError(t, b.Normal(x, uint64(i+1)))
		ev, err := b.Record()
		require.NoError(t, err)
		require.NoError(t, f.Wait(ev))
		got, _, err := f.SquaredNorm(x, 1)
		require.NoError(t, err)
		require.NoError(t, ev.Close())
		require.NoError(t, b.Synchronize())
		want, _, err := b.SquaredNorm(x, 1)
		require.NoError(t, err)
		assert.Equal(t, want, got, "round %d: the fork read x before the fill finished", i)
	}
	// Timed events: a 256 MiB fill takes at least its bytes at the memory
	// bandwidth (≥ 50 µs at 5 TB/s) and well under a second.
	t0, err := b.RecordTimed()
	require.NoError(t, err)
	require.NoError(t, b.Normal(x, 9))
	t1, err := b.RecordTimed()
	require.NoError(t, err)
	ms, err := t1.Elapsed(t0)
	require.NoError(t, err)
	t.Logf("Normal fill of %d MiB: %.3f ms", r*c*4>>20, ms)
	assert.Greater(t, ms, float64(r*c*4)/5e12*1e3)
	assert.Less(t, ms, 1000.0)
	require.NoError(t, t0.Close())
	require.NoError(t, t1.Close())
	e, err := b.Record()
	require.NoError(t, err)
	require.NoError(t, e.Sync())
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "a second Close is a no-op")
}

// TestCallerStream gives the backend a stream it does not own: work is
// queued on it, and Close leaves it alive for its owner.
func TestCallerStream(t *testing.T) {
	owner := open(t, nil)
	b, err := Open(0, &Options{Stream: owner.Stream()})
	require.NoError(t, err)
	assert.Equal(t, owner.Stream(), b.Stream())
	m, err := b.NewMatrix(64, 64, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Normal(m, 1))
	// The owner reads the memory (wrapped: a matrix belongs to the device
	// it was opened on) on the same stream: ordered without events.
	sq, _, err := owner.SquaredNorm(ColMajor(m.Ptr(), 64, 64, 64, Float32), 1)
	require.NoError(t, err)
	assert.Greater(t, sq, 0.0)
	b.Free(m)
	require.NoError(t, b.Close())
	require.NoError(t, owner.Synchronize(), "the owner's stream outlives the backend")
}

// TestMulDestinations checks products into bf16 and row-major
// destinations against float64 on the host. Tolerances: float32
// accumulation over the inner dimension n gives ≲ n·u32 relative error in
// the worst case; a bf16 destination adds its rounding, u = 2⁻⁸
// (lowrank's bound for bf16), and bf16 operands 2u.
func TestMulDestinations(t *testing.T) {
	b := open(t, nil)
	const m, n, p = 300, 200, 100
	a := testmat.Gaussian(m, n, 1)
	c := testmat.Gaussian(n, p, 2)
	var want mat.Dense
	want.Mul(a, c)
	da, err := b.NewMatrix(m, n, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Upload(da, a))
	dc, err := b.NewMatrix(n, p, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Upload(dc, c))
	ubf := lowrank.BFloat16.UnitRoundoff()
	for _, tc := range []struct {
		name string
		dt   DType
		row  bool
		tol  float64
	}{
		{"float32 column-major", Float32, false, n * u32},
		{"float32 row-major", Float32, true, n * u32},
		{"bf16 column-major", BFloat16, false, 3*ubf + n*u32},
		{"bf16 row-major", BFloat16, true, 3*ubf + n*u32},
	} {
		var dst *Matrix
		if tc.row {
			st, err := b.NewMatrix(p, m, tc.dt)
			require.NoError(t, err)
			dst = st.T()
			defer b.Free(st)
		} else {
			dst, err = b.NewMatrix(m, p, tc.dt)
			require.NoError(t, err)
			defer b.Free(dst)
		}
		require.NoError(t, b.Mul(dst, 1, da, false, dc, false, 0), tc.name)
		var got mat.Dense
		require.NoError(t, b.Download(&got, dst))
		var d mat.Dense
		d.Sub(&got, &want)
		// Elementwise relative to the row-column norm product, the scale of
		// each dot product's rounding.
		assert.LessOrEqual(t, mat.Norm(&d, 2)/(mat.Norm(a, 2)*mat.Norm(c, 2)), tc.tol, tc.name)
	}
	// An aliased product is refused.
	assert.PanicsWithError(t, lowrank.ErrAlias.Error(), func() { _ = b.Mul(da, 1, da, false, b.Slice(da, 0, n, 0, n), false, 0) })
}

// TestForkScratch: a backend and its Forks grow a scratch slot to the
// largest size any of them has asked, at their next use of it, and then
// allocate no more; a backend opened on its own is not of the family.
func TestForkScratch(t *testing.T) {
	b := open(t, nil)
	f, err := b.Fork()
	require.NoError(t, err)
	defer func() { assert.NoError(t, f.Close()) }()
	other := open(t, nil)
	grow := func(x *Backend, bytes int) int {
		require.NoError(t, x.enter())
		defer x.leave()
		_, err := x.buf(&x.sc.qrT, bytes)
		require.NoError(t, err)
		return x.sc.qrT.bytes
	}
	const small, large = 4 << 10, 4 << 20
	assert.Equal(t, small, grow(b, small))
	assert.Equal(t, large, grow(f, large), "the fork grows to what it asks")
	assert.Equal(t, large, grow(b, small), "the parent grows to the family's largest size at its next use")
	m0 := b.MemStats().Mallocs
	for _, x := range []*Backend{b, f} {
		for _, n := range []int{small, large / 2, large} {
			assert.Equal(t, large, grow(x, n))
		}
	}
	assert.Equal(t, m0, b.MemStats().Mallocs, "no allocation once the family is grown")
	assert.Equal(t, small, grow(other, small), "a separately opened backend has its own sizes")
	assert.Equal(t, scratchSlots, len(b.sc.bufs()), "every scratch field is a listed slot")
}

// TestForkPriority: SetForkPriority gives later forks (and their forks)
// streams of that priority, clamped by the driver to the device's range;
// the parent's stream keeps the default; a fork of high priority works
// (a copy on its stream arrives).
func TestForkPriority(t *testing.T) {
	b := open(t, nil)
	least, greatest, err := b.StreamPriorities()
	require.NoError(t, err)
	t.Logf("stream priorities: least %d, greatest %d", least, greatest)
	require.LessOrEqual(t, greatest, least)
	p0, err := b.StreamPriority()
	require.NoError(t, err)
	assert.Equal(t, least, p0, "an opened backend's stream has the default priority")
	for _, tc := range []struct{ set, want int }{{greatest, greatest}, {greatest - 10, greatest}, {0, least}} {
		b.SetForkPriority(tc.set)
		f, err := b.Fork()
		require.NoError(t, err)
		p, err := f.StreamPriority()
		require.NoError(t, err)
		assert.Equal(t, tc.want, p, "fork at priority %d", tc.set)
		g, err := f.Fork()
		require.NoError(t, err)
		p, err = g.StreamPriority()
		require.NoError(t, err)
		assert.Equal(t, tc.want, p, "a fork's fork inherits the priority")
		src := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 6})
		x, err := g.NewMatrix(3, 2, Float32)
		require.NoError(t, err)
		require.NoError(t, g.Upload(x, src))
		var back mat.Dense
		require.NoError(t, g.Download(&back, x))
		assert.True(t, mat.Equal(src, &back))
		g.Free(x)
		require.NoError(t, g.Close())
		require.NoError(t, f.Close())
	}
}

// TestNewMatrixUninit: NewMatrixUninit takes the same block from the pool
// as NewMatrix (Live grows by the size class; the block a freed matrix
// left is reused without cuMemAlloc) and skips only the zeroing: the
// reused block still holds its previous user's values, and a Copy into it
// writes every element. Empty shapes fail as NewMatrix's do.
func TestNewMatrixUninit(t *testing.T) {
	b := open(t, nil)
	const r, c = 300, 7
	src := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			src.Set(i, j, float64(1+i*c+j))
		}
	}
	first, err := b.NewMatrixUninit(r, c, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Upload(first, src))
	require.NoError(t, b.Synchronize())
	st := b.MemStats()
	b.Free(first)
	again, err := b.NewMatrixUninit(r, c, Float32)
	require.NoError(t, err)
	st2 := b.MemStats()
	assert.Equal(t, st.Live, st2.Live, "the freed block's size class again")
	assert.Equal(t, st.Mallocs, st2.Mallocs, "the freed block reused")
	var got mat.Dense
	require.NoError(t, b.Download(&got, again))
	assert.True(t, mat.Equal(src, &got), "not zeroed: the reused block holds the previous values")
	zero, err := b.NewMatrix(r, c, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Copy(again, zero))
	require.NoError(t, b.Download(&got, again))
	assert.Zero(t, mat.Norm(&got, 1), "Copy writes every element")
	b.Free(again)
	b.Free(zero)
	_, err = b.NewMatrixUninit(0, c, BFloat16)
	assert.ErrorIs(t, err, lowrank.ErrEmpty)
}
