package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vitgpu"
	"github.com/loract/loract/gpu"
)

var (
	diagnose     = flag.Bool("gpu.diagnose", false, "run TestGPUBudgetDiagnosis (a CUDA device and the MNIST data)")
	diagnoseRuns = flag.String("gpu.diagnose.runs", "floors", "TestGPUBudgetDiagnosis's runs: floors (the reference and the budget with floors 0.5 and 0.8), all (also the budget as it is and planned first), planned (floors 0.8 and 0.9, each planned first) or seeds (the reference and floors 0.8 and 1, each at three sketch seeds)")
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
// between runs of one setting that only the sketches' draws set apart).
// It logs every
// layer's errors and each run's gradient cosine on its own fine-tuned
// weights and on the baseline's, which separates what the compression
// does to one gradient from what it did to training. A diagnosis, not a
// check.
func TestGPUBudgetDiagnosis(t *testing.T) {
	if !*diagnose {
		t.Skip("pass -gpu.diagnose")
	}
	o, err := parseDemo([]string{"-device", "gpu", "-sweep", "bytes"}, io.Discard)
	require.NoError(t, err)
	b, err := gpu.Open(0, nil)
	require.NoError(t, err)
	defer b.Close()
	d, err := loadDemoData()
	require.NoError(t, err)
	cfg := o.gpu.cfg
	var runs []vitgpu.RunConfig
	for i, r := range cfg.Runs {
		switch {
		case !strings.HasPrefix(r.Name, "bf16 factors, "):
			continue
		case strings.Contains(r.Name, ", ratio "):
			runs = append(runs, r) // the reference, bf16 factors at ratio 0.3
			if *diagnoseRuns == "seeds" {
				runs = append(runs, reseeded(r, 1), reseeded(r, 2))
			}
			continue
		case !strings.HasSuffix(r.Name, ", budget"):
			continue // the sweep's floor row: the floors are set below
		}
		floors, plan := []float64{0.5, 0.8}, 0
		switch *diagnoseRuns {
		case "all":
			p := r
			p.PlanSteps = 1
			p.Name += ", planned first"
			runs = append(runs, r, p)
		case "planned":
			floors, plan = []float64{0.8, 0.9}, 1
		case "seeds":
			for _, f := range []float64{0.8, 1} {
				fl := r
				fl.Compression.Rank = activation.BudgetFloor(o.gpu.sweep[i].bytes, f)
				fl.Name = "bf16 factors, " + fl.Compression.Rank.String()
				runs = append(runs, fl, reseeded(fl, 1), reseeded(fl, 2))
			}
			continue
		}
		for _, f := range floors {
			fl := r
			fl.Compression.Rank = activation.BudgetFloor(o.gpu.sweep[i].bytes, f)
			fl.Name = "bf16 factors, " + fl.Compression.Rank.String()
			if fl.PlanSteps = plan; plan > 0 {
				fl.Name += ", planned first"
			}
			runs = append(runs, fl)
		}
	}
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

// reseeded returns r with its sketches' seed advanced by by, named so.
func reseeded(r vitgpu.RunConfig, by uint64) vitgpu.RunConfig {
	r.Compression.Seed += by
	r.Name += fmt.Sprintf(", sketch seed %d", r.Compression.Seed)
	return r
}
