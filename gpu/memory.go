package gpu

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// alloc takes bytes of device memory from the device's pool on b's
// stream: a cached block of the same size class if there is one (made to
// wait for the stream it was freed on, if another), else cuMemAlloc. On
// out-of-memory the cache is returned to the driver and the allocation
// retried once.
func (b *Backend) alloc(bytes int) (uintptr, error) {
	d := b.device
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.pool.alloc(d.api, bytes, b.stream)
	if err != nil {
		if e, ok := err.(*CUDAError); ok {
			e.Detail = fmt.Sprintf("%d bytes", bytes)
		}
		return 0, err
	}
	return p, nil
}

// free returns p to the pool, to be reused after the work queued on b's
// stream so far. Memory the pool did not hand out is left alone.
func (b *Backend) free(p uintptr) error {
	d := b.device
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pool.free(d.api, p, b.stream)
}

// MemStats is the accounting of a device's memory pool, shared by a
// backend and its Forks: measured at the allocator, not estimated.
type MemStats struct {
	// Live is the bytes in use (matrices and scratch, rounded to the
	// pool's size classes), Peak its high-water mark since the pool was
	// made or ResetPeak, Cached the bytes of freed blocks kept for reuse,
	// and Reserved = Live + Cached, what the pool holds from the driver.
	Live, Peak, Cached, Reserved int64
	// Mallocs and Frees count cuMemAlloc and cuMemFree calls: constant
	// counts across a steady-state loop mean it allocates nothing.
	Mallocs, Frees int64
}

// MemStats returns the accounting of the device's pool.
func (b *Backend) MemStats() MemStats {
	d := b.device
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pool.stats()
}

// ResetPeak sets the pool's Peak to its current Live bytes.
func (b *Backend) ResetPeak() {
	d := b.device
	d.mu.Lock()
	d.pool.peak = d.pool.live
	d.mu.Unlock()
}

// TrimPool returns the pool's cached blocks to the driver (cuMemFree,
// which synchronises the device).
func (b *Backend) TrimPool() error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	d := b.device
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pool.trim(d.api)
}

// pool is a caching allocator: freed blocks are kept by size class and
// handed out again, so that a training loop's steady state makes no
// cuMemAlloc or cuMemFree call (cuMemFree synchronises the whole device).
// A block freed on one stream and taken on another is made to wait for the
// work queued before its free (an event), as PyTorch's allocator does.
type pool struct {
	size                    map[uintptr]int // every block held from the driver → its class size
	inUse                   map[uintptr]bool
	cached                  map[int][]freeBlock
	live, peak, cachedBytes int64
	mallocs, frees          int64
}

type freeBlock struct {
	ptr    uintptr
	stream uintptr
	event  uintptr // recorded on stream at the free; 0 if it could not be made
}

func (p *pool) init() {
	p.size = map[uintptr]int{}
	p.inUse = map[uintptr]bool{}
	p.cached = map[int][]freeBlock{}
}

// sizeClass rounds a request up: to 512 bytes below 1 MiB, to 1/8 of its
// power of two above (waste ≤ 12.5%), so that factors of nearby ranks
// share blocks.
func sizeClass(bytes int) int {
	if bytes <= 1<<20 {
		return (max(bytes, 1) + 511) &^ 511
	}
	step := 1
	for step*16 <= bytes {
		step *= 2
	}
	return (bytes + step - 1) / step * step
}

func (p *pool) alloc(a *cudaAPI, bytes int, stream uintptr) (uintptr, error) {
	c := sizeClass(bytes)
	if list := p.cached[c]; len(list) > 0 {
		// Prefer a block freed on this stream: stream order then
		// guarantees its earlier users are done.
		at := len(list) - 1
		for i := range list {
			if list[i].stream == stream {
				at = i
				break
			}
		}
		blk := list[at]
		list[at] = list[len(list)-1]
		p.cached[c] = list[:len(list)-1]
		if blk.event != 0 {
			if blk.stream != stream {
				if err := a.check(a.cuStreamWaitEvent(stream, blk.event, 0), "cuStreamWaitEvent"); err != nil {
					return 0, err
				}
			}
			a.cuEventDestroy(blk.event)
		} else if blk.stream != stream && blk.stream != 0 {
			if err := a.check(a.cuStreamSynchronize(blk.stream), "cuStreamSynchronize"); err != nil {
				return 0, err
			}
		}
		p.cachedBytes -= int64(c)
		p.take(blk.ptr, c)
		return blk.ptr, nil
	}
	var ptr uintptr
	err := a.check(a.cuMemAlloc(&ptr, uintptr(c)), "cuMemAlloc_v2")
	if err != nil && p.cachedBytes > 0 {
		if e, ok := err.(*CUDAError); ok && e.OutOfMemory() {
			if err := p.trim(a); err != nil {
				return 0, err
			}
			err = a.check(a.cuMemAlloc(&ptr, uintptr(c)), "cuMemAlloc_v2")
		}
	}
	if err != nil {
		return 0, err
	}
	p.mallocs++
	p.size[ptr] = c
	p.take(ptr, c)
	return ptr, nil
}

