package vit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/lowrank"
)

var tinyCfg = Config{Side: 8, Patch: 4, Dim: 8, Heads: 2, MLP: 12, Depth: 2, Classes: 3, Seed: 7}

func tinyBatch(rng *rand.Rand, c Config, batch int) ([]float64, []int) {
	px := make([]float64, batch*c.Side*c.Side)
	for i := range px {
		px[i] = rng.Float64()
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = rng.IntN(c.Classes)
	}
	return px, labels
}

func lossOf(t *testing.T, m *Model, px []float64, labels []int) float64 {
	logits, err := m.Forward(px, len(labels), PlainRun, nil)
	require.NoError(t, err)
	l, _, _ := Loss(logits, labels)
	return l
}

func grads(t *testing.T, m *Model, px []float64, labels []int, run Run) [][]float64 {
	m.ZeroGrad()
	var tape Tape
	logits, err := m.Forward(px, len(labels), run, &tape)
	require.NoError(t, err)
	_, g, _ := Loss(logits, labels)
	require.NoError(t, m.Backward(&tape, g))
	var out [][]float64
	for _, p := range m.Params() {
		out = append(out, append([]float64(nil), p.G.RawMatrix().Data...))
	}
	return out
}

// checkGradients compares the analytic gradient of every trainable
// parameter with central differences on a few random entries.
func checkGradients(t *testing.T, m *Model, rng *rand.Rand) {
	px, labels := tinyBatch(rng, m.Cfg, 3)
	g := grads(t, m, px, labels, PlainRun)
	// Central differences with step h have truncation error O(h²·f''') ≈
	// 1e-10 and rounding error ≈ ε·|f|/h ≈ 1e-11 for this smooth loss of
	// order 1; 1e-6 leaves four orders of magnitude of margin and still
	// catches any wrong term (those are of the order of the gradient).
	const h, tol = 1e-5, 1e-6
	for pi, p := range m.Params() {
		w := p.W.RawMatrix().Data
		for range 4 {
			i := rng.IntN(len(w))
			old := w[i]
			w[i] = old + h
			lp := lossOf(t, m, px, labels)
			w[i] = old - h
			lm := lossOf(t, m, px, labels)
			w[i] = old
			num := (lp - lm) / (2 * h)
			assert.InDelta(t, num, g[pi][i], tol*max(1, math.Abs(num)), "%s[%d]", p.Name, i)
		}
	}
}

func TestGradientsFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := New(tinyCfg)
	require.Len(t, m.Params(), 2+1+2*(4+12)+2+2)
	checkGradients(t, m, rng)
}

func TestGradientsLoRA(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := New(tinyCfg)
	m.AddLoRA(2, 1.5, 9)
	// LoRA's B starts at zero, where A's gradient vanishes; move it.
	for _, p := range m.Params() {
		for i, raw := 0, p.W.RawMatrix().Data; i < len(raw); i++ {
			raw[i] += 0.3 * rng.NormFloat64()
		}
	}
	require.Len(t, m.Params(), 2*6*2+2)
	checkGradients(t, m, rng)
}

// TestRunsAgree checks that checkpointing with exact recomputation, and
// per-op saving through a compressor that stores activations as they are
// in float64, give bit-for-bit the gradients of plain backpropagation.
func TestRunsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m := perturbedLoRA(rng, tinyCfg)
	px, labels := tinyBatch(rng, m.Cfg, 4)
	want := grads(t, m, px, labels, PlainRun)
	assert.Equal(t, want, grads(t, m, px, labels, Run{Main: Plain, Rest: Plain, Checkpoint: true}))
	c, err := activation.New(activation.Config{Method: activation.Uncompressed, Precision: lowrank.Float64})
	require.NoError(t, err)
	got := grads(t, m, px, labels, Run{Main: Compressed(c), Rest: Plain})
	assertStoredGrads(t, want, got)
	st := c.Stats()
	assert.Zero(t, st.Total.Live, "every saved activation is released by backward")
	assert.Positive(t, st.Total.Peak)
	_ = mat.NewDense
}

