package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/cmd/loract/internal/plots"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/vitgpu"
)

func TestPlotFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"docs/img"}, `unexpected arguments ["docs/img"]`},
		{[]string{"-only", "rank,histogram"}, `unknown plot "histogram"`},
		{[]string{"-trials", "0"}, "-trials 0"},
		{[]string{"-repeats", "-1"}, "-repeats -1"},
		{[]string{"-pretrain-steps", "-1"}, "-pretrain-steps -1"},
		{[]string{"-out", ""}, "-out is empty"},
		{[]string{"-gpukernels", "a.json"}, `-gpukernels "a.json": want LABEL=FILE`},
		{[]string{"-gpukernels", "a=x.json,=y.json"}, `-gpukernels "=y.json"`},
		{[]string{"-json", filepath.Join(t.TempDir(), "no", "r.jsonl")}, "-json"},
	} {
		o, err := parsePlot(tc.args, &bytes.Buffer{})
		require.Error(t, err, "%v", tc.args)
		assert.Nil(t, o)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
		assert.EqualError(t, runPlot(tc.args), err.Error(), "%v", tc.args)
	}
	o, err := parsePlot([]string{"-only", "time, rank,time", "-records", "a.jsonl, b.jsonl"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, []string{"time", "rank"}, o.only, "in the order asked, once each")
	assert.Equal(t, []string{"a.jsonl", "b.jsonl"}, o.records)
}

