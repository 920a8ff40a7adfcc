package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/cmd/loract/internal/progress"
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
		{"complete", []string{"-records", gpu, "-lsweep", sweep}, all, nil, nil, false},
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
