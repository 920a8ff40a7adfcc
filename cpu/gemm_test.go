package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/lowrank"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// TestGemmMixed checks c = alpha·op(a)·op(b) + beta·c for every pairing of
// *mat.Dense and *lowrank.Dense32 operands and every transpose against mat.Dense.Mul
// on the float64 values (float32 → float64 is exact, so both compute the
// same product). Tolerance: each result is within γ_{k+2}·(|alpha|·|A|·|B| +
// |beta|·|C|) of the exact one elementwise (Higham §3.5); with normal
// entries |A|·|B| ≤ k·max|a|·max|b|, so 2·(k+2)·ε·that bound covers both.
func TestGemmMixed(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 7))
	const m, n, k = 37, 29, 70
	randDense := func(r, c int) *mat.Dense {
		d := make([]float64, r*c)
		for i := range d {
			d[i] = float64(float32(rnd.NormFloat64()))
		}
		return mat.NewDense(r, c, d)
	}
	to32 := func(d *mat.Dense) *lowrank.Dense32 {
		r, c := d.Dims()
		// Stride > Cols: a view of a wider matrix.
		w := lowrank.NewDense32(r, c+3, nil).Slice(0, r, 1, c+1)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				w.Data[i*w.Stride+j] = float32(d.At(i, j))
			}
		}
		return w
	}
	eps := math.Nextafter(1, 2) - 1
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			ad, bd := randDense(m, k), randDense(k, n)
			if ta {
				ad = mat.DenseCopyOf(ad.T())
			}
			if tb {
				bd = mat.DenseCopyOf(bd.T())
			}
			opA, opB := mat.Matrix(ad), mat.Matrix(bd)
			if ta {
				opA = ad.T()
			}
			if tb {
				opB = bd.T()
			}
			c0 := randDense(m, n)
			var want mat.Dense
			want.Mul(opA, opB)
			want.Scale(-0.75, &want)
			want.Add(&want, scaled(2, c0))
			for _, pair := range []struct {
				name string
				a, b lowrank.Matrix
			}{
				{"dense×dense", ad, bd},
				{"dense32×dense", to32(ad), bd},
				{"dense×dense32", ad, to32(bd)},
				{"dense32×dense32", to32(ad), to32(bd)},
			} {
				t.Run(fmt.Sprintf("%s/ta=%t/tb=%t", pair.name, ta, tb), func(t *testing.T) {
					c := mat.DenseCopyOf(c0)
					gemmMixed(ta, tb, -0.75, pair.a, pair.b, 2, c.RawMatrix())
					tol := 2 * (k + 2) * eps * (0.75*k*maxAbs(ad)*maxAbs(bd) + 2*maxAbs(c0))
					require.Equal(t, m, c.RawMatrix().Rows)
					assert.True(t, mat.EqualApprox(&want, c, tol), "max difference %g > %g", maxDiff(&want, c), tol)
				})
			}
		}
	}
}

func scaled(f float64, a *mat.Dense) *mat.Dense {
	var s mat.Dense
	s.Scale(f, a)
	return &s
}

func maxAbs(a *mat.Dense) float64 { return math.Max(mat.Max(a), -mat.Min(a)) }

func maxDiff(a, b *mat.Dense) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, math.Inf(1))
}

