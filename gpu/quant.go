package gpu

import (
	_ "embed"
	"fmt"
	"sync"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// Quantized storage: integer codes with float32 scales in device memory,
// what package activation keeps int8 factors and quantized residuals in on
// a device. The kernels are quant.cu, a module of their own compiled on
// first use.

//go:embed quant.cu
var quantSource string

// qkernel names an entry point of quant.cu; TestQuantKernelList checks
// quantNames against its extern "C" __global__ functions.
type qkernel int

const (
	qAmaxCols qkernel = iota
	qScaleCols
	qPutCols
	qQuantRows
	qQuantRowsWarp
	qDequant
	numQuant
)

var quantNames = [numQuant]string{qAmaxCols: "quant_amax_cols", qScaleCols: "quant_scale_cols", qPutCols: "quant_put_cols",
	qQuantRows: "quant_rows", qQuantRowsWarp: "quant_rows_warp", qDequant: "dequant"}

// warpBlock is the smallest row block that Quantize gives a warp
// (quant_rows_warp) rather than a thread: below it most lanes would idle.
const warpBlock = 32

// qThreads is the block size of the quantization kernels.
const qThreads = 256

// quantModule is a device's loaded quant.cu (device.quant), loaded by the
// first backend that quantizes.
type quantModule struct {
	mu     sync.Mutex
	module uintptr
	fn     [numQuant]uintptr
	err    error // the compile or load error, returned to every later call
}

// quantFns returns the quantization kernels of b's device, compiling and
// loading them on first use. b.enter must be in effect.
func (b *Backend) quantFns() (*[numQuant]uintptr, error) {
	q := &b.device.quant
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.module != 0 {
		return &q.fn, nil
	}
	if q.err != nil {
		return nil, q.err
	}
	a := b.api
	bin, err := compileSource(a, b.arch, "loract_quant.cu", quantSource)
	if err == nil {
		err = a.check(a.cuModuleLoadData(&q.module, unsafe.Pointer(&bin[0])), "cuModuleLoadData")
	}
	for k := 0; err == nil && k < int(numQuant); k++ {
		kn := cBytes(quantNames[k])
		if err = a.check(a.cuModuleGetFunction(&q.fn[k], q.module, &kn[0]), "cuModuleGetFunction"); err != nil {
			err = fmt.Errorf("%w (kernel %s)", err, quantNames[k])
		}
	}
	if err != nil {
		if q.module != 0 {
			a.cuModuleUnload(q.module)
			q.module = 0
		}
		q.err = err
		return nil, err
	}
	return &q.fn, nil
}

// unload unloads the module, if loaded (device.release).
func (q *quantModule) unload(a *cudaAPI) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.module == 0 {
		return nil
	}
	err := a.check(a.cuModuleUnload(q.module), "cuModuleUnload")
	q.module = 0
	return err
}

// qlaunch runs quantization kernel k over n threads on the stream; every
// argument is an 8-byte slot, as for launch. b.enter must be in effect.
func (b *Backend) qlaunch(k qkernel, n int, args ...uint64) error {
	return b.qlaunch2(k, max(1, min((n+qThreads-1)/qThreads, b.sms*16)), 1, args...)
}

// qlaunch2 runs quantization kernel k on a gx×gy grid of qThreads-thread
// blocks.
func (b *Backend) qlaunch2(k qkernel, gx, gy int, args ...uint64) error {
	fns, err := b.quantFns()
	if err != nil {
		return err
	}
	copy(b.argv[:], args)
	code := b.api.cuLaunchKernel(fns[k], uint32(gx), uint32(gy), 1, qThreads, 1, 1, 0, b.stream, unsafe.Pointer(&b.argp[0]), 0)
	if code != 0 {
		err := b.api.check(code, "cuLaunchKernel")
		err.(*CUDAError).Detail = "kernel " + quantNames[k]
		return err
	}
	return nil
}

// Quantized is an r×c matrix in device memory stored in 4 or 8 bits per
// element with float32 scales, in the layout of package activation's host
// storage: row i at byte i·RowBytes, RowBytes = ⌈c·bits/8⌉; with 8 bits
// element j is the signed byte j of its row, with 4 bits the nibble j of
// its row (byte j/2, the low nibble for even j), two's complement. The
// scales are one per column (PerCol) or one per block of Block consecutive
// elements of a row, that of (i, j) at index i·⌈c/Block⌉ + j/Block.
// Element (i, j) stands for scale·code. Made by NewQuantized, freed by
// FreeQuantized (or the device's last Close).
type Quantized struct {
	rows, cols, bits, block int
	perCol                  bool
	q, scale                uintptr
	owner                   *device
	freed                   bool
}

