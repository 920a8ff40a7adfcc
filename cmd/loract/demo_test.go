package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/lowrank"
)

// TestDemoFlags: every bad flag set fails in the parser, before MNIST is
// read or a step trained (trainDemo is replaced by a function that fails
// the test), and fast.
func TestDemoFlags(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "figure.png")
	require.NoError(t, os.WriteFile(existing, []byte("png"), 0o644))
	trained := false
	orig := trainDemo
	defer func() { trainDemo = orig }()
	trainDemo = func(vit.DemoConfig, vit.Data, vit.Data, vit.Data, vit.Data) (*vit.DemoResult, error) {
		trained = true
		return nil, assert.AnError
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fast"}, `unexpected arguments ["fast"]`},
		{[]string{"-ratio", "2"}, "-ratio 2: the rank ratio is in (0, 1]"},
		{[]string{"-ratio", "0"}, "-ratio 0"},
		{[]string{"-ratio", "NaN"}, "-ratio NaN"},
		{[]string{"-tol", "1.5"}, "-tol 1.5"},
		{[]string{"-tol", "-0.1"}, "-tol -0.1"},
		{[]string{"-rank", "-3"}, "-rank -3: must be ≥ 0"},
		{[]string{"-pretrain-steps", "-1"}, "-pretrain-steps -1"},
		{[]string{"-finetune-steps", "0"}, "-finetune-steps 0: must be ≥ 1"},
		{[]string{"-finetune-steps", "-5"}, "-finetune-steps -5"},
		{[]string{"-batch", "0"}, "-batch 0"},
		{[]string{"-method", "svd"}, `-method: lowrank: invalid option: unknown method "svd"`},
		{[]string{"-precision", "fp8"}, `unknown -precision "fp8"`},
		{[]string{"-mode", "fast"}, `unknown -mode "fast"`},
		{[]string{"-patch", "5"}, "-patch 5 does not divide the image side 28"},
		{[]string{"-patch", "0"}, "-patch 0: must be ≥ 1"},
		{[]string{"-heads", "3"}, "-heads 3 does not divide -dim 64"},
		{[]string{"-heads", "0"}, "-heads 0: must be ≥ 1"},
		{[]string{"-dim", "-8"}, "-dim -8"},
		{[]string{"-depth", "0"}, "-depth 0"},
		{[]string{"-lora-rank", "0"}, "-lora-rank 0"},
		{[]string{"-oversample", "-1"}, "-oversample -1"},
		{[]string{"-power", "-2"}, "-power -2"},
		{[]string{"-workers", "-1"}, "-workers -1"},
		{[]string{"-pretrain-lr", "0"}, "-pretrain-lr 0"},
		{[]string{"-finetune-lr", "-1e-3"}, "-finetune-lr -0.001"},
		{[]string{"-finetune-lr", "+Inf"}, "-finetune-lr +Inf"},
		{[]string{"-cpuprofile", filepath.Join(t.TempDir(), "no", "dir", "cpu.out")}, "-cpuprofile"},
		{[]string{"-pretrained", filepath.Join(t.TempDir(), "no", "w.gob")}, "-pretrained"},
		{[]string{"-dim", "x"}, "invalid value"},
		{[]string{"-sweep", "ranks"}, `unknown -sweep "ranks" (bytes)`},
		{[]string{"-sweep", "bytes", "-tol", "0.1"}, "not with -tol"},
		{[]string{"-sweep", "bytes", "-method", "none"}, "not with -method none"},
		{[]string{"-sweep-plot", filepath.Join(t.TempDir(), "p.png")}, "-sweep-plot without -sweep"},
		{[]string{"-sweep", "bytes", "-sweep-plot", existing}, "exists (replace it with -force)"},
		{[]string{"-sweep", "bytes", "-sweep-plot", filepath.Join(t.TempDir(), "no", "p.png")}, "-sweep-plot"},
	} {
		start := time.Now()
		o, err := parseDemo(tc.args, &bytes.Buffer{})
		require.Error(t, err, "%v", tc.args)
		assert.Nil(t, o)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
		assert.EqualError(t, runDemo(tc.args), err.Error(), "%v", tc.args)
		// The parser reads no data: a second is room for a loaded machine,
		// and far below loading MNIST or any training.
		assert.Less(t, time.Since(start), time.Second, "%v", tc.args)
	}
	assert.False(t, trained, "a bad flag set reached training")
}

