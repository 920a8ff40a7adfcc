package gpu

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

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
	fn                           [numKernels]uintptr
	gesvdj                       uintptr

	live   map[uintptr]int // owned allocations and their sizes
	sc     scratch
	allocs int64
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
	b := &Backend{api: a, ordinal: ordinal, live: map[uintptr]int{}}
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
	for k, name := range kernelNames {
		kn := cBytes(name)
		if err := a.check(a.cuModuleGetFunction(&b.fn[k], b.module, &kn[0]), "cuModuleGetFunction"); err != nil {
			return nil, fmt.Errorf("%w (kernel %s)", err, name)
		}
	}
	for _, k := range largeSmem {
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
	b.sc = scratch{}
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
// reference on the primary context. A second Close, and Close of a nil
// *Backend (the result of a failed Open), are no-ops.
func (b *Backend) Close() error {
	if b == nil || b.closed {
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
