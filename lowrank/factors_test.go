package lowrank_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

func orthonormal(m, k int, seed uint64) *mat.Dense {
	var qr mat.QR
	qr.Factorize(testmat.Gaussian(m, k, seed))
	var q mat.Dense
	qr.QTo(&q)
	return mat.DenseCopyOf(q.Slice(0, m, 0, k))
}

func TestQBType(t *testing.T) {
	q := orthonormal(7, 3, 1)
	b := testmat.Gaussian(3, 5, 2)
	for _, trans := range []bool{false, true} {
		f := lowrank.NewQB(mat.DenseCopyOf(q), mat.DenseCopyOf(b), trans)
		m, n := f.Dims()
		want := mat.NewDense(7, 5, nil)
		want.Mul(q, b)
		if trans {
			assert.Equal(t, [2]int{5, 7}, [2]int{m, n})
			want = mat.DenseCopyOf(want.T())
		} else {
			assert.Equal(t, [2]int{7, 5}, [2]int{m, n})
		}
		assert.Equal(t, 3, f.Rank())
		assert.Equal(t, !trans, f.LeftOrthonormal())
		// The factors a user multiplies give the m×n product in either
		// orientation.
		var l, r, lr mat.Dense
		f.LeftTo(&l)
		f.RightTo(&r)
		lr.Mul(&l, &r)
		assert.Equal(t, [2]int{m, 3}, dims(&l))
		assert.Equal(t, [2]int{3, n}, dims(&r))
		// One product of inner dimension 3: 3·ε relative, with margin.
		assert.True(t, mat.EqualApprox(&lr, want, 1e-14))
		var viaViews mat.Dense
		viaViews.Mul(f.Left(), f.Right())
		assert.True(t, mat.Equal(&viaViews, &lr))
		var rec mat.Dense
		f.Reconstruct(&rec)
		assert.True(t, mat.EqualApprox(&rec, want, 1e-14))
		var rows mat.Dense
		f.ReconstructRows(&rows, 1, 3)
		assert.True(t, mat.EqualApprox(&rows, want.Slice(1, 3, 0, n), 1e-14))
		assert.Equal(t, 3*(7+5)*2, f.Bytes(lowrank.BFloat16))
		assert.Equal(t, 3*(7+5)*8, f.Bytes(lowrank.Float64))
		// Q is the orthonormal factor, as columns.
		assert.True(t, mat.Equal(f.Q(), q))
		if trans {
			assert.True(t, mat.Equal(f.Right(), q.T()))
		} else {
			assert.True(t, mat.Equal(f.Left(), q))
		}
		assert.InDelta(t, mat.Norm(b, 2)*mat.Norm(b, 2), f.SquaredNormB(), 1e-13)
		// A destination of the wrong shape panics.
		assert.PanicsWithValue(t, lowrank.ErrShape, func() { f.LeftTo(mat.NewDense(2, 2, nil)) })
		// RelError of the exact reconstruction is 0.
		assert.Less(t, lowrank.RelError(want, f), 1e-15)
	}
	assert.PanicsWithValue(t, lowrank.ErrShape, func() { lowrank.NewQB(mat.NewDense(4, 2, nil), mat.NewDense(3, 4, nil), false) })
}

func dims(m mat.Matrix) [2]int {
	r, c := m.Dims()
	return [2]int{r, c}
}

func TestSVDType(t *testing.T) {
	u, v := orthonormal(6, 3, 3), orthonormal(4, 3, 4)
	s := []float64{3, 2, 0.5}
	f := lowrank.NewSVD(mat.DenseCopyOf(u), append([]float64(nil), s...), mat.DenseCopyOf(v))
	m, n := f.Dims()
	assert.Equal(t, [3]int{6, 4, 3}, [3]int{m, n, f.Rank()})
	assert.Equal(t, s, f.Values(nil))
	var rec mat.Dense
	f.Reconstruct(&rec)
	var want, us mat.Dense
	us.Mul(u, mat.NewDiagDense(3, s))
	want.Mul(&us, v.T())
	assert.True(t, mat.EqualApprox(&rec, &want, 1e-14))
	assert.Equal(t, 3*(6+4+1)*4, f.Bytes(lowrank.Float32))
	f.Truncate(2)
	assert.Equal(t, 2, f.Rank())
	// Truncation error: ‖A − A₂‖_F = σ₃ = 0.5 of ‖A‖_F = √(9+4+0.25).
	assert.InDelta(t, 0.5/math.Sqrt(13.25), lowrank.RelError(&want, f), 1e-14)
	assert.PanicsWithValue(t, lowrank.ErrShape, func() { f.Truncate(3) })
}

