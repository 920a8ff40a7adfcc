// Package progress writes the progress of loract's long commands: lines
// stamped with the time since the start (Log), and the training-step
// meter of 'loract demo' (Steps), which redraws one line with a carriage
// return on a terminal and prints whole lines, at most one per interval,
// when its output is piped to a file or another program.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// IsTerminal reports whether f is a character device (a terminal), the
// only place where carriage-return redraws are readable. It uses the file
// mode alone, so /dev/null also counts as one (nothing reads it).
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Log writes progress lines "[  12.3s] message" to W, the time counted
// from Start. A nil *Log or a nil W discards the lines. It is safe for
// concurrent use.
type Log struct {
	W     io.Writer
	Start time.Time
	// Now, if not nil, replaces time.Now (tests).
	Now func() time.Time
	mu  sync.Mutex
}

// NewLog returns a Log to w starting now.
func NewLog(w io.Writer) *Log { return &Log{W: w, Start: time.Now()} }

// Elapsed returns the time since Start.
func (l *Log) Elapsed() time.Duration {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	return now().Sub(l.Start)
}

// Printf writes one stamped line; a trailing newline is added.
func (l *Log) Printf(format string, args ...any) {
	if l == nil || l.W == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "[%6.1fs] %s\n", l.Elapsed().Seconds(), fmt.Sprintf(format, args...))
}

// Steps reports training steps: phase, step i of n, the loss and the
// elapsed time. On a terminal (Redraw) it rewrites one line with '\r' at
// most every Every; otherwise it writes a whole line every Every or every
// EveryN steps, whichever comes first, so that a log file holds a readable
// trace. The last step of a phase is always written, ending the line.
type Steps struct {
	W      io.Writer
	Redraw bool
	// Every is the least time between two writes (0: every step).
	Every time.Duration
	// EveryN, if > 0, also writes every EveryN-th step when not redrawing.
	EveryN int
	// Start is when the elapsed time starts (the zero value: at the
	// first step).
	Start time.Time
	// Now, if not nil, replaces time.Now (tests).
	Now func() time.Time

	last  time.Time
	phase string
}

// NewSteps returns the meter for w: it redraws if w is a terminal, and
// writes at most every 2 s (redrawing) or every 10 s or 50 steps (piped).
func NewSteps(w *os.File) *Steps {
	if IsTerminal(w) {
		return &Steps{W: w, Redraw: true, Every: 2 * time.Second, Start: time.Now()}
	}
	return &Steps{W: w, Every: 10 * time.Second, EveryN: 50, Start: time.Now()}
}

func (s *Steps) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Step reports that step (0-based) of steps in phase finished with loss.
func (s *Steps) Step(phase string, step, steps int, loss float64) {
	now := s.now()
	if s.Start.IsZero() {
		s.Start = now
	}
	last := step+1 == steps
	if phase != s.phase {
		// A new phase is written at its first step.
		s.phase, s.last = phase, time.Time{}
	}
	due := s.last.IsZero() || now.Sub(s.last) >= s.Every
	if !s.Redraw && s.EveryN > 0 && (step+1)%s.EveryN == 0 {
		due = true
	}
	if !due && !last {
		return
	}
	s.last = now
	line := fmt.Sprintf("%-40s step %4d/%d  loss %.4f  elapsed %5.1fs", phase, step+1, steps, loss, now.Sub(s.Start).Seconds())
	switch {
	case !s.Redraw:
		fmt.Fprintln(s.W, line)
	case last:
		fmt.Fprintf(s.W, "\r%s\n", line)
	default:
		fmt.Fprintf(s.W, "\r%s", line)
	}
}
