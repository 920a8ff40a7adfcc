package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/cmd/loract/internal/vitgpu"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

// TestDemoGPUFlags: bad -device gpu flag sets fail in the parser, before
// the device is opened (openGPU is replaced by a function that fails the
// test), and fast.
func TestDemoGPUFlags(t *testing.T) {
	opened := false
	orig := openGPU
	defer func() { openGPU = orig }()
	openGPU = func() (*gpu.Backend, error) {
		opened = true
		return nil, assert.AnError
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-device", "tpu"}, `unknown -device "tpu"`},
		{[]string{"-ops-ratio", "0.2"}, "-ops-ratio applies only with -device gpu"},
		{[]string{"-budget", "4", "-torch=false"}, "-budget, -torch apply only with -device gpu"},
		{[]string{"-mode", "both"}, "-mode both needs -device gpu"},
		{[]string{"-device", "gpu", "-workers", "1"}, "asynchronous workers are not supported"},
		{[]string{"-device", "gpu", "-pretrained", filepath.Join(t.TempDir(), "w.gob")}, "-pretrained caches the CPU model's weights"},
		{[]string{"-device", "gpu", "-ops-ratio", "0"}, "-ops-ratio 0"},
		{[]string{"-device", "gpu", "-ops-ratio", "1.5"}, "-ops-ratio 1.5"},
		{[]string{"-device", "gpu", "-budget", "0"}, "-budget 0"},
		{[]string{"-device", "gpu", "-budget", "NaN"}, "-budget NaN"},
		{[]string{"-device", "gpu", "-lr-warmup", "-1"}, "-lr-warmup -1"},
		{[]string{"-device", "gpu", "-twin-steps", "0"}, "-twin-steps 0"},
		{[]string{"-device", "gpu", "-ckpt-group", "-2"}, "-ckpt-group -2"},
		{[]string{"-ckpt-group", "2"}, "-ckpt-group applies only with -device gpu"},
		{[]string{"-ops-rebuild", "none"}, "-ops-rebuild applies to -mode ops without -sweep"},
		{[]string{"-mode", "ops", "-ops-rebuild", "gelu,x"}, `-ops-rebuild "gelu,x": a comma-separated list`},
		{[]string{"-mode", "ops", "-sweep", "bytes", "-ops-rebuild", "ln"}, "the sweep compares storages"},
		{[]string{"-mode", "ops", "-ckpt-ends"}, "-ckpt-ends applies to compressed checkpointing (-mode checkpoint) without -sweep on the CPU"},
		{[]string{"-sweep", "bytes", "-ckpt-ends"}, "-ckpt-ends applies to compressed checkpointing (-mode checkpoint) without -sweep on the CPU"},
		{[]string{"-ops-group", "2"}, "-ops-group applies only with -device gpu"},
		{[]string{"-profile-phase", "ops"}, "-profile-phase applies only with -device gpu"},
		{[]string{"-device", "gpu", "-mode", "checkpoint", "-ops-rebuild", "ln"}, "-ops-rebuild applies to -mode ops"},
		{[]string{"-device", "gpu", "-mode", "checkpoint", "-ops-group", "2"}, "-ops-group applies to -mode ops"},
		{[]string{"-device", "gpu", "-ops-group", "0"}, "-ops-group 0: must be ≥ 1"},
		{[]string{"-device", "gpu", "-sweep", "bytes", "-depth", "2"}, "use a depth ≥ 3 or -ckpt-ends=false"},
		{[]string{"-device", "gpu", "-mode", "ops", "-ops-rebuild", "ln,x"}, `-ops-rebuild "ln,x"`},
		{[]string{"-device", "gpu", "-activations", "fp8"}, `unknown -activations "fp8"`},
		{[]string{"-device", "gpu", "-json", filepath.Join(t.TempDir(), "no", "r.json")}, "-json"},
		{[]string{"-device", "gpu", "-heads", "5"}, "-heads 5 does not divide -dim 384"},
		{[]string{"-device", "gpu", "-patch", "5"}, "-patch 5 does not divide the image side 28"},
		{[]string{"-device", "gpu", "-mode", "fast"}, `unknown -mode "fast"`},
		{[]string{"-device", "gpu", "-ratio", "2"}, "-ratio 2"},
		{[]string{"-device", "gpu", "-batch", "0"}, "-batch 0"},
		{[]string{"-device", "gpu", "-mode", "ops", "-ckpt-ends=false"}, "-ckpt-ends applies to compressed checkpointing"},
		{[]string{"-device", "gpu", "-mode", "ops", "-ckpt-group", "2"}, "-ckpt-group applies to compressed checkpointing"},
		{[]string{"-device", "gpu", "-batch", "200000"}, "exceeds cuBLAS's 32-bit sizes"},
	} {
		start := time.Now()
		o, err := parseDemo(tc.args, &bytes.Buffer{})
		require.Error(t, err, "%v", tc.args)
		assert.Nil(t, o)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
		assert.EqualError(t, runDemo(tc.args), err.Error(), "%v", tc.args)
		assert.Less(t, time.Since(start), time.Second, "%v", tc.args)
	}
	assert.False(t, opened, "a bad flag set opened the device")
}

