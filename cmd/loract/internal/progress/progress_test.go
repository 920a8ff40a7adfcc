package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a fake time source advanced by the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, IsTerminal(w), "a pipe")
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, IsTerminal(f), "a regular file")
	assert.False(t, IsTerminal(nil))
	if null, err := os.Open(os.DevNull); err == nil {
		defer null.Close()
		assert.True(t, IsTerminal(null), "%s is a character device", os.DevNull)
	}
}

// TestStepsPiped: without a terminal every write is a whole line, written
// every EveryN steps or when Every has passed, and the last step of each
// phase is always written.
func TestStepsPiped(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	s := &Steps{W: &buf, Every: 10 * time.Second, EveryN: 4, Start: c.t, Now: c.now}
	for i := range 10 {
		c.t = c.t.Add(time.Second)
		s.Step("pre-train", i, 10, 1/float64(i+1))
	}
	// 30 s pass in one step of the second phase: written for the time.
	s.Step("fine-tune", 0, 3, 0.5)
	c.t = c.t.Add(30 * time.Second)
	s.Step("fine-tune", 1, 3, 0.4)
	s.Step("fine-tune", 2, 3, 0.3)
	out := buf.String()
	assert.NotContains(t, out, "\r")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var steps []string
	for _, l := range lines {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 3, l)
		steps = append(steps, f[0]+" "+f[2])
	}
	// pre-train: the first step, steps 4 and 8 (EveryN), 10 (the last);
	// fine-tune: its first, the one after 30 s, the last.
	assert.Equal(t, []string{"pre-train 1/10", "pre-train 4/10", "pre-train 8/10", "pre-train 10/10",
		"fine-tune 1/3", "fine-tune 2/3", "fine-tune 3/3"}, steps)
	assert.Contains(t, lines[3], "elapsed  10.0s")
}

// TestStepsTerminal: on a terminal the line is redrawn with '\r', at most
// every Every, and ended with a newline at the last step.
func TestStepsTerminal(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	s := &Steps{W: &buf, Redraw: true, Every: 2 * time.Second, Now: c.now}
	for i := range 6 {
		c.t = c.t.Add(time.Second)
		s.Step("train", i, 6, 0.1)
	}
	out := buf.String()
	// Steps 1, 3, 5 (2 s apart) and 6 (the last).
	assert.Equal(t, 4, strings.Count(out, "\r"), "%q", out)
	assert.Equal(t, 1, strings.Count(out, "\n"), "%q", out)
	assert.True(t, strings.HasSuffix(out, "\n"))
	assert.Contains(t, out, "step    6/6")
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(100, 0)}
	l := &Log{W: &buf, Start: time.Unix(88, 0), Now: c.now}
	l.Printf("stage %d", 2)
	assert.Equal(t, "[  12.0s] stage 2\n", buf.String())
	var nilLog *Log
	nilLog.Printf("discarded") // must not panic
}
