package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vitgpu"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

var (
	diagnose     = flag.Bool("gpu.diagnose", false, "run TestGPUBudgetDiagnosis (a CUDA device and the MNIST data)")
	diagnoseRuns = flag.String("gpu.diagnose.runs", "floors", "TestGPUBudgetDiagnosis's runs: floors (the reference and the budget with floors 0.5 and 0.8), all (also the budget as it is and planned first), planned (floors 0.8 and 0.9, each planned first) seeds (the reference and floors 0.8 and 1, each at three sketch seeds), int8 (the int8 factors' ratio and floor 0.8 at three seeds) fp32 (float32 factors at twice the bytes: the ratio, and floor 0.8 at three seeds) oversample (the reference with the budget's sketch width, ℓ = 2k + 8, at three seeds), planned3 (floor 0.8 after a planning step, bf16 and int8 factors, three seeds each) or residual3 (bf16 and int8 factors plus a 4-bit residual, at the ratio and under the budget planned first, three seeds each)")
)

// TestGPUBudgetDiagnosis (behind -gpu.diagnose) runs the GPU equal-bytes
// sweep's bf16 settings — factors at ratio 0.3 and under the budget of its
// bytes (docs/results.md, "On the GPU": the budget row's gradient cosine
// is −0.03) — as `loract demo -device gpu -sweep bytes` configures them,
// the budget under floors 0.5 and 0.8 (activation.BudgetFloor), and with
// -gpu.diagnose.runs=all also the budget as it is and after a planning
// step without an update (so that no update comes from its rank-1
// calibration step); with -gpu.diagnose.runs=planned floors 0.8 and 0.9
// after such a step; with -gpu.diagnose.runs=seeds the reference and
// floors 0.8 and 1, each at the sketches' seeds s, s+1 and s+2 (the drift
// between runs of one setting that only the sketches' draws set apart);
// int8 the same for int8 factors (ratio and floor 0.8); fp32 float32
// factors at twice the bytes, whose floor does not stop at a layer's bf16
// numerical rank (the ratio, and floor 0.8 at three seeds); oversample the
// reference's rank from the budget's sketch width, ℓ = 2k + 8, at three
// seeds; planned3 floor 0.8 after a planning step, bf16 and int8 factors,
// three seeds each; residual3 the 4-bit residual settings (bf16 and int8
// factors, at the ratio and under the budget planned first), three seeds
// each.
// It logs every
// layer's errors and each run's gradient cosine on its own fine-tuned
// weights and on the baseline's, which separates what the compression
// does to one gradient from what it did to training. A diagnosis, not a
// check.
func TestGPUBudgetDiagnosis(t *testing.T) {
	if !*diagnose {
		t.Skip("pass -gpu.diagnose")
	}
	o, err := parseDemo([]string{"-device", "gpu", "-sweep", "bytes", "-calibration-update"}, io.Discard)
	require.NoError(t, err)
	b, err := gpu.Open(0, nil)
	require.NoError(t, err)
	defer b.Close()
	d, err := loadDemoData()
	require.NoError(t, err)
	cfg := o.gpu.cfg
	runs, err := diagnosisRuns(o, *diagnoseRuns)
	require.NoError(t, err)
	cfg.Runs = runs
	cfg.Log = t.Logf
	res, err := vitgpu.RunDemo(b, cfg, d.pre, d.fine, d.testPre, d.testFine)
	require.NoError(t, err)
	for _, r := range res.Runs {
		t.Logf("%s: accuracy %.4f; grad cosine on its weights %.4f (lowest %s %.4f), on the baseline's %.4f (lowest %s %.4f); first losses %.3f, last %.3f",
			r.Name, r.Accuracy, r.GradCos, r.MinParam, r.MinCos, r.RefGradCos, r.RefMinParam, r.RefMinCos, r.Losses[:5], r.Losses[len(r.Losses)-5:])
		for _, l := range r.Layers {
			t.Logf("    %s rank %d: last %.4f, max %.4f, mean %.4f", l.Layer, l.Rank, l.RelError, l.MaxRelError, l.MeanRelError)
		}
	}
}

// threeSeeds returns each name followed by its reseeded names (seeds
// seed+1 and seed+2), as reseeded names them.
func threeSeeds(seed uint64, names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n, fmt.Sprintf("%s, sketch seed %d", n, seed+1), fmt.Sprintf("%s, sketch seed %d", n, seed+2))
	}
	return out
}

// reseeded returns r with its sketches' seed advanced by by, named so.
func reseeded(r vitgpu.RunConfig, by uint64) vitgpu.RunConfig {
	r.Compression.Seed += by
	r.Name += fmt.Sprintf(", sketch seed %d", r.Compression.Seed)
	return r
}

