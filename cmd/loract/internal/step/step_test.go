package step

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/gpu"
)

func TestCheck(t *testing.T) {
	good := BenchConfig{Tokens: []int{8192}, Ranks: []int{128}, LoRARank: 16, Workers: []int{0}, Repeats: 20, Warmup: 3}
	require.NoError(t, good.Check())
	both := good
	both.BatchStreams = []int{0, 1, 2}
	require.NoError(t, both.Check())
	for name, mod := range map[string]func(c *BenchConfig){
		"no tokens":    func(c *BenchConfig) { c.Tokens = nil },
		"zero tokens":  func(c *BenchConfig) { c.Tokens = []int{0} },
		"rank too big": func(c *BenchConfig) { c.Ranks = []int{5000} },
		"rank zero":    func(c *BenchConfig) { c.Ranks = []int{0} },
		"lora rank":    func(c *BenchConfig) { c.LoRARank = 0 },
		"repeats":      func(c *BenchConfig) { c.Repeats = 0 },
		"warmup":       func(c *BenchConfig) { c.Warmup = -1 },
		"workers":      func(c *BenchConfig) { c.Workers = []int{-1} },
		"no workers":   func(c *BenchConfig) { c.Workers = nil },
		"streams":      func(c *BenchConfig) { c.BatchStreams = []int{3} },
		"streams < 0":  func(c *BenchConfig) { c.BatchStreams = []int{1, -1} },
	} {
		c := good
		mod(&c)
		assert.Error(t, c.Check(), name)
	}
}

// TestFlops checks the flop counts on a one-projection layer by hand:
// L = 10, d = 4, out = 6, r = 2, k = 3.
func TestFlops(t *testing.T) {
	r := &Runner{layer: Layer{Inputs: []Input{{"x", 4}}, Projs: []Proj{{"p", 0, 6}}}, tokens: 10, r: 2}
	gemm, comp := r.Flops(3)
	// 4·L·d·out for y and dX, 2·L·r·(d+out) forward LoRA, 2·L·r·(2·out+2·d)
	// backward LoRA.
	assert.Equal(t, 4.0*10*4*6+2*10*2*(4+6)+2*10*2*(12+8), gemm)
	// 4·L·d·k + 12·d·k².
	assert.Equal(t, 4.0*10*4*3+12*4*9, comp)
}

// TestRunPeer runs the peer through a stand-in interpreter that prints
// what the script would: the env line, a record, a line that is not JSON
// (skipped), and an error record (logged).
func TestRunPeer(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "python")
	script := `#!/bin/sh
echo '{"env": {"torch": "2.11.0"}}'
echo 'warming up'
echo '{"peer": "torch", "mode": "rows", "tokens": 8192, "k": 128, "lora_rank": 16, "ms": 17.5, "ms_min": 17.1, "repeats": 20, "compress_ms": 5.0, "saved_bytes": 1000, "dense_bytes": 4000, "step_peak_bytes": 9000, "base_bytes": 100, "cos_a": {"q": 0.99}, "device": "H"}'
echo '{"error": "no bf16 QR"}'
`
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	var log []string
	logf := func(f string, a ...any) { log = append(log, f) }
	recs, err := RunPeer(context.Background(), BenchConfig{Tokens: []int{8192}, Ranks: []int{128}, LoRARank: 16, Repeats: 20, Python: fake}, logf)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "torch-rows", recs[0].Mode)
	assert.Equal(t, 17.5, recs[0].Ms)
	assert.Equal(t, int64(1000), recs[0].SavedBytes)
	assert.Equal(t, 0.99, recs[0].CosA["q"])
	assert.Contains(t, strings.Join(log, "\n"), "env")

	// A failing interpreter is an error with its stderr.
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho boom >&2\nexit 3\n"), 0o755))
	_, err = RunPeer(context.Background(), BenchConfig{Tokens: []int{1}, Ranks: []int{1}, Python: bad}, logf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "boom")
}

func TestWriteTable(t *testing.T) {
	ours := []*Result{
		{Mode: "bf16", Tokens: 8192, Ms: 10, SavedBytes: 100 << 20, DenseBytes: 100 << 20, StepPeakBytes: 2 << 30},
		{Mode: "loract", Tokens: 8192, K: 128, Ms: 11, CompressMs: 0.5, SavedBytes: 5 << 20, DenseBytes: 100 << 20,
			GEMMFlops: 100, CompressFlops: 2, CosA: map[string]float64{"q": 0.999, "k": 0.995}, ToDevice: 4096, ToHost: 256},
	}
	peer := []*Result{{Mode: "torch-bf16", Tokens: 8192, Ms: 12, SavedBytes: 100 << 20, DenseBytes: 100 << 20}}
	var buf bytes.Buffer
	WriteTable(&buf, ours, peer)
	out := buf.String()
	assert.Contains(t, out, "| 8192 | 128 | loract | 11.00 | 1.100× | 0.50 (4.5%) | 5.0 MiB | 5.0% |")
	assert.Contains(t, out, "| 2.0% | 0.9950 | 0, 4096 / 256 |")
	assert.Contains(t, out, "| 8192 | - | torch-bf16 | 12.00 | 1 |")
}

