package exact

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/internal/vec"
	"github.com/loract/loract/lowrank"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// TruncatedSVD returns the k leading terms of the exact singular value
// decomposition of a, A ≈ U·diag(S)·Vᵀ; k = min(m, n) gives the full thin
// SVD. It is the reference every randomized method is judged by: singular
// values are accurate to a small multiple of ε·σ₁ (absolute) and U, V are
// orthonormal to working accuracy, O(√max(m,n)·ε). a is not modified; a
// *lowrank.Dense32 is widened to float64.
//
// The SVD is computed on the tall orientation (Aᵀ when m < n) by a
// Gram-preconditioned one-sided Jacobi method whose O(m·n²) work is all
// matrix–matrix products (see svdTall and docs/exact-svd.md). Cost for
// m ≥ n: ≈ 4.5·m·n² flops of GEMM plus a symmetric n×n eigensolver when
// the Gram preconditioning resolves every pair of singular directions to
// working accuracy (Gaussian and exactly rank-deficient matrices, whose
// σ_min ≳ σ₁/m^¼ or are zero); ≈ 3.25·m·n² more per round when only small
// rotations remain (an activation-like spectrum down to 10⁻³·σ₁: one
// round); and where the Gram eigensolver cannot separate singular
// directions (close values far below √ε·σ₁: a spectrum graded to
// 10⁻¹⁴·σ₁) a Householder QR and back-transformation, 6·m·n², plus O(n³)
// per refinement round. The memory is a float64 copy of a (unless a
// is a tall *mat.Dense with max|a_ij| ∈ [1, 2)) plus O(m·n) workspace.
//
// The result does not depend on the scale of a: a is scaled by a power of
// two (exactly, for every finite a, subnormal elements included) to
// max|a_ij| ∈ [1, 2), so TruncatedSVD(2^e·A) = 2^e·TruncatedSVD(A) exactly
// wherever 2^e·A is exact, and TruncatedSVD(s·A) = s·TruncatedSVD(A) to
// rounding for any s for which s·A is finite.
//
// It returns an error wrapping lowrank.ErrEmpty, lowrank.ErrRank or
// lowrank.ErrNotFinite for bad input, ErrOverflow if σ₁ exceeds
// math.MaxFloat64 (possible only for max|a_ij| > math.MaxFloat64/√(m·n)),
// and lowrank.ErrNoConvergence if the iteration failed (not observed; see
// docs/reliability.md). It does not panic.
func TruncatedSVD(a mat.Matrix, k int) (*lowrank.SVD, error) {
	m, n := a.Dims()
	if err := skeleton.CheckRank(m, n, k); err != nil {
		return nil, err
	}
	if err := lowrank.CheckFinite(a); err != nil {
		return nil, err
	}
	wide := m < n
	t, shift := tallOperand(a, wide)
	u, v, s, ok := svdTall(t)
	if !ok {
		return nil, fmt.Errorf("%w: exact SVD of a %d×%d matrix", lowrank.ErrNoConvergence, m, n)
	}
	vec.ScaleExp(s, -shift)
	if math.IsInf(s[0], 1) {
		return nil, fmt.Errorf("%w (%w): σ₁ of a %d×%d matrix with max|a_ij| = %g", ErrOverflow, lowrank.ErrNotFinite, m, n, maxAbs(a))
	}
	if wide {
		u, v = v, u
	}
	f := lowrank.NewSVD(mat.NewDense(u.Rows, u.Cols, u.Data), s, mat.NewDense(v.Rows, v.Cols, v.Data))
	f.Truncate(k)
	return f, nil
}

// ErrOverflow is returned by TruncatedSVD when a singular value of a
// finite input exceeds math.MaxFloat64. The error also wraps
// lowrank.ErrNotFinite, as every overflow of a result in loract does.
var ErrOverflow = errors.New("exact: singular value overflows float64")