// diagnosisRuns returns TestGPUBudgetDiagnosis's runs for mode (see
// -gpu.diagnose.runs), built from the GPU sweep's configuration in o.
func diagnosisRuns(o *demoOptions, mode string) ([]vitgpu.RunConfig, error) {
	cfg := o.gpu.cfg
	var missing error
	// The sweep's runs by name, and the budget's bytes.
	var bytes int
	run := func(prefix, kind string) vitgpu.RunConfig {
		for i, r := range cfg.Runs {
			if strings.HasPrefix(r.Name, prefix+", ") && strings.Contains(r.Name, kind) && !strings.Contains(r.Name, "floor") {
				bytes = o.gpu.sweep[i].bytes // every setting's: the reference's
				return r
			}
		}
		missing = fmt.Errorf("the sweep has no %s run of %q", kind, prefix)
		return vitgpu.RunConfig{}
	}
	ref, bud := run("bf16 factors", "ratio "), run("bf16 factors", "budget")
	floored := func(r vitgpu.RunConfig, bytes int, f float64, plan int) vitgpu.RunConfig {
		r.Compression.Rank = activation.BudgetFloor(bytes, f)
		r.Name = strings.SplitN(r.Name, ", ", 2)[0] + ", " + r.Compression.Rank.String()
		if r.PlanSteps = plan; plan > 0 {
			r.Name += ", planned first"
		}
		return r
	}
	var runs []vitgpu.RunConfig
	switch mode {
	case "floors":
		runs = append(runs, ref, floored(bud, bytes, 0.5, 0), floored(bud, bytes, 0.8, 0))
	case "all":
		p := bud
		p.PlanSteps = 1
		p.Name += ", planned first"
		runs = append(runs, ref, bud, p, floored(bud, bytes, 0.5, 0), floored(bud, bytes, 0.8, 0))
	case "planned":
		runs = append(runs, ref, floored(bud, bytes, 0.8, 1), floored(bud, bytes, 0.9, 1))
	case "seeds":
		runs = append(runs, ref, reseeded(ref, 1), reseeded(ref, 2))
		for _, f := range []float64{0.8, 1} {
			fl := floored(bud, bytes, f, 0)
			runs = append(runs, fl, reseeded(fl, 1), reseeded(fl, 2))
		}
	case "int8":
		r8, b8 := run("int8 factors", "ratio "), run("int8 factors", "budget")
		fl := floored(b8, bytes, 0.8, 0)
		runs = append(runs, r8, reseeded(r8, 1), reseeded(r8, 2), fl, reseeded(fl, 1), reseeded(fl, 2))
	case "fp32":
		// float32 factors at twice the bytes: the same ranks as bf16, but a
		// floor that stops at the float32 rounding (u² = 2⁻⁴⁸), so no
		// layer is held at its bf16 numerical rank.
		r32 := ref
		r32.Compression.Precision = lowrank.Float32
		r32.Name = "fp32 factors, " + r32.Compression.Rank.String()
		b32 := bud
		b32.Compression.Precision = lowrank.Float32
		b32.Name = "fp32 factors, budget"
		fl := floored(b32, 2*bytes, 0.8, 0)
		runs = append(runs, r32, fl, reseeded(fl, 1), reseeded(fl, 2))
	case "planned3":
		// Floor 0.8 after a planning step without an update (no update from
		// the rank-1 calibration step), bf16 and int8 factors, three seeds.
		b8 := run("int8 factors", "budget")
		for _, r := range []vitgpu.RunConfig{floored(bud, bytes, 0.8, 1), floored(b8, bytes, 0.8, 1)} {
			runs = append(runs, r, reseeded(r, 1), reseeded(r, 2))
		}
	case "residual3":
		// The quantized residual's settings: bf16 and int8 factors plus a
		// 4-bit residual at the ratio of the reference's bytes and under
		// its budget, planned first as the sweep runs it, three seeds each.
		for _, prefix := range []string{"bf16 factors + 4-bit residual", "int8 factors + 4-bit residual"} {
			p := run(prefix, "budget")
			p.PlanSteps = 1
			p.Name += ", planned first"
			for _, r := range []vitgpu.RunConfig{run(prefix, "ratio "), p} {
				runs = append(runs, r, reseeded(r, 1), reseeded(r, 2))
			}
		}
	case "oversample":
		// The budget's sketch width at the reference's rank: ℓ = 2k + 8,
		// truncated to k through the ℓ×ℓ eigenproblem, as a Budget
		// compression is.
		k, _ := ref.Compression.Rank.Rank(1<<20, o.gpu.cfg.Model.Dim)
		ov := ref
		ov.Compression.Oversample = k + 8
		ov.Name = fmt.Sprintf("%s, oversample %d", ref.Name, k+8)
		runs = append(runs, ov, reseeded(ov, 1), reseeded(ov, 2))
	default:
		return nil, fmt.Errorf("unknown -gpu.diagnose.runs %q", mode)
	}
	return runs, missing
}

