package vitgpu

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

var prof = flag.Bool("vitgpu.prof", false, "run the device profiles (TestProfileRebuilds, TestProfileStep)")

// queueProducts returns a function that queues five bf16 products of an
// n×n matrix on b's stream: device work for the host to run ahead of
// (n = 4096: about a millisecond on an H100; 8192: about 8 ms).
func queueProducts(t *testing.T, b *gpu.Backend, n int) func() {
	a, c := newTensor(t, b, n, n, gpu.BFloat16), newTensor(t, b, n, n, gpu.BFloat16)
	return func() {
		for range 5 {
			require.NoError(t, b.Mul(c, 1, a, false, a, false, 0))
		}
	}
}

// TestProfileRebuilds times, one by one, the pieces of work per-op
// backward does for one block of the GPU demo (d = 384, MLP 1536, 6
// heads, batch 256 of 49 tokens, bf16) to rebuild what it did not store
// (Model.SetRecomputeLN, SetRecomputeAttention, SetRecomputeGELU): GELU's
// input reconstructed from its rank-231 bf16 factors, GELU of it, the two
// LayerNorm outputs from x̂, and o's input P·V; beside them the same
// product from freshly allocated operands (ℓ = 231 and 232), the
// forward's LayerNorm, a device-to-device copy of the GELU input's bytes
// as the bandwidth reference, and a checkpointed block input (L×384)
// reconstructed from its rank-116 factors. CUDA events around each piece,
// median of 20 after 3, queued behind about a millisecond of products
// (ahead: the device's time alone) and as called after a synchronisation
// (with the launch latency). One JSON line per piece. Behind -vitgpu.prof.
func TestProfileRebuilds(t *testing.T) {
	if !*prof {
		t.Skip("a device profile: run with -vitgpu.prof")
	}
	b := open(t)
	const batch, k = 256, 231
	mc := vit.Config{Side: 28, Patch: 4, Dim: 384, Heads: 6, MLP: 1536, Depth: 1, Classes: 10, Seed: 7}
	m := newModel(t, b, mc, batch, gpu.BFloat16, 8, 1)
	L, d, f := batch*m.tokens, m.dim, m.mlp
	rng := rand.New(rand.NewPCG(22, 1))
	randMat := func(r, c int) *gpu.Matrix {
		x, _ := upload(t, b, r, c, gpu.BFloat16, normal(rng, 1))
		return x
	}
	x := randMat(L, f)
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Precision: lowrank.BFloat16, Seed: 1})
	require.NoError(t, err)
	defer c.Close()
	c116, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(116), Precision: lowrank.BFloat16, Seed: 1})
	require.NoError(t, err)
	defer c116.Close()
	s, err := c.Compress("gelu", x)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Release()) }()
	s116, err := c116.Compress("block.in", randMat(L, d))
	require.NoError(t, err)
	defer func() { require.NoError(t, s116.Release()) }()
	p231, r231 := randMat(L, k), randMat(k, f)
	p232, r232 := randMat(L, k+1), randMat(k+1, f)
	xhat, xin := randMat(L, d), randMat(L, d)
	rstd := newTensor(t, b, L, 1, gpu.Float32)
	recon, u, a, y := view(m.ws.recon, L), view(m.ws.u, L), view(m.ws.a, L), view(m.ws.y, L)
	ln := &m.blocks[0].ln1
	pass := m.newPass(batch, true, PerOp, nil)
	probs, v, att := view(m.ws.p, batch*m.heads*m.tokens), view(m.ws.v, L), view(m.ws.att, L)
	pieces := []struct {
		name string
		f    func() error
	}{
		{"GELU input reconstructed (Saved.Reconstruct, rank 231)", func() error { return s.Reconstruct(recon) }},
		{"the same product, fresh operands, inner 231", func() error { return b.Mul(u, 1, p231, false, r231, false, 0) }},
		{"the same product, fresh operands, inner 232", func() error { return b.Mul(u, 1, p232, false, r232, false, 0) }},
		{"GELU of it (fc2's input)", func() error { return m.k.geluFwd(a, u) }},
		{"a LayerNorm output from x̂ (lnAffine)", func() error { return m.k.lnAffine(y, xhat, ln.g.ptr(), ln.b.ptr()) }},
		{"the forward's LayerNorm (lnFwd)", func() error { return m.k.lnFwd(y, xhat, rstd, xin, ln.g.ptr(), ln.b.ptr(), lnEps) }},
		{"o's input P·V (attnOut, 6 batched products)", func() error { pass.attnOut(probs, v, att); return pass.err }},
		{"copy of the GELU input's bytes", func() error { return b.Copy(a.T(), u.T()) }},
		{"a checkpointed block input reconstructed (rank 116)", func() error { return s116.Reconstruct(y) }},
	}
	ahead := queueProducts(t, b, 4096)
	for _, pc := range pieces {
		for _, queued := range []bool{true, false} {
			us := timePiece(t, b, pc.name, ahead, queued, pc.f)
			line, err := json.Marshal(map[string]any{"piece": pc.name, "ahead": queued, "us_median": median(us), "us_min": slices.Min(us)})
			require.NoError(t, err)
			fmt.Println(string(line))
		}
	}
}