// tallOperand returns a (aᵀ if trans) as a row-major float64 matrix with
// max|a_ij| ∈ [1, 2) (or zero), and the exponent e of the power of two 2^e
// it was scaled by. A *mat.Dense already in that range that needs no
// transposition is used in place, read-only; anything else is copied (and
// widened, for a *lowrank.Dense32) and scaled.
//
// Scaling every input to the same range, rather than only those near
// overflow or underflow, is what makes the result exactly equivariant,
// TruncatedSVD(2^e·A) = 2^e·TruncatedSVD(A) bit for bit: then every
// intermediate, including the squares of columns far below the rounding
// level that underflow, is the same number times a power of two. The copy
// costs ≈ 3% of the SVD of a Gaussian 4096×1024 matrix (BenchmarkTallOperand).
func tallOperand(a mat.Matrix, trans bool) (blas64.General, int) {
	d, ok := a.(*mat.Dense)
	if !ok || trans {
		return tallCopy(a, trans)
	}
	raw := d.RawMatrix()
	m, n := raw.Rows, raw.Cols
	// max|a_ij| and the scaled copy, rows split over the cores.
	part := make([]float64, m)
	parallelRows(m, m*n, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			var s float64
			for _, x := range raw.Data[i*raw.Stride : i*raw.Stride+n] {
				s = max(s, math.Abs(x))
			}
			part[i] = s
		}
	})
	var amax float64
	for _, s := range part {
		amax = max(amax, s)
	}
	if amax == 0 || (amax >= 1 && amax < 2) {
		return raw, 0
	}
	_, ea := math.Frexp(amax) // amax ∈ [2^(ea−1), 2^ea)
	e := 1 - ea
	t := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	parallelRows(m, m*n, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row := t.Data[i*n : (i+1)*n]
			copy(row, raw.Data[i*raw.Stride:i*raw.Stride+n])
			vec.ScaleExp(row, e)
		}
	})
	return t, e
}

// maxAbs returns max|a_ij|.
func maxAbs(a mat.Matrix) float64 {
	m, n := a.Dims()
	var amax float64
	for i := range m {
		for j := range n {
			amax = max(amax, math.Abs(a.At(i, j)))
		}
	}
	return amax
}

// tallCopy returns a contiguous row-major float64 copy of a (of aᵀ if
// trans), multiplied by the power of two 2^e that brings max|a_ij| into
// [1, 2), and e, so that the Gram matrices of the SVD neither overflow nor
// underflow. Scaling up (max|a_ij| < 1, e up to 1074 for a subnormal
// maximum, beyond the range of a float64 2^e: see vec.ScaleExp) is exact;
// scaling down rounds only the elements that become subnormal, those below
// 2⁻¹⁰²¹·max|a_ij| after scaling, far under the backward error
// ε·max|a_ij|. An all-zero a has e = 0.
func tallCopy(a mat.Matrix, trans bool) (blas64.General, int) {
	m, n := a.Dims()
	r, c := m, n
	if trans {
		r, c = n, m
	}
	t := blas64.General{Rows: r, Cols: c, Stride: c, Data: make([]float64, r*c)}
	set := func(i, j int, x float64) {
		if trans {
			t.Data[j*c+i] = x
		} else {
			t.Data[i*c+j] = x
		}
	}
	switch a := a.(type) {
	case *mat.Dense:
		raw := a.RawMatrix()
		if !trans {
			for i := range m {
				copy(t.Data[i*c:(i+1)*c], raw.Data[i*raw.Stride:i*raw.Stride+n])
			}
			break
		}
		for i := range m {
			for j, x := range raw.Data[i*raw.Stride : i*raw.Stride+n] {
				t.Data[j*c+i] = x
			}
		}
	case *lowrank.Dense32:
		// Rows of a split over the cores (each writes its own row of t, or
		// its own column for the transpose).
		parallelRows(m, m*n, func(i0, i1 int) {
			for i := i0; i < i1; i++ {
				if !trans {
					row := t.Data[i*c : (i+1)*c]
					for j, x := range a.Row(i) {
						row[j] = float64(x)
					}
					continue
				}
				for j, x := range a.Row(i) {
					t.Data[j*c+i] = float64(x)
				}
			}
		})
	default:
		for i := range m {
			for j := range n {
				set(i, j, a.At(i, j))
			}
		}
	}
	part := make([]float64, r)
	parallelRows(r, r*c, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			var s float64
			for _, x := range t.Data[i*c : (i+1)*c] {
				s = max(s, math.Abs(x))
			}
			part[i] = s
		}
	})
	amax := slices.Max(part)
	if amax == 0 {
		return t, 0
	}
	_, e := math.Frexp(amax) // amax ∈ [2^(e−1), 2^e)
	parallelRows(r, r*c, func(i0, i1 int) {
		vec.ScaleExp(t.Data[i0*c:i1*c], 1-e)
	})
	return t, 1 - e
}
