package lowrank

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/vec"
)

// SquaredFrobenius returns ‖a‖_F², the sum of squares of the elements of
// a, accumulated in float64. It reads *mat.Dense and *Dense32 in place. It
// overflows to +Inf or underflows towards 0 where ‖a‖_F² is outside
// float64's range (max|a_ij| beyond about 1e154 or below 1e-154); RelError
// and the Factors norms scale to avoid that. It panics with an error
// wrapping ErrShape for a malformed *Dense32 (Dense32.Check).
func SquaredFrobenius(a mat.Matrix) float64 {
	mustBeValid(a)
	m, n := a.Dims()
	var s float64
	switch a := a.(type) {
	case *mat.Dense:
		raw := a.RawMatrix()
		for i := 0; i < m; i++ {
			s += vec.SumSq64(raw.Data[i*raw.Stride : i*raw.Stride+n])
		}
	case *Dense32:
		for i := 0; i < m; i++ {
			s += vec.SumSq32(a.Row(i))
		}
	default:
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				v := a.At(i, j)
				s += v * v
			}
		}
	}
	return s
}

// CheckFinite returns a *NotFiniteError for the first NaN or ±Inf element
// of a in row-major order, or nil. It returns an error wrapping ErrEmpty if
// a has no elements, and one wrapping ErrShape for a *Dense32 whose fields
// are inconsistent (Dense32.Check).
func CheckFinite(a mat.Matrix) error {
	m, n := a.Dims()
	if d, ok := a.(*Dense32); ok {
		if err := d.Check(); err != nil {
			return err
		}
	}
	if m == 0 || n == 0 {
		return ErrEmpty
	}
	switch a := a.(type) {
	case *mat.Dense:
		raw := a.RawMatrix()
		for i := 0; i < m; i++ {
			row := raw.Data[i*raw.Stride : i*raw.Stride+n]
			if s := vec.SumSq64(row); !math.IsNaN(s) && !math.IsInf(s, 0) {
				continue
			}
			for j, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return &NotFiniteError{Row: i, Col: j, Value: v}
				}
			}
		}
	case *Dense32:
		for i := 0; i < m; i++ {
			row := a.Row(i)
			if s := vec.SumSq32(row); !math.IsNaN(s) && !math.IsInf(s, 0) {
				continue
			}
			for j, v := range row {
				if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
					return &NotFiniteError{Row: i, Col: j, Value: f}
				}
			}
		}
	default:
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				if v := a.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
					return &NotFiniteError{Row: i, Col: j, Value: v}
				}
			}
		}
	}
	return nil
}

// ErrorFromSquaredNorms returns the relative Frobenius error of a QB
// approximation from the identity ‖A − QB‖_F² = ‖A‖_F² − ‖B‖_F², valid
// for Q with orthonormal columns and B = QᵀA:
//
//	sqrt(max(0, normA2 − normB2) / normA2),
//
// normA2 = ‖A‖_F² and normB2 = ‖B‖_F² (or both for the same multiple of A).
// It is 0 when normA2 is 0. The subtraction cancels: each norm carries a
// relative rounding error of about u·(n+1) (u the unit roundoff of the
// arithmetic that produced B), so the result is unreliable below roughly
// sqrt(u·n) — about 1e-7 in float64 and 1e-3 in float32 — and RelError
// should be used there.
func ErrorFromSquaredNorms(normA2, normB2 float64) float64 {
	if normA2 == 0 {
		return 0
	}
	d := normA2 - normB2
	if d <= 0 {
		return 0
	}
	return math.Sqrt(d / normA2)
}

// RelError returns ‖A − Â‖_F / ‖A‖_F computed directly, where Â is the
// approximation f of a; it returns the absolute error ‖Â‖_F if A is zero.
// The sums are accumulated for s·A and s·Â, s the power of two that brings
// max|a_ij| near 1, so that they neither overflow nor underflow for any
// finite a whose approximation is of its size (an error that overflows
// float64 even so is +Inf). It reads a once for the scale, then
// reconstructs Â in blocks of rows: O(n·64) extra memory and 2·m·n·k flops.
// It panics with ErrShape if f's shape differs from a's, and with an error
// wrapping ErrShape for a malformed *Dense32. A NaN or ±Inf in a gives NaN.
func RelError(a mat.Matrix, f Approximation) float64 {
	mustBeValid(a)
	m, n := a.Dims()
	fm, fn := f.Dims()
	if m != fm || n != fn {
		panic(ErrShape)
	}
	var amax float64
	forRows(a, func(_ int, row []float64, row32 []float32) {
		for _, v := range row {
			amax = max(amax, math.Abs(v))
		}
		for _, v := range row32 {
			amax = max(amax, math.Abs(float64(v)))
		}
	})
	s := vec.ScaleOf(amax)
	const block = 64
	var num, den float64
	var buf mat.Dense
	for i0 := 0; i0 < m; i0 += block {
		i1 := min(i0+block, m)
		buf.Reset()
		f.ReconstructRows(&buf, i0, i1)
		raw := buf.RawMatrix()
		for i := i0; i < i1; i++ {
			rec := raw.Data[(i-i0)*raw.Stride : (i-i0)*raw.Stride+n]
			add := func(j int, v float64) {
				v *= s
				d := v - rec[j]*s
				num += d * d
				den += v * v
			}
			switch a := a.(type) {
			case *mat.Dense:
				for j, v := range a.RawRowView(i) {
					add(j, v)
				}
			case *Dense32:
				for j, v := range a.Row(i) {
					add(j, float64(v))
				}
			default:
				for j := 0; j < n; j++ {
					add(j, a.At(i, j))
				}
			}
		}
	}
	if den == 0 {
		return math.Sqrt(num) / s
	}
	return math.Sqrt(num / den)
}

// forRows calls f for every row i of a with the row's elements: row for a
// *mat.Dense or a general matrix (copied), row32 for a *Dense32.
func forRows(a mat.Matrix, f func(i int, row []float64, row32 []float32)) {
	m, n := a.Dims()
	switch a := a.(type) {
	case *mat.Dense:
		for i := 0; i < m; i++ {
			f(i, a.RawRowView(i), nil)
		}
	case *Dense32:
		for i := 0; i < m; i++ {
			f(i, nil, a.Row(i))
		}
	default:
		row := make([]float64, n)
		for i := 0; i < m; i++ {
			for j := range row {
				row[j] = a.At(i, j)
			}
			f(i, row, nil)
		}
	}
}

// mustBeValid panics with Dense32.Check's error for a malformed *Dense32.
func mustBeValid(a mat.Matrix) {
	if d, ok := a.(*Dense32); ok {
		if err := d.Check(); err != nil {
			panic(err)
		}
	}
}
