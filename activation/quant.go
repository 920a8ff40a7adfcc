package activation

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// quant is an r×c matrix stored in bits ∈ {4, 8} per element with float32
// scales: element (i, j) is scale·q, q a two's-complement integer in
// [−qmax, qmax], qmax = 2^(bits−1) − 1 (127 or 7). The scales are one per
// column (perCol: the layout of the factor P, one per rank-one term) or
// one per block of `block` consecutive elements of a row (the factor R
// with block = c, one per rank-one term; the residual with its blocks),
// the scale of (i, j) at index i·⌈c/block⌉ + j/block.
//
// Row i occupies rowBytes = ⌈c·bits/8⌉ bytes from i·rowBytes; with 4 bits
// element j is in byte j/2, the low nibble for even j. The same layout is
// used in device memory (kernels of package gpu), so a block never shares
// a byte with another when block is even.
//
// Quantization rounds to nearest: with s the group's scale,
// |s·q − x| ≤ s/2 for every element (see quantizeGroup for the rounding
// of s and of x/s), so for a group of n elements ‖ŝ·q − x‖₂ ≤ √n·s/2.
type quant struct {
	r, c, bits, block int
	perCol            bool
	rowBytes          int
	q                 []byte
	scale             []float32
	qbox              *[]byte
	sbox              *[]float32
}

var poolBytes, poolScales sync.Pool

// resize makes z an r×c matrix of the given layout; its elements are
// arbitrary until written.
func (z *quant) resize(r, c, bits, block int, perCol bool) {
	z.recycle()
	z.r, z.c, z.bits, z.block, z.perCol = r, c, bits, block, perCol
	z.rowBytes = (c*bits + 7) / 8
	z.qbox = get[byte](&poolBytes, r*z.rowBytes)
	z.sbox = get[float32](&poolScales, z.scales())
	z.q, z.scale = *z.qbox, *z.sbox
}

// scales returns the number of scales of the layout.
func (z *quant) scales() int {
	if z.perCol {
		return z.c
	}
	return z.r * z.blocks()
}

// blocks returns the number of blocks of a row, ⌈c/block⌉.
func (z *quant) blocks() int { return (z.c + z.block - 1) / z.block }

// recycle returns the storage to the pools and empties z.
func (z *quant) recycle() {
	if z.qbox != nil {
		poolBytes.Put(z.qbox)
	}
	if z.sbox != nil {
		poolScales.Put(z.sbox)
	}
	*z = quant{}
}

func (z *quant) empty() bool { return z.r == 0 }

// bytes returns the storage: the integers and 4 bytes per scale.
func (z *quant) bytes() int {
	if z.empty() {
		return 0
	}
	return quantBytes(z.r, z.c, z.bits, z.block, z.perCol)
}

// quantBytes is the storage of an r×c quant of that layout.
func quantBytes(r, c, bits, block int, perCol bool) int {
	n := r * ((c*bits + 7) / 8)
	if perCol {
		return n + 4*c
	}
	return n + 4*r*((c+block-1)/block)
}

func qmax(bits int) float64 { return float64(int(1)<<(bits-1) - 1) }

// scaleFor returns the float32 scale of a group whose largest magnitude is
// amax: amax/qmax rounded up to a float32, so that |x/s| ≤ qmax for every
// element of the group; 0 for amax = 0. It returns an error wrapping
// lowrank.ErrNotFinite if the scale overflows float32 (amax beyond about
// qmax·3.4e38). For amax below qmax·2⁻¹²⁶ the scale is a subnormal
// float32, coarser than amax/qmax; the bound |s·q − x| ≤ s/2 still holds
// for the scale stored.
func scaleFor(amax float64, bits int) (float32, error) {
	if amax == 0 {
		return 0, nil
	}
	s := amax / qmax(bits)
	s32 := float32(s)
	if float64(s32) < s {
		s32 = math.Nextafter32(s32, float32(math.Inf(1)))
	}
	if math.IsInf(float64(s32), 0) {
		return 0, fmt.Errorf("%w: a scale %g of %d-bit storage overflows float32", lowrank.ErrNotFinite, s, bits)
	}
	return s32, nil
}

