package lowrank

import "fmt"

// Orientation chooses whether an algorithm works on an m×n A or on Aᵀ:
// on op(A) = A the orthonormal factor Q is m×k and rows of A are sampled;
// on op(A) = Aᵀ it is n×k and columns of A are sampled.
type Orientation int

const (
	// OrientAuto works on whichever of A and Aᵀ has no more rows than
	// columns, so the orthonormal factor lives in the smaller dimension
	// (the default).
	OrientAuto Orientation = iota
	// OrientRows works on A: Q is m×k.
	OrientRows
	// OrientCols works on Aᵀ: Q is n×k.
	OrientCols
)

// Trans reports whether an algorithm with orientation o works on Aᵀ for an
// m×n A, or returns an error wrapping ErrOption for an unknown value.
func (o Orientation) Trans(m, n int) (bool, error) {
	switch o {
	case OrientAuto:
		return m > n, nil
	case OrientRows:
		return false, nil
	case OrientCols:
		return true, nil
	}
	return false, fmt.Errorf("%w: orientation %d", ErrOption, int(o))
}

func (o Orientation) String() string {
	switch o {
	case OrientAuto:
		return "auto"
	case OrientRows:
		return "rows"
	case OrientCols:
		return "cols"
	}
	return fmt.Sprintf("Orientation(%d)", int(o))
}
