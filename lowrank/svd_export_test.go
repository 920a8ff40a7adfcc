package lowrank

import "time"

// SetSVDTrace installs f as the stage-timing hook of the exact SVD (nil
// removes it), for the external tests and benchmarks.
func SetSVDTrace(f func(stage string, d time.Duration)) { svdTraceHook = f }
