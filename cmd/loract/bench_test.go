package main

import (
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

func TestBenchFlagErrors(t *testing.T) {
	assert.Error(t, runBench([]string{"-backend", "tpu"}))
	assert.Error(t, runBench([]string{"-dtype", "int8", "-fair=false", "-exact=false", "-torch=false", "-m", "8", "-n", "4", "-k", "2"}))
	assert.Error(t, runBench([]string{"-dtype", "bf16", "-save-input", filepath.Join(t.TempDir(), "x.npy")}))
}
