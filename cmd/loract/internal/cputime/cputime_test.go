package cputime

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSelfAdvances(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not measured on " + runtime.GOOS)
	}
	t0 := Self()
	x := 0.0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x += 1e-9
	}
	_ = x
	// 50 ms of busy loop on one thread; the clock tick is ≤ 10 ms.
	assert.Greater(t, Self()-t0, 20*time.Millisecond)
	assert.GreaterOrEqual(t, Children(), time.Duration(0))
}
