package testmat

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

const eps = 0x1p-52

// CheckQB asserts what every QB of a finite a must satisfy (the fuzz
// targets' oracle): finite factors, an orthonormal Q, a product of the
// right shape, an error no smaller than the Eckart–Young optimum of its
// rank, and a reported relative error (from ‖A‖² − ‖B‖², computed by the
// algorithm) equal to the directly measured one.
//
// Tolerances, for an m×n a and rank k: ‖QᵀQ − I‖_max ≤ 8·(m·n + k²)·ε,
// above CholeskyQR2's 6·(p·ℓ + ℓ(ℓ+1))·u and Householder's O(p·ℓ·u)
// (Yamamoto et al. 2015); errors agree to 64·(m+n)·ε relative to ‖A‖, the
// rounding of two dot-product sums of length ≤ m+n in the identity
// (lowrank.ErrorFromSquaredNorms) and in the direct residual.
func CheckQB(t testing.TB, a mat.Matrix, f *lowrank.QB, reported float64) {
	t.Helper()
	m, n := a.Dims()
	fm, fn := f.Dims()
	if fm != m || fn != n {
		t.Fatalf("QB is %d×%d, want %d×%d", fm, fn, m, n)
	}
	k := f.Rank()
	for name, x := range map[string]mat.Matrix{"L": f.Left(), "R": f.Right()} {
		r, c := x.Dims()
		for i := range r {
			for j := range c {
				if v := x.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("factor %s(%d, %d) = %v for a finite input", name, i, j, v)
				}
			}
		}
	}
	if e := OrthError(f.Q()); e > 8*float64(m*n+k*k)*eps {
		t.Errorf("‖QᵀQ − I‖_max = %g", e)
	}
	direct := lowrank.RelError(a, f)
	if math.IsNaN(direct) || math.IsInf(direct, 0) {
		t.Fatalf("relative error %v", direct)
	}
	if opt := OptimalRelError(a, k); direct < opt-64*float64(m+n)*eps {
		t.Errorf("error %g below the Eckart–Young optimum %g of rank %d", direct, opt, k)
	}
	if d := math.Abs(direct*direct - reported*reported); d > 64*float64(m+n)*eps {
		t.Errorf("reported error %g, measured %g", reported, direct)
	}
}

// OptimalRelError returns the Eckart–Young optimum ‖A − A_k‖_F/‖A‖_F of a
// small a, from SingularValues scaled by σ₁ (no overflow for any finite
// a); 0 for a zero matrix.
func OptimalRelError(a mat.Matrix, k int) float64 {
	s := SingularValues(a)
	if len(s) == 0 || s[0] == 0 {
		return 0
	}
	var tail, tot float64
	for i, v := range s {
		v /= s[0]
		tot += v * v
		if i >= k {
			tail += v * v
		}
	}
	return math.Sqrt(tail / tot)
}

// Overflows reports whether err is the documented outcome for a finite
// input whose factors do not fit the working precision (it wraps
// lowrank.ErrNotFinite but reports no non-finite input element).
func Overflows(err error) bool {
	var nf *lowrank.NotFiniteError
	return errors.Is(err, lowrank.ErrNotFinite) && !errors.As(err, &nf)
}
