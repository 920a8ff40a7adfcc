package activation

import (
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// packed is an r×c row-major matrix stored at a precision: exactly one of
// f64, f32, b16 holds its r·c elements. Its storage comes from and returns
// to pools (recycle), so that compressing activations of recurring shapes
// reuses the memory that released handles held.
type packed struct {
	r, c int
	prec lowrank.Precision
	f64  []float64
	f32  []float32
	b16  []uint16
	box  any // *[]float64, *[]float32 or *[]uint16 holding the slice, for the pool
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
	*p = packed{}
}

// bytes returns the storage of the elements.
func (p *packed) bytes() int { return p.r * p.c * p.prec.Size() }

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

func (p *packed) set(i int, v float64) {
	switch {
	case p.f64 != nil:
		p.f64[i] = v
	case p.f32 != nil:
		p.f32[i] = float32(v)
	default:
		p.b16[i] = lowrank.ToBF16(float32(v))
	}
}

// packDense stores op(src), where op(src) = srcᵀ if trans.
func (p *packed) packDense(src *mat.Dense, trans bool, prec lowrank.Precision) {
	raw := src.RawMatrix()
	r, c := raw.Rows, raw.Cols
	if trans {
		r, c = c, r
	}
	p.resize(r, c, prec)
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j, v := range row {
			if trans {
				p.set(j*c+i, v)
			} else {
				p.set(i*c+j, v)
			}
		}
	}
}

// packMatrix stores a host activation (*mat.Dense, *lowrank.Dense32 or any
// mat.Matrix) as it is.
func (p *packed) packMatrix(src mat.Matrix, prec lowrank.Precision) {
	switch s := src.(type) {
	case *mat.Dense:
		p.packDense(s, false, prec)
		return
	case *lowrank.Dense32:
		p.resize(s.Rows, s.Cols, prec)
		for i := 0; i < s.Rows; i++ {
			row := s.Row(i)
			switch {
			case p.f32 != nil:
				copy(p.f32[i*s.Cols:], row)
			case p.b16 != nil:
				for j, v := range row {
					p.b16[i*s.Cols+j] = lowrank.ToBF16(v)
				}
			default:
				for j, v := range row {
					p.f64[i*s.Cols+j] = float64(v)
				}
			}
		}
		return
	}
	r, c := src.Dims()
	p.resize(r, c, prec)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			p.set(i*c+j, src.At(i, j))
		}
	}
}

// unpack writes the stored matrix into dst, resizing a zero-sized dst.
func (p *packed) unpack(dst *mat.Dense) {
	if dst.IsEmpty() {
		dst.ReuseAs(p.r, p.c)
	}
	raw := dst.RawMatrix()
	for i := 0; i < p.r; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+p.c]
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
