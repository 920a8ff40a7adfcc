package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

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
