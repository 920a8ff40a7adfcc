package vitgpu

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
)

// These tests need no GPU.

// TestKernelList checks that every extern "C" __global__ function of
// kernels.cu has exactly one entry in kernelNames (and so one typed
// wrapper), and that kernelNames names nothing else.
func TestKernelList(t *testing.T) {
	re := regexp.MustCompile(`extern "C" __global__ void (\w+)\s*\(`)
	var inSource []string
	for _, m := range re.FindAllStringSubmatch(kernelSource, -1) {
		inSource = append(inSource, m[1])
	}
	got := slices.Clone(kernelNames[:])
	for _, n := range got {
		assert.NotEmpty(t, n, "a kernel constant has no name")
	}
	slices.Sort(got)
	slices.Sort(inSource)
	assert.Equal(t, inSource, got, "kernelNames must list exactly the kernels of kernels.cu")
	assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "a kernel is listed twice")
}

var tinyCfg = vit.Config{Side: 12, Patch: 4, Dim: 16, Heads: 2, MLP: 24, Depth: 2, Classes: 3, Seed: 7}

// TestLayout checks the parameter layout against package vit without a
// device: the base parameters have vit's names and shapes in vit's order
// (so that LoadBase's pairing is right), the adapters AddLoRA's, every
// parameter is aligned and disjoint from the others, and the head is the
// tail of the base arena from headOff on.
func TestLayout(t *testing.T) {
	m := &Model{}
	m.layout(tinyCfg, 2)
	cpu := vit.New(tinyCfg)
	base := m.baseParams()
	ds := cpuBase(cpu)
	require.Len(t, base, len(cpu.Params()), "every base parameter of vit is on the device")
	require.Len(t, ds, len(base))
	for i, p := range cpu.Params() {
		assert.Equal(t, p.Name, base[i].name)
		r, c := p.W.Dims()
		assert.Equal(t, [2]int{r, c}, [2]int{base[i].rows, base[i].cols}, p.Name)
		assert.Same(t, p.W, ds[i], "cpuBase pairs %s with its own tensor", p.Name)
	}
	cpu.AddLoRA(2, 1, 3)
	lora := m.loraParams()
	trainable := cpu.Params() // adapters in order, then the head
	require.Len(t, trainable, len(lora)+2)
	for i, p := range lora {
		assert.Equal(t, trainable[i].Name, p.name)
		r, c := trainable[i].W.Dims()
		assert.Equal(t, [2]int{r, c}, [2]int{p.rows, p.cols}, p.name)
	}
	assert.Equal(t, []string{"head.w", "head.b"}, []string{trainable[len(lora)].Name, trainable[len(lora)+1].Name})
	for _, set := range [][]*param{base, lora} {
		end := 0
		for _, p := range set {
			assert.Zero(t, p.off%align, "%s aligned", p.name)
			assert.GreaterOrEqual(t, p.off, end, "%s after the previous parameter", p.name)
			end = p.off + p.rows*p.cols
		}
		assert.Equal(t, set[0].ar.n, end, "the arena ends with its last parameter")
	}
	assert.Equal(t, m.headOff, m.head.w.off)
	for _, p := range base {
		if p != m.head.w && p != m.head.b {
			assert.Less(t, p.off+p.rows*p.cols, m.headOff, "%s before the head", p.name)
		}
	}
}

// TestSchedule: batches are drawn without replacement within an epoch,
// every epoch is a permutation, and equal seeds give equal batches.
func TestSchedule(t *testing.T) {
	const n, batch, steps = 10, 4, 7 // 28 draws: two full epochs and 8 more
	s := Schedule(n, batch, steps, 5)
	require.Len(t, s, batch*steps)
	for e := 0; e+n <= len(s); e += n {
		epoch := slices.Clone(s[e : e+n])
		slices.Sort(epoch)
		for i, v := range epoch {
			assert.Equal(t, i, v, "epoch at %d is a permutation", e)
		}
	}
	assert.Equal(t, s, Schedule(n, batch, steps, 5))
	assert.NotEqual(t, s, Schedule(n, batch, steps, 6))
}

// TestFitBudget checks the line through two measurements and the largest
// batch on exact numbers: 1000 + 250·b bytes.
func TestFitBudget(t *testing.T) {
	per, fixed, n := fitBudget(256, 1000+250*256, 128, 1000+250*128, 1<<20)
	assert.Equal(t, 250.0, per)
	assert.Equal(t, 1000.0, fixed)
	assert.Equal(t, (1<<20-1000)/250, n)
	_, _, n = fitBudget(256, 1000+250*256, 128, 1000+250*128, 1000)
	assert.Zero(t, n, "no batch fits the fixed bytes alone")
	per, fixed, n = fitBudget(64, 6400, 64, 6400, 1000)
	assert.Equal(t, 100.0, per)
	assert.Zero(t, fixed)
	assert.Equal(t, 10, n)
}