func TestMeasures(t *testing.T) {
	a := testmat.Gaussian(9, 4, 5)
	a32 := testmat.To32(a)
	n2 := lowrank.SquaredFrobenius(a)
	assert.InDelta(t, mat.Norm(a, 2)*mat.Norm(a, 2), n2, 36*0x1p-53*n2)
	// float32 rounding changes each element by ≤ 2⁻²⁴ relative: the squared
	// norm by ≤ 2·2⁻²⁴ relative.
	assert.InDelta(t, n2, lowrank.SquaredFrobenius(a32), 2*0x1p-24*n2)
	assert.Equal(t, 0.0, lowrank.ErrorFromSquaredNorms(0, 0))
	assert.Equal(t, 0.0, lowrank.ErrorFromSquaredNorms(4, 5), "cancellation below zero is clamped")
	assert.InDelta(t, 0.5, lowrank.ErrorFromSquaredNorms(4, 3), 1e-16)
	assert.NoError(t, lowrank.CheckFinite(a))
	a.Set(2, 3, math.NaN())
	err := lowrank.CheckFinite(a)
	var nf *lowrank.NotFiniteError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, [2]int{2, 3}, [2]int{nf.Row, nf.Col})
	assert.ErrorIs(t, lowrank.CheckFinite(&mat.Dense{}), lowrank.ErrEmpty)
}

// TestRelErrorScaleInvariant checks that RelError(s·A, s·Â) = RelError(A, Â)
// to rounding for s from 1e-300 to 1e300: the sums are scaled, so only the
// rounding of s·a_ij (none for a power of two, one ε otherwise) differs.
func TestRelErrorScaleInvariant(t *testing.T) {
	a := testmat.Gaussian(12, 9, 7)
	q := orthonormal(12, 3, 8)
	var b mat.Dense
	b.Mul(q.T(), a)
	base := lowrank.RelError(a, lowrank.NewQB(mat.DenseCopyOf(q), mat.DenseCopyOf(&b), false))
	require.Greater(t, base, 0.1)
	for _, s := range []float64{1e-300, 1e-200, 1e-160, 1e-100, 1, 1e100, 1e160, 1e200, 1e300} {
		var as, bs mat.Dense
		as.Scale(s, a)
		bs.Scale(s, &b)
		got := lowrank.RelError(&as, lowrank.NewQB(mat.DenseCopyOf(q), &bs, false))
		// Each scaled element carries one rounding (ε relative), so the
		// ratio of the two norms moves by a few ε.
		assert.InEpsilon(t, base, got, 16*0x1p-52, "s = %g", s)
	}
	// The exact reconstruction of a huge A has error 0, not NaN.
	huge := mat.NewDense(2, 2, []float64{1.2e308, 0, 0, 1e308})
	id := mat.NewDense(2, 2, []float64{1, 0, 0, 1})
	assert.Equal(t, 0.0, lowrank.RelError(huge, lowrank.NewQB(id, mat.DenseCopyOf(huge), false)))
}

func TestDense32Check(t *testing.T) {
	good := lowrank.NewDense32(3, 4, nil)
	assert.NoError(t, good.Check())
	assert.NoError(t, good.Slice(1, 3, 1, 3).Check())
	for name, d := range map[string]*lowrank.Dense32{
		"short data":   {Rows: 3, Cols: 4, Stride: 4, Data: make([]float32, 11)},
		"small stride": {Rows: 3, Cols: 4, Stride: 3, Data: make([]float32, 12)},
		"negative":     {Rows: -1, Cols: 4, Stride: 4},
		"overflow":     {Rows: math.MaxInt / 2, Cols: 4, Stride: 4, Data: make([]float32, 8)},
	} {
		assert.ErrorIs(t, d.Check(), lowrank.ErrShape, name)
		assert.ErrorIs(t, lowrank.CheckFinite(d), lowrank.ErrShape, name)
	}
	assert.PanicsWithValue(t, lowrank.ErrShape, func() { lowrank.NewDense32(math.MaxInt/2, 4, nil) })
}

func TestDense32(t *testing.T) {
	d := lowrank.NewDense32(3, 4, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	assert.Equal(t, 6.0, d.At(1, 2))
	assert.Equal(t, 9.0, d.T().At(1, 2))
	s := d.Slice(1, 3, 1, 3)
	assert.Equal(t, 5.0, s.At(0, 0))
	assert.Equal(t, 10.0, s.At(1, 1))
	assert.Equal(t, []float32{8, 9, 10, 11}, d.Row(2))
	assert.Panics(t, func() { d.At(3, 0) })
	assert.PanicsWithValue(t, lowrank.ErrShape, func() { lowrank.NewDense32(2, 2, make([]float32, 3)) })
}

func TestBF16(t *testing.T) {
	for _, x := range []float32{0, 1, -1, 3.14159, 1e-20, 65504, -2.5e30} {
		r := lowrank.FromBF16(lowrank.ToBF16(x))
		// Round to nearest: relative error ≤ 2⁻⁸ (8 significand bits).
		assert.LessOrEqual(t, math.Abs(float64(r-x)), 0x1p-8*math.Abs(float64(x)), "%v", x)
	}
	// Ties go to even: 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷.
	assert.Equal(t, float32(1), lowrank.FromBF16(lowrank.ToBF16(1+0x1p-8)))
	assert.True(t, math.IsNaN(float64(lowrank.FromBF16(lowrank.ToBF16(float32(math.NaN()))))))
	assert.Equal(t, 2, lowrank.BFloat16.Size())
	assert.Equal(t, 0x1p-8, lowrank.BFloat16.UnitRoundoff())
	assert.InDelta(t, 3.140625, lowrank.RoundTo(3.14159, lowrank.BFloat16), 0)
}