// TestMulFloat32 checks the float32 compute path of Backend.Mul (a
// *lowrank.Dense32 with a *mat.Dense, alpha ±1) against the float64
// product: elementwise within γ_{k+2}·|op(a)|·|op(b)| in float32 (u =
// 2⁻²⁴) plus the rounding of the float64 operand to float32 (one more u),
// and |beta|·|c|·2ε for the update in float64; and that it falls back to
// float64 where the float32 product would overflow, and for other alphas.
func TestMulFloat32(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 9))
	const m, n, k = 33, 21, 300
	const u = 0x1p-24
	randDense := func(r, c int, scale float64) *mat.Dense {
		d := mat.NewDense(r, c, nil)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				d.Set(i, j, scale*rnd.NormFloat64())
			}
		}
		return d
	}
	to32 := func(a *mat.Dense) *lowrank.Dense32 {
		r, c := a.Dims()
		x := lowrank.NewDense32(r, c, nil)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				x.Data[i*c+j] = float32(a.At(i, j))
			}
		}
		return x
	}
	abs := func(a mat.Matrix) *mat.Dense {
		var d mat.Dense
		d.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) }, a)
		return &d
	}
	for _, tc := range []struct {
		alpha, beta float64
		first32     bool
	}{{1, 0, true}, {-1, 0.5, true}, {1, 2, false}, {-1, 0, false}} {
		a, b := randDense(m, k, 1), randDense(k, n, 1)
		var x lowrank.Matrix = to32(a)
		var y lowrank.Matrix = b
		aw := mat.DenseCopyOf(to32(a)) // the float32 values, widened
		bw := b
		if !tc.first32 {
			x, y = a, to32(b)
			aw, bw = a, mat.DenseCopyOf(to32(b))
		}
		c0 := randDense(m, n, 1)
		c := mat.DenseCopyOf(c0)
		require.NoError(t, Backend{}.Mul(c, tc.alpha, x, false, y, false, tc.beta))
		var want, bound mat.Dense
		want.Mul(aw, bw)
		want.Scale(tc.alpha, &want)
		want.Add(&want, scaled(tc.beta, c0))
		bound.Mul(abs(aw), abs(bw))
		g := float64(k+3) * u / (1 - float64(k+3)*u)
		bound.Scale(g, &bound)
		bound.Add(&bound, scaled(2*0x1p-52*math.Abs(tc.beta), abs(c0)))
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				require.LessOrEqual(t, math.Abs(c.At(i, j)-want.At(i, j)), bound.At(i, j), "%+v (%d, %d)", tc, i, j)
			}
		}
		// It is float32 arithmetic: the result differs from the float64
		// product by more than float64 rounding somewhere.
		var wide mat.Dense
		wide.CloneFrom(c0)
		require.NoError(t, Backend{WideFloat32: true}.Mul(&wide, tc.alpha, x, false, y, false, tc.beta))
		assert.Greater(t, maxDiff(&wide, c), float64(k)*0x1p-52, "%+v: computed in float64", tc)
	}

	// 2¹⁰⁰ times 2³⁰ entries sum past float32's 3.4e38: the product falls
	// back to float64 and is finite and exact to float64 rounding.
	a := randDense(m, k, 0x1p100)
	b := randDense(k, n, 0x1p30)
	c := mat.NewDense(m, n, nil)
	require.NoError(t, Backend{}.Mul(c, 1, to32(a), false, b, false, 0))
	var want mat.Dense
	want.Mul(mat.DenseCopyOf(to32(a)), b)
	assert.True(t, mat.EqualApprox(&want, c, float64(k+2)*0x1p-52*maxAbs(&want)*float64(k)), "overflow falls back to float64: max difference %g", maxDiff(&want, c))
	for _, v := range c.RawMatrix().Data {
		require.False(t, math.IsInf(v, 0) || math.IsNaN(v))
	}
}

// TestMulFloat32Transposed checks gemm32's C = aᵀ·bᵀ computed as Cᵀ = b·a
// and transposed into c (a QB's B = Qᵀ·Aᵀ: a float64 a, a float32 b, a
// narrow C), with TestMulFloat32's bound: elementwise within
// γ_{k+3}·|op(a)|·|op(b)| in float32 plus 2ε·|beta|·|c|; for beta = 0 the
// NaNs in c are overwritten, not scaled; c's padding is untouched.
func TestMulFloat32Transposed(t *testing.T) {
	if !gemm.AVX512() {
		t.Skip("Cᵀ = b·a is taken with AVX-512 only")
	}
	rnd := rand.New(rand.NewPCG(5, 11))
	const u = 0x1p-24
	for _, s := range []struct{ m, n, k int }{{40, 300, 150}, {128, 1030, 77}, {9, 36, 5}} {
		for _, ab := range [][2]float64{{1, 0}, {-1, 0.5}} {
			name := fmt.Sprintf("m=%d/n=%d/k=%d/alpha=%g/beta=%g", s.m, s.n, s.k, ab[0], ab[1])
			a := mat.NewDense(s.k, s.m, nil) // op(a) = aᵀ, m×k
			for i := range a.RawMatrix().Data {
				a.RawMatrix().Data[i] = rnd.NormFloat64()
			}
			b := lowrank.NewDense32(s.n, s.k, nil) // op(b) = bᵀ, k×n
			for i := range b.Data {
				b.Data[i] = float32(rnd.NormFloat64())
			}
			wide := mat.NewDense(s.m, s.n+3, nil)
			for i := range wide.RawMatrix().Data {
				wide.RawMatrix().Data[i] = rnd.NormFloat64()
			}
			c := wide.Slice(0, s.m, 0, s.n).(*mat.Dense)
			if ab[1] == 0 {
				for i := 0; i < s.m; i++ {
					for j := 0; j < s.n; j++ {
						c.Set(i, j, math.NaN())
					}
				}
			}
			c0 := mat.DenseCopyOf(wide)
			require.NoError(t, Backend{}.Mul(c, ab[0], a, true, b, true, ab[1]), name)
			for i := 0; i < s.m; i++ {
				for j := 0; j < s.n; j++ {
					var want, bound float64
					for p := 0; p < s.k; p++ {
						x := float64(float32(a.At(p, i))) * float64(b.Data[j*s.k+p])
						want += x
						bound += math.Abs(x)
					}
					want *= ab[0]
					g := float64(s.k+3) * u / (1 - float64(s.k+3)*u)
					bound *= g
					if ab[1] != 0 {
						want += ab[1] * c0.At(i, j)
						bound += 2 * 0x1p-52 * math.Abs(ab[1]*c0.At(i, j))
					}
					require.LessOrEqual(t, math.Abs(c.At(i, j)-want), bound, "%s: (%d, %d)", name, i, j)
				}
				for j := s.n; j < s.n+3; j++ {
					require.Equal(t, c0.At(i, j), wide.At(i, j), "%s: padding (%d, %d)", name, i, j)
				}
			}
		}
	}
}
