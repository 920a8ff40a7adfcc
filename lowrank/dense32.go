package lowrank

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Dense32 is a row-major float32 matrix: element (i, j) is
// Data[i*Stride+j]. It is how training loops hand activations to loract
// without a float64 copy. Dense32 implements mat.Matrix, so it can be passed
// to every function that takes one; the algorithms recognise it and read the
// float32 data in place.
type Dense32 struct {
	Rows, Cols int
	Stride     int
	Data       []float32
}

// NewDense32 returns a rows×cols Dense32 viewing data, which must hold
// rows·cols elements in row-major order; if data is nil a zeroed slice is
// allocated. It panics with ErrShape if a dimension is negative, rows·cols
// overflows int, or len(data) is wrong.
func NewDense32(rows, cols int, data []float32) *Dense32 {
	if rows < 0 || cols < 0 || (cols > 0 && rows > math.MaxInt/cols) {
		panic(ErrShape)
	}
	if data == nil {
		data = make([]float32, rows*cols)
	}
	if len(data) != rows*cols {
		panic(ErrShape)
	}
	return &Dense32{Rows: rows, Cols: cols, Stride: cols, Data: data}
}

// Check returns an error wrapping ErrShape unless d's fields describe a
// valid matrix: non-negative dimensions whose product fits an int, a stride
// of at least Cols (and at least 1), and Data holding at least
// Stride·(Rows−1)+Cols elements. A Dense32 built by NewDense32 or Slice
// always passes; one assembled by hand is checked by every algorithm
// before it reads Data.
func (d *Dense32) Check() error {
	switch {
	case d.Rows < 0 || d.Cols < 0:
		return fmt.Errorf("%w: Dense32 is %d×%d", ErrShape, d.Rows, d.Cols)
	case d.Cols > 0 && d.Rows > math.MaxInt/d.Cols:
		return fmt.Errorf("%w: Dense32 %d×%d has more elements than an int counts", ErrShape, d.Rows, d.Cols)
	case d.Rows == 0 || d.Cols == 0:
		return nil
	case d.Stride < d.Cols:
		return fmt.Errorf("%w: Dense32 stride %d < %d columns", ErrShape, d.Stride, d.Cols)
	case d.Rows > 1 && d.Stride > (math.MaxInt-d.Cols)/(d.Rows-1):
		return fmt.Errorf("%w: Dense32 stride %d overflows for %d rows", ErrShape, d.Stride, d.Rows)
	case len(d.Data) < d.Stride*(d.Rows-1)+d.Cols:
		return fmt.Errorf("%w: Dense32 %d×%d with stride %d needs %d elements, has %d",
			ErrShape, d.Rows, d.Cols, d.Stride, d.Stride*(d.Rows-1)+d.Cols, len(d.Data))
	}
	return nil
}

// Dims returns the number of rows and columns.
func (d *Dense32) Dims() (r, c int) { return d.Rows, d.Cols }

// At returns element (i, j) as a float64.
func (d *Dense32) At(i, j int) float64 {
	if uint(i) >= uint(d.Rows) || uint(j) >= uint(d.Cols) {
		panic(mat.ErrIndexOutOfRange)
	}
	return float64(d.Data[i*d.Stride+j])
}

// T returns the transpose of d as a mat.Transpose view.
func (d *Dense32) T() mat.Matrix { return mat.Transpose{Matrix: d} }

// Row returns row i of d, a slice of Data.
func (d *Dense32) Row(i int) []float32 { return d.Data[i*d.Stride : i*d.Stride+d.Cols] }

// Slice returns the view of rows [i0, i1) and columns [j0, j1) of d,
// sharing its data.
func (d *Dense32) Slice(i0, i1, j0, j1 int) *Dense32 {
	if i0 < 0 || i1 < i0 || i1 > d.Rows || j0 < 0 || j1 < j0 || j1 > d.Cols {
		panic(mat.ErrIndexOutOfRange)
	}
	if i1 == i0 || j1 == j0 {
		return &Dense32{Rows: i1 - i0, Cols: j1 - j0, Stride: d.Stride}
	}
	return &Dense32{Rows: i1 - i0, Cols: j1 - j0, Stride: d.Stride, Data: d.Data[i0*d.Stride+j0 : (i1-1)*d.Stride+j1]}
}

// ToBF16 rounds x to the nearest bfloat16 (ties to even) and returns its
// bits. NaN stays NaN.
func ToBF16(x float32) uint16 {
	b := math.Float32bits(x)
	if x != x {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// FromBF16 returns the float32 whose upper half is h.
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundTo returns x rounded to precision p and widened back to float64.
func RoundTo(x float64, p Precision) float64 {
	switch p {
	case Float32:
		return float64(float32(x))
	case BFloat16:
		return float64(FromBF16(ToBF16(float32(x))))
	}
	return x
}
