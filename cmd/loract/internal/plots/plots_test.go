package plots

import (
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/plotter"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/cmd/loract/internal/experiment"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/internal/testmat"
)

// decodePNG checks that path holds a complete PNG of at least w×h pixels.
func decodePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, path)
	assert.GreaterOrEqual(t, img.Bounds().Dx(), w, path)
	assert.GreaterOrEqual(t, img.Bounds().Dy(), h, path)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".tmp", "temporary file left")
	}
}

func rec(peer, method, device, dtype string, m, n, k, p, q int, ms, err float64) bench.Record {
	return bench.Record{Peer: peer, Method: method, Device: device, Dtype: dtype, M: m, N: n, K: k, P: p, Q: q, Ms: ms, Repeats: 3, RelError: err}
}

// timeRecords are fixed time-vs-size records: loract and NumPy rows on the
// CPU at two sizes (given out of order), loract rows on a GPU in bf16,
// scikit-learn's default, and one record that failed.
func timeRecords() []bench.Record {
	return []bench.Record{
		rec("loract", "rows", "cpu", "fp32", 2048, 512, 32, 0, 0, 3, 0.1),
		rec("loract", "rows", "cpu", "fp32", 1024, 256, 16, 0, 0, 0.5, 0.1),
		rec("numpy", "rows", "cpu", "fp32", 1024, 256, 16, 0, 0, 1, 0.1),
		rec("numpy", "rows", "cpu", "fp32", 2048, 512, 32, 0, 0, 8, 0.1),
		rec("loract", "rows", "cuda:0", "bf16", 1024, 256, 16, 0, 0, 0.2, 0.1),
		rec("sklearn", "randomized_svd", "cpu", "fp32", 1024, 256, 16, 10, 7, 15, 0.1),
		{Peer: "torch", Method: "exact", Dtype: "fp32", Error: "out of memory"},
	}
}

func TestTimeSeries(t *testing.T) {
	s := TimeSeries(timeRecords())
	var names []string
	for _, x := range s {
		names = append(names, x.Name)
	}
	assert.Equal(t, []string{"loract rows (cpu) fp32", "loract rows (cuda:0) bf16", "numpy rows fp32", "sklearn randomized_svd p=10 q=7 fp32"}, names)
	assert.Equal(t, plotter.XYs{{X: 1024 * 256 / 1e6, Y: 0.5}, {X: 2048 * 512 / 1e6, Y: 3}}, s[0].XY, "sorted by size")
	assert.Equal(t, "cuda:0", s[1].Rec.Device)

	assert.True(t, TimeRecord(rec("torch", "rows", "cuda", "bf16", 4096, 1024, 64, 0, 0, 1, 0.1)))
	assert.True(t, TimeRecord(rec("torch", "exact", "cuda", "fp32", 4096, 1024, 64, 0, 0, 1, 0.1)))
	assert.False(t, TimeRecord(rec("torch", "rows", "cuda", "bf16", 4096, 1024, 64, 0, 1, 1, 0.1)), "q = 1")
	assert.False(t, TimeRecord(rec("torch", "svd_lowrank", "cuda", "fp32", 4096, 1024, 64, 0, 0, 1, 0.1)))
	assert.False(t, TimeRecord(rec("torch", "rows", "cuda", "fp32", 4096, 4096, 128, 0, 0, 1, 0.1)), "not m = 4n")
}

func TestParetoFamilies(t *testing.T) {
	recs := []bench.Record{
		rec("loract", "rows", "cpu", "fp32", 64, 32, 4, 0, 0, 1, 0.2),
		rec("sklearn", "randomized_svd", "cpu", "fp32", 64, 32, 4, 0, 1, 5, 0.12),
		rec("loract", "rows", "cpu", "fp32", 64, 32, 4, 0, 1, 2, 0.11),
		rec("torch", "svd_lowrank", "cuda", "fp32", 64, 32, 4, 0, 1, 0.1, 0.15),
		{Peer: "loract", Method: "gaussian", Error: "x"},
	}
	fams := ParetoFamilies(recs, 0.1)
	require.Len(t, fams, 3)
	assert.Equal(t, "loract rows", fams[0].Name)
	assert.InDeltaSlice(t, []float64{2, 1.1}, []float64{fams[0].XY[0].Y, fams[0].XY[1].Y}, 1e-12, "error ÷ optimal")
	assert.Equal(t, "sklearn randomized_svd", fams[1].Name)
	assert.Equal(t, "torch svd_lowrank (cuda)", fams[2].Name)

	path := filepath.Join(t.TempDir(), "pareto.png")
	require.NoError(t, Pareto(path, recs, 0.1, "64×32 k=4", []int{0, 1}, []int{0}))
	decodePNG(t, path, 600, 400)
}

