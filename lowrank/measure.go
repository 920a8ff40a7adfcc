package lowrank

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/vec"
)

// FrobNorm2 returns ‖a‖_F², the sum of squares of the elements of a,
// accumulated in float64. Reads *mat.Dense and *Dense32 in place.
func FrobNorm2(a mat.Matrix) float64 {
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
// of a in row-major order, or nil. It also returns an error wrapping
// ErrEmpty if a has no elements.
func CheckFinite(a mat.Matrix) error {
	m, n := a.Dims()
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

// ErrorFromNorms returns the relative Frobenius error of a QB
// approximation from the identity ‖A − QB‖_F² = ‖A‖_F² − ‖B‖_F², valid
// for Q with orthonormal columns and B = QᵀA:
//
//	sqrt(max(0, normA2 − normB2) / normA2).
//
// It is 0 when normA2 is 0. The subtraction cancels: each norm carries a
// relative rounding error of about u·(n+1) (u the unit roundoff of the
// arithmetic that produced B), so the result is unreliable below roughly
// sqrt(u·n) — about 1e-7 in float64 and 1e-3 in float32 — and RelError
// should be used there.
func ErrorFromNorms(normA2, normB2 float64) float64 {
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
// It reconstructs Â in blocks of rows, so it needs O(n·64) extra memory,
// and costs 2·m·n·k flops. It panics with ErrShape if f's shape differs
// from a's.
func RelError(a mat.Matrix, f Approximation) float64 {
	m, n := a.Dims()
	fm, fn := f.Dims()
	if m != fm || n != fn {
		panic(ErrShape)
	}
	const block = 64
	var num, den float64
	var buf mat.Dense
	for i0 := 0; i0 < m; i0 += block {
		i1 := min(i0+block, m)
		buf.Reset()
		f.ReconstructRows(&buf, i0, i1)
		raw := buf.RawMatrix()
		for i := i0; i < i1; i++ {
			row := raw.Data[(i-i0)*raw.Stride : (i-i0)*raw.Stride+n]
			switch a := a.(type) {
			case *mat.Dense:
				ar := a.RawRowView(i)
				for j, v := range ar {
					d := v - row[j]
					num += d * d
					den += v * v
				}
			case *Dense32:
				for j, v32 := range a.Row(i) {
					v := float64(v32)
					d := v - row[j]
					num += d * d
					den += v * v
				}
			default:
				for j := 0; j < n; j++ {
					v := a.At(i, j)
					d := v - row[j]
					num += d * d
					den += v * v
				}
			}
		}
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}
