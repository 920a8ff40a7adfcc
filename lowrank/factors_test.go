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
		assert.Equal(t, trans, f.Trans())
		var rec mat.Dense
		f.Reconstruct(&rec)
		// One product of inner dimension 3: 3·ε relative, with margin.
		assert.True(t, mat.EqualApprox(&rec, want, 1e-14))
		var rows mat.Dense
		f.ReconstructRows(&rows, 1, 3)
		assert.True(t, mat.EqualApprox(&rows, want.Slice(1, 3, 0, n), 1e-14))
		assert.Equal(t, 3*(7+5)*2, f.Bytes(lowrank.BFloat16))
		assert.Equal(t, 3*(7+5)*8, f.Bytes(lowrank.Float64))
		var qc, bc mat.Dense
		f.QTo(&qc)
		f.BTo(&bc)
		assert.True(t, mat.Equal(&qc, q))
		assert.True(t, mat.Equal(&bc, b))
		assert.InDelta(t, mat.Norm(b, 2)*mat.Norm(b, 2), f.FrobNorm2B(), 1e-13)
		// QTo into a destination of the wrong shape panics.
		assert.PanicsWithValue(t, lowrank.ErrShape, func() { f.QTo(mat.NewDense(2, 2, nil)) })
		// RelError of the exact reconstruction is 0.
		assert.Less(t, lowrank.RelError(want, f), 1e-15)
	}
	assert.PanicsWithValue(t, lowrank.ErrShape, func() { lowrank.NewQB(mat.NewDense(4, 2, nil), mat.NewDense(3, 4, nil), false) })
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
	n2 := lowrank.FrobNorm2(a)
	assert.InDelta(t, mat.Norm(a, 2)*mat.Norm(a, 2), n2, 36*0x1p-53*n2)
	// float32 rounding changes each element by ≤ 2⁻²⁴ relative: the squared
	// norm by ≤ 2·2⁻²⁴ relative.
	assert.InDelta(t, n2, lowrank.FrobNorm2(a32), 2*0x1p-24*n2)
	assert.Equal(t, 0.0, lowrank.ErrorFromNorms(0, 0))
	assert.Equal(t, 0.0, lowrank.ErrorFromNorms(4, 5), "cancellation below zero is clamped")
	assert.InDelta(t, 0.5, lowrank.ErrorFromNorms(4, 3), 1e-16)
	assert.NoError(t, lowrank.CheckFinite(a))
	a.Set(2, 3, math.NaN())
	err := lowrank.CheckFinite(a)
	var nf *lowrank.NotFiniteError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, [2]int{2, 3}, [2]int{nf.Row, nf.Col})
	assert.ErrorIs(t, lowrank.CheckFinite(&mat.Dense{}), lowrank.ErrEmpty)
	assert.ErrorIs(t, lowrank.CheckRank(3, 4, 4), lowrank.ErrRank)
	assert.ErrorIs(t, lowrank.CheckRank(0, 4, 1), lowrank.ErrEmpty)
	assert.NoError(t, lowrank.CheckRank(3, 4, 3))
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