// TestDemoConfig: good flags become the DemoConfig and compressor
// configuration they name.
func TestDemoConfig(t *testing.T) {
	o, err := parseDemo([]string{"-dim", "32", "-heads", "2", "-patch", "14", "-rank", "5", "-precision", "float32",
		"-mode", "ops", "-method", "gaussian", "-power", "1", "-finetune-steps", "7"}, &bytes.Buffer{})
	require.NoError(t, err)
	c := o.cfg
	assert.Equal(t, vit.Config{Side: 28, Patch: 14, Dim: 32, Heads: 2, MLP: 128, Depth: 2, Classes: 10, Seed: 1}, c.Model)
	assert.False(t, c.Checkpoint)
	assert.Equal(t, 7, c.FineTuneSteps)
	assert.Equal(t, activation.Gaussian, c.Compression.Method)
	assert.Equal(t, lowrank.Float32, c.Compression.Precision)
	assert.Equal(t, activation.Fixed(5), c.Compression.Rank)
	assert.Equal(t, 1, c.Compression.PowerIters)

	o, err = parseDemo([]string{"-tol", "0.1"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, activation.Tolerance(0.1, 0), o.cfg.Compression.Rank, "-tol overrides -ratio")
	assert.True(t, o.cfg.Checkpoint)

	o, err = parseDemo([]string{"-h"}, &bytes.Buffer{})
	assert.NoError(t, err)
	assert.Nil(t, o, "-h runs nothing")
}

// TestDemoReport checks the labels of the memory rows and that the
// headline gives the time ratio next to the memory ratio.
func TestDemoReport(t *testing.T) {
	res := &vit.DemoResult{PretrainAccuracy: 0.9, PerParam: []vit.ParamCos{{Name: "head.w", Cos: 0.99}}}
	res.Baseline = vit.FineTuneResult{Accuracy: 0.95, Losses: []float64{1, 0.5}, Wall: 10 * time.Second, CPU: 20 * time.Second, PeakAll: 10 << 20}
	res.Baseline.Main.Total.Peak = 8 << 20
	res.Loract = vit.FineTuneResult{Accuracy: 0.94, Losses: []float64{1, 0.6}, Wall: 13 * time.Second, CPU: 25 * time.Second, PeakAll: 4 << 20}
	res.Loract.Main.Total.Peak, res.Loract.Main.Total.DensePeak = 1<<20, 8<<20
	for _, checkpoint := range []bool{true, false} {
		var buf bytes.Buffer
		report(&buf, res, vit.DemoConfig{Checkpoint: checkpoint}, time.Minute)
		out := buf.String()
		assert.NotContains(t, out, "compressible set")
		// The compressed set has no baseline column: the baseline's
		// 8 MiB of the same-named stats are every saved tensor.
		assert.Regexp(t, `\npeak, loract's compressed set¹ +- +1\.00 MiB\n`, out)
		assert.Regexp(t, `\n  the same tensors as float32 copies +- +8\.00 MiB\n`, out)
		assert.Regexp(t, `\npeak, all saved activations +10\.00 MiB +4\.00 MiB\n`, out)
		assert.NotRegexp(t, `8\.00 MiB +1\.00 MiB`, out, "no row sets the baseline beside the compressed set")
		if checkpoint {
			assert.Contains(t, out, "¹ each block's input, saved compressed")
		} else {
			assert.Contains(t, out, "¹ the inputs of the linear layers and GELUs, saved compressed")
		}
		assert.Contains(t, out, "memory: all saved activations peak at 40.0% of the baseline's 10.00 MiB, for 1.30× the baseline's wall time (1.25× its CPU time)")
		assert.Contains(t, out, "compressed set¹ alone: 12.5% of its float32 bytes")
	}
}

// TestWeightCache: the pre-trained weights round-trip through the cache
// file, and a missing file asks for pre-training.
func TestWeightCache(t *testing.T) {
	name := filepath.Join(t.TempDir(), "w.gob")
	load, save := weightCache(name)
	cfg := vit.Config{Side: 28, Patch: 14, Dim: 8, Heads: 2, MLP: 8, Depth: 1, Classes: 10, Seed: 1}
	ok, err := load(vit.New(cfg))
	require.NoError(t, err)
	assert.False(t, ok)
	src := vit.New(cfg)
	require.NoError(t, save(src))
	cfg.Seed = 2
	dst := vit.New(cfg)
	require.NotEqual(t, src.Weights(), dst.Weights())
	ok, err = load(dst)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, src.Weights(), dst.Weights())
	require.NoError(t, os.WriteFile(name, []byte("not gob"), 0o644))
	_, err = load(dst)
	assert.ErrorContains(t, err, "reading "+name)
}