// TestDiagnosisRuns checks TestGPUBudgetDiagnosis's run lists on the CPU:
// every mode's names, seeds, precisions and budgets as documented, every
// budget at the reference's bytes (twice them for float32 factors).
func TestDiagnosisRuns(t *testing.T) {
	o, err := parseDemo([]string{"-device", "gpu", "-sweep", "bytes", "-calibration-update"}, io.Discard)
	require.NoError(t, err)
	seed := o.gpu.cfg.Runs[0].Compression.Seed
	var bytes int
	for i, s := range o.gpu.sweep {
		if s.ref {
			bytes = s.bytes
			require.Equal(t, "bf16 factors, ratio 0.3", o.gpu.cfg.Runs[i].Name)
		}
	}
	require.Positive(t, bytes)
	b := func(f float64) string { return activation.BudgetFloor(bytes, f).String() }
	b32 := activation.BudgetFloor(2*bytes, 0.8).String()
	for mode, want := range map[string][]string{
		"floors":  {"bf16 factors, ratio 0.3", "bf16 factors, " + b(0.5), "bf16 factors, " + b(0.8)},
		"all":     {"bf16 factors, ratio 0.3", "bf16 factors, budget", "bf16 factors, budget, planned first", "bf16 factors, " + b(0.5), "bf16 factors, " + b(0.8)},
		"planned": {"bf16 factors, ratio 0.3", "bf16 factors, " + b(0.8) + ", planned first", "bf16 factors, " + b(0.9) + ", planned first"},
		"seeds": {"bf16 factors, ratio 0.3", fmt.Sprintf("bf16 factors, ratio 0.3, sketch seed %d", seed+1), fmt.Sprintf("bf16 factors, ratio 0.3, sketch seed %d", seed+2),
			"bf16 factors, " + b(0.8), fmt.Sprintf("bf16 factors, %s, sketch seed %d", b(0.8), seed+1), fmt.Sprintf("bf16 factors, %s, sketch seed %d", b(0.8), seed+2),
			"bf16 factors, " + b(1), fmt.Sprintf("bf16 factors, %s, sketch seed %d", b(1), seed+1), fmt.Sprintf("bf16 factors, %s, sketch seed %d", b(1), seed+2)},
		"int8": {"int8 factors, ratio 0.6015625", fmt.Sprintf("int8 factors, ratio 0.6015625, sketch seed %d", seed+1), fmt.Sprintf("int8 factors, ratio 0.6015625, sketch seed %d", seed+2),
			"int8 factors, " + b(0.8), fmt.Sprintf("int8 factors, %s, sketch seed %d", b(0.8), seed+1), fmt.Sprintf("int8 factors, %s, sketch seed %d", b(0.8), seed+2)},
		"planned3": {"bf16 factors, " + b(0.8) + ", planned first", fmt.Sprintf("bf16 factors, %s, planned first, sketch seed %d", b(0.8), seed+1), fmt.Sprintf("bf16 factors, %s, planned first, sketch seed %d", b(0.8), seed+2),
			"int8 factors, " + b(0.8) + ", planned first", fmt.Sprintf("int8 factors, %s, planned first, sketch seed %d", b(0.8), seed+1), fmt.Sprintf("int8 factors, %s, planned first, sketch seed %d", b(0.8), seed+2)},
		"residual3": threeSeeds(seed, "bf16 factors + 4-bit residual, ratio 0.0283203125", "bf16 factors + 4-bit residual, budget, planned first",
			"int8 factors + 4-bit residual, ratio 0.056640625", "int8 factors + 4-bit residual, budget, planned first"),
		"oversample": {"bf16 factors, ratio 0.3, oversample 124", fmt.Sprintf("bf16 factors, ratio 0.3, oversample 124, sketch seed %d", seed+1), fmt.Sprintf("bf16 factors, ratio 0.3, oversample 124, sketch seed %d", seed+2)},
		"fp32":       {"fp32 factors, ratio 0.3", "fp32 factors, " + b32, fmt.Sprintf("fp32 factors, %s, sketch seed %d", b32, seed+1), fmt.Sprintf("fp32 factors, %s, sketch seed %d", b32, seed+2)},
	} {
		runs, err := diagnosisRuns(o, mode)
		require.NoError(t, err, mode)
		var names []string
		for _, r := range runs {
			names = append(names, r.Name)
			wantPrec := lowrank.BFloat16
			if strings.HasPrefix(r.Name, "fp32") {
				wantPrec = lowrank.Float32
			}
			assert.Equal(t, wantPrec, r.Compression.Precision, "%s: %s", mode, r.Name)
			if strings.HasPrefix(r.Name, "int8") {
				assert.Equal(t, 8, r.Compression.FactorBits, "%s: %s", mode, r.Name)
			}
			wantBits := 0
			if strings.Contains(r.Name, "residual") {
				wantBits = 4
			}
			assert.Equal(t, wantBits, r.Compression.ResidualBits, "%s: %s", mode, r.Name)
			wantPlan := 0
			if strings.Contains(r.Name, "planned first") {
				wantPlan = 1
			}
			assert.Equal(t, wantPlan, r.PlanSteps, "%s: %s", mode, r.Name)
			if strings.Contains(r.Name, "oversample") {
				assert.Equal(t, 124, r.Compression.Oversample, "%s: %s: ℓ = 2k + 8 at k = 116", mode, r.Name)
			}
		}
		assert.Equal(t, want, names, mode)
	}
	_, err = diagnosisRuns(o, "nonsense")
	assert.Error(t, err)
}