// TestPlotRefusesIncompleteFigures: into docs/img, every missing input is
// named and refused unless -force; elsewhere the same is allowed.
func TestPlotRefusesIncompleteFigures(t *testing.T) {
	dir := t.TempDir()
	committed := filepath.Join(dir, "repo", "docs", "img")
	elsewhere := filepath.Join(dir, "figures")
	gpu := filepath.Join(dir, "gpu.jsonl")
	require.NoError(t, os.WriteFile(gpu, []byte(`{"env": {"torch": "2"}}
{"peer":"torch","method":"rows","device":"cuda","dtype":"fp32","m":4096,"n":1024,"k":64,"p":0,"q":0,"ms":0.3,"repeats":3,"rel_error":0.12}
`), 0o644))
	empty := filepath.Join(dir, "empty.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	other := filepath.Join(dir, "other.jsonl")
	require.NoError(t, os.WriteFile(other, []byte(`{"peer":"loract","method":"rows","m":100,"n":100,"k":3,"ms":1,"repeats":1}`+"\n"), 0o644))

	sweep := filepath.Join(dir, "sweep.jsonl")
	require.NoError(t, os.WriteFile(sweep, []byte(`{"sweep":"qr","l":32,"qr_ms":0.1}`+"\n"), 0o644))
	ranks := filepath.Join(dir, "ranks.json")
	require.NoError(t, os.WriteFile(ranks, []byte(`{}`), 0o644))

	all := map[string]bool{"numpy": true, "scipy": true, "sklearn": true, "torch": true}
	noTorch := map[string]bool{"numpy": true, "scipy": true, "sklearn": true}
	noMNIST := errors.New("mnist: GoMNIST data not found")
	for _, tc := range []struct {
		name  string
		args  []string
		have  map[string]bool
		mnist error
		// want lists what the refusal names; empty: no refusal.
		want []string
		// committedOnly: missing only for the committed figures.
		committedOnly bool
	}{
		{"complete", []string{"-records", gpu, "-lsweep", sweep, "-gpurank", ranks, "-gpusweep", ranks, "-gpustep", ranks, "-gpukernels", "a=" + ranks + ",b=" + ranks}, all, nil, nil, false},
		{"kernel table absent", []string{"-only", "gpukernels", "-gpukernels", "a=" + ranks + ",b=" + filepath.Join(dir, "nope.json")}, nil, nil, []string{"kernel table b of the gpukernels plot", "no such file"}, false},
		{"GPU step records absent", []string{"-only", "gpustep", "-gpustep", filepath.Join(dir, "nope.jsonl")}, nil, nil, []string{"records of the gpustep plot", "no such file"}, false},
		{"GPU sweep absent", []string{"-only", "gpusweep", "-gpusweep", filepath.Join(dir, "nope.json")}, nil, nil, []string{"equal-bytes sweep of the gpusweep plot", "no such file"}, false},
		{"GPU rank sweep absent", []string{"-only", "gpurank", "-gpurank", filepath.Join(dir, "nope.json")}, nil, nil, []string{"rank sweep of the gpurank plot", "no such file"}, false},
		{"ℓ sweep absent", []string{"-only", "lsweep", "-lsweep", filepath.Join(dir, "nope.jsonl")}, nil, nil, []string{"ℓ-sweep records", "no such file"}, false},
		{"rank alone needs nothing", []string{"-only", "rank"}, nil, noMNIST, nil, false},
		{"torch missing", []string{"-records", gpu}, noTorch, nil, []string{"torch peer of the time plot", "torch peer of the pareto plot"}, false},
		{"no python", []string{"-only", "pareto"}, nil, nil, []string{"numpy peer of the pareto plot", "sklearn peer"}, false},
		{"peers off", []string{"-only", "pareto", "-peers=false"}, all, nil, []string{"Python peers of the pareto plot (-peers=false)"}, false},
		{"no GPU records", []string{"-only", "time"}, all, nil, []string{"GPU records", gpuRecords}, true},
		{"records file absent", []string{"-only", "time", "-records", filepath.Join(dir, "nope.jsonl")}, all, nil, []string{"nope.jsonl", "no such file"}, false},
		{"records file empty", []string{"-only", "time", "-records", empty}, all, nil, []string{"empty.jsonl: no time-vs-size record"}, false},
		{"records of other shapes", []string{"-only", "time", "-records", gpu + "," + other}, all, nil, []string{"other.jsonl: no time-vs-size record (m = 4n, k = n/16) in 1 records"}, false},
		{"MNIST missing", []string{"-only", "spectrum"}, nil, noMNIST, []string{"MNIST data of the spectrum plot", "not found"}, false},
	} {
		for _, target := range []struct {
			out   string
			force bool
		}{{committed, false}, {committed, true}, {elsewhere, false}} {
			args := append([]string{"-out", target.out}, tc.args...)
			if target.force {
				args = append(args, "-force")
			}
			o, err := parsePlot(args, &bytes.Buffer{})
			require.NoError(t, err, tc.name)
			miss, extra := o.missing(tc.have, tc.mnist)
			err = o.check(miss)
			if len(tc.want) == 0 || (tc.committedOnly && target.out != committed) {
				assert.Empty(t, miss, tc.name)
				assert.NoError(t, err, tc.name)
				continue
			}
			all := strings.Join(miss, "\n")
			for _, w := range tc.want {
				assert.Contains(t, all, w, "%s: %v", tc.name, args)
			}
			if target.out == committed && !target.force {
				require.Error(t, err, "%s: %v", tc.name, args)
				assert.Contains(t, err.Error(), "refusing to overwrite the committed figures", tc.name)
				for _, w := range tc.want {
					assert.Contains(t, err.Error(), w, tc.name)
				}
			} else {
				assert.NoError(t, err, "%s: %v", tc.name, args)
			}
			if strings.Contains(strings.Join(tc.args, " "), gpu) {
				require.Len(t, extra, 1, tc.name)
				assert.Equal(t, "cuda", extra[0].Device)
			}
		}
	}
}

// TestPlotRunRefusesBeforeWork: the refusal comes before anything is
// timed or drawn, and the figures in place are left as they were.
func TestPlotRunRefusesBeforeWork(t *testing.T) {
	out := filepath.Join(t.TempDir(), "docs", "img")
	require.NoError(t, os.MkdirAll(out, 0o755))
	fig := filepath.Join(out, "time_vs_size.png")
	require.NoError(t, os.WriteFile(fig, []byte("committed"), 0o644))
	o, err := parsePlot([]string{"-out", out, "-only", "time", "-peers=false"}, &bytes.Buffer{})
	require.NoError(t, err)
	var log bytes.Buffer
	err = o.run(t.Context(), progress.NewLog(&log))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-peers=false")
	assert.NotContains(t, log.String(), "time vs size", "nothing was timed")
	got, err := os.ReadFile(fig)
	require.NoError(t, err)
	assert.Equal(t, "committed", string(got))
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
}

// TestReadGPURank: the demo's -json outputs one after another give one
// point per compressed run with a rank ratio, against its own baseline;
// a run at a fixed rank is left out, an output without a baseline and a
// file without a ratio run are errors.
func TestReadGPURank(t *testing.T) {
	dir := t.TempDir()
	out := func(ratio string, acc float64) gpuOutput {
		return gpuOutput{Result: &vitgpu.DemoResult{Device: "H",
			Baseline: vitgpu.RunResult{Name: "as they are", Phase: vitgpu.Phase{StepMs: 10, Saved: 1000}, Accuracy: 0.95},
			Runs: []vitgpu.RunResult{
				{Name: "loract checkpoint", Rank: ratio, Phase: vitgpu.Phase{StepMs: 17, Saved: 200}, Accuracy: acc},
				{Name: "loract ops", Rank: "k = 7", Phase: vitgpu.Phase{StepMs: 30, Saved: 400}, Accuracy: 0.95},
			}}}
	}
	var buf bytes.Buffer
	for _, o := range []gpuOutput{out("ratio 0.3", 0.95), out("ratio 0.1", 0.94)} {
		b, err := json.MarshalIndent(o, "", "  ")
		require.NoError(t, err)
		buf.Write(append(b, '\n'))
	}
	name := filepath.Join(dir, "r.json")
	require.NoError(t, os.WriteFile(name, buf.Bytes(), 0o644))
	pts, title, err := readGPURank(name)
	require.NoError(t, err)
	assert.Contains(t, title, "(H)")
	require.Len(t, pts, 2)
	assert.Equal(t, plots.RankPoint{Mode: "loract checkpoint", Ratio: 0.3, Saved: 0.2, Drop: 0, Overhead: 0.7}, roundPoint(pts[0]))
	assert.Equal(t, plots.RankPoint{Mode: "loract checkpoint", Ratio: 0.1, Saved: 0.2, Drop: 1, Overhead: 0.7}, roundPoint(pts[1]))

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"Result": {}}`), 0o644))
	_, _, err = readGPURank(bad)
	assert.ErrorContains(t, err, "no uncompressed baseline")
	b, err := json.Marshal(gpuOutput{Result: &vitgpu.DemoResult{Baseline: vitgpu.RunResult{Phase: vitgpu.Phase{StepMs: 1, Saved: 1}}}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bad, b, 0o644))
	_, _, err = readGPURank(bad)
	assert.ErrorIs(t, err, plots.ErrNoData)
	_, _, err = readGPURank(filepath.Join(dir, "missing.json"))
	assert.Error(t, err)
}

// roundPoint rounds a point's ratios to 1e-9, against the rounding of
// the divisions.
func roundPoint(p plots.RankPoint) plots.RankPoint {
	r := func(v float64) float64 { return math.Round(v*1e9) / 1e9 }
	p.Saved, p.Drop, p.Overhead = r(p.Saved), r(p.Drop), r(p.Overhead)
	return p
}

// TestReadGPUSweep: the committed GPU sweep record rebuilds its settings
// from its arguments (one per run) and draws; a record of another run is
// refused.
func TestReadGPUSweep(t *testing.T) {
	res, settings, dim, err := readGPUSweep(filepath.Join("..", "..", gpuSweepRecord))
	require.NoError(t, err)
	assert.Equal(t, 384, dim)
	require.Len(t, settings, len(res.Runs))
	for i, st := range settings {
		assert.Equal(t, st.Name, res.Runs[i].Name, "setting %d", i)
	}
	rows := gpuSweepRows(res, settings)
	assert.InDelta(t, 0.9566, rows[0].acc, 5e-5, "the reference row's accuracy, as docs/results.md reports it")
	png := filepath.Join(t.TempDir(), "eq.png")
	require.NoError(t, plotGPUSweep(png, res, settings, dim))
	assert.FileExists(t, png)

	bad := filepath.Join(t.TempDir(), "bad.json")
	b, err := json.Marshal(gpuOutput{Args: []string{"-device", "gpu", "-sweep", "bytes", "-json", "/x/y.json"}, Result: &vitgpu.DemoResult{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bad, b, 0o644))
	_, _, _, err = readGPUSweep(bad)
	assert.ErrorContains(t, err, "not the output of a GPU sweep")
	b, err = json.Marshal(gpuOutput{Args: []string{"-sweep", "bytes"}, Result: &vitgpu.DemoResult{}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bad, b, 0o644))
	_, _, _, err = readGPUSweep(bad)
	assert.ErrorContains(t, err, "are not those of a GPU sweep", "a CPU sweep's record")
}

// TestPlotGPUKernels: the gpukernels figure from two kernel tables, one
// bar per phase and table, written as a PNG; a table that does not parse
// is an error naming it.
func TestPlotGPUKernels(t *testing.T) {
	dir := t.TempDir()
	table := func(name string, scale float64) string {
		f := filepath.Join(dir, name)
		js := fmt.Sprintf(`{"phases": [{"phase": "as they are", "kernels": 500, "us": %g, "by_group_us": {"cuBLAS": %g, "own": %g}},
 {"phase": "per op", "kernels": 600, "us": %g, "by_group_us": {"cuBLAS": %g, "cuSOLVER": 10, "own": %g}}]}`,
			7000*scale, 5000*scale, 2000*scale, 9000*scale, 6000*scale, 3000*scale-10)
		require.NoError(t, os.WriteFile(f, []byte(js), 0o644))
		return f
	}
	before, after := table("before.json", 1), table("after.json", 0.9)
	bars, err := kernelBars([]labelled{{"old", before}, {"new", after}})
	require.NoError(t, err)
	bar := func(l string, lib, own float64) plots.StepBar {
		return plots.StepBar{Label: l, Parts: []float64{lib, own}}
	}
	want := []plots.StepBar{bar("as they are, old", 5, 2), bar("as they are, new", 4.5, 1.8),
		bar("per op, old", 6.01, 2.99), bar("per op, new", 5.41, 2.69)} // cuSOLVER's 10 µs with cuBLAS
	require.Len(t, bars, len(want))
	for i := range want {
		assert.Equal(t, want[i].Label, bars[i].Label)
		assert.InDeltaSlice(t, want[i].Parts, bars[i].Parts, 1e-9, want[i].Label)
	}
	o, err := parsePlot([]string{"-out", dir, "-only", "gpukernels", "-gpukernels", "old=" + before + ",new=" + after}, &bytes.Buffer{})
	require.NoError(t, err)
	var log bytes.Buffer
	require.NoError(t, o.gpuKernels(progress.NewLog(&log)))
	st, err := os.Stat(filepath.Join(dir, "gpu_kernels_h100.png"))
	require.NoError(t, err)
	assert.Positive(t, st.Size())
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("{"), 0o644))
	o.kernels = []labelled{{"bad", bad}}
	assert.ErrorContains(t, o.gpuKernels(progress.NewLog(&log)), "bad.json")
}
