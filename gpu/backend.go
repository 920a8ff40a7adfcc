package gpu

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// Math chooses the arithmetic of the large products (Mul).
type Math int

const (
	// FP32 computes float32 products exactly as IEEE float32 with float32
	// accumulation (cuBLAS CUBLAS_DEFAULT_MATH, no tensor cores): the
	// default. A bf16 operand is multiplied with the other operand rounded
	// to bf16, with float32 accumulation.
	FP32 Math = iota
	// TF32 computes float32 products on the tensor cores with operands
	// rounded to TF32 (10-bit mantissa, u = 2⁻¹¹) and float32 accumulation.
	TF32
	// BF16 rounds both operands to bf16 (u = 2⁻⁸) and accumulates in
	// float32 on the tensor cores.
	BF16
)

func (m Math) String() string {
	switch m {
	case FP32:
		return "fp32"
	case TF32:
		return "tf32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Math(%d)", int(m))
}

// QRMethod chooses the thin QR of tall-skinny matrices.
type QRMethod int

const (
	// CholQR is shifted Cholesky QR, three passes (Fukaya et al., 2020):
	// each pass is one Gram product (syrk), one kernel for the small
	// Cholesky factor and its inverse, and one product Y·R⁻¹. A pass whose
	// Cholesky breaks down, or a result whose orthogonality defect is not
	// at rounding level, falls back to Householder. The default.
	CholQR QRMethod = iota
	// Householder is cuSOLVER's geqrf followed by orgqr.
	Householder
)

func (q QRMethod) String() string {
	if q == Householder {
		return "householder"
	}
	return "cholqr"
}

// Options configures a Backend. The zero value means exact float32
// products and Cholesky QR.
type Options struct {
	Math Math
	QR   QRMethod
}

// Backend is a lowrank.Backend on one CUDA device. It owns one
// non-blocking stream, its cuBLAS and cuSOLVER handles (bound to that
// stream), the cuBLAS workspace and grow-only scratch buffers, so that
// after a first call a compression of the same shapes allocates no device
// memory. Its working matrices are float32 column-major *Matrix values;
// inputs may also be bf16 and row-major.
//
// A Backend is not safe for concurrent use: one per goroutine (each has
// its own stream). Every method locks the calling goroutine to its OS
// thread and makes the device's primary context current for the duration
// of the call.
type Backend struct {
	api     *cudaAPI
	ordinal int
	dev     int32
	ctx     uintptr
	name    string
	arch    string
	sms     int
	smemMax int
	opts    Options

	stream, blas, solver, module uintptr
	blasWS                       uintptr
	fn                           map[string]uintptr
	gesvdj                       uintptr

	live    map[uintptr]int // owned allocations and their sizes
	scratch map[string]scratchBuf
	allocs  int64
	// fallbacks counts Cholesky-QR calls that fell back to Householder.
	fallbacks int64
	// useBlk selects the blocked kernel cholblk64 instead of dpotrf in
	// the float64 pass where it fits (tests; slower, see cholPass64).
	useBlk bool
	// lastDev is ‖QᵀQ − I‖_F after the float64 pass of the last fast QR.
	lastDev float64
	closed  bool

	argv [24]uint64
	argp [24]uintptr
	sc32 [4]float32
	sc64 [4]float64
	tmp  [8]uint64
	idx  []int64
}

type scratchBuf struct {
	ptr   uintptr
	bytes int
}

var _ lowrank.Backend = (*Backend)(nil)