// TestRebuild: per-op saving that rebuilds the LayerNorm outputs, the
// attention output and GELU's output (Run.Rebuild) gives plain
// backpropagation's gradients bit for bit when everything else is kept as
// it is — x̂·γ + β, P·V and GELU(u) are the forward's own formulas in the
// same order — and saves only GELU's input through Main, one tensor a
// block instead of five; each rebuild alone saves the tensors it does not
// name. Through a compressor storing float64 copies, every saved
// activation is released by backward.
func TestRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	m := perturbedLoRA(rng, tinyCfg)
	px, labels := tinyBatch(rng, m.Cfg, 4)
	want := grads(t, m, px, labels, PlainRun)
	for _, tc := range []struct {
		rb    Rebuild
		saved []string // the layers Main saves in each block
	}{
		{Rebuild{}, []string{"q", "o", "fc1", "gelu", "fc2"}},
		{Rebuild{LN: true}, []string{"o", "gelu", "fc2"}},
		{Rebuild{Attention: true}, []string{"q", "fc1", "gelu", "fc2"}},
		{Rebuild{GELU: true}, []string{"q", "o", "fc1", "gelu"}},
		{Rebuild{LN: true, Attention: true, GELU: true}, []string{"gelu"}},
	} {
		var names []string
		main := func(layer string, x *mat.Dense) (Stash, error) {
			names = append(names, layer)
			return Plain(layer, x)
		}
		got := grads(t, m, px, labels, Run{Main: main, Rest: Plain, Rebuild: tc.rb})
		assert.Equal(t, want, got, "%+v: plain's gradients bit for bit", tc.rb)
		var wantNames []string
		for _, b := range m.Blocks {
			for _, l := range tc.saved {
				wantNames = append(wantNames, b.Name+"."+l)
			}
		}
		assert.ElementsMatch(t, wantNames, names, "%+v: what Main saves", tc.rb)
	}
	c, err := activation.New(activation.Config{Method: activation.Uncompressed, Precision: lowrank.Float64})
	require.NoError(t, err)
	got := grads(t, m, px, labels, Run{Main: Compressed(c), Rest: Plain, Rebuild: Rebuild{LN: true, Attention: true, GELU: true}})
	assertStoredGrads(t, want, got)
	assert.Zero(t, c.Stats().Total.Live, "every saved activation is released by backward")
	assert.Len(t, c.Stats().Layers, len(m.Blocks), "one saved tensor a block")
}

// perturbedLoRA returns a model of cfg with LoRA, every parameter, frozen
// or not, moved off its initial value: LoRA's B starts at zero, where A's
// gradient vanishes, and the LayerNorms at γ = 1, β = 0, where a rebuild
// that dropped either would go unseen.
func perturbedLoRA(rng *rand.Rand, cfg Config) *Model {
	m := New(cfg)
	m.AddLoRA(2, 1, 3)
	for _, p := range m.params(true) {
		for i, raw := 0, p.W.RawMatrix().Data; i < len(raw); i++ {
			raw[i] += 0.3 * rng.NormFloat64()
		}
	}
	return m
}

// assertStoredGrads asserts got equals plain backpropagation's want with
// the activations stored as float64 copies by a compressor: its
// WeightGrad of a stored X is gᵀX, the product plainStash forms, and only
// the summation order may differ, ε·L relative for L summed rows (a few
// hundred here: below 10⁻¹³); 1e-12 leaves room for the few products a
// gradient composes.
func assertStoredGrads(t *testing.T, want, got [][]float64) {
	t.Helper()
	for i := range want {
		for j := range want[i] {
			assert.InDelta(t, want[i][j], got[i][j], 1e-12*max(1, math.Abs(want[i][j])))
		}
	}
}

// TestCheckpointEnds: compressed checkpointing with its ends left out
// (Run.Ends) saves through Main only the inputs of the blocks between the
// first and the last — none at depth 2, blk1's at depth 3 — and with
// exact storage gives plain backpropagation's gradients bit for bit, as
// TestRunsAgree's checkpointing does: the recomputed embedding and the
// last block's tape are the forward's own computations.
func TestCheckpointEnds(t *testing.T) {
	for _, depth := range []int{1, 2, 3} {
		rng := rand.New(rand.NewPCG(11, uint64(depth)))
		cfg := tinyCfg
		cfg.Depth = depth
		m := perturbedLoRA(rng, cfg)
		px, labels := tinyBatch(rng, m.Cfg, 4)
		want := grads(t, m, px, labels, PlainRun)
		var names []string
		main := func(layer string, x *mat.Dense) (Stash, error) {
			names = append(names, layer)
			return Plain(layer, x)
		}
		got := grads(t, m, px, labels, Run{Main: main, Rest: Plain, Checkpoint: true, Ends: true})
		assert.Equal(t, want, got, "depth %d: plain's gradients bit for bit", depth)
		var wantNames []string
		for i := 1; i < depth-1; i++ {
			wantNames = append(wantNames, m.Blocks[i].Name+".in")
		}
		assert.Equal(t, wantNames, names, "depth %d: what Main saves", depth)
	}
}