// timePiece returns the device time of f (the piece name) in µs, CUDA
// events around it, 20 calls after 3, each after a synchronisation and,
// if queued, behind ahead's products.
func timePiece(t *testing.T, b *gpu.Backend, name string, ahead func(), queued bool, f func() error) []float64 {
	var us []float64
	for i := range 23 {
		require.NoError(t, b.Synchronize())
		if queued {
			ahead()
		}
		t0, err := b.RecordTimed()
		require.NoError(t, err)
		require.NoError(t, f(), name)
		t1, err := b.RecordTimed()
		require.NoError(t, err)
		ms, err := t1.Elapsed(t0)
		require.NoError(t, err)
		require.NoError(t, t0.Close())
		require.NoError(t, t1.Close())
		if i >= 3 {
			us = append(us, 1e3*ms)
		}
	}
	return us
}

// TestProfileBiasRows times bias_rows at the GPU demo's shapes (L =
// 12544 rows of 384 and of 1536 bf16, with and without the residual
// addend) at several caps of its grid (biasBlocks; 8192 is the elementwise
// grid's, about one vector a thread), queued behind products, beside a
// device-to-device copy of the same bytes. One JSON line per case, with
// the bytes moved a µs (MB/µs = TB/s). Behind -vitgpu.prof.
func TestProfileBiasRows(t *testing.T) {
	if !*prof {
		t.Skip("a device profile: run with -vitgpu.prof")
	}
	b, k := openKernels(t)
	const L = 12544
	rng := rand.New(rand.NewPCG(5, 1))
	ahead := queueProducts(t, b, 4096)
	for _, n := range []int{384, 1536} {
		bias, _ := upload(t, b, 1, n, gpu.Float32, normal(rng, 1))
		add, _ := upload(t, b, L, n, gpu.BFloat16, normal(rng, 1))
		out := newTensor(t, b, L, n, gpu.BFloat16)
		bytes := float64(2 * L * n)
		report := func(name string, moved float64, us []float64) {
			line, err := json.Marshal(map[string]any{"piece": name, "n": n, "us_median": median(us), "us_min": slices.Min(us),
				"tb_s": moved / median(us) / 1e6})
			require.NoError(t, err)
			fmt.Println(string(line))
		}
		report("copy", 2*bytes, timePiece(t, b, "copy", ahead, true, func() error { return b.Copy(out.T(), add.T()) }))
		saved := biasBlocks
		for _, cap := range []int{8192, 2048, 1024, 512} {
			biasBlocks = cap
			for _, withAdd := range []bool{false, true} {
				var ad *gpu.Matrix
				moved := bytes
				if withAdd {
					ad, moved = add, 2*bytes
				}
				name := fmt.Sprintf("bias_rows cap %d add %v", cap, withAdd)
				report(name, moved, timePiece(t, b, name, ahead, true, func() error { return k.biasRows(out, bias.Ptr(), 0, 1, ad) }))
			}
		}
		biasBlocks = saved
	}
}