// Available reports whether a CUDA device can be used: nil, or an error
// wrapping ErrUnavailable that says why (a missing library, no device).
// Tests skip with this error.
func Available() error {
	a, err := load()
	if err != nil {
		return err
	}
	if err := a.check(a.cuInit(0), "cuInit"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var n int32
	if err := a.check(a.cuDeviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: no CUDA device", ErrUnavailable)
	}
	return nil
}

// Open returns a Backend on the device with the given ordinal, using its
// primary context. A nil opts means the zero Options. It returns an error
// wrapping ErrUnavailable if the libraries or the device are missing, and
// a *CUDAError naming the call for any other failure; it never panics for
// an environment failure.
func Open(ordinal int, opts *Options) (*Backend, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	a := api
	b := &Backend{api: a, ordinal: ordinal, live: map[uintptr]int{}, scratch: map[string]scratchBuf{}, fn: map[string]uintptr{}}
	if opts != nil {
		b.opts = *opts
	}
	for i := range b.argp {
		b.argp[i] = uintptr(unsafe.Pointer(&b.argv[i]))
	}
	var n int32
	if err := a.check(a.cuDeviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("%w: device ordinal %d, have %d devices", ErrUnavailable, ordinal, n)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := a.check(a.cuDeviceGet(&b.dev, int32(ordinal)), "cuDeviceGet"); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := a.check(a.cuDeviceGetName(&name[0], int32(len(name)), b.dev), "cuDeviceGetName"); err != nil {
		return nil, err
	}
	for i, c := range name {
		if c == 0 {
			b.name = string(name[:i])
			break
		}
	}
	var major, minor, sms, smem int32
	for _, q := range []struct {
		v    *int32
		attr int32
	}{{&major, cuAttrComputeCapabilityMajor}, {&minor, cuAttrComputeCapabilityMinor},
		{&sms, cuAttrMultiprocessorCount}, {&smem, cuAttrMaxSharedPerBlockOptin}} {
		if err := a.check(a.cuDeviceGetAttribute(q.v, q.attr, b.dev), "cuDeviceGetAttribute"); err != nil {
			return nil, err
		}
	}
	b.arch = fmt.Sprintf("sm_%d%d", major, minor)
	// Leave 1 KiB of the opt-in shared memory for cholinv's static arrays.
	b.sms, b.smemMax = int(sms), int(smem)-1024
	if err := a.check(a.cuDevicePrimaryCtxRetain(&b.ctx, b.dev), "cuDevicePrimaryCtxRetain"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.release()
		}
	}()
	if err := a.check(a.cuCtxSetCurrent(b.ctx), "cuCtxSetCurrent"); err != nil {
		return nil, err
	}
	if err := a.check(a.cuStreamCreate(&b.stream, cuStreamNonBlocking), "cuStreamCreate"); err != nil {
		return nil, err
	}
	bin, err := compile(a, b.arch)
	if err != nil {
		return nil, err
	}
	if err := a.check(a.cuModuleLoadData(&b.module, unsafe.Pointer(&bin[0])), "cuModuleLoadData"); err != nil {
		return nil, err
	}
	for _, k := range kernelNames {
		var f uintptr
		kn := cBytes(k)
		if err := a.check(a.cuModuleGetFunction(&f, b.module, &kn[0]), "cuModuleGetFunction"); err != nil {
			return nil, fmt.Errorf("%w (kernel %s)", err, k)
		}
		b.fn[k] = f
	}
	for _, k := range []string{"cholinv", "cholinv64", "cholblk64"} {
		if err := a.check(a.cuFuncSetAttribute(b.fn[k], cuFuncAttrMaxDynamicShared, int32(b.smemMax)), "cuFuncSetAttribute"); err != nil {
			return nil, err
		}
	}
	if err := checkBLAS(a.cublasCreate(&b.blas), "cublasCreate_v2"); err != nil {
		return nil, err
	}
	if err := checkBLAS(a.cublasSetStream(b.blas, b.stream), "cublasSetStream_v2"); err != nil {
		return nil, err
	}
	// Exact float32 unless asked otherwise: the mode is set explicitly,
	// and TF32 is requested per product through the compute type.
	if err := checkBLAS(a.cublasSetMathMode(b.blas, cublasDefaultMath), "cublasSetMathMode"); err != nil {
		return nil, err
	}
	if b.blasWS, err = b.alloc(cublasWorkspaceBytes); err != nil {
		return nil, err
	}
	if err := checkBLAS(a.cublasSetWorkspace(b.blas, b.blasWS, cublasWorkspaceBytes), "cublasSetWorkspace_v2"); err != nil {
		return nil, err
	}
	if err := checkSolver(a.cusolverDnCreate(&b.solver), "cusolverDnCreate"); err != nil {
		return nil, err
	}
	if err := checkSolver(a.cusolverDnSetStream(b.solver, b.stream), "cusolverDnSetStream"); err != nil {
		return nil, err
	}
	ok = true
	return b, nil
}

// release frees everything Open acquired, in reverse order, ignoring
// errors (the first is reported by Close).
func (b *Backend) release() error {
	a := b.api
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	if b.ctx != 0 {
		keep(a.check(a.cuCtxSetCurrent(b.ctx), "cuCtxSetCurrent"))
	}
	if b.stream != 0 {
		keep(a.check(a.cuStreamSynchronize(b.stream), "cuStreamSynchronize"))
	}
	if b.gesvdj != 0 {
		keep(checkSolver(a.cusolverDnDestroyGesvdjInfo(b.gesvdj), "cusolverDnDestroyGesvdjInfo"))
	}
	if b.solver != 0 {
		keep(checkSolver(a.cusolverDnDestroy(b.solver), "cusolverDnDestroy"))
	}
	if b.blas != 0 {
		keep(checkBLAS(a.cublasDestroy(b.blas), "cublasDestroy_v2"))
	}
	for p := range b.live {
		keep(a.check(a.cuMemFree(p), "cuMemFree_v2"))
		delete(b.live, p)
	}
	clear(b.scratch)
	if b.module != 0 {
		keep(a.check(a.cuModuleUnload(b.module), "cuModuleUnload"))
	}
	if b.stream != 0 {
		keep(a.check(a.cuStreamDestroy(b.stream), "cuStreamDestroy_v2"))
	}
	if b.ctx != 0 {
		keep(a.check(a.cuDevicePrimaryCtxRelease(b.dev), "cuDevicePrimaryCtxRelease_v2"))
	}
	b.stream, b.blas, b.solver, b.module, b.ctx, b.gesvdj = 0, 0, 0, 0, 0, 0
	return first
}

// Close waits for the stream, then releases every device resource of the
// backend: all matrices it allocated (using them afterwards returns
// ErrClosed or panics), its scratch, handles, stream and module, and its
// reference on the primary context. A second Close is a no-op.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.closed = true
	return b.release()
}

