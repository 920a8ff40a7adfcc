package gpucheck

import (
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

var profFlag = flag.Bool("gpu.prof", false, "time Compress against the QB it runs (TestProfileCompress)")

// TestProfileCompress times, on the step benchmark's inputs (row-major
// bf16 16384×d, rank 256), the rows QB alone (sampling.Decomposer.QBTo),
// Compressor.Compress of the same input (the QB, the bf16 factors and the
// accounting), and CompressBatch of three inputs of one shape, with CUDA
// events on the backend's stream (median of 20 after 3 warm-up calls): what
// the adapter adds to the decomposition. Then a transformer layer's four
// inputs (three 16384×4096, one 16384×11008): one CompressBatch of all
// four, against CompressBatch of the three and Compress of the fourth, and
// four Compress calls. Behind -gpu.prof.
func TestProfileCompress(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t)
	const L, k, reps = 16384, 256, 20
	// f's handles are released after the end event, as a training step
	// releases them in backward: their storage then comes back from the
	// pool, without cuMemAlloc, as in the step benchmark.
	timeIt := func(f func(i int) []*activation.Saved) (med, lo float64) {
		ms, _ := timeEvents(t, b, reps, f)
		return ms[reps/2], ms[0]
	}
	emitRec := func(name string, d int, med, lo float64) {
		j, _ := json.Marshal(map[string]any{"piece": name, "L": L, "d": d, "k": k, "ms": med, "ms_min": lo})
		fmt.Println(string(j))
	}
	for _, d := range []int{4096, 11008} {
		xs := make([]lowrank.Matrix, 3)
		for i := range xs {
			xs[i] = gaussianInput(t, b, L, d, uint64(i+1))
		}
		dec := sampling.NewDecomposer(b)
		var f lowrank.Factors
		med, lo := timeIt(func(i int) []*activation.Saved {
			require.NoError(t, dec.QBTo(&f, xs[0], k, &sampling.Options{Seed: uint64(i + 10)}))
			return nil
		})
		emitRec("QBTo", d, med, lo)
		f.Free(b)
		dec.Close()
		c, err := activation.New(activation.Config{Backend: b, Method: activation.RowSampling, Rank: activation.Fixed(k),
			Precision: lowrank.BFloat16, Seed: 1})
		require.NoError(t, err)
		m0 := b.MemStats().Mallocs
		med, lo = timeIt(func(int) []*activation.Saved {
			s, err := c.Compress("x", xs[0])
			require.NoError(t, err)
			return []*activation.Saved{s}
		})
		emitRec("Compress", d, med, lo)
		names := []string{"a", "b", "c"}
		med, lo = timeIt(func(int) []*activation.Saved {
			ss, err := c.CompressBatch(names, xs)
			require.NoError(t, err)
			return ss
		})
		emitRec("CompressBatch of 3", d, med, lo)
		j, _ := json.Marshal(map[string]any{"d": d, "cuMemAlloc_calls": b.MemStats().Mallocs - m0})
		fmt.Println(string(j))
		c.Close()
	}
	xs := layerInputs(t, b, L)
	c, err := activation.New(activation.Config{Backend: b, Method: activation.RowSampling, Rank: activation.Fixed(k),
		Precision: lowrank.BFloat16, Seed: 1})
	require.NoError(t, err)
	defer c.Close()
	names := []string{"qkv", "o", "gate_up", "down"}
	for _, v := range []struct {
		name string
		f    func() ([]*activation.Saved, error)
	}{
		{"CompressBatch of the four", func() ([]*activation.Saved, error) { return c.CompressBatch(names, xs) }},
		{"CompressBatch of three, Compress of the fourth", func() ([]*activation.Saved, error) {
			ss, err := c.CompressBatch(names[:3], xs[:3])
			if err != nil {
				return nil, err
			}
			s, err := c.Compress(names[3], xs[3])
			return append(ss, s), err
		}},
		{"four Compress", func() ([]*activation.Saved, error) {
			var ss []*activation.Saved
			for i, x := range xs {
				s, err := c.Compress(names[i], x)
				if err != nil {
					return nil, err
				}
				ss = append(ss, s)
			}
			return ss, nil
		}},
	} {
		med, lo := timeIt(func(int) []*activation.Saved {
			ss, err := v.f()
			require.NoError(t, err)
			return ss
		})
		emitRec(v.name, 0, med, lo)
	}
}

// timeEvents runs f(i) for i = −3 … reps−1, each after a Synchronize and
// between timed events on b's stream, releasing the handles it returns
// after the end event (as a training step releases them in backward); it
// returns the device times of the calls i ≥ 0 and their host wall times,
// in ms, each sorted.
func timeEvents(t *testing.T, b *gpu.Backend, reps int, f func(i int) []*activation.Saved) (dev, wall []float64) {
	dev, wall = make([]float64, reps), make([]float64, reps)
	for i := -3; i < reps; i++ {
		require.NoError(t, b.Synchronize())
		t0 := time.Now()
		e0, err := b.RecordTimed()
		require.NoError(t, err)
		held := f(i)
		e1, err := b.RecordTimed()
		require.NoError(t, err)
		d, err := e1.Elapsed(e0)
		require.NoError(t, err)
		if i >= 0 {
			dev[i], wall[i] = d, float64(time.Since(t0).Microseconds())/1e3
		}
		e0.Close()
		e1.Close()
		for _, s := range held {
			require.NoError(t, s.Release())
		}
	}
	sort.Float64s(dev)
	sort.Float64s(wall)
	return dev, wall
}