func (p *pool) take(ptr uintptr, c int) {
	p.inUse[ptr] = true
	p.live += int64(c)
	p.peak = max(p.peak, p.live)
}

func (p *pool) free(a *cudaAPI, ptr uintptr, stream uintptr) error {
	if !p.inUse[ptr] {
		return nil
	}
	c := p.size[ptr]
	delete(p.inUse, ptr)
	p.live -= int64(c)
	blk := freeBlock{ptr: ptr, stream: stream}
	var ev uintptr
	if a.cuEventCreate(&ev, cuEventDisableTiming) == 0 {
		if a.cuEventRecord(ev, stream) == 0 {
			blk.event = ev
		} else {
			a.cuEventDestroy(ev)
		}
	}
	p.cached[c] = append(p.cached[c], blk)
	p.cachedBytes += int64(c)
	return nil
}

// forget marks the blocks freed on stream, which its backend has just
// synchronised before destroying it, as idle: reusable on any stream
// without waiting.
func (p *pool) forget(a *cudaAPI, stream uintptr) {
	for _, list := range p.cached {
		for i := range list {
			if list[i].stream == stream {
				if list[i].event != 0 {
					a.cuEventDestroy(list[i].event)
				}
				list[i].stream, list[i].event = 0, 0
			}
		}
	}
}

// trim returns the cached blocks to the driver.
func (p *pool) trim(a *cudaAPI) error {
	var first error
	for c, list := range p.cached {
		for _, blk := range list {
			if blk.event != 0 {
				a.cuEventDestroy(blk.event)
			}
			if err := a.check(a.cuMemFree(blk.ptr), "cuMemFree_v2"); err != nil && first == nil {
				first = err
			}
			p.frees++
			delete(p.size, blk.ptr)
		}
		delete(p.cached, c)
	}
	p.cachedBytes = 0
	return first
}

// freeAll returns every block, in use or cached, to the driver.
func (p *pool) freeAll(a *cudaAPI) error {
	first := p.trim(a)
	for ptr := range p.inUse {
		if err := a.check(a.cuMemFree(ptr), "cuMemFree_v2"); err != nil && first == nil {
			first = err
		}
		p.frees++
		delete(p.inUse, ptr)
		delete(p.size, ptr)
	}
	p.live = 0
	return first
}

func (p *pool) stats() MemStats {
	return MemStats{Live: p.live, Peak: p.peak, Cached: p.cachedBytes, Reserved: p.live + p.cachedBytes,
		Mallocs: p.mallocs, Frees: p.frees}
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
	tmpA, tmpB        devBuf            // products of the saved activations (activation's device path)
	mulA, mulB        devBuf            // bf16 copies of float32 product operands, padded copies of misaligned ones
	mulC              devBuf            // a misaligned product's destination, padded
	gatherIdx         devBuf            // the row indices of Gather
	gatherMap         devBuf            // GatherNorm's column → sample map
	rowNorms          devBuf            // SquaredRowNorms' output
	normPart          devBuf            // SquaredNorm's partial sums and maxima
	omega16           devBuf            // SketchBatchDeferred's bf16 Ω
	nonFinite         devBuf            // FindNonFinite's index
	upload            devBuf            // staging for uploads to strided matrices
	qrT, qrS, qrY64   devBuf            // Cholesky QR: two float32 copies and a float64 one
	qrSmall, qrStatus devBuf            // Cholesky QR: ℓ×ℓ factors and status slots
	qrPotrf           devBuf            // dpotrf workspace
	qrPtrs            devBuf            // QRBatch: the pointer array of potrfBatched
	batchTable        [tableRing]devBuf // the other batched calls' address tables (uploadTable)
	gridPtrs          devBuf            // MulBatchedGrid's address arrays (ptr_grid)
	hhTau, hhWork     devBuf            // Householder QR
	luWork, luIpiv    devBuf            // LU
	svdA, svdWork     devBuf            // small SVD
	eigG              devBuf            // SymEig: float64 copy with eigenvalues and devInfo
	exactA, exactG    devBuf            // ExactSVD: float64 A and Gram
	exactV            devBuf            // ExactSVD: vectors
	exactS            devBuf            // ExactSVD's subspace route: basis, Rayleigh quotient, checks
	syevdWork         devBuf            // dsyevd's workspace (ExactSVD, SymEig)
}

// bufs lists the buffers, for Close.
func (sc *scratch) bufs() []*devBuf {
	l := []*devBuf{&sc.tmpA, &sc.tmpB, &sc.mulA, &sc.mulB, &sc.mulC, &sc.gatherIdx, &sc.gatherMap, &sc.rowNorms, &sc.normPart, &sc.omega16, &sc.nonFinite,
		&sc.upload, &sc.qrT, &sc.qrS, &sc.qrY64, &sc.qrSmall, &sc.qrStatus, &sc.qrPotrf, &sc.qrPtrs, &sc.hhTau, &sc.hhWork,
		&sc.luWork, &sc.luIpiv, &sc.svdA, &sc.svdWork, &sc.eigG, &sc.exactA, &sc.exactG, &sc.exactV, &sc.exactS, &sc.syevdWork, &sc.gridPtrs}
	for i := range sc.batchTable {
		l = append(l, &sc.batchTable[i])
	}
	return l
}

