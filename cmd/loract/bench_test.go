package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/internal/npy"
	"github.com/loract/loract/lowrank"
)

// TestBenchSaveInput checks that 'loract bench -save-input' writes the
// benchmark matrix the peers read, bit for bit.
func TestBenchSaveInput(t *testing.T) {
	name := filepath.Join(t.TempDir(), "a.npy")
	require.NoError(t, runBench([]string{"-m", "48", "-n", "20", "-seed", "3", "-save-input", name}))
	got, err := npy.ReadFile(name)
	require.NoError(t, err)
	require.IsType(t, &lowrank.Dense32{}, got)
	assert.Equal(t, bench.Activation(48, 20, 3).A32.Data, got.(*lowrank.Dense32).Data)

	require.NoError(t, runBench([]string{"-m", "48", "-n", "20", "-seed", "3", "-dtype", "fp64", "-save-input", name}))
	got, err = npy.ReadFile(name)
	require.NoError(t, err)
	require.IsType(t, &mat.Dense{}, got)
	assert.Equal(t, bench.Activation(48, 20, 3).A64.RawMatrix().Data, got.(*mat.Dense).RawMatrix().Data)
}

// TestBenchFlags: every bad flag set is rejected by the parser, which
// runs before any matrix is built or peer started.
func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"now"}, `unexpected arguments ["now"]`},
		{[]string{"-m", "64", "extra", "args"}, `unexpected arguments ["extra" "args"]`},
		{[]string{"-backend", "tpu"}, `unknown -backend "tpu"`},
		{[]string{"-priority", "-2"}, "priority apply only with -step"},
		{[]string{"-batch"}, "batch apply only with -step"},
		{[]string{"-batch-streams", "2"}, "batch-streams apply only with -step"},
		{[]string{"-step", "-batch-streams", "3"}, "BatchStreams 3"},
		{[]string{"-step", "-batch-streams", "x"}, `-batch-streams "x"`},
		{[]string{"-dtype", "int8"}, `input type "int8"`},
		{[]string{"-dtype", "fp32,bf16"}, `input type "bf16" is not one of the cpu backend's`},
		{[]string{"-backend", "gpu", "-dtype", "fp64"}, "gpu backend's"},
		{[]string{"-dtype", "bf16", "-save-input", "x.npy"}, "-save-input writes fp32 or fp64"},
		{[]string{"-m", "0", "-save-input", "x.npy"}, "at least 1×1"},
		{[]string{"-k", "0"}, "rank k = 0"},
		{[]string{"-m", "32", "-n", "16", "-k", "17"}, "min(m, n) = 16"},
		{[]string{"-n", "-3"}, "at least 1×1"},
		{[]string{"-repeats", "0"}, "-repeats 0"},
		{[]string{"-core", "-backend", "gpu"}, "-core times the CPU"},
		{[]string{"-core", "-m", "100", "-md"}, "-m, -md do not apply"},
		{[]string{"-rounds", "3"}, "-rounds applies only with -core"},
		{[]string{"-core", "-rounds", "0"}, "-rounds 0"},
		{[]string{"-step", "-rounds", "2"}, "-rounds applies only with -core"},
		{[]string{"-json", filepath.Join(t.TempDir(), "no", "such", "dir", "r.jsonl")}, "-json"},
		{[]string{"-m", "x"}, "invalid value"},
	} {
		o, err := parseBench(tc.args, &bytes.Buffer{})
		require.Error(t, err, "%v", tc.args)
		assert.Nil(t, o)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
		// runBench fails the same way: nothing runs before the parser.
		assert.EqualError(t, runBench(tc.args), err.Error(), "%v", tc.args)
	}
	o, err := parseBench([]string{"-h"}, &bytes.Buffer{})
	assert.NoError(t, err)
	assert.Nil(t, o, "-h runs nothing")

	o, err = parseBench([]string{"-core", "-rounds", "3"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, o.core)
	assert.Equal(t, 3, o.rounds)

	o, err = parseBench([]string{"-m", "300", "-n", "200", "-k", "9", "-dtype", "fp32, fp64", "-fair=false", "-md"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, []bench.Comparison{
		{M: 300, N: 200, K: 9, Dtype: "fp32", Exact: true, Markdown: true},
		{M: 300, N: 200, K: 9, Dtype: "fp64", Exact: true, Markdown: true},
	}, o.comparisons)
}

// TestBenchStepPriority: -priority reaches the step grid.
func TestBenchStepPriority(t *testing.T) {
	o, err := parseBench([]string{"-step", "-workers", "0,2", "-priority", "-3"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, -3, o.step.Priority)
	assert.Equal(t, []int{0, 2}, o.step.Workers)
	assert.False(t, o.step.Batch)
	o, err = parseBench([]string{"-step", "-batch"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, o.step.Batch)
}
