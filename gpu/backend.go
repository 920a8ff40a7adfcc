package gpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// device is what the backends of one CUDA device share: the primary
// context, the compiled module, and the caching memory pool. It lives as
// long as one of its backends is open.
type device struct {
	api     *cudaAPI
	ordinal int
	dev     int32
	ctx     uintptr
	name    string
	arch    string
	sms     int
	smemMax int
	module  uintptr
	fn      [numKernels]uintptr
	// quant is quant.cu's module, loaded on first use (quant.go).
	quant quantModule

	mu   sync.Mutex // guards refs and pool
	refs int
	pool pool

	// toDevice and toHost count the bytes copied between host and device
	// by every backend on the device, syncs the host synchronisations.
	toDevice, toHost, syncs atomic.Int64
}

// Backend is a lowrank.Backend on one CUDA device. It owns one stream (or
// uses the caller's, Options.Stream), its cuBLAS and cuSOLVER handles bound
// to that stream, the cuBLAS workspace and grow-only scratch buffers, so
// that after a first call a compression of the same shapes allocates no
// device memory. Its working matrices are float32 column-major *Matrix
// values; inputs may also be bf16 and row-major, and storage matrices
// (NewStorage) bf16.
//
// A Backend serves one goroutine at a time. For concurrent work, Fork
// gives a sibling backend on the same device with its own stream and
// scratch: the siblings share the memory pool (safe for concurrent use)
// and each other's matrices, and order their work with events (Record,
// Wait). Every method locks the calling goroutine to its OS thread and
// makes the device's primary context current for the duration of the call.
type Backend struct {
	*device
	opts Options

	stream    uintptr
	ownStream bool
	// forkPriority is the priority of the streams Fork creates
	// (SetForkPriority).
	forkPriority int

	blas   uintptr
	solver uintptr
	blasWS uintptr
	gesvdj uintptr

	sc scratch
	// family holds, per scratch slot, the largest size asked of it by this
	// backend or a sibling (Fork): shared by all of them.
	family *scratchSizes
	// fallbacks counts Cholesky-QR calls that fell back to Householder.
	fallbacks int64
	// useBlk selects the one-block kernel cholblk64 instead of cuSOLVER's
	// dpotrf in the float64 pass where it fits (tests; slower, see
	// cholPass64).
	useBlk bool
	// potrfBatched factors the float64 Gram matrix with cuSOLVER's
	// batched potrf (a batch of one) instead of dpotrf, and useTrsm
	// applies R⁻¹ by a float64 triangular solve instead of trinv64 and a
	// product: variants measured by TestProfile (see cholPass64).
	potrfBatched, useTrsm bool
	// potrfLoop makes QRBatch factor with one dpotrf per matrix instead
	// of one call for the batch (chol64 or the batched potrf: the
	// measurement of batchPotrfMax).
	potrfLoop bool
	// libPotrf makes every float64 Cholesky factorisation that chol64
	// would take use cuSOLVER's dpotrf or batched potrf instead (a test
	// switch: the before/after measurement).
	libPotrf bool
	// lt is the cuBLASLt state of MulBias (lt.go); noLt makes MulBias
	// decline every product (tests: the fallback).
	lt   ltState
	noLt bool
	// lastDev is ‖QᵀQ − I‖_F after the float64 pass of the last fast QR.
	lastDev float64
	closed  bool

	argv [24]uint64
	argp [24]uintptr
	sc32 [4]float32
	sc64 [4]float64
	tmp  [8]uint64
	idx  []int64
	seen []uint64 // GatherNorm's bitmap of indices
	// batch is the host side of the batched operations (batch.go).
	batch batchState
	// def is the host side of the deferred reads (deferred.go).
	def deferState

	// noFuse makes GatherNorm take the two-read path (tests and the
	// before/after measurements).
	noFuse bool
	// gatherMode selects the variant of the fused read's stored-row
	// kernel (gather_norm_rows' mode; tests and the before/after
	// measurements).
	gatherMode int
	// gatherColsMode selects the variant of its stored-column kernel
	// (gather_norm_cols' mode), as gatherMode.
	gatherColsMode int
	// onPiece, if set, is called after each piece of the batched QR is
	// queued, with the piece's name (TestTraceBatch's events).
	onPiece func(name string)
	// noPad makes products with misaligned matrices run on them as they
	// are, without padded copies (tests and the before/after
	// measurements).
	noPad bool
	// noSyevdx makes a truncated ExactSVD (k < min(m, n)) take every
	// eigenpair with dsyevd, as before dsyevdx (a test switch: the
	// before/after comparison).
	noSyevdx bool
	// noSubspace makes a truncated ExactSVD skip its subspace route (a
	// test switch: the comparison with dsyevdx).
	noSubspace bool
	// trsmOrth makes the subspace route's steps orthonormalise by
	// dtrsm in place instead of R⁻¹ (trinv64d) and a product (a test
	// switch: the profile times both).
	trsmOrth bool
	// constShift makes the subspace route's steps take the one shift β/2
	// instead of the Chebyshev cycle (a test switch: the profile times
	// both).
	constShift bool
	// noSplit makes the subspace route's steps orthonormalise the whole
	// basis on the backend's stream instead of splitting it into two
	// halves on two streams (a test switch: the profile times both).
	noSplit bool
	// noDraw makes GatherNormBatchSeeded copy the indices to the device
	// instead of drawing them there (a test switch: the comparison).
	noDraw bool
	// drawSeq makes draw_uniform draw sequentially, as it does after a
	// rejected number, instead of jumping each thread to its draws (a
	// test switch).
	drawSeq bool
	// side is the sibling (Fork) whose stream runs the second half of
	// the subspace route's split steps, made on first use and closed
	// with the backend.
	side *Backend
	// lastSubspace describes the last ExactSVD's subspace route (tests,
	// the profile).
	lastSubspace subspaceRun
	// noSymEig makes SymEig use the Jacobi SVD (the before/after
	// measurements).
	noSymEig bool
}

