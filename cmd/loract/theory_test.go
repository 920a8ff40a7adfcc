package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/cmd/loract/internal/progress"
)

// TestTheoryFlags: every bad flag set is rejected by the parser, before
// any experiment runs.
func TestTheoryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-q", "x"}, "bad -q"},
		{[]string{"-q", "0,-1"}, "bad -q"},
		{[]string{"-m", "0"}, "at least 1×1"},
		{[]string{"-p", "-1"}, "oversampling"},
		{[]string{"-trials", "0"}, "at least one seed"},
		{[]string{"-k", "0"}, "need 1 ≤ k"},
		{[]string{"-m", "40", "-n", "30", "-k", "28"}, "k+p ≤ min(m, n) = 30"},
		{[]string{"-m", "8", "-n", "8", "-plot", "x.png"}, "-plot needs 4 + p"},
		{[]string{"-plot", filepath.Join(t.TempDir(), "none", "x.png")}, "-plot"},
		{[]string{"-nosuchflag"}, "not defined"},
	} {
		var stderr bytes.Buffer
		o, err := parseTheory(tc.args, &stderr)
		require.Error(t, err, "%v", tc.args)
		assert.Nil(t, o)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
	o, err := parseTheory([]string{"-h"}, &bytes.Buffer{})
	assert.NoError(t, err)
	assert.Nil(t, o, "-h runs nothing")
	o, err = parseTheory([]string{"-m", "40", "-n", "30", "-k", "25", "-q", "0, 2"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2}, o.q)
}

// TestTheoryTableAndPlot runs both outputs on small matrices and checks
// the progress lines.
func TestTheoryTableAndPlot(t *testing.T) {
	o, err := parseTheory([]string{"-m", "32", "-n", "24", "-k", "4", "-p", "2", "-q", "0", "-trials", "1"}, &bytes.Buffer{})
	require.NoError(t, err)
	var out, log bytes.Buffer
	require.NoError(t, o.run(&out, progress.NewLog(&log)))
	assert.Contains(t, out.String(), "| spectrum | structure |")
	assert.Contains(t, log.String(), "cell 1/")
	assert.Regexp(t, `\[ *[0-9.]+s\] cell \d+/\d+ done`, log.String())

	path := filepath.Join(t.TempDir(), "p.png")
	o, err = parseTheory([]string{"-m", "40", "-n", "24", "-p", "3", "-trials", "1", "-plot", path}, &bytes.Buffer{})
	require.NoError(t, err)
	log.Reset()
	require.NoError(t, o.run(&out, progress.NewLog(&log)))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Positive(t, img.Bounds().Dx())
	assert.Contains(t, log.String(), "panel 2/2")
	assert.Contains(t, log.String(), "wrote "+path)
}
