package lowrank

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this module wrap one of these, so that
// callers can test them with errors.Is.
var (
	// ErrShape is the panic value for mismatched dimensions between
	// arguments, a programming error.
	ErrShape = errors.New("lowrank: dimension mismatch")
	// ErrAlias is the panic value for a destination that shares memory
	// with an operand where the contract forbids it, a programming error.
	ErrAlias = errors.New("lowrank: destination aliases an operand")
	// ErrEmpty is returned for a matrix with no rows or no columns.
	ErrEmpty = errors.New("lowrank: empty matrix")
	// ErrRank is returned for a target rank outside [1, min(m,n)].
	ErrRank = errors.New("lowrank: rank out of range")
	// ErrNotFinite is returned when an input holds NaN or ±Inf, or when a
	// result cannot be represented (it overflows its storage precision).
	ErrNotFinite = errors.New("lowrank: not finite")
	// ErrOption is returned for an invalid option value.
	ErrOption = errors.New("lowrank: invalid option")
	// ErrNoConvergence is returned when an iterative method failed to converge.
	ErrNoConvergence = errors.New("lowrank: no convergence")
	// ErrTolerance is returned, beside a valid result at the largest rank
	// allowed, when an error tolerance cannot be met within that rank.
	ErrTolerance = errors.New("lowrank: tolerance not met within the rank bound")
)

// NotFiniteError reports the first non-finite element of an input, in
// row-major order.
type NotFiniteError struct {
	Row, Col int
	Value    float64
}

func (e *NotFiniteError) Error() string {
	return fmt.Sprintf("lowrank: input is not finite: element (%d, %d) is %v", e.Row, e.Col, e.Value)
}

// Unwrap returns ErrNotFinite.
func (e *NotFiniteError) Unwrap() error { return ErrNotFinite }

// BatchError reports the failures of a batched call: Errs[i] is the error
// of item i, nil for an item that succeeded. errors.Is and errors.As see
// every non-nil one.
type BatchError struct {
	Errs []error
}

func (e *BatchError) Error() string {
	n, first := 0, -1
	for i, err := range e.Errs {
		if err != nil {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	if n == 0 {
		return "lowrank: batch: no error"
	}
	return fmt.Sprintf("lowrank: %d of %d items failed; item %d: %v", n, len(e.Errs), first, e.Errs[first])
}

// Unwrap returns the non-nil item errors.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