// TestPlotsWritePNG: every plot function writes a complete PNG from
// fixed data, and refuses to draw nothing.
func TestPlotsWritePNG(t *testing.T) {
	dir := t.TempDir()

	path := filepath.Join(dir, "time.png")
	require.NoError(t, TimeVsSize(path, timeRecords()))
	decodePNG(t, path, 600, 400)

	// Error-vs-rank and the theory panels from a small experiment.
	cfg := experiment.CurveConfig{M: 48, N: 24, Spectrum: testmat.Spectra()[0], Structure: testmat.Structures()[0],
		Ks: []int{2, 4, 8}, P: 3, Trials: 2, Seed: 1}
	cs, err := experiment.ErrorCurves(cfg)
	require.NoError(t, err)
	path = filepath.Join(dir, "rank.png")
	require.NoError(t, ErrorVsRank(path, 48, 24, 2, []RankCurves{{P: 0, Curves: cs}, {P: 3, Curves: cs}}))
	decodePNG(t, path, 600, 400)
	path = filepath.Join(dir, "panels.png")
	require.NoError(t, CurvePanels(path, []Panel{{Title: "a", Curves: cs}, {Title: "b", Curves: append(cs, experiment.Curve{Name: "empty bound"})}}))
	decodePNG(t, path, 900, 300)

	path = filepath.Join(dir, "spectrum.png")
	layers := []vit.LayerSpectrum{
		{Layers: []string{"blk0.q", "blk0.k", "blk0.v"}, Rows: 64, Cols: 16, Values: []float64{4, 2, 1, 0.5, 0}},
		{Layers: []string{"blk1.fc2"}, Rows: 64, Cols: 32, Values: []float64{3, 1, 1e-3}},
	}
	require.NoError(t, Spectrum(path, "test spectrum", layers))
	decodePNG(t, path, 600, 400)

	for name, err := range map[string]error{
		"time":     TimeVsSize(filepath.Join(dir, "t0.png"), []bench.Record{{Error: "x"}}),
		"pareto":   Pareto(filepath.Join(dir, "p0.png"), nil, 0.1, "", nil, nil),
		"rank":     ErrorVsRank(filepath.Join(dir, "r0.png"), 1, 1, 1, []RankCurves{{Curves: []experiment.Curve{{Name: "x"}}}}),
		"spectrum": Spectrum(filepath.Join(dir, "s0.png"), "", nil),
		"panels":   CurvePanels(filepath.Join(dir, "c0.png"), nil),
	} {
		assert.ErrorIs(t, err, ErrNoData, name)
		_, serr := os.Stat(filepath.Join(dir, name[:1]+"0.png"))
		assert.ErrorIs(t, serr, os.ErrNotExist, name)
	}
}

func TestSpectrumPoints(t *testing.T) {
	assert.Equal(t, plotter.XYs{{X: 1, Y: 1}, {X: 2, Y: 0.5}, {X: 4, Y: 0.25}}, SpectrumPoints([]float64{4, 2, 1e-13, 1, 0}))
	assert.Empty(t, SpectrumPoints([]float64{0, 0}))
}

