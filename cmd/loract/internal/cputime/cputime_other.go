//go:build !unix

// Package cputime reads the CPU time (user + system) of this process and
// of its finished children, for reporting compute beside wall time.
package cputime

import "time"

// Self is not measured on this system: it returns 0.
func Self() time.Duration { return 0 }

// Children is not measured on this system: it returns 0.
func Children() time.Duration { return 0 }
