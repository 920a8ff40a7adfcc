package vit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/mnist"
	"github.com/loract/loract/lowrank"
)

// firstN returns the first n images of s whose label satisfies keep.
func firstN(s *mnist.Set, n int, keep func(int) bool) Data {
	var d Data
	for i, l := range s.Labels {
		if len(d.Labels) == n {
			break
		}
		if keep(l) {
			d.Pixels = append(d.Pixels, s.Image(i)...)
			d.Labels = append(d.Labels, l)
		}
	}
	return d
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// TestTinyDemo runs the demo end to end on real MNIST images with a tiny
// model and a few steps, in both compression modes.
func TestTinyDemo(t *testing.T) {
	dir, err := mnist.Dir()
	require.NoError(t, err)
	train, test, err := mnist.Load(dir)
	require.NoError(t, err)
	low := func(l int) bool { return l < 5 }
	high := func(l int) bool { return l >= 5 }
	pre, fine := firstN(train, 1000, low), firstN(train, 1000, high)
	testPre, testFine := firstN(test, 200, low), firstN(test, 200, high)

	for _, checkpoint := range []bool{true, false} {
		cfg := DemoConfig{
			Model: Config{Side: 28, Patch: 7, Dim: 32, Heads: 2, MLP: 64, Depth: 2, Classes: 10, Seed: 1},
			Batch: 32, PretrainSteps: 30, FineTuneSteps: 30, PretrainLR: 2e-3, FineTuneLR: 3e-3,
			LoRARank: 4, LoRAScale: 1, Checkpoint: checkpoint,
			Compression: activation.Config{Rank: activation.Ratio(0.5), Precision: lowrank.BFloat16, PowerIters: 1, Seed: 1},
		}
		if !checkpoint {
			cfg.Compression.Workers = 2 // asynchronous, joined before backward
		}
		res, err := RunDemo(cfg, pre, fine, testPre, testFine)
		require.NoError(t, err)
		l, b := &res.Loract, &res.Baseline
		require.Len(t, l.Losses, 30)
		// The loss falls with compression on: the last ten steps average
		// well below the first ten (it starts near 4, the pre-trained head
		// having pushed the unseen classes 5–9 down, and halves within 30
		// steps; the factor 0.7 leaves room for batch-to-batch noise of
		// ≈ 0.2 in a mean of ten batches of 32).
		assert.Less(t, mean(l.Losses[20:]), 0.7*mean(l.Losses[:10]), "checkpoint=%v", checkpoint)
		// Gradient fidelity. Each compressed tensor has relative error
		// ε ≈ 0.1–0.2 here (rank d/2, power iteration); to first order the
		// gradient's relative error δ is a few ε, and cos ≥ √(1 − δ²):
		// δ ≤ 0.5 gives 0.87. 0.85 fails on a wrong factor or a missing
		// term, which drive the cosine towards 0.
		assert.Greater(t, res.GradCos, 0.85, "checkpoint=%v", checkpoint)
		// Rank k = d/2 in bf16 stores 2·k·(L+d) bytes against 4·L·d in
		// float32: a ratio of ¼·(1 + d/L) ≤ ¼·(1 + 64/512) with L = 32·16
		// rows and d ≤ 64 columns; exact arithmetic, no margin needed.
		assert.Positive(t, l.Main.Total.Peak)
		assert.LessOrEqual(t, float64(l.Main.Total.Peak), 0.25*(1+64.0/512)*float64(l.Main.Total.DensePeak))
		t.Logf("checkpoint=%v: loss %.3f → %.3f, cos %.4f, acc %.3f vs %.3f, peak %d of %d",
			checkpoint, mean(l.Losses[:10]), mean(l.Losses[len(l.Losses)-10:]), res.GradCos,
			l.Accuracy, b.Accuracy, l.Main.Total.Peak, l.Main.Total.DensePeak)
		assert.Zero(t, l.Main.Total.Live, "backward released everything")
		assert.Zero(t, b.Main.Total.Live)
		assert.Greater(t, l.Accuracy, 0.2, "better than chance (0.2 over five classes)")
	}
}

// TestTinySweep runs a sweep of a ratio setting and a byte budget at its
// bytes on real MNIST images with a tiny model: every step of the budget
// run stays within the budget, and the runs report what the table needs.
func TestTinySweep(t *testing.T) {
	dir, err := mnist.Dir()
	require.NoError(t, err)
	train, test, err := mnist.Load(dir)
	require.NoError(t, err)
	low := func(l int) bool { return l < 5 }
	high := func(l int) bool { return l >= 5 }
	cfg := DemoConfig{
		Model: Config{Side: 28, Patch: 7, Dim: 16, Heads: 2, MLP: 32, Depth: 1, Classes: 10, Seed: 1},
		Batch: 16, PretrainSteps: 10, FineTuneSteps: 12, PretrainLR: 2e-3, FineTuneLR: 3e-3, LoRARank: 2, LoRAScale: 1,
	}
	shapes, err := cfg.SavedShapes()
	require.NoError(t, err)
	require.Len(t, shapes, 5, "q, o, fc1, gelu, fc2")
	ratio := activation.Config{Rank: activation.Ratio(0.25), MeasureError: true, Seed: 1}
	budget := 0
	for _, s := range shapes {
		k, _ := ratio.Rank.Rank(s.Rows, s.Cols)
		budget += ratio.StoredBytes(s.Rows, s.Cols, k)
	}
	bud := ratio
	bud.Rank, bud.Workers = activation.Budget(budget), 1
	res, err := RunSweep(cfg, []Setting{{"ratio", ratio}, {"budget", bud}},
		firstN(train, 200, low), firstN(train, 200, high), firstN(test, 50, low), firstN(test, 50, high))
	require.NoError(t, err)
	require.Len(t, res.Runs, 2)
	for _, r := range res.Runs {
		require.Len(t, r.StepLive, 12, r.Name)
		assert.Positive(t, r.Main.Total.MeanRelError, r.Name)
		assert.Greater(t, r.GradCos, 0.5, r.Name)
	}
	assert.Equal(t, budget, res.Runs[0].Main.Total.Peak, "the ratio run stores its bytes")
	b := res.Runs[1]
	for i, live := range b.StepLive {
		assert.LessOrEqual(t, live, budget, "step %d", i)
	}
	assert.LessOrEqual(t, b.Main.Total.Peak, budget)
	assert.Equal(t, 12, b.Plan.Step, "a plan at every step's Join (the last one for a step not run)")
	assert.Len(t, b.Plan.Layers, 5)
}
