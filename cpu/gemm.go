package cpu

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/lowrank"
)

// gemmMixed computes c = alpha·op(a)·op(b) + beta·c where a and b are each
// a *mat.Dense or a *lowrank.Dense32. Float32 data is read in place and converted
// to float64 inside gemm's packing, so no float64 copy of a *lowrank.Dense32 is
// made; the product runs on internal/gemm's threaded kernels.
func gemmMixed(ta, tb bool, alpha float64, a, b lowrank.Matrix, beta float64, c blas64.General) {
	m, k := opDims(a, ta)
	_, n := opDims(b, tb)
	switch a := a.(type) {
	case *lowrank.Dense32:
		switch b := b.(type) {
		case *lowrank.Dense32:
			gemm.Gemm(ta, tb, m, n, k, alpha, a.Data, ld32(a), b.Data, ld32(b), beta, c.Data, c.Stride)
		default:
			bg := dense(b)
			gemm.Gemm(ta, tb, m, n, k, alpha, a.Data, ld32(a), bg.Data, bg.Stride, beta, c.Data, c.Stride)
		}
	default:
		ag := dense(a)
		switch b := b.(type) {
		case *lowrank.Dense32:
			gemm.Gemm(ta, tb, m, n, k, alpha, ag.Data, ag.Stride, b.Data, ld32(b), beta, c.Data, c.Stride)
		default:
			bg := dense(b)
			gemm.Dgemm(ta, tb, m, n, k, alpha, ag.Data, ag.Stride, bg.Data, bg.Stride, beta, c.Data, c.Stride)
		}
	}
}

// ld32 is the leading dimension of d for gemm, which wants at least 1
// even when d has no columns (and panics if it is below d.Cols).
func ld32(d *lowrank.Dense32) int { return max(d.Stride, 1) }

var _ mat.Matrix = (*lowrank.Dense32)(nil)

