package lowrank

import (
	"fmt"
	"time"
)

// svdTraceHook, when set (by tests and benchmarks of this package), receives
// the duration of each stage of the exact SVD. It is nil in normal use.
var svdTraceHook func(stage string, d time.Duration)

type svdTrace struct{ last time.Time }

func startTrace() *svdTrace {
	if svdTraceHook == nil {
		return nil
	}
	return &svdTrace{last: time.Now()}
}

func (t *svdTrace) mark(stage string) {
	if t == nil {
		return
	}
	t.markf("%s", stage)
}

// markf is mark with a formatted stage name, formatted only when tracing.
func (t *svdTrace) markf(format string, args ...any) {
	if t == nil {
		return
	}
	stage := fmt.Sprintf(format, args...)
	now := time.Now()
	svdTraceHook(stage, now.Sub(t.last))
	t.last = now
}
