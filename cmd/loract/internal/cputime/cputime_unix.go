//go:build unix

// Package cputime reads the CPU time (user + system) of this process and
// of its finished children, for reporting compute beside wall time.
package cputime

import (
	"syscall"
	"time"
)

// Self returns the CPU time of this process so far: every thread's, the
// GEMM workers' included.
func Self() time.Duration { return usage(syscall.RUSAGE_SELF) }

// Children returns the CPU time of the process's waited-for children (the
// Python peers).
func Children() time.Duration { return usage(syscall.RUSAGE_CHILDREN) }

func usage(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