// gemm32 computes c = alpha·op(a)·op(b) + beta·c in float32 when exactly
// one of a and b is a *lowrank.Dense32 and the other a *mat.Dense: the
// float64 operand is rounded into float32 scratch, the product accumulates
// in float32 (gemm.Sgemm) into float32 scratch, and c is updated from it in
// float64. It reports false, having written nothing to c, for other
// operand types and when the float32 product is not finite although its
// operands are (an overflow: the caller computes it in float64).
func gemm32(ta, tb bool, alpha float64, a, b lowrank.Matrix, beta float64, c blas64.General) bool {
	a32, aIs32 := a.(*lowrank.Dense32)
	b32, bIs32 := b.(*lowrank.Dense32)
	if aIs32 == bIs32 {
		return false
	}
	m, k := opDims(a, ta)
	_, n := opDims(b, tb)
	if m == 0 || n == 0 || k == 0 {
		return false
	}
	var raw blas64.General
	if aIs32 {
		raw = dense(b)
	} else {
		raw = dense(a)
	}
	or, oc := raw.Rows, raw.Cols
	ob := getF32(or * oc)
	defer putF32(ob)
	// A float32 bit pattern with the sign cleared is ≥ that of +Inf
	// exactly for ±Inf and NaN: one integer max per element finds both.
	const absMask, infBits = 1<<31 - 1, 0x7f800000
	// The conversions in and out are split over the cores by rows; a
	// non-finite element anywhere is flagged (the flag only ever goes up).
	var bad atomic.Bool
	rowChunks(or, oc, func(r0, r1 int) {
		var top uint32
		for i := r0; i < r1; i++ {
			row := raw.Data[i*raw.Stride : i*raw.Stride+oc]
			dst := ob.s[i*oc : (i+1)*oc]
			for j, v := range row {
				f := float32(v)
				dst[j] = f
				top = max(top, math.Float32bits(f)&absMask)
			}
		}
		if top >= infBits {
			bad.Store(true)
		}
	})
	if bad.Load() { // beyond float32's range, or NaN: the float64 path reports it
		return false
	}
	cb := getF32(m * n)
	defer putF32(cb)
	// C = aᵀ·bᵀ with a narrow C and a float32 b (B = Qᵀ·op(A) of a QB
	// whose op(A) = Aᵀ): computed as Cᵀ = b·a, whose large operand b is a
	// row-major A that internal/gemm's AVX-512 kernels read in place
	// instead of packing (and transposing) it; the float32 Cᵀ is then
	// transposed on its way into c. 8192×4096 at ℓ = 128: 40.0–43.0 ms
	// against 44.2–44.7 (docs/gemm.md, "Thirty-fifth session").
	transposed := !aIs32 && ta && tb && m <= transposedMaxRows && n >= 4*m && gemm.AVX512()
	switch {
	case transposed:
		gemm.Sgemm(false, false, n, m, k, 1, b32.Data, ld32(b32), ob.s, max(oc, 1), 0, cb.s, m)
	case aIs32:
		gemm.Sgemm(ta, tb, m, n, k, 1, a32.Data, ld32(a32), ob.s, max(oc, 1), 0, cb.s, n)
	default:
		gemm.Sgemm(ta, tb, m, n, k, 1, ob.s, max(oc, 1), b32.Data, ld32(b32), 0, cb.s, n)
	}
	rowChunks(m, n, func(r0, r1 int) {
		var top uint32
		for _, v := range cb.s[r0*n : r1*n] {
			top = max(top, math.Float32bits(v)&absMask)
		}
		if top >= infBits {
			bad.Store(true)
		}
	})
	if bad.Load() {
		return false // overflow, or a non-finite input: recomputed in float64
	}
	if transposed {
		storeTransposed(c, cb.s, m, n, alpha, beta)
		return true
	}
	rowChunks(m, n, func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			crow := c.Data[i*c.Stride : i*c.Stride+n]
			src := cb.s[i*n : (i+1)*n]
			switch {
			case beta == 0:
				for j, v := range src {
					crow[j] = alpha * float64(v)
				}
			default:
				for j, v := range src {
					crow[j] = alpha*float64(v) + beta*crow[j]
				}
			}
		}
	})
	return true
}

// transposedMaxRows is the most rows of C = aᵀ·bᵀ that gemm32 computes
// as Cᵀ = b·a (a sketch's ℓ).
const transposedMaxRows = 512

// storeTransposed sets the m×n c to alpha·tᵀ (+ beta·c) for the n×m
// float32 t, rows of c split over the cores; eight columns of c (one cache
// line of float64) at a time, read as eight rows of t.
func storeTransposed(c blas64.General, t []float32, m, n int, alpha, beta float64) {
	rowChunks(m, n, func(r0, r1 int) {
		for j0 := 0; j0 < n; j0 += 8 {
			j1 := min(j0+8, n)
			for i := r0; i < r1; i++ {
				crow := c.Data[i*c.Stride+j0 : i*c.Stride+j1]
				for jj := range crow {
					v := alpha * float64(t[(j0+jj)*m+i])
					if beta != 0 {
						v += beta * crow[jj]
					}
					crow[jj] = v
				}
			}
		}
	})
}

// f32buf is pooled float32 scratch of gemm32, kept in pools by size class
// (a power of two), so that the operand and result buffers of the
// products of one algorithm find buffers of their sizes again.
type f32buf struct{ s []float32 }

var f32pools [64]sync.Pool

func f32class(n int) int { return bits.Len(uint(max(n, 1) - 1)) }

func getF32(n int) *f32buf {
	c := f32class(n)
	if b, ok := f32pools[c].Get().(*f32buf); ok {
		b.s = b.s[:n]
		return b
	}
	return &f32buf{s: make([]float32, n, 1<<c)}
}

func putF32(b *f32buf) { f32pools[f32class(cap(b.s))].Put(b) }
