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
	// ErrEmpty is returned for a matrix with no rows or no columns.
	ErrEmpty = errors.New("lowrank: empty matrix")
	// ErrRank is returned for a target rank outside [1, min(m,n)].
	ErrRank = errors.New("lowrank: rank out of range")
	// ErrNotFinite is returned when an input holds NaN or ±Inf.
	ErrNotFinite = errors.New("lowrank: input is not finite")
	// ErrOption is returned for an invalid option value.
	ErrOption = errors.New("lowrank: invalid option")
	// ErrNoConvergence is returned when an iterative method failed to converge.
	ErrNoConvergence = errors.New("lowrank: no convergence")
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

// CheckRank returns an error wrapping ErrRank unless 1 ≤ k ≤ min(m, n), and
// an error wrapping ErrEmpty if m or n is zero.
func CheckRank(m, n, k int) error {
	if m <= 0 || n <= 0 {
		return fmt.Errorf("%w: %d×%d", ErrEmpty, m, n)
	}
	if k < 1 || k > min(m, n) {
		return fmt.Errorf("%w: k = %d, want 1 ≤ k ≤ min(m, n) = %d", ErrRank, k, min(m, n))
	}
	return nil
}