// Dims returns the shape.
func (q *Quantized) Dims() (r, c int) { return q.rows, q.cols }

// Bits returns the bits per element, Block the elements per scale of a
// row (the rows when PerCol) and PerCol whether the scales are per column.
func (q *Quantized) Bits() int { return q.bits }

// Block returns the elements per scale of a row; see Bits.
func (q *Quantized) Block() int { return q.block }

// PerCol reports whether there is one scale per column; see Bits.
func (q *Quantized) PerCol() bool { return q.perCol }

// RowBytes returns the bytes of a row of codes, ⌈c·bits/8⌉.
func (q *Quantized) RowBytes() int { return (q.cols*q.bits + 7) / 8 }

// Scales returns the number of scales.
func (q *Quantized) Scales() int {
	if q.perCol {
		return q.cols
	}
	return q.rows * ((q.cols + q.block - 1) / q.block)
}

// Bytes returns the device bytes of the codes and the scales.
func (q *Quantized) Bytes() int { return q.rows*q.RowBytes() + 4*q.Scales() }

// ScaleMatrix returns the scales as a Scales()×1 float32 column-major
// view (for SquaredNorm: an overflowed scale is +Inf). It shares q's
// memory and is not to be freed.
func (q *Quantized) ScaleMatrix() *Matrix {
	n := q.Scales()
	return &Matrix{ptr: q.scale, rows: n, cols: 1, ld: n, dtype: Float32, owner: q.owner}
}

// NewQuantized returns an r×c quantized matrix of bits 4 or 8 per
// element, with one scale per column (perCol, 8 bits only) or one per
// block of block consecutive elements of a row (block ≥ 1, even with 4
// bits), its codes and scales from the memory pool and zero. It returns
// an error wrapping lowrank.ErrEmpty for r or c ≤ 0 and lowrank.ErrOption
// for an invalid layout.
func (b *Backend) NewQuantized(r, c, bits, block int, perCol bool) (*Quantized, error) {
	if r <= 0 || c <= 0 {
		return nil, fmt.Errorf("%w: cannot allocate %d×%d", lowrank.ErrEmpty, r, c)
	}
	switch {
	case bits != 4 && bits != 8, perCol && bits != 8, !perCol && block < 1, !perCol && bits == 4 && block%2 != 0:
		return nil, fmt.Errorf("%w: quantized layout of %d bits, block %d, per column %v", lowrank.ErrOption, bits, block, perCol)
	}
	if perCol {
		block = r
	}
	q := &Quantized{rows: r, cols: c, bits: bits, block: block, perCol: perCol, owner: b.device}
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	nq, ns := r*q.RowBytes(), 4*q.Scales()
	var err error
	if q.q, err = b.alloc(nq); err != nil {
		return nil, err
	}
	if q.scale, err = b.alloc(ns); err != nil {
		_ = b.free(q.q)
		return nil, err
	}
	for _, z := range []struct {
		p uintptr
		n int
	}{{q.q, nq}, {q.scale, ns}} {
		if err := b.api.check(b.api.cuMemsetD8Async(z.p, 0, uintptr(z.n), b.stream), "cuMemsetD8Async"); err != nil {
			b.freeQuantized(q)
			return nil, err
		}
	}
	return q, nil
}

// FreeQuantized returns q's memory to the pool; a second call is a no-op.
func (b *Backend) FreeQuantized(q *Quantized) {
	if q == nil || q.freed || q.owner != b.device || b.closed {
		return
	}
	if b.enter() == nil {
		b.freeQuantized(q)
		b.leave()
	}
}

func (b *Backend) freeQuantized(q *Quantized) {
	q.freed = true
	_ = b.free(q.q)
	_ = b.free(q.scale)
}

func (b *Backend) quantized(q *Quantized) {
	if q == nil || q.owner != b.device {
		panic(ErrForeign)
	}
	if q.freed {
		panic("gpu: use of a freed quantized matrix")
	}
}

// elemStrides returns the element strides (si, sj) of logical element
// (i, j) of m and its type code (0 float32, 1 bf16).
func elemStrides(m *Matrix) (si, sj int, code uint64) {
	si, sj = m.strides()
	if m.dtype == BFloat16 {
		return si, sj, 1
	}
	return si, sj, 0
}

