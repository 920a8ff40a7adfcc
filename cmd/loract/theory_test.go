package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loract/loract/cmd/loract/internal/experiment"
	"github.com/loract/loract/internal/testmat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheoryTableAndPlot(t *testing.T) {
	rs, err := experiment.Regimes(experiment.RegimeConfig{M: 48, N: 32, K: 4, P: 3, Q: []int{0}, Trials: 2, Seed: 1},
		testmat.Spectra()[:2], testmat.Structures()[:3])
	require.NoError(t, err)
	var b bytes.Buffer
	writeRegimeTable(&b, rs)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// Header, separator, one line per spectrum × structure × q.
	assert.Len(t, lines, 2+2*3)
	assert.Contains(t, lines[2], "| 1/j | incoherent (Haar) |")
	for _, l := range lines[2:] {
		assert.Equal(t, 12, strings.Count(l, "|"), l)
	}

	path := filepath.Join(t.TempDir(), "p.png")
	require.NoError(t, runTheory([]string{"-m", "40", "-n", "24", "-p", "3", "-trials", "1", "-plot", path}))
	png, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")))
	assert.Error(t, runTheory([]string{"-q", "x"}))
}