func demoConfig() DemoConfig {
	return DemoConfig{Model: tinyCfg, Batch: 8, DType: gpu.BFloat16, PretrainSteps: 4, FineTuneSteps: 4,
		PretrainLR: 1e-3, FineTuneLR: 1e-3, LoRARank: 2, LoRAScale: 1, Budget: 1 << 30,
		Runs: []RunConfig{{Mode: Checkpoint, Compression: activation.Config{Rank: activation.Fixed(4)}}}}
}

// TestDemoConfigCheck: invalid configurations are errors before any
// device work.
func TestDemoConfigCheck(t *testing.T) {
	good := demoConfig()
	require.NoError(t, good.Check())
	for name, mod := range map[string]func(c *DemoConfig){
		"heads":     func(c *DemoConfig) { c.Model.Heads = 3 },
		"patch":     func(c *DemoConfig) { c.Model.Patch = 5 },
		"batch":     func(c *DemoConfig) { c.Batch = 0 },
		"dtype":     func(c *DemoConfig) { c.DType = gpu.DType(7) },
		"steps":     func(c *DemoConfig) { c.FineTuneSteps = 0 },
		"lr":        func(c *DemoConfig) { c.FineTuneLR = 0 },
		"lora rank": func(c *DemoConfig) { c.LoRARank = 0 },
		"budget":    func(c *DemoConfig) { c.Budget = 0 },
		"warmup":    func(c *DemoConfig) { c.Warmup = -1 },
		"mode":      func(c *DemoConfig) { c.Runs[0].Mode = Plain },
		"workers":   func(c *DemoConfig) { c.Runs[0].Compression.Workers = 1 },
		"group":     func(c *DemoConfig) { c.Runs[0].Group = -1 },
		"too large": func(c *DemoConfig) { c.Batch = 1 << 24 },
	} {
		c := demoConfig()
		mod(&c)
		assert.Error(t, c.Check(), name)
	}
}

// TestTwinArgs: the twin gets the demo's model and batch.
func TestTwinArgs(t *testing.T) {
	d := demoConfig()
	tc := TwinConfig{Demo: &d, Warmup: 3, Repeats: 9, Modes: []string{"eager", "sdpa"}}
	got := strings.Join(tc.Args(), " ")
	assert.Equal(t, "--side 12 --patch 4 --dim 16 --heads 2 --mlp 24 --depth 2 --classes 3 --batch 8 --lora-rank 2 "+
		"--lora-scale 1 --lr 0.001 --warmup 3 --repeats 9 --seed 7 --modes eager,sdpa", got)
	// Every option the Go side passes is one the script declares.
	for _, a := range tc.Args() {
		if strings.HasPrefix(a, "--") {
			assert.Contains(t, string(twinScript), `"`+a+`"`, "the script declares %s", a)
		}
	}
}

// TestRunTwin runs the twin through a stand-in interpreter that prints
// what the script would: the env line, a line that is not JSON (skipped),
// a record and an error record (logged); a failing interpreter is an
// error with its stderr.
func TestRunTwin(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "python")
	script := `#!/bin/sh
echo '{"env": {"torch": "2.11.0"}}'
echo 'warming up'
echo '{"peer": "torch", "mode": "eager", "batch": 256, "ms": 12.5, "ms_min": 12.1, "repeats": 30, "saved_bytes": 1000, "step_peak_bytes": 9000, "base_bytes": 100, "device": "H"}'
echo '{"error": "unknown mode x"}'
`
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	var log []string
	logf := func(f string, a ...any) { log = append(log, f) }
	d := demoConfig()
	recs, env, err := RunTwin(context.Background(), TwinConfig{Python: fake, Demo: &d, Repeats: 30, Modes: []string{"eager"}}, logf)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, TwinResult{Mode: "eager", Batch: 256, Ms: 12.5, MsMin: 12.1, Repeats: 30, SavedBytes: 1000,
		StepPeakBytes: 9000, BaseBytes: 100, Device: "H"}, recs[0])
	assert.Contains(t, env, "2.11.0")
	assert.Len(t, log, 2, "the command and the error record are logged")

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho boom >&2\nexit 3\n"), 0o755))
	_, _, err = RunTwin(context.Background(), TwinConfig{Python: bad, Demo: &d}, logf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "boom")
}