// TestDemoGPUConfig: -device gpu takes issue 12's model for the flags not
// set, keeps the ones set, runs both modes with their ranks, and turns
// the CPU flags into the device demo's configuration.
func TestDemoGPUConfig(t *testing.T) {
	o, err := parseDemo([]string{"-device", "gpu"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.NotNil(t, o.gpu)
	c := o.gpu.cfg
	assert.Equal(t, vit.Config{Side: 28, Patch: 4, Dim: 384, Heads: 6, MLP: 1536, Depth: 6, Classes: 10, Seed: 1}, c.Model)
	assert.Equal(t, 49, c.Model.Tokens())
	assert.Equal(t, 256, c.Batch)
	assert.Equal(t, 800, c.PretrainSteps)
	assert.Equal(t, 400, c.FineTuneSteps)
	assert.Equal(t, 8, c.LoRARank)
	assert.Equal(t, gpu.BFloat16, c.DType)
	assert.Equal(t, int64(8<<30), c.Budget)
	assert.Equal(t, 50, c.Warmup)
	require.Len(t, c.Runs, 2)
	assert.Equal(t, vitgpu.Checkpoint, c.Runs[0].Mode)
	assert.Equal(t, activation.Ratio(0.3), c.Runs[0].Compression.Rank)
	assert.Zero(t, c.Runs[0].Group, "all block inputs compressed together by default")
	assert.True(t, c.Runs[0].Ends, "the first and last blocks' inputs left out by default")
	assert.Equal(t, vitgpu.PerOp, c.Runs[1].Mode)
	assert.Equal(t, activation.Ratio(0.15), c.Runs[1].Compression.Rank)
	for _, r := range c.Runs {
		assert.Equal(t, lowrank.BFloat16, r.Compression.Precision)
		assert.Equal(t, activation.RowSampling, r.Compression.Method)
		assert.False(t, r.Compression.MeasureError, "no extra product inside the timed step")
		assert.Zero(t, r.Compression.Workers)
	}
	assert.True(t, o.gpu.torch)

	o, err = parseDemo([]string{"-device", "gpu", "-mode", "checkpoint", "-ckpt-group", "2"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Len(t, o.gpu.cfg.Runs, 1)
	assert.Equal(t, 2, o.gpu.cfg.Runs[0].Group)
	o, err = parseDemo([]string{"-device", "gpu", "-mode", "checkpoint", "-ckpt-ends=false"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.False(t, o.gpu.cfg.Runs[0].Ends)
	assert.Equal(t, []string{"blk1.in", "blk2.in"}, layerNames(gpuCheckpointShapes(vit.Config{Side: 8, Patch: 4, Depth: 4}, 1, true)), "the ends left out")
	assert.Len(t, gpuCheckpointShapes(vit.Config{Side: 8, Patch: 4, Depth: 4}, 1, false), 4)
	assert.Empty(t, gpuCheckpointShapes(vit.Config{Side: 8, Patch: 4, Depth: 2}, 1, true), "at depth 2 both blocks are ends")
	o, err = parseDemo([]string{"-device", "gpu", "-sweep", "bytes", "-depth", "2", "-ckpt-ends=false"}, &bytes.Buffer{})
	require.NoError(t, err, "without the ends a depth-2 sweep compresses both inputs")
	assert.False(t, o.gpu.cfg.Runs[0].Ends)

	o, err = parseDemo([]string{"-device", "gpu", "-mode", "ops"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Len(t, o.gpu.cfg.Runs, 1)
	r := o.gpu.cfg.Runs[0]
	assert.Equal(t, vitgpu.PerOp, r.Mode)
	assert.Equal(t, [3]bool{true, true, true}, [3]bool{r.RecomputeLN, r.RecomputeGELU, r.RecomputeAttention}, "every rebuild by default")
	assert.Equal(t, 3, r.OpsGroup, "three blocks' compressions together by default")
	o, err = parseDemo([]string{"-device", "gpu", "-mode", "ops", "-ops-group", "2"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, 2, o.gpu.cfg.Runs[0].OpsGroup)
	for _, tc := range []struct {
		v    string
		want [3]bool
	}{{"none", [3]bool{}}, {"gelu", [3]bool{false, true, false}}, {"ln, att", [3]bool{true, false, true}}} {
		o, err = parseDemo([]string{"-device", "gpu", "-mode", "ops", "-ops-rebuild", tc.v}, &bytes.Buffer{})
		require.NoError(t, err, tc.v)
		r := o.gpu.cfg.Runs[0]
		assert.Equal(t, tc.want, [3]bool{r.RecomputeLN, r.RecomputeGELU, r.RecomputeAttention}, tc.v)
	}

	o, err = parseDemo([]string{"-device", "gpu", "-depth", "2", "-mode", "ops", "-rank", "32", "-activations", "float32",
		"-finetune-steps", "9", "-budget", "0.5", "-torch=false", "-method", "gaussian", "-power", "1"}, &bytes.Buffer{})
	require.NoError(t, err)
	c = o.gpu.cfg
	assert.Equal(t, 2, c.Model.Depth)
	assert.Equal(t, 384, c.Model.Dim, "unset flags take the GPU defaults")
	assert.Equal(t, 9, c.FineTuneSteps)
	assert.Equal(t, gpu.Float32, c.DType)
	assert.Equal(t, int64(1<<29), c.Budget)
	require.Len(t, c.Runs, 1)
	assert.Equal(t, vitgpu.PerOp, c.Runs[0].Mode)
	assert.Equal(t, activation.Fixed(32), c.Runs[0].Compression.Rank, "-rank sets the per-op rank too")
	assert.Equal(t, activation.Gaussian, c.Runs[0].Compression.Method)
	assert.Equal(t, 1, c.Runs[0].Compression.PowerIters)
	assert.False(t, o.gpu.torch)

	assert.ElementsMatch(t, gpuDefaultOrder, keys(gpuDefaultValues), "the help lists every GPU default")
	assert.Contains(t, gpuDefaultsHelp(), "-dim 384 -heads 6 -mlp 1536 -depth 6 -patch 4 -batch 256")

	// The CPU demo is unchanged by the GPU flags' existence.
	o, err = parseDemo(nil, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Nil(t, o.gpu)
	assert.Equal(t, 64, o.cfg.Model.Dim)
	assert.Equal(t, vit.Rebuild{}, o.cfg.Rebuild, "checkpointing rebuilds nothing")
	assert.False(t, o.cfg.Ends, "on the CPU (depth 2) the ends are off by default")
	o, err = parseDemo([]string{"-ckpt-ends", "-depth", "4"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, o.cfg.Ends)
	// Per op the CPU demo rebuilds what the device model does.
	o, err = parseDemo([]string{"-mode", "ops"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, vit.Rebuild{LN: true, Attention: true, GELU: true}, o.cfg.Rebuild)
	o, err = parseDemo([]string{"-mode", "ops", "-ops-rebuild", "none"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, vit.Rebuild{}, o.cfg.Rebuild)
}

// TestDemoGPUUnavailable: without CUDA, -device gpu fails at once with
// the reason (an error wrapping gpu.ErrUnavailable), before MNIST is read.
func TestDemoGPUUnavailable(t *testing.T) {
	if gpu.Available() == nil {
		t.Skip("a CUDA device is present: the demo would run")
	}
	start := time.Now()
	ran := false
	orig := runGPUDemo
	defer func() { runGPUDemo = orig }()
	runGPUDemo = func(*gpu.Backend, vitgpu.DemoConfig, vit.Data, vit.Data, vit.Data, vit.Data) (*vitgpu.DemoResult, error) {
		ran = true
		return nil, assert.AnError
	}
	err := runDemo([]string{"-device", "gpu"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, gpu.ErrUnavailable), "%v", err)
	assert.Contains(t, err.Error(), "-device gpu: gpu: CUDA unavailable")
	assert.False(t, ran)
	// Reading MNIST alone takes over a second; opening nothing is fast.
	assert.Less(t, time.Since(start), time.Second)
}

// fixedGPUResult is a device demo result with round numbers.
func fixedGPUResult() (*vitgpu.DemoResult, *vitgpu.DemoConfig) {
	cfg := &vitgpu.DemoConfig{Batch: 256, Budget: 8 << 30, DType: gpu.BFloat16, TimedFrom: 5}
	res := &vitgpu.DemoResult{Device: "NVIDIA H200", Arch: "sm_90", Driver: 13000, PretrainAccuracy: 0.99,
		Setup: 2 << 30, DataBytes: 200 << 20}
	res.Pretrain = vitgpu.Phase{StepMs: 7, Timed: 795, Wall: 6 * time.Second}
	res.Baseline = vitgpu.RunResult{Name: "as they are", Mode: vitgpu.Plain, Accuracy: 0.98,
		Phase:    vitgpu.Phase{StepMs: 8, StepMsMin: 7.5, Saved: 1000 << 20, SavedTensors: 990 << 20, Peak: 3 << 30, Losses: []float64{1, 0.5}},
		MaxBatch: 2000, PerSample: 4 << 20, Fixed: 0}
	res.Runs = []vitgpu.RunResult{
		{Name: "loract checkpoint", Mode: vitgpu.Checkpoint, Accuracy: 0.9775,
			Phase:    vitgpu.Phase{StepMs: 10, StepMsMin: 9, CompressMs: 1, RecomputeMs: 2, Saved: 180 << 20, SavedTensors: 170 << 20, Peak: 2 << 30, Losses: []float64{1, 0.6}},
			MaxBatch: 11000, PerSample: 0.7 * (1 << 20), Fixed: 14 << 20, GradCos: 0.995, MinCos: 0.97, MinParam: "blk0.q.lora_a",
			Layers: []activation.LayerStats{{Layer: "blk0.in", Calls: 400, Rank: 116, Peak: 3 << 20, DensePeak: 18 << 20, RelError: 0.05, MaxRelError: 0.07}}},
		{Name: "loract ops", Mode: vitgpu.PerOp, Accuracy: 0.979,
			Phase:    vitgpu.Phase{StepMs: 8.8, StepMsMin: 8.25, CompressMs: 0.8, RecomputeMs: 0.44, Saved: 480 << 20, Peak: 2.5 * (1 << 30), Losses: []float64{1, 0.55}},
			MaxBatch: 4300, PerSample: 1.9 * (1 << 20), GradCos: 0.999, MinCos: 0.99, MinParam: "blk1.fc2.lora_a"},
	}
	res.Memory = vitgpu.MemCheck{PoolReserved: 4 << 30, DriverUsed: 4<<30 + 20<<20, Mallocs: 300, PoolPeak: 3 << 30}
	return res, cfg
}

// TestDemoGPUReport checks the device demo's table on fixed results: one
// column per run, the ratios against the baseline, the shares of the
// step, and the twin's ratio.
func TestDemoGPUReport(t *testing.T) {
	res, cfg := fixedGPUResult()
	var buf bytes.Buffer
	reportGPU(&buf, res, cfg)
	out := buf.String()
	for _, want := range []string{
		"pre-trained on 0–4: test accuracy 99.00%; step 7.00 ms (median of 795), 6.0 s",
		"as they are (bf16)",
		"loract checkpoint",
		"loract ops",
	} {
		assert.Contains(t, out, want)
	}
	line := func(label string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, label) {
				return l
			}
		}
		t.Fatalf("no line %q in\n%s", label, out)
		return ""
	}
	assert.Regexp(t, `98\.00% +97\.75% +97\.90%$`, line("test accuracy (digits 5–9)"))
	assert.Regexp(t, `- +0\.25 points +0\.10 points$`, line("  accuracy drop"))
	assert.Regexp(t, `1000\.0 MiB +180\.0 MiB +480\.0 MiB$`, line("saved activations, peak (allocator)"))
	assert.Regexp(t, `- +18\.0% +48\.0%$`, line("  of the baseline's"))
	assert.Regexp(t, `- +\+25\.0% +\+10\.0%$`, line("  overhead"))
	assert.Regexp(t, `7\.50 ms +9\.00 ms \(\+20\.0%\) +8\.25 ms \(\+10\.0%\)$`, line("fastest timed step (overhead)"))
	assert.Regexp(t, `- +1\.00 ms \(10\.0%\) +0\.80 ms \(9\.1%\)$`, line("  in Compress calls"))
	assert.Regexp(t, `- +2\.00 ms \(20\.0%\) +0\.44 ms \(5\.0%\)$`, line("  rebuilding and recomputing"))
	assert.Regexp(t, `2000 +11000 +4300$`, line("largest batch in 8.00 GiB of saved activations"))
	assert.Regexp(t, `4\.000 MiB \+ 0\.0 MiB +0\.700 MiB \+ 14\.0 MiB`, line("  per sample + fixed"))
	assert.Regexp(t, `- +0\.9950 +0\.9990$`, line("gradient cosine against plain"))
	assert.Contains(t, out, "blk0.in")
	assert.Contains(t, out, "cuMemGetInfo shows 4.02 GiB less free, a difference of 20.0 MiB")

	buf.Reset()
	reportTwin(&buf, res, []vitgpu.TwinResult{{Mode: "eager", Ms: 10, SavedBytes: 1200 << 20, StepPeakBytes: 4 << 30}}, `{"torch": "2.11.0"}`)
	assert.Regexp(t, `PyTorch eager +10\.00 +1200\.0 MiB +4\.00 GiB +0\.80×`, buf.String())

	buf.Reset()
	markdownGPU(&buf, res, cfg, nil, []string{"-device", "gpu"})
	md := buf.String()
	assert.Contains(t, md, "| fine-tuned on 5–9 | as they are | loract checkpoint | loract ops |")
	assert.Contains(t, md, "| saved activations, peak (allocator) | 1000.0 MiB | 180.0 MiB | 480.0 MiB |")
	assert.Contains(t, md, "`go run ./cmd/loract demo -device gpu`")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDemoGPUSweep: -sweep bytes with -device gpu runs compressed
// checkpointing of every setting at the bytes of the bf16 reference (the
// model's four 12544×384 compressed block inputs: the first and the last
// of six are left out by default), names each run, skips the twin,
// refuses another mode, and reports a row per setting.
func TestDemoGPUSweep(t *testing.T) {
	o, err := parseDemo([]string{"-device", "gpu", "-sweep", "bytes"}, &bytes.Buffer{})
	require.NoError(t, err)
	g := o.gpu
	require.NotNil(t, g)
	assert.False(t, g.torch, "no twin in a sweep")
	require.Len(t, g.cfg.Runs, len(g.sweep))
	// The reference, each storage at a ratio and at the budget with and
	// without the default floor, but for the 8-bit residual: alone it
	// takes L·d bytes a block input, more than the reference's
	// 2·116·(L+d) at L = 12544, d = 384.
	require.Len(t, g.sweep, 1+(len(storages)-1)+2*(1+(len(storages)-1)))
	for _, st := range g.sweep {
		assert.NotContains(t, st.Name, "8-bit residual")
	}
	ref := g.sweep[0]
	assert.True(t, ref.ref)
	// bf16 at ⌈0.3·384⌉ = 116: 2 bytes × 116 × (12544 + 384) per block input.
	assert.Equal(t, 4*2*116*(12544+384), ref.bytes)
	for i, r := range g.cfg.Runs {
		st := g.sweep[i]
		assert.Equal(t, vitgpu.Checkpoint, r.Mode)
		assert.Equal(t, st.Name, r.Name)
		assert.False(t, r.Compression.MeasureError)
		assert.LessOrEqual(t, st.bytes, ref.bytes, "%s stores no more than the reference", st.Name)
	}
	_, err = parseDemo([]string{"-device", "gpu", "-sweep", "bytes", "-mode", "both"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "runs compressed checkpointing: not with -mode both")

	res := &vitgpu.DemoResult{Device: "H", Baseline: vitgpu.RunResult{Phase: vitgpu.Phase{StepMs: 10, Saved: 1000 << 20}, Accuracy: 0.95}}
	for i, st := range g.sweep {
		res.Runs = append(res.Runs, vitgpu.RunResult{Name: st.Name, Phase: vitgpu.Phase{StepMs: 15, Saved: 200 << 20}, Accuracy: 0.94, GradCos: 0.99, RefGradCos: 0.98,
			Layers: []activation.LayerStats{{Layer: "blk0.in", Rank: 100 + i, Peak: 1 << 20, MeanRelError: 0.1}, {Layer: "blk1.in", Rank: 90, Peak: 1 << 20, MeanRelError: 0.3}}})
	}
	var buf bytes.Buffer
	o.sweepPlot = filepath.Join(t.TempDir(), "eq.png")
	require.NoError(t, o.reportGPUSweep(&buf, res, &g.cfg, progress.NewLog(&bytes.Buffer{})))
	out := buf.String()
	assert.Contains(t, out, "every setting stores at most")
	assert.Contains(t, out, "the budget rows take their rank-1 calibration step on the first batch without an update")
	for i, st := range g.sweep {
		assert.Equal(t, st.budget, g.cfg.Runs[i].PlanSteps == 1, "%s: the budget runs, and only they, skip the calibration update", st.Name)
	}
	o2, err := parseDemo([]string{"-device", "gpu", "-sweep", "bytes", "-calibration-update"}, &bytes.Buffer{})
	require.NoError(t, err)
	for _, r := range o2.gpu.cfg.Runs {
		assert.Zero(t, r.PlanSteps, "-calibration-update: %s applies every update", r.Name)
	}
	_, err = parseDemo([]string{"-calibration-update"}, &bytes.Buffer{})
	assert.Error(t, err, "-calibration-update is a -device gpu flag")
	assert.Regexp(t, `bf16 factors, ratio 0\.3 +116/384 +2\.0 MiB +200\.0 MiB +20\.0% +0\.2000 +94\.00% +1\.00 +0\.9900 +0\.9800 +15\.00 ms +\+50\.0%`, out)
	assert.Regexp(t, `int8 factors, budget +\d+/90 `, out, "a budget row shows the planned ranks")
	assert.Regexp(t, `int8 factors, budget, floor 0\.8 +\d+/90 `, out)
	_, err = parseDemo([]string{"-device", "gpu", "-sweep", "bytes", "-budget-floor", "1.5"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "-budget-floor 1.5 outside [0, 1]")
	assert.FileExists(t, o.sweepPlot)
}

// layerNames returns the shapes' layer names.
func layerNames(shapes []vit.Shape) []string {
	var names []string
	for _, s := range shapes {
		names = append(names, s.Layer)
	}
	return names
}