// Name returns "cuda:<ordinal>".
func (b *Backend) Name() string { return fmt.Sprintf("cuda:%d", b.ordinal) }

// Device returns the device's name, e.g. "NVIDIA H100 80GB HBM3", and its
// architecture, e.g. "sm_90".
func (b *Backend) Device() (name, arch string) { return b.name, b.arch }

// Options returns the backend's options.
func (b *Backend) Options() Options { return b.opts }

// SetMath changes the arithmetic of later products.
func (b *Backend) SetMath(m Math) { b.opts.Math = m }

// SetQR changes the QR method of later factorisations.
func (b *Backend) SetQR(q QRMethod) { b.opts.QR = q }

// DriverVersion returns the CUDA driver's version, e.g. 13000 for 13.0.
func DriverVersion() (int, error) {
	a, err := load()
	if err != nil {
		return 0, err
	}
	var v int32
	if err := a.check(a.cuDriverGetVersion(&v), "cuDriverGetVersion"); err != nil {
		return 0, err
	}
	return int(v), nil
}

// MemInfo returns the device's free and total memory in bytes.
func (b *Backend) MemInfo() (free, total uint64, err error) {
	if err := b.enter(); err != nil {
		return 0, 0, err
	}
	defer b.leave()
	var f, t uintptr
	if err := b.api.check(b.api.cuMemGetInfo(&f, &t), "cuMemGetInfo_v2"); err != nil {
		return 0, 0, err
	}
	return uint64(f), uint64(t), nil
}

