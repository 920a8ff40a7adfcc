package experiment

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/internal/testmat"
)

// TestRegimeTable runs a small grid, checks the progress calls and the
// table's shape.
func TestRegimeTable(t *testing.T) {
	var calls []string
	rs, err := Regimes(RegimeConfig{M: 48, N: 32, K: 4, P: 3, Q: []int{0}, Trials: 2, Seed: 1,
		Progress: func(done, total int, what string) {
			assert.Equal(t, 2*3, total)
			assert.Equal(t, len(calls)+1, done)
			calls = append(calls, what)
		}}, testmat.Spectra()[:2], testmat.Structures()[:3])
	require.NoError(t, err)
	require.Len(t, calls, 6)
	assert.Equal(t, testmat.Spectra()[0].Name+" × "+testmat.Structures()[0].Name, calls[0])
	var b bytes.Buffer
	WriteRegimeTable(&b, rs)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// Header, separator, one line per spectrum × structure × q.
	assert.Len(t, lines, 2+2*3)
	assert.Contains(t, lines[2], "| 1/j | incoherent (Haar) |")
	for _, l := range lines[2:] {
		assert.Equal(t, 12, strings.Count(l, "|"), l)
	}
}

func TestCurveProgressAndRanks(t *testing.T) {
	var done []int
	_, err := ErrorCurves(CurveConfig{M: 40, N: 20, Spectrum: testmat.Spectra()[0], Structure: testmat.Structures()[0],
		Ks: []int{2, 4}, P: 2, Trials: 1, Seed: 1, Progress: func(d, total int, what string) {
			assert.Equal(t, 2, total)
			done = append(done, d)
		}})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, done)
	assert.Equal(t, []int{4, 8, 12}, PanelRanks(40, 17, 5))
	assert.Len(t, PanelRanks(512, 256, 5), 24, "k = 4…96")
	assert.Empty(t, PanelRanks(8, 8, 5))
}