// Quantize writes rows [i0, i0+r) of dst from src (r×c, float32 or bf16,
// either layout): for a per-column dst the whole matrix (i0 = 0, r the
// rows of dst), otherwise any block of rows. If groupErr is not nil (a
// float32 matrix of dst.Scales() elements, column-major and contiguous,
// rows [i0·nb, (i0+r)·nb) written), each block's √Σ(s·q − x)² goes there,
// for the error of the stored approximation. It panics with
// lowrank.ErrShape for mismatched shapes.
func (b *Backend) Quantize(dst *Quantized, i0 int, src lowrank.Matrix, groupErr *Matrix) error {
	b.quantized(dst)
	s := b.mat(src)
	r, c := s.Dims()
	if c != dst.cols || i0 < 0 || i0+r > dst.rows || (dst.perCol && (i0 != 0 || r != dst.rows)) {
		panic(lowrank.ErrShape)
	}
	var ge uintptr
	if groupErr != nil {
		g := b.mat(groupErr)
		if dst.perCol || g.dtype != Float32 || g.trans || !g.contiguous() || g.rows*g.cols != dst.Scales() {
			panic(fmt.Errorf("%w: group errors must be a contiguous float32 matrix of %d elements", lowrank.ErrShape, dst.Scales()))
		}
		ge = g.ptr
	}
	si, sj, code := elemStrides(s)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if dst.perCol {
		return b.quantizeCols(dst, s, code, si, sj)
	}
	nb := (c + dst.block - 1) / dst.block
	args := []uint64{ptr(dst.q), ptr(dst.scale), ptr(ge), ptr(s.ptr), code, i64(si), i64(sj),
		i64(i0), i64(r), i64(c), i64(dst.RowBytes()), i64(dst.bits), i64(dst.block)}
	if dst.block >= warpBlock {
		return b.qlaunch(qQuantRowsWarp, r*nb*32, args...)
	}
	return b.qlaunch(qQuantRows, r*nb, args...)
}

// quantizeCols quantizes all of src into the per-column dst in three
// launches (quant.cu): the columns' maxima into the zeroed scales, the
// scales from them, the codes. A block covers 32 columns and a share of
// the rows; the grid has enough blocks to fill the device.
func (b *Backend) quantizeCols(dst *Quantized, s *Matrix, code uint64, si, sj int) error {
	r, c := s.Dims()
	a := b.api
	if err := a.check(a.cuMemsetD8Async(dst.scale, 0, uintptr(4*c), b.stream), "cuMemsetD8Async"); err != nil {
		return err
	}
	gx := (c + 31) / 32
	gy := max(1, min((r+31)/32, b.sms*8/gx))
	if err := b.qlaunch2(qAmaxCols, gx, gy, ptr(dst.scale), ptr(s.ptr), code, i64(si), i64(sj), i64(r), i64(c)); err != nil {
		return err
	}
	if err := b.qlaunch(qScaleCols, c, ptr(dst.scale), i64(c)); err != nil {
		return err
	}
	return b.qlaunch2(qPutCols, gx, gy, ptr(dst.q), ptr(dst.scale), ptr(s.ptr), code, i64(si), i64(sj),
		i64(r), i64(c), i64(dst.RowBytes()))
}

// Dequantize writes rows [i0, i0+r) of src, scale·code, into dst (r×c,
// float32 or bf16, either layout), or with add adds them to it. It panics
// with lowrank.ErrShape for mismatched shapes.
func (b *Backend) Dequantize(dst lowrank.Matrix, src *Quantized, i0 int, add bool) error {
	b.quantized(src)
	d := b.mat(dst)
	r, c := d.Dims()
	if c != src.cols || i0 < 0 || i0+r > src.rows {
		panic(lowrank.ErrShape)
	}
	si, sj, code := elemStrides(d)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.qlaunch(qDequant, r*c, ptr(d.ptr), code, i64(si), i64(sj), ptr(src.q), ptr(src.scale), i64(i0), i64(r),
		i64(c), i64(src.RowBytes()), i64(src.bits), i64(src.block), boolArg(src.perCol), boolArg(add))
}

// DownloadQuantized copies q's codes (rows·RowBytes bytes) and scales to
// the host, for tests and inspection.
func (b *Backend) DownloadQuantized(q *Quantized) (codes []byte, scales []float32, err error) {
	b.quantized(q)
	if err := b.enter(); err != nil {
		return nil, nil, err
	}
	defer b.leave()
	codes = make([]byte, q.rows*q.RowBytes())
	scales = make([]float32, q.Scales())
	a := b.api
	if err := a.check(a.cuMemcpyDtoHAsync(unsafe.Pointer(&codes[0]), q.q, uintptr(len(codes)), b.stream), "cuMemcpyDtoHAsync_v2"); err != nil {
		return nil, nil, err
	}
	if err := a.check(a.cuMemcpyDtoHAsync(unsafe.Pointer(&scales[0]), q.scale, uintptr(4*len(scales)), b.stream), "cuMemcpyDtoHAsync_v2"); err != nil {
		return nil, nil, err
	}
	b.device.toHost.Add(int64(len(codes) + 4*len(scales)))
	return codes, scales, b.sync()
}
