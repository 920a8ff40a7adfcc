package activation

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// heapObjects returns the bytes of live heap objects after a full
// collection (two cycles, so that sync.Pool victims are dropped too).
func heapObjects() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHeapHoldsOnlyFactors is the memory claim measured by the allocator:
// 16 fresh 4096×256 float32 activations (64 MiB) compressed at rank 32 in
// bf16 and then dropped by the caller leave the Go heap holding the
// factors (Stats' live bytes) and nothing of the inputs. The margin: at
// most 2× the factor bytes (the bf16 slices round up to the allocator's
// size classes, ≤ 1/8 for large objects) plus 1 MiB for the handles and
// the runtime's own structures; an input pinned by the compressor would be
// 4 MiB each.
func TestHeapHoldsOnlyFactors(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap: not under -short or -race (the race detector's shadow memory inflates it)")
	}
	const n, L, d, k = 16, 4096, 256, 32
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			c, err := New(Config{Rank: Fixed(k), Workers: workers, Seed: 1})
			require.NoError(t, err)
			defer c.Close()
			// Warm-up: the decomposers' scratch is allocated once and kept.
			warm := lowrank.NewDense32(L, d, nil)
			fill(warm, 0)
			s, err := c.Compress("warm", warm)
			require.NoError(t, err)
			require.NoError(t, s.Wait())
			require.NoError(t, s.Release())
			warm = nil
			base := heapObjects()
			saved := make([]*Saved, n)
			for i := range saved {
				x := lowrank.NewDense32(L, d, nil) // 4 MiB, dropped below
				fill(x, uint64(i+1))
				saved[i], err = c.Compress(fmt.Sprintf("layer%d.in", i), x)
				require.NoError(t, err)
			}
			require.NoError(t, c.Join())
			heap := heapObjects()
			live := c.Stats().Total.Live
			require.Equal(t, n*k*(L+d)*2, live)
			grown := int64(heap) - int64(base)
			t.Logf("heap objects grew by %.2f MiB for %.2f MiB of factors (inputs: %.0f MiB)",
				float64(grown)/(1<<20), float64(live)/(1<<20), float64(n*L*d*4)/(1<<20))
			assert.LessOrEqual(t, grown, int64(2*live+1<<20), "the heap holds more than the factors")
			assert.GreaterOrEqual(t, grown, int64(live), "the factors themselves are on the heap")
			for _, s := range saved {
				require.NoError(t, s.Release())
			}
			assert.Zero(t, c.Stats().Total.Live)
		})
	}
}

// fill writes a smooth, numerically low-rank activation into x.
func fill(x *lowrank.Dense32, seed uint64) {
	for i := 0; i < x.Rows; i++ {
		for j := 0; j < x.Cols; j++ {
			x.Data[i*x.Stride+j] = float32(math.Sin(float64(i*(j+1))*0.001 + float64(seed)))
		}
	}
}

// TestConcurrentUse runs Compress, CompressKey, Join, Stats and Close from
// many goroutines at once (run with -race): no crash, no hang, every
// compression either succeeds or reports ErrClosed.
func TestConcurrentUse(t *testing.T) {
	for _, workers := range []int{0, 3} {
		c, err := New(Config{Rank: Fixed(4), Workers: workers, Seed: 2})
		require.NoError(t, err)
		xs := make([]*mat.Dense, 8)
		for i := range xs {
			xs[i] = testmat.Incoherent(96, 24, testmat.ActivationLike(24), uint64(i))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var handles []*Saved
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 6 {
					var s *Saved
					var err error
					if i%2 == 0 {
						s, err = c.Compress(fmt.Sprintf("g%d.%d", g, i), xs[(g+i)%len(xs)])
					} else {
						s, err = c.CompressKey("shared", Key{ID: uint64(i)}, xs[i])
					}
					if err != nil {
						assert.ErrorIs(t, err, ErrClosed)
						continue
					}
					mu.Lock()
					handles = append(handles, s)
					mu.Unlock()
					_ = c.Stats()
				}
			}()
		}
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, c.Join())
				_ = c.Stats()
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close()
		}()
		wg.Wait()
		c.Close() // a second Close only waits
		_, err = c.Compress("late", xs[0])
		assert.ErrorIs(t, err, ErrClosed)
		for _, s := range handles {
			require.NoError(t, s.Wait())
			var rec mat.Dense
			assert.NoError(t, s.Reconstruct(&rec), "handles outlive Close")
			require.NoError(t, s.Release())
		}
		assert.Zero(t, c.Stats().Total.Live)
	}
}

