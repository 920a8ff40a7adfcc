package mnist

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	dir, err := Dir()
	require.NoError(t, err)
	train, test, err := Load(dir)
	require.NoError(t, err)
	// The published sizes of MNIST.
	assert.Equal(t, 60000, train.Len())
	assert.Equal(t, 10000, test.Len())
	counts := make([]int, 10)
	for _, l := range train.Labels {
		require.True(t, l >= 0 && l <= 9)
		counts[l]++
	}
	for d, c := range counts {
		// Every digit has between 5421 (digit 5) and 6742 (digit 1) training images.
		assert.True(t, c >= 5421 && c <= 6742, "digit %d: %d images", d, c)
	}
	for _, p := range train.Image(0) {
		require.True(t, p >= 0 && p <= 1)
	}
	low := test.Filter(func(l int) bool { return l < 5 })
	for _, l := range low.Labels {
		assert.Less(t, l, 5)
	}
	assert.Equal(t, len(low.Labels)*Side*Side, len(low.Pixels))
}

func TestDirMissing(t *testing.T) {
	// An empty module cache and GOPATH, and no go command on PATH, must give
	// an error that names the download command.
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv("GOMODCACHE", empty)
	t.Setenv("GOPATH", empty)
	t.Setenv("HOME", empty)
	_, err := Dir()
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "go mod download "+Module+"@"+Version)
}
