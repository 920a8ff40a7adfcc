package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loract/loract/cmd/loract/internal/vitgpu"
	"github.com/loract/loract/gpu"
)

var diagnose = flag.Bool("gpu.diagnose", false, "run TestGPUBudgetDiagnosis (a CUDA device and the MNIST data)")

// TestGPUBudgetDiagnosis (behind -gpu.diagnose) runs two settings of the
// GPU equal-bytes sweep — bf16 factors at ratio 0.3 and under the budget
// of its bytes (docs/results.md, "On the GPU": the budget row's gradient
// cosine is −0.03) — as `loract demo -device gpu -sweep bytes` configures
// them, each also with MeasureError (the sweep's errors come from the
// identity ‖X‖² − ‖B‖², which holds only for orthonormal Q), and logs
// every layer's errors and the gradient cosine. A diagnosis, not a check.
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
	for _, r := range cfg.Runs {
		if strings.HasPrefix(r.Name, "bf16 factors, ") {
			runs = append(runs, r)
			m := r
			m.Compression.MeasureError = true
			m.Name += ", measured"
			runs = append(runs, m)
		}
	}
	cfg.Runs = runs
	cfg.Log = t.Logf
	res, err := vitgpu.RunDemo(b, cfg, d.pre, d.fine, d.testPre, d.testFine)
	require.NoError(t, err)
	for _, r := range res.Runs {
		t.Logf("%s: accuracy %.4f, grad cosine %.4f (lowest %s %.4f), last losses %.3f", r.Name, r.Accuracy, r.GradCos, r.MinParam, r.MinCos, r.Losses[len(r.Losses)-5:])
		for _, l := range r.Layers {
			t.Logf("    %s rank %d: last %.4f, max %.4f, mean %.4f", l.Layer, l.Rank, l.RelError, l.MaxRelError, l.MeanRelError)
		}
	}
}