// Synchronize waits until all work queued on the backend's stream is done.
func (b *Backend) Synchronize() error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.sync()
}

func (b *Backend) sync() error {
	return b.api.check(b.api.cuStreamSynchronize(b.stream), "cuStreamSynchronize")
}

// enter locks the goroutine to its thread and makes the context current.
func (b *Backend) enter() error {
	if b.closed {
		return ErrClosed
	}
	runtime.LockOSThread()
	if err := b.api.check(b.api.cuCtxSetCurrent(b.ctx), "cuCtxSetCurrent"); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	return nil
}

func (b *Backend) leave() { runtime.UnlockOSThread() }

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

// getScratch returns the scratch buffer called name with at least bytes
// bytes, growing it (and only then allocating) if it is smaller.
func (b *Backend) getScratch(name string, bytes int) (uintptr, error) {
	s := b.scratch[name]
	if s.bytes >= bytes && s.ptr != 0 {
		return s.ptr, nil
	}
	if s.ptr != 0 {
		if err := b.free(s.ptr); err != nil {
			return 0, err
		}
	}
	p, err := b.alloc(max(bytes, 256))
	if err != nil {
		delete(b.scratch, name)
		return 0, err
	}
	b.scratch[name] = scratchBuf{ptr: p, bytes: max(bytes, 256)}
	return p, nil
}

// launch runs kernel name on the stream. Every argument is passed as an
// 8-byte slot: the driver reads sizeof(parameter) bytes from each, which
// for a 4-byte int is the low half of the little-endian slot.
func (b *Backend) launch(name string, grid, block, shmem int, args ...uint64) error {
	f := b.fn[name]
	copy(b.argv[:], args)
	code := b.api.cuLaunchKernel(f, uint32(grid), 1, 1, uint32(block), 1, 1, uint32(shmem), b.stream, unsafe.Pointer(&b.argp[0]), 0)
	if code != 0 {
		err := b.api.check(code, "cuLaunchKernel")
		err.(*CUDAError).Detail = "kernel " + name
		return err
	}
	return nil
}

// grid returns a grid-stride launch size for n elements.
func (b *Backend) grid(n int) int { return max(1, min((n+255)/256, b.sms*16)) }

