package cputime

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestSelfAdvances: busy work advances Self. The loop runs until 20 ms of
// CPU time are counted or 5 s of wall time pass, so a loaded machine only
// makes it slower; the kernel's clock tick is ≤ 10 ms.
func TestSelfAdvances(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not measured on " + runtime.GOOS)
	}
	t0 := Self()
	x := 0.0
	for start := time.Now(); Self()-t0 < 20*time.Millisecond && time.Since(start) < 5*time.Second; {
		for range 100000 {
			x += 1e-9
		}
	}
	_ = x
	assert.GreaterOrEqual(t, Self()-t0, 20*time.Millisecond)
	assert.GreaterOrEqual(t, Children(), time.Duration(0))
}