// TestRunOnGPU runs a small layer on the device in both modes: the
// compressed run saves fewer bytes (measured at the allocator), allocates
// nothing in its timed steps, and its LoRA B gradients equal the kept
// run's (they use x·Aᵀ, saved as it is) while the A gradients are close.
func TestRunOnGPU(t *testing.T) {
	b, err := gpu.Open(0, nil)
	if errors.Is(err, gpu.ErrUnavailable) {
		t.Skip(err)
	}
	require.NoError(t, err)
	defer b.Close()
	// Two inputs of one shape (a batch of two with Batch) and a wider last
	// one.
	layer := Layer{Inputs: []Input{{"x", 1024}, {"o", 1024}, {"h", 2048}},
		Projs: []Proj{{"a", 0, 1024}, {"b", 0, 2048}, {"d", 1, 1024}, {"c", 2, 1024}}}
	r, err := NewRunner(b, layer, 4096, 8, 1)
	require.NoError(t, err)
	defer r.Close()
	kept, err := r.Run(Options{Mode: Kept, Warmup: 1, Repeats: 3})
	require.NoError(t, err)
	assert.Zero(t, kept.Mallocs)
	// The kept inputs, bf16, rounded up to the pool's size classes, and
	// the L×r intermediates.
	assert.GreaterOrEqual(t, kept.SavedBytes, kept.DenseBytes)
	var sync *Result
	for _, o := range []Options{{Workers: 0}, {Workers: 1}, {Workers: 1, LateJoin: true}, {Workers: 1, Priority: -5}, {Batch: true},
		{Workers: 1, Batch: true}, {Batch: true, BatchStreams: 2}} {
		w := o.Workers
		// Two warm-up steps in every run (one draw sequence for all): a
		// batch's second stream (BatchStreams 2) reaches its scratch
		// sizes on its second use, since siblings grow their scratch to
		// the largest any of them has needed (gpu.Backend.Fork) and the
		// first step's larger single compression ran on the other
		// stream.
		o.Mode, o.K, o.Warmup, o.Repeats = Compressed, 256, 2, 3
		comp, err := r.Run(o)
		require.NoError(t, err)
		Compare(kept, comp)
		assert.Zero(t, comp.Mallocs, "%+v", o)
		if o.LateJoin {
			// At most the last input, still being compressed at the end
			// of forward, is held as it is beyond the factors.
			assert.Less(t, comp.SavedBytes, sync.SavedBytes+int64(2*4096*2048)+(1<<20), "%+v", o)
		} else {
			assert.Less(t, comp.SavedBytes, kept.SavedBytes/2, "workers %d", w)
		}
		if sync == nil {
			sync = comp
		} else {
			// The same draws: every variant's gradients are the
			// synchronous run's up to the order of its float32 sums.
			// A batch factors its sketches by another route (batched
			// Gram products and potrf), whose float32 rounding can move
			// a factor entry across a bf16 rounding boundary: the
			// gradients then differ by a relative ε ≤ 2u_bf16 (u_bf16 =
			// 2⁻⁸, both factors), and 1 − cos ≤ ε²/2 = 2·2⁻¹⁶.
			tol := 1e-6
			if o.Batch {
				tol = 2 * 0x1p-16
			}
			for name, g := range comp.gradA {
				assert.InDelta(t, 1, cosine(sync.gradA[name], g), tol, "%+v %s", o, name)
			}
		}
		for name, c := range comp.CosB {
			assert.InDelta(t, 1, c, 1e-6, "%s: gradient of B", name)
		}
		for name, c := range comp.CosA {
			// The synthetic spectrum keeps ≥ 99% of its energy in 256
			// directions (σ_j ∝ 1/(j+1)): the gradient from the factors
			// points the same way to within a few degrees.
			assert.Greater(t, c, 0.98, "%s: gradient of A", name)
		}
	}
}

// TestVariant: each option of a compressed run appears in its name.
func TestVariant(t *testing.T) {
	for _, c := range []struct {
		r    Result
		want string
	}{
		{Result{}, ""},
		{Result{Batch: true}, "batched"},
		{Result{Batch: true, BatchStreams: 1}, "batched, one stream"},
		{Result{Batch: true, BatchStreams: 2}, "batched, two streams"},
		{Result{Workers: 2}, "2 side streams"},
		{Result{Workers: 2, Priority: -5}, "2 side streams, priority -5"},
		{Result{Workers: 1, LateJoin: true, Batch: true}, "batched, 1 side stream, no Join before backward"},
	} {
		assert.Equal(t, c.want, c.r.Variant(), "%+v", c.r)
	}
}
