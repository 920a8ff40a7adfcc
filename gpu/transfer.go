package gpu

import (
	"fmt"
	"math"
	"unsafe"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// This file is the one audited place where host data meets device layout:
// host matrices are row-major (gonum, Dense32), device matrices are
// column-major with a leading dimension, or row-major views of the
// transpose. Every transfer goes through hostStored/fromStored below.

// hostStored packs the logical r×c matrix at(i, j) into the stored layout
// of m with leading dimension equal to its stored rows, as float32 or bf16
// bits, in buf (grown if short).
func hostStored(buf []byte, m *Matrix, at func(i, j int) float64) []byte {
	sr, sc := m.stored()
	es := m.dtype.Size()
	n := sr * sc * es
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	for y := 0; y < sc; y++ {
		for x := 0; x < sr; x++ {
			i, j := x, y
			if m.trans {
				i, j = y, x
			}
			v := float32(at(i, j))
			off := (x + y*sr) * es
			if m.dtype == BFloat16 {
				*(*uint16)(unsafe.Pointer(&buf[off])) = lowrank.ToBF16(v)
			} else {
				*(*uint32)(unsafe.Pointer(&buf[off])) = math.Float32bits(v)
			}
		}
	}
	return buf
}

// uploadStored copies host bytes in m's stored layout with leading
// dimension = stored rows into m, through a scratch buffer and a strided
// copy when m has gaps.
func (b *Backend) uploadStored(m *Matrix, buf []byte) error {
	b.device.toDevice.Add(int64(len(buf)))
	if m.contiguous() {
		return b.api.check(b.api.cuMemcpyHtoDAsync(m.ptr, unsafe.Pointer(&buf[0]), uintptr(len(buf)), b.stream), "cuMemcpyHtoDAsync_v2")
	}
	sr, sc := m.stored()
	p, err := b.buf(&b.sc.upload, len(buf))
	if err != nil {
		return err
	}
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(p, unsafe.Pointer(&buf[0]), uintptr(len(buf)), b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		return err
	}
	return b.copy2D(m.ptr, m.dtype.code(), 1, m.ld, p, m.dtype.code(), 1, sr, sr, sc, false)
}

// Upload copies the host matrix src into m, which must have its shape;
// elements are rounded to m's type. The copy is complete when Upload
// returns (pageable host memory).
func (b *Backend) Upload(m lowrank.Matrix, src mat.Matrix) error {
	d := b.mat(m)
	r, c := src.Dims()
	if r != d.rows || c != d.cols {
		panic(lowrank.ErrShape)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	buf := hostStored(nil, d, src.At)
	if err := b.uploadStored(d, buf); err != nil {
		return err
	}
	return b.sync()
}

// UploadDense32 copies the row-major float32 host matrix a to a new device
// matrix of type dt kept row-major (a transposed view, see RowMajor), so
// that the device holds the activation in the layout a training framework
// would. No transpose is made.
func (b *Backend) UploadDense32(a *lowrank.Dense32, dt DType) (*Matrix, error) {
	if a.Rows <= 0 || a.Cols <= 0 {
		return nil, fmt.Errorf("%w: %d×%d", lowrank.ErrEmpty, a.Rows, a.Cols)
	}
	m, err := b.NewMatrix(a.Cols, a.Rows, dt)
	if err != nil {
		return nil, err
	}
	m.rows, m.cols, m.trans = a.Rows, a.Cols, true
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	var buf []byte
	if dt == Float32 && a.Stride == a.Cols {
		buf = unsafe.Slice((*byte)(unsafe.Pointer(&a.Data[0])), 4*len(a.Data))
	} else {
		buf = hostStored(nil, m, func(i, j int) float64 { return float64(a.Data[i*a.Stride+j]) })
	}
	if err := b.uploadStored(m, buf); err != nil {
		return nil, err
	}
	return m, b.sync()
}

// downloadStored returns the stored elements of m as float64, column-major
// with leading dimension = stored rows.
func (b *Backend) downloadStored(m *Matrix) ([]float64, error) {
	sr, sc := m.stored()
	es := m.dtype.Size()
	raw := make([]byte, m.span()*es)
	if err := b.download(unsafe.Pointer(&raw[0]), m.ptr, len(raw)); err != nil {
		return nil, err
	}
	out := make([]float64, sr*sc)
	for y := 0; y < sc; y++ {
		for x := 0; x < sr; x++ {
			off := (x + y*m.ld) * es
			if m.dtype == BFloat16 {
				out[x+y*sr] = float64(lowrank.FromBF16(*(*uint16)(unsafe.Pointer(&raw[off]))))
			} else {
				out[x+y*sr] = float64(math.Float32frombits(*(*uint32)(unsafe.Pointer(&raw[off]))))
			}
		}
	}
	return out, nil
}

// Download copies m into dst, which is resized if empty and must otherwise
// have m's shape. It waits for the stream.
func (b *Backend) Download(dst *mat.Dense, m lowrank.Matrix) error {
	d := b.mat(m)
	if dst.IsEmpty() {
		dst.ReuseAs(d.rows, d.cols)
	} else if r, c := dst.Dims(); r != d.rows || c != d.cols {
		panic(lowrank.ErrShape)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	st, err := b.downloadStored(d)
	if err != nil {
		return err
	}
	sr, _ := d.stored()
	for i := 0; i < d.rows; i++ {
		for j := 0; j < d.cols; j++ {
			x, y := i, j
			if d.trans {
				x, y = j, i
			}
			dst.Set(i, j, st[x+y*sr])
		}
	}
	return nil
}

// Float32s returns m as a row-major float32 host matrix.
func (b *Backend) Float32s(m lowrank.Matrix) (*lowrank.Dense32, error) {
	var d mat.Dense
	if err := b.Download(&d, m); err != nil {
		return nil, err
	}
	r, c := d.Dims()
	out := lowrank.NewDense32(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out.Data[i*c+j] = float32(d.At(i, j))
		}
	}
	return out, nil
}
