package cpu

import (
	"github.com/loract/loract/lowrank"
	"gonum.org/v1/gonum/mat"
)

// HostMatrix returns a CPU-backend lowrank.Matrix holding the data of a, and whether
// it holds a's transpose. *mat.Dense and *lowrank.Dense32 are used in place, and so
// are their mat.Transpose views (then transposed is true). Any other
// mat.Matrix is copied into a new *mat.Dense.
func HostMatrix(a mat.Matrix) (m lowrank.Matrix, transposed bool) {
	switch a := a.(type) {
	case *mat.Dense:
		return a, false
	case *lowrank.Dense32:
		return a, false
	case mat.Transpose:
		switch u := a.Matrix.(type) {
		case *mat.Dense:
			return u, true
		case *lowrank.Dense32:
			return u, true
		}
	}
	return mat.DenseCopyOf(a), false
}