// scratchSlots is the number of slots of scratch (every field a devBuf).
const scratchSlots = int(unsafe.Sizeof(scratch{}) / unsafe.Sizeof(devBuf{}))

// scratchSizes is a family's largest size per scratch slot.
type scratchSizes [scratchSlots]atomic.Int64

// slot returns the index of s in b.sc, or −1 if s is not one of its slots.
func (b *Backend) slot(s *devBuf) int {
	base, p := uintptr(unsafe.Pointer(&b.sc)), uintptr(unsafe.Pointer(s))
	if p < base || p >= base+unsafe.Sizeof(b.sc) {
		return -1
	}
	return int((p - base) / unsafe.Sizeof(devBuf{}))
}

// buf returns s's buffer with at least bytes bytes, growing it (and only
// then allocating) if it is smaller. It grows to the largest size the
// backend's family (it and its Forks) has asked of the slot: the
// asynchronous compressor's worker streams take their inputs in whatever
// order the scheduler hands them out, and a worker that meets the widest
// input for the first time after the warm-up would otherwise allocate in
// the steady state (the step benchmark saw 3–5 cuMemAlloc calls in 20
// steps with two workers).
func (b *Backend) buf(s *devBuf, bytes int) (uintptr, error) {
	if i := b.slot(s); i >= 0 {
		fam := &b.family[i]
		for {
			cur := fam.Load()
			if int64(bytes) <= cur {
				bytes = int(cur)
				break
			}
			if fam.CompareAndSwap(cur, int64(bytes)) {
				break
			}
		}
	}
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
// another type or a matrix of another device, and with a message for a
// freed one.
func (b *Backend) mat(m lowrank.Matrix) *Matrix {
	d, ok := m.(*Matrix)
	if !ok || (d.owner != nil && d.owner != b.device) {
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
	return b.newMatrix(r, c, dt, true)
}

// NewMatrixUninit is NewMatrix without the zeroing, for a caller that
// writes every element before it reads any (an output of Mul with
// beta = 0, of Copy, of a kernel): its elements are whatever the memory
// last held, a block the pool reuses keeping its previous user's values.
// It saves the zeroing's launch, a few microseconds of host time, and its
// pass over the memory — what a training loop pays for each tensor it
// saves, every step.
func (b *Backend) NewMatrixUninit(r, c int, dt DType) (*Matrix, error) {
	return b.newMatrix(r, c, dt, false)
}

func (b *Backend) newMatrix(r, c int, dt DType, zero bool) (*Matrix, error) {
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
	if zero {
		if err := b.api.check(b.api.cuMemsetD8Async(p, 0, uintptr(bytes), b.stream), "cuMemsetD8Async"); err != nil {
			_ = b.free(p)
			return nil, err
		}
	}
	return &Matrix{ptr: p, rows: r, cols: c, ld: r, dtype: dt, owner: b.device, owned: true, freed: new(bool)}, nil
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
	if !ok || !d.owned || d.owner != b.device || d.freed == nil || *d.freed {
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

// NewStorage returns an r×c column-major matrix for storing data at
// precision p (lowrank.BFloat16 or Float32; the device holds no float64
// storage), from the memory pool: what package activation keeps saved
// factors in. Free returns it to the pool.
func (b *Backend) NewStorage(r, c int, p lowrank.Precision) (lowrank.Matrix, error) {
	dt, err := storageType(p)
	if err != nil {
		return nil, err
	}
	return b.NewMatrix(r, c, dt)
}

// NewStorageUninit is NewStorage without the zeroing (NewMatrixUninit),
// for storage that is written whole before it is read.
func (b *Backend) NewStorageUninit(r, c int, p lowrank.Precision) (*Matrix, error) {
	dt, err := storageType(p)
	if err != nil {
		return nil, err
	}
	return b.NewMatrixUninit(r, c, dt)
}

// storageType returns the element type of device storage at precision p.
func storageType(p lowrank.Precision) (DType, error) {
	switch p {
	case lowrank.BFloat16:
		return BFloat16, nil
	case lowrank.Float32:
		return Float32, nil
	}
	return 0, fmt.Errorf("%w: device storage is bf16 or float32, not %v", lowrank.ErrOption, p)
}

// Transpose returns the transpose of a, a matrix on this backend's
// device, as a view sharing its memory (Matrix.T), and false for any other
// matrix. It implements lowrank.Transposer.
func (b *Backend) Transpose(a lowrank.Matrix) (lowrank.Matrix, bool) {
	m, ok := a.(*Matrix)
	if !ok || (m.owner != nil && m.owner != b.device) {
		return nil, false
	}
	return m.T(), true
}
