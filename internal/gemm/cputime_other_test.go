//go:build !unix

package gemm

import "math"

// cpuSeconds is not measured here: the CPU-time metrics read NaN.
func cpuSeconds() float64 { return math.NaN() }
