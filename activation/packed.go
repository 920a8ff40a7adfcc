package activation

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// packed is an r×c row-major matrix stored at a precision: exactly one of
// f64, f32, b16 and the integers of qz holds its r·c elements. Its storage
// comes from and returns to pools (recycle), so that compressing
// activations of recurring shapes reuses the memory that released handles
// held.
type packed struct {
	r, c int
	prec lowrank.Precision
	f64  []float64
	f32  []float32
	b16  []uint16
	box  any   // *[]float64, *[]float32 or *[]uint16 holding the slice, for the pool
	qz   quant // int8 storage with scales, when not empty
}

var pool64, pool32, pool16 sync.Pool

func get[T any](pool *sync.Pool, n int) *[]T {
	if v, _ := pool.Get().(*[]T); v != nil && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]T, n)
	return &s
}

// recycle returns the storage to its pool and empties p.
func (p *packed) recycle() {
	switch b := p.box.(type) {
	case *[]float64:
		pool64.Put(b)
	case *[]float32:
		pool32.Put(b)
	case *[]uint16:
		pool16.Put(b)
	}
	p.qz.recycle()
	*p = packed{}
}

// bytes returns the storage of the elements (and scales).
func (p *packed) bytes() int {
	if !p.qz.empty() {
		return p.qz.bytes()
	}
	return p.r * p.c * p.prec.Size()
}

// packInt8 stores op(src) in int8 with one scale per column (perCol: the
// factor P, L×k) or per row (the factor R, k×d): one scale per rank-one
// term either way.
func (p *packed) packInt8(src *mat.Dense, trans, perCol bool) error {
	p.recycle()
	var err error
	if perCol {
		err = p.qz.quantizeCols(src, trans, 8)
	} else {
		r, c := src.Dims()
		if trans {
			c = r
		}
		err = p.qz.quantizeRows(src, trans, 8, c)
	}
	p.r, p.c = p.qz.r, p.qz.c
	return err
}

func (p *packed) empty() bool { return p.r == 0 }

// resize makes p an r×c matrix at precision prec; its elements are
// arbitrary until written.
func (p *packed) resize(r, c int, prec lowrank.Precision) {
	p.recycle()
	p.r, p.c, p.prec = r, c, prec
	switch prec {
	case lowrank.Float64:
		b := get[float64](&pool64, r*c)
		p.f64, p.box = *b, b
	case lowrank.Float32:
		b := get[float32](&pool32, r*c)
		p.f32, p.box = *b, b
	default:
		b := get[uint16](&pool16, r*c)
		p.b16, p.box = *b, b
	}
}

// set stores element e, reporting whether it is representable: a finite
// v that rounds to ±Inf at the storage precision is not.
func (p *packed) set(e int, v float64) bool {
	switch {
	case p.f64 != nil:
		p.f64[e] = v
		return true
	case p.f32 != nil:
		x := float32(v)
		p.f32[e] = x
		return !math.IsInf(float64(x), 0)
	default:
		h := lowrank.ToBF16(float32(v))
		p.b16[e] = h
		return !math.IsInf(float64(lowrank.FromBF16(h)), 0)
	}
}

func overflow(v float64, prec lowrank.Precision) error {
	return fmt.Errorf("%w: element %g overflows %v storage", lowrank.ErrNotFinite, v, prec)
}

// packDense stores op(src), where op(src) = srcᵀ if trans.
func (p *packed) packDense(src *mat.Dense, trans bool, prec lowrank.Precision) error {
	raw := src.RawMatrix()
	r, c := raw.Rows, raw.Cols
	if trans {
		r, c = c, r
	}
	p.resize(r, c, prec)
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j, v := range row {
			e := i*c + j
			if trans {
				e = j*c + i
			}
			if !p.set(e, v) {
				return overflow(v, prec)
			}
		}
	}
	return nil
}

// packMatrix stores a host activation (*mat.Dense, *lowrank.Dense32 or any
// mat.Matrix) as it is.
func (p *packed) packMatrix(src mat.Matrix, prec lowrank.Precision) error {
	switch s := src.(type) {
	case *mat.Dense:
		return p.packDense(s, false, prec)
	case *lowrank.Dense32:
		p.resize(s.Rows, s.Cols, prec)
		for i := 0; i < s.Rows; i++ {
			row := s.Row(i)
			switch {
			case p.f32 != nil:
				copy(p.f32[i*s.Cols:], row)
			case p.b16 != nil:
				for j, v := range row {
					if !p.set(i*s.Cols+j, float64(v)) {
						return overflow(float64(v), prec)
					}
				}
			default:
				for j, v := range row {
					p.f64[i*s.Cols+j] = float64(v)
				}
			}
		}
		return nil
	}
	r, c := src.Dims()
	p.resize(r, c, prec)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if v := src.At(i, j); !p.set(i*c+j, v) {
				return overflow(v, prec)
			}
		}
	}
	return nil
}

// unpackRows writes rows [i0, i1) of the stored matrix into dst, which
// must be (i1−i0)×c.
func (p *packed) unpackRows(dst *mat.Dense, i0, i1 int) {
	if !p.qz.empty() {
		p.qz.dequantRows(dst, i0, i1, false)
		return
	}
	raw := dst.RawMatrix()
	for i := i0; i < i1; i++ {
		row := raw.Data[(i-i0)*raw.Stride : (i-i0)*raw.Stride+p.c]
		switch {
		case p.f64 != nil:
			copy(row, p.f64[i*p.c:(i+1)*p.c])
		case p.f32 != nil:
			for j, v := range p.f32[i*p.c : (i+1)*p.c] {
				row[j] = float64(v)
			}
		default:
			for j, v := range p.b16[i*p.c : (i+1)*p.c] {
				row[j] = float64(lowrank.FromBF16(v))
			}
		}
	}
}

// operand returns the stored matrix as an operand of the CPU backend's
// products: float64 and float32 storage in place (a *mat.Dense or a
// *lowrank.Dense32 view), bf16 and int8 unpacked into the scratch buffer
// buf (factor-sized: k·L or k·d elements), which the caller returns with
// putScratch when non-nil.
func (p *packed) operand() (m lowrank.Matrix, buf *mat.Dense) {
	switch {
	case p.f64 != nil:
		return mat.NewDense(p.r, p.c, p.f64), nil
	case p.f32 != nil:
		return lowrank.NewDense32(p.r, p.c, p.f32), nil
	}
	buf = getScratch(p.r, p.c)
	p.unpackRows(buf, 0, p.r)
	return buf, buf
}

// scratch recycles the float64 buffers that bf16 factors are unpacked into
// for a product, so that a steady-state backward pass does not allocate
// them.
var scratch = sync.Pool{New: func() any { return new(mat.Dense) }}

func getScratch(r, c int) *mat.Dense {
	d := scratch.Get().(*mat.Dense)
	if rr, cc := d.Dims(); rr != r || cc != c {
		d.Reset()
		d.ReuseAs(r, c)
	}
	return d
}

func putScratch(d *mat.Dense) {
	if d != nil {
		scratch.Put(d)
	}
}
