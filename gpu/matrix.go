package gpu

import (
	"fmt"

	"github.com/loract/loract/lowrank"
)

// DType is the element type of a device matrix.
type DType int

const (
	// Float32 is IEEE single precision, 4 bytes: the working precision.
	Float32 DType = iota
	// BFloat16 is the upper half of a float32, 2 bytes, rounded to nearest
	// even (lowrank.ToBF16): the storage type of bf16 activations and
	// factors.
	BFloat16
)

// Size returns the bytes per element.
func (t DType) Size() int {
	if t == BFloat16 {
		return 2
	}
	return 4
}

func (t DType) String() string {
	switch t {
	case Float32:
		return "float32"
	case BFloat16:
		return "bf16"
	}
	return fmt.Sprintf("DType(%d)", int(t))
}

// Matrix is a dense matrix in device memory. The stored matrix is
// column-major with leading dimension LD: stored element (i, j) is at
// Ptr + (i + j·LD)·Size. If the matrix is a transposed view (made by
// RowMajor), the logical r×c matrix is the transpose of the stored c×r
// one, so a row-major buffer is used in place, without a transpose copy.
//
// Matrices made by a Backend (New, NewMatrix, Upload*) are owned by it and
// freed by Free or Close; matrices made by ColMajor and RowMajor wrap
// memory the caller owns (a training loop's activation) and are never
// freed by this package.
type Matrix struct {
	ptr        uintptr
	rows, cols int
	ld         int
	dtype      DType
	trans      bool
	owner      *device
	owned      bool
	freed      *bool
}

var _ lowrank.Matrix = (*Matrix)(nil)

// ColMajor wraps device memory at ptr holding a column-major rows×cols
// matrix of type dt with leading dimension ld ≥ rows. The memory stays the
// caller's. It panics with lowrank.ErrShape for inconsistent dimensions.
func ColMajor(ptr uintptr, rows, cols, ld int, dt DType) *Matrix {
	if rows <= 0 || cols <= 0 || ld < rows {
		panic(lowrank.ErrShape)
	}
	return &Matrix{ptr: ptr, rows: rows, cols: cols, ld: ld, dtype: dt}
}

// RowMajor wraps device memory at ptr holding a row-major rows×cols
// matrix of type dt with row stride ≥ cols, as frameworks lay out
// activations. Byte for byte it is the column-major cols×rows matrix Aᵀ
// with leading dimension stride; the returned matrix presents A, and the
// operations swap operands instead of copying. The memory stays the
// caller's.
func RowMajor(ptr uintptr, rows, cols, stride int, dt DType) *Matrix {
	if rows <= 0 || cols <= 0 || stride < cols {
		panic(lowrank.ErrShape)
	}
	return &Matrix{ptr: ptr, rows: rows, cols: cols, ld: stride, dtype: dt, trans: true}
}

// Dims returns the logical shape.
func (m *Matrix) Dims() (r, c int) { return m.rows, m.cols }

// DType returns the element type.
func (m *Matrix) DType() DType { return m.dtype }

// Ptr returns the device address of element (0, 0).
func (m *Matrix) Ptr() uintptr { return m.ptr }

// LD returns the leading dimension of the stored column-major matrix.
func (m *Matrix) LD() int { return m.ld }

// RowMajorLayout reports whether m is stored row-major (made by RowMajor
// or UploadDense32).
func (m *Matrix) RowMajorLayout() bool { return m.trans }

// stored returns the dimensions of the stored column-major matrix.
func (m *Matrix) stored() (r, c int) {
	if m.trans {
		return m.cols, m.rows
	}
	return m.rows, m.cols
}

// strides returns the element strides (si, sj) of logical element (i, j).
func (m *Matrix) strides() (si, sj int) {
	if m.trans {
		return m.ld, 1
	}
	return 1, m.ld
}

// span returns the number of elements from (0, 0) to the last stored one.
func (m *Matrix) span() int {
	r, c := m.stored()
	return (c-1)*m.ld + r
}

// contiguous reports whether the stored matrix has no gaps.
func (m *Matrix) contiguous() bool {
	r, _ := m.stored()
	return m.ld == r
}

// T returns the transpose of m as a view sharing its memory: the stored
// matrix is the same, read the other way (row-major ↔ column-major). It is
// the same matrix to Free: freeing either frees the storage once.
func (m *Matrix) T() *Matrix {
	v := *m
	v.rows, v.cols = m.cols, m.rows
	v.trans = !m.trans
	return &v
}