// TestFailureIsContained: a compression that fails or panics (a poisoned
// input of each kind) becomes that handle's error and Join's, in either
// mode, and the compressor keeps working: the next Compress and Close do
// not hang.
func TestFailureIsContained(t *testing.T) {
	nan := testmat.Incoherent(40, 10, testmat.Flat(10), 1)
	nan.Set(3, 4, math.NaN())
	short := &lowrank.Dense32{Rows: 40, Cols: 10, Stride: 10, Data: make([]float32, 100)}
	type bogus struct{ r, c int } // a matrix no backend can read
	poisons := map[string]lowrank.Matrix{
		"NaN":           nan,
		"short Dense32": short,
		"foreign type":  bogusMatrix{bogus{40, 10}},
	}
	good := testmat.Incoherent(40, 10, testmat.ActivationLike(10), 2)
	for _, workers := range []int{0, 2} {
		for name, x := range poisons {
			c, err := New(Config{Rank: Fixed(3), Workers: workers})
			require.NoError(t, err)
			s, err := c.Compress("poisoned", x)
			if err == nil {
				err = s.Wait()
			}
			require.Error(t, err, "%s workers=%d", name, workers)
			var le *LayerError
			require.True(t, errors.As(err, &le), "%s: %v", name, err)
			assert.Equal(t, "poisoned", le.Layer)
			if workers > 0 && s != nil {
				assert.Error(t, c.Join(), "%s: Join reports the asynchronous failure", name)
			}
			// Normal use afterwards.
			ok, err := c.Compress("next", good)
			require.NoError(t, err, name)
			require.NoError(t, ok.Wait())
			var rec mat.Dense
			require.NoError(t, ok.Reconstruct(&rec))
			require.NoError(t, ok.Release())
			assert.NoError(t, c.Join())
			c.Close()
			assert.Zero(t, c.Stats().Total.Live)
		}
	}
}

type bogusMatrix struct{ s struct{ r, c int } }

func (b bogusMatrix) Dims() (int, int) { return b.s.r, b.s.c }

// TestPanicRecovered: a panic inside the backend during a compression is
// recovered on the worker (ErrPanic), in synchronous and asynchronous
// mode.
func TestPanicRecovered(t *testing.T) {
	for _, workers := range []int{0, 1} {
		c, err := New(Config{Rank: Fixed(2), Workers: workers})
		require.NoError(t, err)
		s, err := c.Compress("bad", bogusMatrix{struct{ r, c int }{20, 8}})
		if err == nil {
			err = s.Wait()
		}
		assert.ErrorIs(t, err, ErrPanic, "workers=%d", workers)
		c.Close()
	}
}

func TestDefaults(t *testing.T) {
	c, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, lowrank.BFloat16, c.Config().Precision, "bf16 factors unless asked otherwise")
	x := testmat.Incoherent(200, 40, testmat.ActivationLike(40), 3)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.Equal(t, 10, s.Rank(), "Ratio(0.25) of d = 40")
	assert.Equal(t, 10*(200+40)*2, s.Bytes())
}

// TestToleranceMissStoresActivation: a tolerance that no rank up to the
// bound meets (a flat spectrum) stores the activation as it is, error 0,
// and Stats says so.
func TestToleranceMissStoresActivation(t *testing.T) {
	x := testmat.Incoherent(300, 64, testmat.Flat(64), 5)
	for _, m := range []Method{RowSampling, Gaussian, ExactSVD} {
		c, err := New(Config{Method: m, Rank: Tolerance(0.05, 0), Precision: lowrank.Float32})
		require.NoError(t, err)
		s, err := c.Compress("flat", x)
		require.NoError(t, err)
		assert.False(t, s.Compressed(), "%v", m)
		assert.Equal(t, 0.0, s.RelError(), "%v", m)
		assert.Equal(t, 4*300*64, s.Bytes(), "%v", m)
		st := c.Stats()
		assert.Equal(t, 1, st.Total.ToleranceMisses, "%v", m)
		assert.Equal(t, 1, st.Total.Stored, "%v", m)
	}
}

