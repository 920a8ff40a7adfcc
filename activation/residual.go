package activation

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// residualRows is the number of rows of the blocks in which the residual
// is formed, added to a reconstruction and multiplied into a weight
// gradient: about 32 Ki elements of float64 scratch (256 KiB), whatever
// L, so that nothing of the size of X is materialised beyond the caller's
// own destination.
func residualRows(d int) int { return max(1, (32<<10)/d) }

// ssq accumulates a sum of squares as scale²·sum without overflow or
// underflow (LAPACK's dlassq): the norm is scale·√sum.
type ssq struct{ scale, sum float64 }

func (a *ssq) add(v float64) {
	if v == 0 {
		return
	}
	v = math.Abs(v)
	if a.scale < v {
		a.sum = 1 + a.sum*(a.scale/v)*(a.scale/v)
		a.scale = v
	} else {
		a.sum += (v / a.scale) * (v / a.scale)
	}
}

func (a *ssq) norm() float64 { return a.scale * math.Sqrt(a.sum) }

// hostRows copies rows [i0, i1) of the host activation x into dst
// ((i1−i0)×d): *mat.Dense and *lowrank.Dense32 row by row, anything else
// (a transpose view) element by element.
func hostRows(dst *mat.Dense, x mat.Matrix, i0, i1 int) {
	raw := dst.RawMatrix()
	switch x := x.(type) {
	case *mat.Dense:
		for i := i0; i < i1; i++ {
			copy(raw.Data[(i-i0)*raw.Stride:], x.RawRowView(i))
		}
	case *lowrank.Dense32:
		for i := i0; i < i1; i++ {
			row := raw.Data[(i-i0)*raw.Stride : (i-i0)*raw.Stride+raw.Cols]
			for j, v := range x.Row(i) {
				row[j] = float64(v)
			}
		}
	default:
		for i := i0; i < i1; i++ {
			row := raw.Data[(i-i0)*raw.Stride : (i-i0)*raw.Stride+raw.Cols]
			for j := range row {
				row[j] = x.At(i, j)
			}
		}
	}
}

// storeResidual quantizes E = X − P̂·R̂, the residual of the stored
// factors, into s.res (bits per element, one scale per block of a row),
// row block by row block, and returns the relative error of the stored
// approximation P̂·R̂ + Ê, ‖Ê − E‖_F/‖X‖_F, accumulated on the way (exact
// up to the rounding of the reconstruction's products, ≈ ε·k·|P̂|·|R̂|).
//
// Bound: every element of Ê is within s_b/2·(1 + 2·qmax·2⁻⁵³) of the E
// computed here (quantize), s_b its block's scale, so
//
//	‖X − (P̂·R̂ + Ê)‖_F ≤ ½·(Σ_b n_b·s_b²)^{1/2} + (product rounding),
//
// n_b the elements of block b.
func (s *Saved) storeResidual(x mat.Matrix, bits, block int) (float64, error) {
	m, n := s.rows, s.cols
	s.res.resize(m, n, bits, block, false)
	rows := residualRows(n)
	xb, rb := getScratch(min(rows, m), n), getScratch(min(rows, m), n)
	defer putScratch(xb)
	defer putScratch(rb)
	var ex, ee ssq
	for i0 := 0; i0 < m; i0 += rows {
		i1 := min(i0+rows, m)
		xv := xb.Slice(0, i1-i0, 0, n).(*mat.Dense)
		rv := rb.Slice(0, i1-i0, 0, n).(*mat.Dense)
		hostRows(xv, x, i0, i1)
		s.factorRows(rv, i0, i1)
		for i := i0; i < i1; i++ {
			xr, rr := xv.RawRowView(i-i0), rv.RawRowView(i-i0)
			for j, v := range xr {
				ex.add(v)
				rr[j] = v - rr[j] // E, in place of the reconstruction
			}
			if err := s.res.quantizeRow(i, rr, &ee); err != nil {
				return 0, err
			}
		}
	}
	if ex.scale == 0 {
		return ee.norm(), nil // absolute, for X = 0 (as lowrank.RelError)
	}
	return ee.norm() / ex.norm(), nil
}

// quantizeRow stores row i from x (c elements), block by block, adding
// the squared errors (dequantized − x)² to a if it is not nil.
func (z *quant) quantizeRow(i int, x []float64, a *ssq) error {
	nb := z.blocks()
	for b := 0; b < nb; b++ {
		j0, j1 := b*z.block, min((b+1)*z.block, z.c)
		var amax float64
		for _, v := range x[j0:j1] {
			amax = math.Max(amax, math.Abs(v))
		}
		sc, err := scaleFor(amax, z.bits)
		if err != nil {
			return err
		}
		z.scale[i*nb+b] = sc
		for j := j0; j < j1; j++ {
			q := quantize(x[j], sc, z.bits)
			z.set(i, j, q)
			if a != nil {
				a.add(float64(sc)*float64(q) - x[j])
			}
		}
	}
	return nil
}