// quantize returns the integer nearest x/s, clamped to [−qmax, qmax]
// (x/s is computed in float64: |x/s| ≤ qmax·(1+2⁻⁵³), so the clamp only
// removes that rounding), and 0 for s = 0. With s = scaleFor(amax) and
// |x| ≤ amax,
//
//	|s·q − x| ≤ s/2 + |x|·2⁻⁵³ ≤ (s/2)·(1 + 2·qmax·2⁻⁵³),
//
// and s·q is exact in float64 (a float32 times an integer of ≤ 8 bits).
func quantize(x float64, s float32, bits int) int {
	if s == 0 {
		return 0
	}
	m := qmax(bits)
	v := math.Round(x / float64(s))
	return int(math.Max(-m, math.Min(m, v)))
}

// set stores the integer v at (i, j).
func (z *quant) set(i, j, v int) {
	if z.bits == 8 {
		z.q[i*z.rowBytes+j] = byte(int8(v))
		return
	}
	b := &z.q[i*z.rowBytes+j/2]
	if j&1 == 0 {
		*b = *b&0xf0 | byte(v)&0x0f
	} else {
		*b = *b&0x0f | byte(v)<<4
	}
}

// at returns the integer at (i, j).
func (z *quant) at(i, j int) int {
	if z.bits == 8 {
		return int(int8(z.q[i*z.rowBytes+j]))
	}
	b := z.q[i*z.rowBytes+j/2]
	if j&1 == 0 {
		return int(int8(b<<4) >> 4)
	}
	return int(int8(b) >> 4)
}

// scaleAt returns the scale of element (i, j).
func (z *quant) scaleAt(i, j int) float32 {
	if z.perCol {
		return z.scale[j]
	}
	return z.scale[i*z.blocks()+j/z.block]
}

// quantizeCols stores op(src) (srcᵀ if trans) with one scale per column.
func (z *quant) quantizeCols(src *mat.Dense, trans bool, bits int) error {
	raw := src.RawMatrix()
	r, c := raw.Rows, raw.Cols
	if trans {
		r, c = c, r
	}
	z.resize(r, c, bits, r, true)
	at := func(i, j int) float64 {
		if trans {
			return raw.Data[j*raw.Stride+i]
		}
		return raw.Data[i*raw.Stride+j]
	}
	amax := make([]float64, c) // k values: the number of terms
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			amax[j] = math.Max(amax[j], math.Abs(at(i, j)))
		}
	}
	for j, a := range amax {
		s, err := scaleFor(a, bits)
		if err != nil {
			return err
		}
		z.scale[j] = s
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			z.set(i, j, quantize(at(i, j), z.scale[j], bits))
		}
	}
	return nil
}

// quantizeRows stores op(src) with one scale per block of block
// consecutive elements of a row.
func (z *quant) quantizeRows(src *mat.Dense, trans bool, bits, block int) error {
	raw := src.RawMatrix()
	r, c := raw.Rows, raw.Cols
	if trans {
		r, c = c, r
	}
	z.resize(r, c, bits, block, false)
	row := make([]float64, c)
	for i := 0; i < r; i++ {
		for j := range row {
			if trans {
				row[j] = raw.Data[j*raw.Stride+i]
			} else {
				row[j] = raw.Data[i*raw.Stride+j]
			}
		}
		if err := z.quantizeRow(i, row, nil); err != nil {
			return err
		}
	}
	return nil
}

// dequantRows writes (or with add, adds) rows [i0, i1) of the stored
// matrix into dst, (i1−i0)×c.
func (z *quant) dequantRows(dst *mat.Dense, i0, i1 int, add bool) {
	raw := dst.RawMatrix()
	for i := i0; i < i1; i++ {
		row := raw.Data[(i-i0)*raw.Stride : (i-i0)*raw.Stride+z.c]
		for j := range row {
			v := float64(z.scaleAt(i, j)) * float64(z.at(i, j))
			if add {
				row[j] += v
			} else {
				row[j] = v
			}
		}
	}
}