func u64(p uintptr) uint64     { return uint64(p) }
func i64(v int) uint64         { return uint64(int64(v)) }
func f32bits(x float32) uint64 { return uint64(math.Float32bits(x)) }
func boolArg(v bool) uint64 {
	if v {
		return 1
	}
	return 0
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

// Cols returns columns [j0, j1) of m as a view sharing its memory.
func (b *Backend) Cols(m lowrank.Matrix, j0, j1 int) lowrank.Matrix {
	d := b.mat(m)
	if j0 < 0 || j1 < j0 || j1 > d.cols {
		panic(lowrank.ErrShape)
	}
	v := *d
	v.owned = false
	v.cols = j1 - j0
	if d.trans {
		v.ptr = d.ptr + uintptr(j0*d.dtype.Size())
	} else {
		v.ptr = d.ptr + uintptr(j0*d.ld*d.dtype.Size())
	}
	return &v
}

func opDims(m *Matrix, t bool) (r, c int) {
	if t {
		return m.cols, m.rows
	}
	return m.rows, m.cols
}

// Mul computes c = alpha·op(a)·op(b) + beta·c with cublasGemmEx. The
// arithmetic follows the backend's Math; a row-major operand is passed to
// cuBLAS as its stored column-major transpose with the operation flipped.
// c must be a float32 column-major matrix. With beta = 0, c is not read.
func (b *Backend) Mul(c lowrank.Matrix, alpha float64, a lowrank.Matrix, ta bool, bm lowrank.Matrix, tb bool, beta float64) error {
	cm, am, bb := b.mat(c), b.mat(a), b.mat(bm)
	ar, ac := opDims(am, ta)
	br, bc := opDims(bb, tb)
	if ac != br || ar != cm.rows || bc != cm.cols {
		panic(lowrank.ErrShape)
	}
	work(cm)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.gemm(cm, float32(alpha), am, ta, bb, tb, float32(beta), b.opts.Math)
}

// gemm is Mul without the checks, with an explicit arithmetic.
func (b *Backend) gemm(c *Matrix, alpha float32, a *Matrix, ta bool, bm *Matrix, tb bool, beta float32, mth Math) error {
	m, k := opDims(a, ta)
	_, n := opDims(bm, tb)
	opA, opB := ta != a.trans, tb != bm.trans
	pa, pb := a.ptr, bm.ptr
	lda, ldb := a.ld, bm.ld
	ty := int32(cudaR32F)
	compute := int32(cublasCompute32F)
	if mth == TF32 {
		compute = cublasCompute32FFastTF
	}
	if a.dtype == BFloat16 || bm.dtype == BFloat16 || mth == BF16 {
		ty, compute = cudaR16BF, cublasCompute32F
		var err error
		if pa, lda, err = b.asBF16("mul.a", a); err != nil {
			return err
		}
		if pb, ldb, err = b.asBF16("mul.b", bm); err != nil {
			return err
		}
	}
	b.sc32[0], b.sc32[1] = alpha, beta
	cop := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	return checkBLAS(b.api.cublasGemmEx(b.blas, cop(opA), cop(opB), int32(m), int32(n), int32(k),
		unsafe.Pointer(&b.sc32[0]), pa, ty, int32(lda), pb, ty, int32(ldb),
		unsafe.Pointer(&b.sc32[1]), c.ptr, cudaR32F, int32(c.ld), compute, cublasGemmDefault), "cublasGemmEx")
}

// asBF16 returns the stored matrix of m as bf16: m itself if it is bf16,
// else a rounded copy in the scratch buffer name (same stored shape,
// leading dimension the stored rows).
func (b *Backend) asBF16(name string, m *Matrix) (uintptr, int, error) {
	if m.dtype == BFloat16 {
		return m.ptr, m.ld, nil
	}
	sr, sc := m.stored()
	p, err := b.getScratch(name, sr*sc*2)
	if err != nil {
		return 0, 0, err
	}
	if m.contiguous() {
		n := sr * sc
		return p, sr, b.launch("f32_to_bf16", b.grid(n), 256, 0, u64(p), u64(m.ptr), i64(n))
	}
	return p, sr, b.copyStored(p, BFloat16, sr, m)
}

// copyStored copies the stored matrix of m into dst (type dt, leading
// dimension ldd), converting the element type.
func (b *Backend) copyStored(dst uintptr, dt DType, ldd int, m *Matrix) error {
	sr, sc := m.stored()
	return b.launch("copy2d", b.grid(sr*sc), 256, 0,
		u64(dst), dt.code(), 1, i64(ldd),
		u64(m.ptr), m.dtype.code(), 1, i64(m.ld), i64(sr), i64(sc), 0)
}

// Gather sets column j of dst to row idx[j] of op(a).
func (b *Backend) Gather(dst lowrank.Matrix, a lowrank.Matrix, trans bool, idx []int) error {
	dm, am := b.mat(dst), b.mat(a)
	p, q := opDims(am, trans)
	if dm.rows != q || dm.cols != len(idx) {
		panic(lowrank.ErrShape)
	}
	work(dm)
	for _, i := range idx {
		if i < 0 || i >= p {
			panic(fmt.Sprintf("gpu: gather index %d out of range [0, %d)", i, p))
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.idx = b.idx[:0]
	for _, i := range idx {
		b.idx = append(b.idx, int64(i))
	}
	di, err := b.getScratch("gather.idx", 8*len(idx))
	if err != nil {
		return err
	}
	// Pageable source: the copy is staged before the call returns, so
	// b.idx may be reused at once.
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(di, unsafe.Pointer(&b.idx[0]), uintptr(8*len(idx)), b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		return err
	}
	// op(a)(i, r) = A(i, r), or A(r, i) if trans.
	si, sj := am.strides()
	if trans {
		si, sj = sj, si
	}
	l := len(idx)
	if si == 1 && l*33*4 <= 48<<10 {
		return b.launch("gather_rows", min((q+31)/32, b.sms*8), 256, l*33*4, u64(dm.ptr), i64(dm.ld), u64(am.ptr), am.dtype.code(),
			i64(sj), u64(di), i64(q), i64(l))
	}
	return b.launch("gather", min(l, 65535), 256, 0, u64(dm.ptr), i64(dm.ld), u64(am.ptr), am.dtype.code(),
		i64(si), i64(sj), u64(di), i64(q), i64(l))
}

// Normal fills m with standard normal samples from a counter-based
// generator keyed by seed (SplitMix64 hash, Box–Muller): equal seeds give
// bit-identical matrices on any device.
func (b *Backend) Normal(m lowrank.Matrix, seed uint64) error {
	d := b.mat(m)
	work(d)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.launch("normal", b.grid(d.rows*d.cols), 256, 0, u64(d.ptr), i64(d.ld), i64(d.rows), i64(d.cols), seed)
}

// RowNorms2 writes the squared norms of the rows of op(a) into dst,
// accumulated in float64 on the device.
func (b *Backend) RowNorms2(dst []float64, a lowrank.Matrix, trans bool) error {
	am := b.mat(a)
	p, _ := opDims(am, trans)
	if len(dst) != p {
		panic(lowrank.ErrShape)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	out, err := b.getScratch("rownorms", 8*p)
	if err != nil {
		return err
	}
	sr, sc := am.stored()
	// Rows of op(a) are rows of the stored matrix iff trans == am.trans.
	if trans == am.trans {
		err = b.launch("rownorms", b.grid(sr), 256, 0, u64(out), u64(am.ptr), am.dtype.code(), i64(am.ld), i64(sr), i64(sc))
	} else {
		err = b.launch("colnorms", min(sc, b.sms*8), 256, 0, u64(out), u64(am.ptr), am.dtype.code(), i64(am.ld), i64(sr), i64(sc))
	}
	if err != nil {
		return err
	}
	return b.download(unsafe.Pointer(&dst[0]), out, 8*p)
}

// download copies n bytes from the device to host memory and waits.
func (b *Backend) download(dst unsafe.Pointer, src uintptr, n int) error {
	if err := b.api.check(b.api.cuMemcpyDtoHAsync(dst, src, uintptr(n), b.stream), "cuMemcpyDtoHAsync_v2"); err != nil {
		return err
	}
	return b.sync()
}

// Norm2 returns ‖m‖_F², summed in float64 in a fixed order (per-block
// partial sums, then one block): the result is deterministic.
func (b *Backend) Norm2(m lowrank.Matrix) (float64, error) {
	d := b.mat(m)
	if err := b.enter(); err != nil {
		return 0, err
	}
	defer b.leave()
	sr, sc := d.stored()
	nb := min(b.grid(sr*sc), 1024)
	part, err := b.getScratch("norm.part", 8*(nb+1))
	if err != nil {
		return 0, err
	}
	out := part + uintptr(8*nb)
	switch {
	case d.contiguous() && d.ptr%16 == 0 && d.dtype == Float32:
		err = b.launch("sumsq_f32", nb, 256, 0, u64(part), u64(d.ptr), i64(sr*sc))
	case d.contiguous() && d.ptr%16 == 0 && d.dtype == BFloat16:
		err = b.launch("sumsq_bf16", nb, 256, 0, u64(part), u64(d.ptr), i64(sr*sc))
	default:
		err = b.launch("sumsq", nb, 256, 0, u64(part), u64(d.ptr), d.dtype.code(), i64(d.ld), i64(sr), i64(sc))
	}
	if err != nil {
		return 0, err
	}
	if err := b.launch("sum_partials", 1, 256, 0, u64(out), u64(part), i64(nb)); err != nil {
		return 0, err
	}
	if err := b.download(unsafe.Pointer(&b.tmp[0]), out, 8); err != nil {
		return 0, err
	}
	return math.Float64frombits(b.tmp[0]), nil
}

// FindNonFinite returns the first NaN or ±Inf element of m in row-major
// order of the logical matrix.
func (b *Backend) FindNonFinite(m lowrank.Matrix) (i, j int, v float64, found bool, err error) {
	d := b.mat(m)
	if err := b.enter(); err != nil {
		return 0, 0, 0, false, err
	}
	defer b.leave()
	p, err := b.getScratch("nonfinite", 8)
	if err != nil {
		return 0, 0, 0, false, err
	}
	if err := b.api.check(b.api.cuMemsetD8Async(p, 0xff, 8, b.stream), "cuMemsetD8Async"); err != nil {
		return 0, 0, 0, false, err
	}
	sr, sc := d.stored()
	if err := b.launch("nonfinite", b.grid(sr*sc), 256, 0, u64(p), u64(d.ptr), d.dtype.code(), i64(d.ld),
		i64(sr), i64(sc), boolArg(d.trans), i64(d.cols)); err != nil {
		return 0, 0, 0, false, err
	}
	if err := b.download(unsafe.Pointer(&b.tmp[0]), p, 8); err != nil {
		return 0, 0, 0, false, err
	}
	if b.tmp[0] == ^uint64(0) {
		return 0, 0, math.NaN(), false, nil
	}
	i, j = int(b.tmp[0]/uint64(d.cols)), int(b.tmp[0]%uint64(d.cols))
	si, sj := d.strides()
	src := d.ptr + uintptr((i*si+j*sj)*d.dtype.Size())
	if err := b.download(unsafe.Pointer(&b.tmp[1]), src, d.dtype.Size()); err != nil {
		return 0, 0, 0, false, err
	}
	if d.dtype == BFloat16 {
		v = float64(lowrank.FromBF16(uint16(b.tmp[1])))
	} else {
		v = float64(math.Float32frombits(uint32(b.tmp[1])))
	}
	return i, j, v, true, nil
}

// Copy copies src into dst of the same shape, converting the element type
// if dst is bf16 (bf16 storage of factors) and transposing the storage if
// src is row-major.
func (b *Backend) Copy(dst, src lowrank.Matrix) error {
	dm, sm := b.mat(dst), b.mat(src)
	if dm.rows != sm.rows || dm.cols != sm.cols {
		panic(lowrank.ErrShape)
	}
	if dm.trans {
		panic(fmt.Errorf("%w: Copy destination must be column-major", lowrank.ErrShape))
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.copyMat(dm, sm)
}

func (b *Backend) copyMat(dm, sm *Matrix) error {
	if dm.dtype == sm.dtype && !sm.trans && dm.contiguous() && sm.contiguous() {
		return b.api.check(b.api.cuMemcpyDtoDAsync(dm.ptr, sm.ptr, uintptr(dm.rows*dm.cols*dm.dtype.Size()), b.stream), "cuMemcpyDtoDAsync_v2")
	}
	si, sj := sm.strides()
	return b.launch("copy2d", b.grid(dm.rows*dm.cols), 256, 0,
		u64(dm.ptr), dm.dtype.code(), 1, i64(dm.ld),
		u64(sm.ptr), sm.dtype.code(), i64(si), i64(sj), i64(dm.rows), i64(dm.cols), 0)
}

// ToBF16 returns a new bf16 column-major copy of m (bf16 storage of a
// factor: half the bytes, relative rounding error ≤ 2⁻⁸ per element).
func (b *Backend) ToBF16(m lowrank.Matrix) (*Matrix, error) {
	d := b.mat(m)
	out, err := b.NewMatrix(d.rows, d.cols, BFloat16)
	if err != nil {
		return nil, err
	}
	if err := b.Copy(out, d); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}
