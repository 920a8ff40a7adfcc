package bounds

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// IdentityError returns the absolute Frobenius error ‖A − Â‖_F of the QB
// approximation f of a from the identity ‖A − QB‖_F² = ‖A‖_F² − ‖B‖_F²
// (Q orthonormal, B = QᵀA; theory.md §5). It costs one pass over a and
// none over the product; below about √(ε·n)·‖A‖_F the subtraction cancels
// and Residual should be used. It panics with lowrank.ErrShape if the
// shapes differ.
func IdentityError(a mat.Matrix, f *lowrank.QB) float64 {
	checkShape(a, f)
	// ‖A‖ from gonum's scaled norm (no overflow); the squared norms for the
	// identity in units of it.
	nrm := mat.Norm(a, 2)
	if nrm == 0 {
		return 0
	}
	b := f.Right() // B = QᵀA, the factor that is not orthonormal
	if !f.LeftOrthonormal() {
		b = f.Left()
	}
	na := lowrank.SquaredFrobenius(scaledView{a, 1 / nrm})
	nb := lowrank.SquaredFrobenius(scaledView{b, 1 / nrm})
	return nrm * lowrank.ErrorFromSquaredNorms(na, nb)
}

// scaledView is s·m, read element by element.
type scaledView struct {
	m mat.Matrix
	s float64
}

func (v scaledView) Dims() (int, int)    { return v.m.Dims() }
func (v scaledView) At(i, j int) float64 { return v.s * v.m.At(i, j) }
func (v scaledView) T() mat.Matrix       { return mat.Transpose{Matrix: v} }

// ProbeBound returns HMT's a-posteriori estimate (HMT 2011 §4.3, eq. (4.3)
// from Lemma 4.1 with α = 10): with r independent standard Gaussian
// vectors ω_i,
//
//	‖(I − QQᵀ)·op(A)‖₂ ≤ 10·√(2/π)·max_i ‖(I − QQᵀ)·op(A)·ω_i‖
//
// except with probability at most 10^{−r}. op(A) = Aᵀ unless f.LeftOrthonormal(). Cost
// r·(2mn + 4·p·k) flops for op(A) p×s. rng supplies the probes. It panics
// with ErrParam if r < 1 and lowrank.ErrShape if the shapes differ.
func ProbeBound(a mat.Matrix, f *lowrank.QB, r int, rng *rand.Rand) float64 {
	checkShape(a, f)
	if r < 1 {
		paramPanic("r = %d probes, want ≥ 1", r)
	}
	var op mat.Matrix = a
	if !f.LeftOrthonormal() {
		op = a.T()
	}
	_, s := op.Dims()
	q := f.Q()
	w := mat.NewVecDense(s, nil)
	var y, c mat.VecDense
	var mx float64
	for range r {
		for i := 0; i < s; i++ {
			w.SetVec(i, rng.NormFloat64())
		}
		y.Reset()
		y.MulVec(op, w)
		c.Reset()
		c.MulVec(q.T(), &y)
		var t mat.VecDense
		t.MulVec(q, &c)
		y.SubVec(&y, &t)
		mx = max(mx, mat.Norm(&y, 2))
	}
	return 10 * math.Sqrt(2/math.Pi) * mx
}

// Residual returns the Frobenius and spectral norms of A − Â for the QB
// approximation f, computed directly (O(m·n·k) for the product and
// O(m·n·min(m, n)) for the spectral norm): the measured error the
// certificates bound.
func Residual(a mat.Matrix, f *lowrank.QB) (frob, spec float64) {
	checkShape(a, f)
	var d mat.Dense
	f.Reconstruct(&d)
	d.Sub(a, &d)
	return mat.Norm(&d, 2), spectralNorm(&d) // gonum's matrix norm 2 is Frobenius
}

func checkShape(a mat.Matrix, f *lowrank.QB) {
	m, n := a.Dims()
	fm, fn := f.Dims()
	if m != fm || n != fn {
		panic(lowrank.ErrShape)
	}
}
