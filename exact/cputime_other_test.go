//go:build !unix

package exact

import "math"

// cpuSeconds is not measured here: the CPU-time metrics read NaN.
func cpuSeconds() float64 { return math.NaN() }