// layerInputs returns a transformer layer's four distinct inputs of L
// tokens (three L×4096, one L×11008), gaussianInput's.
func layerInputs(t *testing.T, b *gpu.Backend, L int) []lowrank.Matrix {
	xs := make([]lowrank.Matrix, 4)
	for i := range xs {
		d := 4096
		if i == 3 {
			d = 11008
		}
		xs[i] = gaussianInput(t, b, L, d, uint64(i+20))
	}
	return xs
}

// gaussianInput returns a row-major bf16 L×d device activation of
// standard normal entries drawn from seed.
func gaussianInput(t *testing.T, b *gpu.Backend, L, d int, seed uint64) lowrank.Matrix {
	g := newMat(t, b, d, L, gpu.Float32, false) // Normal fills column-major float32
	require.NoError(t, b.Normal(g, seed))
	x := newMat(t, b, d, L, gpu.BFloat16, false)
	require.NoError(t, b.Copy(x, g))
	return x.T()
}

// TestProfileBatchSplit times a transformer layer's four inputs (three
// 16384×4096, one 16384×11008, bf16, rank 256) compressed as one batch on
// the backend's stream against the same four split into two groups, one
// on the backend's stream and one on a Fork's, each driven by its own
// goroutine (the groups' host synchronisations then wait for their own
// stream only), joined with events: whether one group's latency-bound
// QR overlaps the other's memory-bound reads. CUDA events on the
// backend's stream around the whole, median of 20 after 3 warm-up calls.
// Behind -gpu.prof.
func TestProfileBatchSplit(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t)
	f, err := b.Fork()
	require.NoError(t, err)
	defer f.Close()
	// A sibling whose stream has the device's highest priority: its
	// kernels take the multiprocessors first, so the two groups' phases
	// interleave instead of coinciding.
	_, greatest, err := b.StreamPriorities()
	require.NoError(t, err)
	b.SetForkPriority(greatest)
	fh, err := b.Fork()
	b.SetForkPriority(0)
	require.NoError(t, err)
	defer fh.Close()
	const L, k, reps = 16384, 256, 20
	xs := layerInputs(t, b, L)
	require.NoError(t, b.Synchronize())
	decs := []*sampling.Decomposer{sampling.NewDecomposer(b), sampling.NewDecomposer(f)}
	defer decs[0].Close()
	defer decs[1].Close()
	decHigh := sampling.NewDecomposer(fh)
	defer decHigh.Close()
	run := func(dec *sampling.Decomposer, fs []*lowrank.Factors, items []int, seed uint64) error {
		if len(items) == 1 {
			return dec.QBTo(fs[0], xs[items[0]], k, &sampling.Options{Seed: seed})
		}
		as := make([]lowrank.Matrix, len(items))
		opts := make([]*sampling.Options, len(items))
		for j, i := range items {
			as[j], opts[j] = xs[i], &sampling.Options{Seed: seed + uint64(i)}
		}
		return dec.QBBatchTo(fs, as, k, opts)
	}
	for _, v := range []struct {
		name   string
		groups [][]int
		high   bool // the second group on the high-priority sibling
	}{
		{"one batch of the four, one stream", [][]int{{0, 1, 2, 3}}, false},
		{"split: {3×4096} | {11008}", [][]int{{0, 1, 2}, {3}}, false},
		{"split: {4096, 11008} | {2×4096}", [][]int{{0, 3}, {1, 2}}, false},
		{"split: {2×4096} | {4096, 11008}", [][]int{{0, 1}, {2, 3}}, false},
		{"split: {3×4096} | {11008}, second stream high priority", [][]int{{0, 1, 2}, {3}}, true},
		{"split: {11008} | {3×4096}, second stream high priority", [][]int{{3}, {0, 1, 2}}, true},
		{"split: {2×4096} | {4096, 11008}, second stream high priority", [][]int{{0, 1}, {2, 3}}, true},
	} {
		side, sideDec := f, decs[1]
		if v.high {
			side, sideDec = fh, decHigh
		}
		fs := make([][]*lowrank.Factors, len(v.groups))
		for g, items := range v.groups {
			for range items {
				fs[g] = append(fs[g], new(lowrank.Factors))
			}
		}
		ms, wall := timeEvents(t, b, reps, func(i int) []*activation.Saved {
			var errs [2]error
			if len(v.groups) == 1 {
				errs[0] = run(decs[0], fs[0], v.groups[0], uint64(100+i))
			} else {
				ready, err := b.Record()
				require.NoError(t, err)
				require.NoError(t, side.Wait(ready))
				var wg sync.WaitGroup
				for g, dec := range []*sampling.Decomposer{decs[0], sideDec} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[g] = run(dec, fs[g], v.groups[g], uint64(100+i))
					}()
				}
				wg.Wait()
				done, err := side.Record()
				require.NoError(t, err)
				require.NoError(t, b.Wait(done))
				ready.Close()
				done.Close()
			}
			require.NoError(t, errs[0], v.name)
			require.NoError(t, errs[1], v.name)
			return nil
		})
		j, _ := json.Marshal(map[string]any{"piece": v.name, "L": L, "k": k, "ms": ms[reps/2], "ms_min": ms[0], "wall_ms": wall[reps/2]})
		fmt.Println(string(j))
		for g, be := range []*gpu.Backend{b, side}[:len(fs)] {
			for _, x := range fs[g] {
				x.Free(be)
			}
		}
	}
}