var (
	_ lowrank.Backend    = (*Backend)(nil)
	_ lowrank.Transposer = (*Backend)(nil)
)

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
	d, err := openDevice(ordinal)
	if err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	b, err := d.newBackend(o, 0)
	if err != nil {
		d.unref()
		return nil, err
	}
	return b, nil
}

// openDevice retains the primary context of the device and loads the
// kernels, returning the device with one reference.
func openDevice(ordinal int) (*device, error) {
	a := api
	var n int32
	if err := a.check(a.cuDeviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("%w: device ordinal %d, have %d devices", ErrUnavailable, ordinal, n)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d := &device{api: a, ordinal: ordinal, refs: 1}
	d.pool.init()
	if err := a.check(a.cuDeviceGet(&d.dev, int32(ordinal)), "cuDeviceGet"); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := a.check(a.cuDeviceGetName(&name[0], int32(len(name)), d.dev), "cuDeviceGetName"); err != nil {
		return nil, err
	}
	for i, c := range name {
		if c == 0 {
			d.name = string(name[:i])
			break
		}
	}
	var major, minor, sms, smem int32
	for _, q := range []struct {
		v    *int32
		attr int32
	}{{&major, cuAttrComputeCapabilityMajor}, {&minor, cuAttrComputeCapabilityMinor},
		{&sms, cuAttrMultiprocessorCount}, {&smem, cuAttrMaxSharedPerBlockOptin}} {
		if err := a.check(a.cuDeviceGetAttribute(q.v, q.attr, d.dev), "cuDeviceGetAttribute"); err != nil {
			return nil, err
		}
	}
	d.arch = fmt.Sprintf("sm_%d%d", major, minor)
	// Leave 1 KiB of the opt-in shared memory for cholinv's static arrays.
	d.sms, d.smemMax = int(sms), int(smem)-1024
	if err := a.check(a.cuDevicePrimaryCtxRetain(&d.ctx, d.dev), "cuDevicePrimaryCtxRetain"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			d.release()
		}
	}()
	if err := a.check(a.cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent"); err != nil {
		return nil, err
	}
	bin, err := compile(a, d.arch)
	if err != nil {
		return nil, err
	}
	if err := a.check(a.cuModuleLoadData(&d.module, unsafe.Pointer(&bin[0])), "cuModuleLoadData"); err != nil {
		return nil, err
	}
	for k, name := range kernelNames {
		kn := cBytes(name)
		if err := a.check(a.cuModuleGetFunction(&d.fn[k], d.module, &kn[0]), "cuModuleGetFunction"); err != nil {
			return nil, fmt.Errorf("%w (kernel %s)", err, name)
		}
	}
	for _, k := range largeSmem {
		if err := a.check(a.cuFuncSetAttribute(d.fn[k], cuFuncAttrMaxDynamicShared, int32(d.smemMax)), "cuFuncSetAttribute"); err != nil {
			return nil, err
		}
	}
	ok = true
	return d, nil
}

