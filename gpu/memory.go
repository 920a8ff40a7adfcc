package gpu

import (
	"fmt"

	"github.com/loract/loract/lowrank"
)

// alloc allocates device memory and records it for Close.
func (b *Backend) alloc(bytes int) (uintptr, error) {
	var p uintptr
	if err := b.api.check(b.api.cuMemAlloc(&p, uintptr(bytes)), "cuMemAlloc_v2"); err != nil {
		if e, ok := err.(*CUDAError); ok {
			e.Detail = fmt.Sprintf("%d bytes", bytes)
		}
		return 0, err
	}
	b.allocs++
	b.live[p] = bytes
	return p, nil
}

func (b *Backend) free(p uintptr) error {
	if _, ok := b.live[p]; !ok {
		return nil
	}
	delete(b.live, p)
	return b.api.check(b.api.cuMemFree(p), "cuMemFree_v2")
}

// devBuf is one grow-only scratch buffer of a Backend.
type devBuf struct {
	ptr   uintptr
	bytes int
}

// scratch holds the Backend's scratch buffers, one named slot each, grown
// to the largest size asked and reused: a steady-state call of the same
// shapes allocates nothing.
type scratch struct {
	mulA, mulB        devBuf // bf16 copies of float32 product operands
	gatherIdx         devBuf // the row indices of Gather
	rowNorms          devBuf // SquaredRowNorms' output
	normPart          devBuf // SquaredNorm's partial sums and maxima
	nonFinite         devBuf // FindNonFinite's index
	upload            devBuf // staging for uploads to strided matrices
	qrT, qrS, qrY64   devBuf // Cholesky QR: two float32 copies and a float64 one
	qrSmall, qrStatus devBuf // Cholesky QR: ℓ×ℓ factors and status slots
	qrPotrf           devBuf // dpotrf workspace
	hhTau, hhWork     devBuf // Householder QR
	luWork, luIpiv    devBuf // LU
	svdA, svdWork     devBuf // small SVD
	exactA, exactG    devBuf // ExactSVD: float64 A and Gram
	exactV, exactWork devBuf // ExactSVD: vectors and dsyevd workspace
}

// buf returns s's buffer with at least bytes bytes, growing it (and only
// then allocating) if it is smaller.
func (b *Backend) buf(s *devBuf, bytes int) (uintptr, error) {
	if s.bytes >= bytes && s.ptr != 0 {
		return s.ptr, nil
	}
	if s.ptr != 0 {
		if err := b.free(s.ptr); err != nil {
			return 0, err
		}
		*s = devBuf{}
	}
	bytes = max(bytes, 256)
	p, err := b.alloc(bytes)
	if err != nil {
		return 0, err
	}
	*s = devBuf{ptr: p, bytes: bytes}
	return p, nil
}

// mat converts m to this backend's *Matrix, panicking with ErrForeign for
// another type or a matrix of another backend, and with a message for a
// freed one.
func (b *Backend) mat(m lowrank.Matrix) *Matrix {
	d, ok := m.(*Matrix)
	if !ok || (d.owner != nil && d.owner != b) {
		panic(ErrForeign)
	}
	if d.freed != nil && *d.freed {
		panic("gpu: use of a freed matrix")
	}
	return d
}

// work panics unless m is a float32 matrix stored column-major, as every
// matrix the backend makes is: destinations must be such.
func work(m *Matrix) {
	if m.dtype != Float32 || m.trans {
		panic(fmt.Errorf("%w: destination must be a float32 column-major matrix, have %v row-major=%v", lowrank.ErrShape, m.dtype, m.trans))
	}
}

// NewMatrix returns a zeroed r×c column-major device matrix of type dt
// owned by b. It returns lowrank.ErrEmpty for r or c ≤ 0 and a *CUDAError
// naming cuMemAlloc_v2 when memory runs out.
func (b *Backend) NewMatrix(r, c int, dt DType) (*Matrix, error) {
	if r <= 0 || c <= 0 {
		return nil, fmt.Errorf("%w: cannot allocate %d×%d", lowrank.ErrEmpty, r, c)
	}
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	bytes := r * c * dt.Size()
	p, err := b.alloc(bytes)
	if err != nil {
		return nil, err
	}
	if err := b.api.check(b.api.cuMemsetD8Async(p, 0, uintptr(bytes), b.stream), "cuMemsetD8Async"); err != nil {
		return nil, err
	}
	return &Matrix{ptr: p, rows: r, cols: c, ld: r, dtype: dt, owner: b, owned: true, freed: new(bool)}, nil
}

// New returns a zeroed r×c float32 matrix.
func (b *Backend) New(r, c int) (lowrank.Matrix, error) {
	m, err := b.NewMatrix(r, c, Float32)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Free releases a matrix made by b. Views and wrapped memory are left
// alone.
func (b *Backend) Free(m lowrank.Matrix) {
	d, ok := m.(*Matrix)
	if !ok || !d.owned || d.owner != b || d.freed == nil || *d.freed {
		return
	}
	*d.freed = true
	if b.closed {
		return
	}
	if b.enter() == nil {
		_ = b.free(d.ptr)
		b.leave()
	}
}

// Slice returns rows [i0, i1) and columns [j0, j1) of m as a view sharing
// its memory (same leading dimension).
func (b *Backend) Slice(m lowrank.Matrix, i0, i1, j0, j1 int) lowrank.Matrix {
	d := b.mat(m)
	if i0 < 0 || i1 < i0 || i1 > d.rows || j0 < 0 || j1 < j0 || j1 > d.cols {
		panic(lowrank.ErrShape)
	}
	v := *d
	v.owned = false
	v.rows, v.cols = i1-i0, j1-j0
	si, sj := d.strides()
	v.ptr = d.ptr + uintptr((i0*si+j0*sj)*d.dtype.Size())
	return &v
}

func opDims(m *Matrix, t bool) (r, c int) {
	if t {
		return m.cols, m.rows
	}
	return m.rows, m.cols
}
