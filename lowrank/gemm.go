package lowrank

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// panelElems bounds the float64 panel that a *Dense32 operand is converted
// into: 64 Ki elements (512 KiB), independent of the matrix size.
const panelElems = 1 << 16

// gemmMixed computes c = alpha·op(a)·op(b) + beta·c where a or b may be a
// *Dense32, converted one panel of rows at a time.
func gemmMixed(ta, tb bool, alpha float64, a, b Matrix, beta float64, c blas64.General) {
	switch a32 := a.(type) {
	case *Dense32:
		gemmLeft32(ta, tb, alpha, a32, dense(b), beta, c)
		return
	}
	switch b32 := b.(type) {
	case *Dense32:
		gemmRight32(ta, tb, alpha, dense(a), b32, beta, c)
		return
	}
	blas64.Gemm(trans(ta), trans(tb), alpha, dense(a), dense(b), beta, c)
}

func panelRows(cols int) int { return max(1, min(256, panelElems/max(cols, 1))) }

func convertPanel(buf []float64, a *Dense32, i0, i1 int) blas64.General {
	g := blas64.General{Rows: i1 - i0, Cols: a.Cols, Stride: a.Cols, Data: buf[:(i1-i0)*a.Cols]}
	for i := i0; i < i1; i++ {
		dst := g.Data[(i-i0)*a.Cols : (i-i0+1)*a.Cols]
		for j, v := range a.Row(i) {
			dst[j] = float64(v)
		}
	}
	return g
}

// rowsOf returns rows [i0, i1) of op(b) as an operand with its transpose flag.
func rowsOf(b blas64.General, tb bool, i0, i1 int) blas64.General {
	if !tb {
		return blas64.General{Rows: i1 - i0, Cols: b.Cols, Stride: b.Stride, Data: b.Data[i0*b.Stride:]}
	}
	return blas64.General{Rows: b.Rows, Cols: i1 - i0, Stride: b.Stride, Data: b.Data[i0:]}
}

func gemmLeft32(ta, tb bool, alpha float64, a *Dense32, b blas64.General, beta float64, c blas64.General) {
	rb := panelRows(a.Cols)
	buf := make([]float64, rb*a.Cols)
	if !ta {
		// c[i0:i1, :] = alpha·a[i0:i1, :]·op(b) + beta·c[i0:i1, :].
		for i0 := 0; i0 < a.Rows; i0 += rb {
			i1 := min(i0+rb, a.Rows)
			p := convertPanel(buf, a, i0, i1)
			cs := blas64.General{Rows: i1 - i0, Cols: c.Cols, Stride: c.Stride, Data: c.Data[i0*c.Stride:]}
			blas64.Gemm(trans(false), trans(tb), alpha, p, b, beta, cs)
		}
		return
	}
	// c = alpha·aᵀ·op(b) + beta·c = Σ_panels alpha·a[i0:i1,:]ᵀ·op(b)[i0:i1,:].
	for i0 := 0; i0 < a.Rows; i0 += rb {
		i1 := min(i0+rb, a.Rows)
		p := convertPanel(buf, a, i0, i1)
		bt := beta
		if i0 > 0 {
			bt = 1
		}
		blas64.Gemm(trans(true), trans(tb), alpha, p, rowsOf(b, tb, i0, i1), bt, c)
	}
}

func gemmRight32(ta, tb bool, alpha float64, a blas64.General, b *Dense32, beta float64, c blas64.General) {
	rb := panelRows(b.Cols)
	buf := make([]float64, rb*b.Cols)
	if tb {
		// op(b) = bᵀ: columns [i0, i1) of c come from rows [i0, i1) of b.
		for i0 := 0; i0 < b.Rows; i0 += rb {
			i1 := min(i0+rb, b.Rows)
			p := convertPanel(buf, b, i0, i1)
			cs := blas64.General{Rows: c.Rows, Cols: i1 - i0, Stride: c.Stride, Data: c.Data[i0:]}
			blas64.Gemm(trans(ta), trans(true), alpha, a, p, beta, cs)
		}
		return
	}
	// c = op(a)·b = Σ_panels op(a)[:, i0:i1]·b[i0:i1, :].
	for i0 := 0; i0 < b.Rows; i0 += rb {
		i1 := min(i0+rb, b.Rows)
		p := convertPanel(buf, b, i0, i1)
		bt := beta
		if i0 > 0 {
			bt = 1
		}
		// columns [i0, i1) of op(a) are rows [i0, i1) of op(a)ᵀ.
		blas64.Gemm(trans(ta), trans(false), alpha, rowsOf(a, !ta, i0, i1), p, bt, c)
	}
}

var _ mat.Matrix = (*Dense32)(nil)

// gemm64 computes c = alpha·op(a)·op(b) + beta·c for float64 operands, with
// op(x) = xᵀ when the flag is set. Shapes follow blas64.Gemm; c must not alias
// a or b. With beta = 0, c is not read.
func gemm64(tA, tB bool, alpha float64, a, b blas64.General, beta float64, c blas64.General) {
	blas64.Gemm(trans(tA), trans(tB), alpha, a, b, beta, c)
}