// TestProfileStep tells the device's time from the host's in the GPU
// demo's training step (d = 384, 6 blocks, batch 256, bf16, LoRA rank 8
// on random weights and images) for each way of saving activations, set
// as the demo sets them: CUDA events at the start of forward, of backward
// and at the end of backward (Model.onPhase), median of 20 steps after 5,
// as called and with about 8 ms of products queued just before backward
// (before forward too in plain training, whose forward makes no host
// synchronisation), so that the host issues the whole of backward before
// the device reaches it and the events measure the device's work alone.
// Backward makes no host synchronisation in any mode. The host's own time
// for backward (wall clock from the hook to the next) is printed beside,
// so a queue shorter than it shows. One JSON line per mode. Behind
// -vitgpu.prof.
func TestProfileStep(t *testing.T) {
	if !*prof {
		t.Skip("a device profile: run with -vitgpu.prof")
	}
	b := open(t)
	const batch = 256
	mc := vit.Config{Side: 28, Patch: 4, Dim: 384, Heads: 6, MLP: 1536, Depth: 6, Classes: 10, Seed: 7}
	cpu := vit.New(mc)
	cpu.AddLoRA(8, 1, 8)
	m := newModel(t, b, mc, batch, gpu.BFloat16, 8, 1)
	require.NoError(t, m.LoadBase(cpu))
	require.NoError(t, m.LoadLoRA(cpu))
	m.SetLoRA(true)
	ds, err := m.Upload(randomData(rand.New(rand.NewPCG(22, 2)), mc, batch))
	require.NoError(t, err)
	defer ds.Free(m)
	bt := Batch{Data: ds, Idx: ds.seq.Ptr(), Size: batch}
	delay := queueProducts(t, b, 8192)
	type run struct {
		name  string
		mode  Mode
		setup func()
		cfg   activation.Config
	}
	runs := []run{
		{"as they are", Plain, func() {}, activation.Config{}},
		{"loract checkpoint", Checkpoint, func() { m.SetCheckpointEnds(true); m.SetCheckpointGroup(0) },
			activation.Config{Rank: activation.Ratio(0.3)}},
		{"loract ops", PerOp, func() {
			m.SetRecomputeLN(true)
			m.SetRecomputeAttention(true)
			m.SetRecomputeGELU(true)
			m.SetOpsGroup(3)
		}, activation.Config{Rank: activation.Ratio(0.15)}},
	}
	for _, r := range runs {
		r.setup()
		var c *activation.Compressor
		if r.mode != Plain {
			cc := r.cfg
			cc.Backend, cc.Precision, cc.Seed = b, lowrank.BFloat16, 1
			c, err = activation.New(cc)
			require.NoError(t, err)
		}
		for _, ahead := range []bool{false, true} {
			var fwd, bwd, step, hostBwd []float64
			for i := range 25 {
				ev := map[string]*gpu.Event{}
				var tb time.Time
				m.onPhase = func(ph string) {
					if ahead && (ph == "backward" || ph == "forward" && r.mode == Plain) {
						delay()
					}
					switch ph {
					case "backward":
						tb = time.Now()
					case "end":
						hostBwd = append(hostBwd, float64(time.Since(tb).Microseconds()))
					}
					e, err := b.RecordTimed()
					require.NoError(t, err)
					ev[ph] = e
				}
				st, err := m.TrainStep(bt, r.mode, c, nil, 0, 0)
				require.NoError(t, err)
				ms := func(a, z string) float64 {
					d, err := ev[z].Elapsed(ev[a])
					require.NoError(t, err)
					return 1e3 * d
				}
				if i >= 5 {
					fwd, bwd, step = append(fwd, ms("forward", "backward")), append(bwd, ms("backward", "end")), append(step, 1e3*st.Ms)
				} else {
					hostBwd = hostBwd[:0]
				}
				for _, e := range ev {
					require.NoError(t, e.Close())
				}
			}
			line, err := json.Marshal(map[string]any{"mode": r.name, "ahead": ahead, "forward_us": median(fwd), "backward_us": median(bwd),
				"step_us": median(step), "host_backward_us": median(hostBwd), "forward_ahead_valid": r.mode == Plain})
			require.NoError(t, err)
			fmt.Println(string(line))
		}
		m.onPhase = nil
		if c != nil {
			c.Close()
		}
	}
}
