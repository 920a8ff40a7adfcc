// Package trace times the stages of a long computation (the exact SVD and
// its eigensolver) for tests and benchmarks. It costs one nil check per
// stage when no hook is installed.
package trace

import (
	"fmt"
	"time"
)

// hook, when set by SetHook, receives the duration of each stage. It is nil
// in normal use.
var hook func(stage string, d time.Duration)

// SetHook installs f as the stage-timing hook (nil removes it). It is not
// safe to call while a traced computation runs.
func SetHook(f func(stage string, d time.Duration)) { hook = f }

// Trace measures the time between consecutive marks. A nil *Trace is valid
// and does nothing.
type Trace struct{ last time.Time }

// Start returns a Trace if a hook is installed, and nil otherwise.
func Start() *Trace {
	if hook == nil {
		return nil
	}
	return &Trace{last: time.Now()}
}

// Mark reports the time since the last mark (or Start) as stage.
func (t *Trace) Mark(stage string) {
	if t == nil {
		return
	}
	t.Markf("%s", stage)
}

// Markf is Mark with a formatted stage name, formatted only when tracing.
func (t *Trace) Markf(format string, args ...any) {
	if t == nil {
		return
	}
	stage := fmt.Sprintf(format, args...)
	now := time.Now()
	hook(stage, now.Sub(t.last))
	t.last = now
}