// TestStorageOverflow: factors beyond float32's (and bf16's) range are an
// error naming the layer, not ±Inf.
func TestStorageOverflow(t *testing.T) {
	x := testmat.Incoherent(100, 20, testmat.ActivationLike(20), 6)
	x.Scale(1e300, x)
	for _, p := range []lowrank.Precision{lowrank.BFloat16, lowrank.Float32} {
		for _, m := range []Method{RowSampling, Uncompressed} {
			c, err := New(Config{Method: m, Rank: Fixed(4), Precision: p})
			require.NoError(t, err)
			_, err = c.Compress("huge", x)
			require.Error(t, err)
			assert.ErrorIs(t, err, lowrank.ErrNotFinite, "%v %v", p, m)
			assert.Contains(t, err.Error(), `"huge"`)
		}
	}
	c, err := New(Config{Rank: Fixed(4), Precision: lowrank.Float64, MeasureError: true})
	require.NoError(t, err)
	s, err := c.Compress("huge", x)
	require.NoError(t, err, "float64 storage holds it")
	assert.Less(t, s.RelError(), 1.0)
}

// TestMalformedInput: a hand-built Dense32 with short Data, a bad stride or
// an overflowing size is rejected at Compress with ErrShape.
func TestMalformedInput(t *testing.T) {
	c, err := New(Config{Rank: Fixed(2)})
	require.NoError(t, err)
	for name, x := range map[string]*lowrank.Dense32{
		"short":    {Rows: 10, Cols: 4, Stride: 4, Data: make([]float32, 39)},
		"stride":   {Rows: 10, Cols: 4, Stride: 3, Data: make([]float32, 40)},
		"overflow": {Rows: math.MaxInt / 3, Cols: 4, Stride: 4, Data: make([]float32, 8)},
	} {
		_, err := c.Compress(name, x)
		assert.ErrorIs(t, err, lowrank.ErrShape, name)
	}
	_, err = c.Compress("nil", nil)
	assert.ErrorIs(t, err, lowrank.ErrEmpty)
}

// TestResidualNoDenseCopy: Reconstruct into a float32 destination and both
// weight gradients of a handle with int8 factors and a 4-bit residual
// allocate no copy of X, float32 or float64: what they allocate (measured
// by the runtime's TotalAlloc) is within factor-sized float64 scratch
// (P and R unpacked, 2·8·k·(L+d)) plus two blocks of rows of the residual
// (2·8·32 Ki) and 64 KiB of slack for the product's packing, under half of
// a float32 copy of X.
func TestResidualNoDenseCopy(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures allocation: not under -short or -race")
	}
	const L, d, k, o = 4096, 256, 16, 8
	x := lowrank.NewDense32(L, d, nil)
	fill(x, 3)
	c, err := New(Config{Rank: Fixed(k), FactorBits: 8, ResidualBits: 4, Seed: 1})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	g := lowrank.NewDense32(L, o, nil)
	fill(g, 4)
	rec := lowrank.NewDense32(L, d, nil)
	outIn, inOut := lowrank.NewDense32(o, d, nil), lowrank.NewDense32(d, o, nil)
	allowed := uint64(2*8*k*(L+d) + 2*8*32<<10 + 64<<10)
	require.Less(t, allowed, uint64(4*L*d/2))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Reconstruct", func() error { return s.Reconstruct(rec) }},
		{"WeightGradOutIn", func() error { return s.WeightGradOutIn(outIn, g) }},
		{"WeightGradInOut", func() error { return s.WeightGradInOut(inOut, g) }},
	} {
		require.NoError(t, tc.call()) // warm the scratch pools
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		require.NoError(t, tc.call())
		runtime.ReadMemStats(&after)
		got := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s allocated %d bytes (X in float32: %d)", tc.name, got, 4*L*d)
		assert.LessOrEqual(t, got, allowed, tc.name)
	}
}