// newBackend makes a backend on d with its stream and handles. The caller
// holds a reference on d for it.
func (d *device) newBackend(o Options, priority int) (*Backend, error) {
	a := d.api
	b := &Backend{device: d, opts: o, family: new(scratchSizes)}
	for i := range b.argp {
		b.argp[i] = uintptr(unsafe.Pointer(&b.argv[i]))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ok := false
	defer func() {
		if !ok {
			b.releaseHandles()
		}
	}()
	if err := a.check(a.cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent"); err != nil {
		return nil, err
	}
	if o.Stream != 0 {
		b.stream = o.Stream
	} else {
		if priority != 0 {
			if err := a.check(a.cuStreamCreateWithPriority(&b.stream, cuStreamNonBlocking, int32(priority)), "cuStreamCreateWithPriority"); err != nil {
				return nil, err
			}
		} else if err := a.check(a.cuStreamCreate(&b.stream, cuStreamNonBlocking), "cuStreamCreate"); err != nil {
			return nil, err
		}
		b.ownStream = true
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
	var err error
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

// Fork returns a sibling backend on the same device with its own stream,
// handles and scratch, sharing the memory pool and able to use b's
// matrices (and b its): one per goroutine, for concurrent compression.
// Siblings grow their scratch buffers to the largest size any of them
// has needed (see buf): once every sibling has run a call of each kind,
// none allocates again, whichever shapes it is handed later.
// Order the siblings' work with Record and Wait. Each sibling is closed on
// its own; the device's resources go with the last one.
func (b *Backend) Fork() (*Backend, error) {
	if b.closed {
		return nil, ErrClosed
	}
	d := b.device
	d.mu.Lock()
	d.refs++
	d.mu.Unlock()
	o := b.opts
	o.Stream = 0
	f, err := d.newBackend(o, b.forkPriority)
	if err != nil {
		d.unref()
		return nil, err
	}
	f.family = b.family
	f.forkPriority = b.forkPriority
	return f, nil
}

// SetForkPriority sets the priority of the streams that later calls of
// Fork create — the activation compressor's worker streams — as CUDA
// counts it: 0 is the default, lower numbers are higher priorities, and
// the driver clamps a value outside the device's range (StreamPriorities)
// to it. Kernels of a higher-priority stream are scheduled first as
// multiprocessors free up, so that a compression's small, latency-bound
// kernels on a worker stream need not wait behind a training loop's large
// products on its own. Forks of a fork inherit it.
func (b *Backend) SetForkPriority(p int) { b.forkPriority = p }

// StreamPriorities returns the device's range of stream priorities:
// least (the default, 0 on current devices) and greatest (the highest
// priority, a negative number).
func (b *Backend) StreamPriorities() (least, greatest int, err error) {
	if err := b.enter(); err != nil {
		return 0, 0, err
	}
	defer b.leave()
	var l, g int32
	if err := b.api.check(b.api.cuCtxGetStreamPriorityRange(&l, &g), "cuCtxGetStreamPriorityRange"); err != nil {
		return 0, 0, err
	}
	return int(l), int(g), nil
}

// StreamPriority returns the priority of the backend's stream.
func (b *Backend) StreamPriority() (int, error) {
	if err := b.enter(); err != nil {
		return 0, err
	}
	defer b.leave()
	var p int32
	if err := b.api.check(b.api.cuStreamGetPriority(b.stream, &p), "cuStreamGetPriority"); err != nil {
		return 0, err
	}
	return int(p), nil
}

// releaseHandles frees the backend's handles, scratch and stream (if it
// created it), ignoring errors after the first, which it returns.
func (b *Backend) releaseHandles() error {
	a := b.api
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	keep(a.check(a.cuCtxSetCurrent(b.ctx), "cuCtxSetCurrent"))
	if b.stream != 0 {
		keep(a.check(a.cuStreamSynchronize(b.stream), "cuStreamSynchronize"))
	}
	if b.gesvdj != 0 {
		keep(checkSolver(a.cusolverDnDestroyGesvdjInfo(b.gesvdj), "cusolverDnDestroyGesvdjInfo"))
	}
	if b.solver != 0 {
		keep(checkSolver(a.cusolverDnDestroy(b.solver), "cusolverDnDestroy"))
	}
	b.closeLt(keep)
	if b.blas != 0 {
		keep(checkBLAS(a.cublasDestroy(b.blas), "cublasDestroy_v2"))
	}
	for _, s := range b.sc.bufs() {
		if s.ptr != 0 {
			keep(b.free(s.ptr))
		}
	}
	b.sc = scratch{}
	keep(b.freeStaging())
	if b.blasWS != 0 {
		keep(b.free(b.blasWS))
	}
	if b.stream != 0 {
		b.device.mu.Lock()
		b.device.pool.forget(a, b.stream)
		b.device.mu.Unlock()
	}
	if b.stream != 0 && b.ownStream {
		keep(a.check(a.cuStreamDestroy(b.stream), "cuStreamDestroy_v2"))
	}
	b.stream, b.blas, b.solver, b.gesvdj, b.blasWS = 0, 0, 0, 0, 0
	return first
}

// unref drops a reference on d and releases it with the last.
func (d *device) unref() error {
	d.mu.Lock()
	d.refs--
	last := d.refs == 0
	d.mu.Unlock()
	if !last {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return d.release()
}

// release frees the pool, the module and the context reference.
func (d *device) release() error {
	a := d.api
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	if d.ctx != 0 {
		keep(a.check(a.cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent"))
	}
	d.mu.Lock()
	keep(d.pool.freeAll(a))
	d.mu.Unlock()
	keep(d.quant.unload(a))
	if d.module != 0 {
		keep(a.check(a.cuModuleUnload(d.module), "cuModuleUnload"))
	}
	if d.ctx != 0 {
		keep(a.check(a.cuDevicePrimaryCtxRelease(d.dev), "cuDevicePrimaryCtxRelease_v2"))
	}
	d.module, d.ctx = 0, 0
	return first
}

// Close waits for the stream, then releases the backend's handles,
// scratch and stream; the last backend of a device (Open's and its Forks)
// also frees every matrix still allocated on it (using them afterwards
// returns ErrClosed or panics), the memory pool, the module and the
// reference on the primary context. A second Close, and Close of a nil
// *Backend (the result of a failed Open), are no-ops.
func (b *Backend) Close() error {
	if b == nil || b.closed {
		return nil
	}
	var err error
	if b.side != nil {
		err = b.side.Close()
		b.side = nil
	}
	runtime.LockOSThread()
	if e := b.releaseHandles(); err == nil {
		err = e
	}
	runtime.UnlockOSThread()
	b.closed = true
	if e := b.device.unref(); err == nil {
		err = e
	}
	return err
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

// Stream returns the CUstream the backend queues its work on (its own, or
// Options.Stream), for a caller that orders its own kernels with it.
func (b *Backend) Stream() uintptr { return b.stream }

// Transfers returns the bytes copied so far from host to device and from
// device to host by this backend and every other on its device (its
// Forks): indices, scalars read back, uploads and downloads, what a
// steady-state step costs in PCIe traffic.
func (b *Backend) Transfers() (toDevice, toHost int64) {
	return b.device.toDevice.Load(), b.device.toHost.Load()
}

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

// MemInfo returns the device's free and total memory in bytes
// (cuMemGetInfo: every process and pool on the device).
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
	b.device.syncs.Add(1)
	return b.api.check(b.api.cuStreamSynchronize(b.stream), "cuStreamSynchronize")
}

// Syncs returns the number of times the host has waited for a stream in a
// method of this backend or another on its device (its Forks): every
// scalar or factor read back (a norm, a QR status, a download) and every
// Synchronize. Each one drains the stream and leaves the device idle until
// the host queues more work, so a steady-state compression should make
// few (docs/gpu.md, "Compression speed").
func (b *Backend) Syncs() int64 { return b.device.syncs.Load() }

// ProfilerStart opens a capture range of NVIDIA's profilers
// (cuProfilerStart): `nsys profile --capture-range=cudaProfilerApi` or
// `ncu --profile-from-start off` then record only the work between it
// and ProfilerStop. Without a profiler attached neither does anything
// measurable. Both return an error wrapping ErrUnavailable where the
// driver lacks the calls.
func (b *Backend) ProfilerStart() error { return b.profiler(b.api.cuProfilerStart, "cuProfilerStart") }

// ProfilerStop closes the capture range ProfilerStart opened
// (cuProfilerStop).
func (b *Backend) ProfilerStop() error { return b.profiler(b.api.cuProfilerStop, "cuProfilerStop") }

func (b *Backend) profiler(f func() int32, name string) error {
	if f == nil {
		return fmt.Errorf("%w: the driver has no %s", ErrUnavailable, name)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.api.check(f(), name)
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

// Event marks a point in a backend's stream: work queued before Record
// precedes it. Another backend's stream (or the caller's) can Wait for it
// without a host synchronisation.
type Event struct {
	d  *device
	ev uintptr
}

// Record returns an event marking the work queued on b's stream so far.
func (b *Backend) Record() (*Event, error) { return b.record(cuEventDisableTiming) }

// RecordTimed is Record for an event that also takes the time, for
// Elapsed (a timed event costs slightly more to record and wait for).
func (b *Backend) RecordTimed() (*Event, error) { return b.record(0) }

func (b *Backend) record(flags uint32) (*Event, error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	e := &Event{d: b.device}
	if err := b.api.check(b.api.cuEventCreate(&e.ev, flags), "cuEventCreate"); err != nil {
		return nil, err
	}
	if err := b.api.check(b.api.cuEventRecord(e.ev, b.stream), "cuEventRecord"); err != nil {
		b.api.cuEventDestroy(e.ev)
		return nil, err
	}
	return e, nil
}

// Elapsed waits for e and returns the device time in milliseconds from
// start to e, both made by RecordTimed (cuEventElapsedTime: resolution
// about 0.5 µs).
func (e *Event) Elapsed(start *Event) (float64, error) {
	if err := e.Sync(); err != nil {
		return 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := e.d.api
	if err := a.check(a.cuCtxSetCurrent(e.d.ctx), "cuCtxSetCurrent"); err != nil {
		return 0, err
	}
	var ms float32
	if err := a.check(a.cuEventElapsedTime(&ms, start.ev, e.ev), "cuEventElapsedTime"); err != nil {
		return 0, err
	}
	return float64(ms), nil
}

// Wait makes work queued on b's stream after it wait for e (cuStreamWaitEvent:
// the host does not block).
func (b *Backend) Wait(e *Event) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.api.check(b.api.cuStreamWaitEvent(b.stream, e.ev, 0), "cuStreamWaitEvent")
}

// Sync blocks the host until the work before e is done.
func (e *Event) Sync() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := e.d.api
	if err := a.check(a.cuCtxSetCurrent(e.d.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	return a.check(a.cuEventSynchronize(e.ev), "cuEventSynchronize")
}

// Close releases the event (work that waits for it is unaffected).
func (e *Event) Close() error {
	if e == nil || e.ev == 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := e.d.api
	if err := a.check(a.cuCtxSetCurrent(e.d.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	err := a.check(a.cuEventDestroy(e.ev), "cuEventDestroy_v2")
	e.ev = 0
	return err
}