// TestWriteFile: the target appears only complete; a failed write leaves
// an existing file as it was and no temporary file.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "fig.png")
	require.NoError(t, os.WriteFile(name, []byte("committed"), 0o644))
	boom := errors.New("drawing failed")
	err := WriteFile(name, func(w io.Writer) error {
		_, _ = w.Write([]byte("half a fig"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	got, err := os.ReadFile(name)
	require.NoError(t, err)
	assert.Equal(t, "committed", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	require.NoError(t, WriteFile(name, func(w io.Writer) error {
		_, err := w.Write([]byte("new"))
		return err
	}))
	got, err = os.ReadFile(name)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	assert.Error(t, WriteFile(filepath.Join(dir, "no", "fig.png"), func(io.Writer) error { return nil }))
}

func TestLSweep(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "s.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"sweep":"qr","l":64,"qr_ms":0.12,"qb_ms":0.34,"qb_p10_ms":1.2,"qb_ms_before":0.4,"qb_p10_ms_before":2.5,"device":"H"}
{"trace":"x","op":"QR"}
{"sweep":"qr","l":32,"qr_ms":0.11,"qb_ms":0.32,"device":"H"}
`), 0o644))
	pts, err := ReadLSweep(in)
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Equal(t, 32, pts[0].L, "sorted by ℓ")
	assert.Zero(t, pts[0].QBP10)
	assert.Equal(t, 2.5, pts[1].QBP10Before)
	out := filepath.Join(dir, "s.png")
	require.NoError(t, LSweep(out, pts))
	decodePNG(t, out, 600, 400)
	assert.ErrorIs(t, LSweep(out, nil), ErrNoData)
	_, err = ReadLSweep(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}

func TestEqualBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "equal-bytes.png")
	pts := []EqualBytesPoint{
		{Label: "bf16 k", MeanError: 0.3, Drop: 0.8, Cos: 0.98, Reference: true},
		{Label: "int8 2k", MeanError: 0.2, Drop: 0.5, Cos: 0.99},
		{Label: "budget", MeanError: 0.25, Drop: -0.1, Cos: 0.985, Budget: true},
	}
	require.NoError(t, EqualBytes(path, "equal bytes", pts))
	decodePNG(t, path, 800, 150)
	assert.ErrorIs(t, EqualBytes(path, "none", nil), ErrNoData)
	assert.Error(t, EqualBytes(path, "bad", []EqualBytesPoint{{Label: "x", MeanError: math.NaN()}}))
	decodePNG(t, path, 800, 150) // a failed plot leaves the old figure
}

func TestRankSweep(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gpu-rank.png")
	pts := []RankPoint{
		{Mode: "loract checkpoint", Ratio: 0.3, Saved: 0.18, Drop: 0, Overhead: 0.7},
		{Mode: "loract checkpoint", Ratio: 0.1, Saved: 0.07, Drop: 0.9, Overhead: 0.6},
		{Mode: "loract ops", Ratio: 0.15, Saved: 0.45, Drop: -0.1, Overhead: 1.7},
	}
	require.NoError(t, RankSweep(path, "rank sweep", pts))
	decodePNG(t, path, 900, 300)
	assert.ErrorIs(t, RankSweep(path, "none", nil), ErrNoData)
	err := RankSweep(path, "bad", []RankPoint{{Mode: "m", Ratio: 0.2, Saved: math.Inf(1)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not finite")
	decodePNG(t, path, 900, 300) // a failed plot leaves the old figure
}

// TestStepOverhead: the step benchmark's JSON lines give one point per
// compressed run with a paired ratio (the kept runs and PyTorch's are
// left out), named by their variant, and the figure is a complete PNG.
func TestStepOverhead(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "step.jsonl")
	lines := `{"mode":"bf16","tokens":8192,"ms":11}
{"mode":"loract","tokens":8192,"k":128,"paired_ratio":1.17,"device":"NVIDIA H200"}
{"mode":"loract","tokens":8192,"k":128,"batch":true,"paired_ratio":1.11,"device":"NVIDIA H200"}
{"mode":"loract","tokens":16384,"k":128,"paired_ratio":1.13,"device":"NVIDIA H200"}
{"mode":"loract","tokens":16384,"k":128,"batch":true,"paired_ratio":1.09,"device":"NVIDIA H200"}
{"mode":"loract","tokens":8192,"k":256,"workers":2,"paired_ratio":1.25,"device":"NVIDIA H200"}
{"mode":"torch-rows","tokens":8192,"k":128,"ms":16}
`
	require.NoError(t, os.WriteFile(name, []byte(lines), 0o644))
	pts, device, err := ReadStepRecords(name)
	require.NoError(t, err)
	assert.Equal(t, "NVIDIA H200", device)
	assert.Equal(t, []StepPoint{{"one by one", 8192, 128, 1.17}, {"batched", 8192, 128, 1.11}, {"one by one", 16384, 128, 1.13},
		{"batched", 16384, 128, 1.09}, {"2 side streams", 8192, 256, 1.25}}, pts)
	out := filepath.Join(dir, "step.png")
	require.NoError(t, StepOverhead(out, "step", pts, 1.10))
	decodePNG(t, out, 600, 300)

	require.NoError(t, os.WriteFile(name, []byte(`{"mode":"bf16","tokens":8192}`+"\n"), 0o644))
	_, _, err = ReadStepRecords(name)
	assert.ErrorIs(t, err, ErrNoData)
	require.NoError(t, os.WriteFile(name, []byte("{\n"), 0o644))
	_, _, err = ReadStepRecords(name)
	assert.ErrorContains(t, err, "step.jsonl:1")
	assert.ErrorIs(t, StepOverhead(out, "", nil, 1.1), ErrNoData)
	assert.Error(t, StepOverhead(out, "", []StepPoint{{"x", 8192, 128, math.NaN()}}, 1.1))
}

// TestKernelSteps: a kernel table's phases are read back as ncu_kernels.py
// --json writes them, the stacked bars make a complete PNG, and a bar of
// the wrong number of parts, a negative or non-finite part, no bar and a
// table with no phase are errors that leave the old figure.
func TestKernelSteps(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "kernel_groups.json")
	table := `{"phases": [{"phase": "as they are", "steps_in_capture": 2, "kernels": 533, "us": 6428.3, "by_group_us": {"cuBLAS": 4603.5, "own": 1824.9}},
 {"phase": "per op", "steps_in_capture": 2, "kernels": 625, "us": 8647.1, "by_group_us": {"cuBLAS": 5412.0, "own": 3235.1}}]}`
	require.NoError(t, os.WriteFile(name, []byte(table), 0o644))
	ph, err := ReadKernelPhases(name)
	require.NoError(t, err)
	assert.Equal(t, []KernelPhase{{"as they are", 533, 6428.3, map[string]float64{"cuBLAS": 4603.5, "own": 1824.9}},
		{"per op", 625, 8647.1, map[string]float64{"cuBLAS": 5412.0, "own": 3235.1}}}, ph)
	require.NoError(t, os.WriteFile(name, []byte(`{"phases": []}`), 0o644))
	_, err = ReadKernelPhases(name)
	assert.ErrorIs(t, err, ErrNoData)
	require.NoError(t, os.WriteFile(name, []byte(`{"phases": [`), 0o644))
	_, err = ReadKernelPhases(name)
	assert.ErrorContains(t, err, "kernel_groups.json")

	out := filepath.Join(dir, "kernels.png")
	parts := []string{"cuBLAS", "own"}
	bars := []StepBar{{"as they are, before", []float64{5.3, 2.2}}, {"as they are, after", []float64{4.6, 1.8}}, {"per op, after", []float64{5.4, 3.2}}}
	require.NoError(t, KernelSteps(out, "steps", "ms", parts, bars))
	decodePNG(t, out, 800, 250)
	assert.ErrorIs(t, KernelSteps(out, "", "ms", parts, nil), ErrNoData)
	assert.ErrorContains(t, KernelSteps(out, "", "ms", parts, []StepBar{{"x", []float64{1}}}), "1 parts")
	assert.ErrorContains(t, KernelSteps(out, "", "ms", parts, []StepBar{{"x", []float64{1, -1}}}), "part own is -1")
	assert.Error(t, KernelSteps(out, "", "ms", parts, []StepBar{{"x", []float64{math.NaN(), 1}}}))
	decodePNG(t, out, 800, 250) // a failed plot leaves the old figure
}
