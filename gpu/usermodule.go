package gpu

import (
	"crypto/sha256"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// This file is the extension point for kernels of the caller's: CUDA C
// source compiled by NVRTC at run time, as the package's own kernels.cu
// is (module.go), loaded into the device's primary context and launched
// on a Backend's stream, so that they are ordered with its products and
// its memory pool without events.

// Module is a CUDA C module of the caller's, compiled for the device's
// architecture and loaded into its primary context (Backend.Compile). Its
// kernels (Func) can be launched on the Backend that compiled it and on
// every Fork of it. Close unloads it; close a Module before the last
// Backend of its device.
type Module struct {
	d      *device
	handle uintptr
	name   string
}

// Func is a kernel of a Module, found by its C name (declare it
// extern "C" so that NVRTC does not mangle the name).
type Func struct {
	m    *Module
	fn   uintptr
	name string
}

// Dim3 is a launch grid or block shape; a component ≤ 0 counts as 1, so
// Dim3{X: n} is one-dimensional.
type Dim3 struct{ X, Y, Z int }

// userCUBINs caches the CUBIN of every (architecture, options, source)
// compiled in the process, so that NVRTC runs once per source however
// many Backends load it.
var (
	userMu       sync.Mutex
	userCUBINs   = map[[sha256.Size]byte][]byte{}
	userCompiles atomic.Int64 // NVRTC runs, for tests
)

// Compile compiles the CUDA C source src with NVRTC for the device's
// architecture (--gpu-architecture=sm_XY, -std=c++17, then opts, e.g.
// "-lineinfo") and loads it. name is the source's file name in NVRTC's
// messages. The CUBIN is cached per process by architecture, options and
// source. No header is on NVRTC's include path: declare what you use
// (the device math functions such as expf and sqrtf are built in).
//
// A compile error is a *CUDAError for nvrtcCompileProgram whose Detail is
// NVRTC's log; a load failure one for cuModuleLoadData. It returns
// ErrClosed after Close.
func (b *Backend) Compile(name, src string, opts ...string) (*Module, error) {
	if b.closed {
		return nil, ErrClosed
	}
	bin, err := userCUBIN(b.api, name, src, b.arch, opts)
	if err != nil {
		return nil, err
	}
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	m := &Module{d: b.device, name: name}
	if err := b.api.check(b.api.cuModuleLoadData(&m.handle, unsafe.Pointer(&bin[0])), "cuModuleLoadData"); err != nil {
		err.(*CUDAError).Detail = "module " + name
		return nil, err
	}
	return m, nil
}

// userCUBIN returns the cached CUBIN of src for arch and opts, compiling
// it on a miss.
func userCUBIN(a *cudaAPI, name, src, arch string, opts []string) ([]byte, error) {
	h := sha256.New()
	for _, s := range append([]string{arch}, opts...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write([]byte(src))
	var key [sha256.Size]byte
	copy(key[:], h.Sum(nil))
	userMu.Lock()
	defer userMu.Unlock()
	if bin, ok := userCUBINs[key]; ok {
		return bin, nil
	}
	all := append([]string{"--gpu-architecture=" + arch, "-std=c++17"}, opts...)
	bin, err := nvrtcCUBIN(a, name, src, all)
	if err != nil {
		return nil, err
	}
	userCompiles.Add(1)
	userCUBINs[key] = bin
	return bin, nil
}

// nvrtcCUBIN compiles src with the given NVRTC options and returns the
// CUBIN.
func nvrtcCUBIN(a *cudaAPI, name, src string, opts []string) ([]byte, error) {
	cs, cn := cBytes(src), cBytes(name)
	var prog uintptr
	if err := checkNVRTC(a.nvrtcCreateProgram(&prog, &cs[0], &cn[0], 0, 0, 0), "nvrtcCreateProgram"); err != nil {
		return nil, err
	}
	defer a.nvrtcDestroyProgram(&prog)
	co := make([][]byte, len(opts))
	ptrs := make([]uintptr, len(opts))
	for i, o := range opts {
		co[i] = cBytes(o)
		ptrs[i] = uintptr(unsafe.Pointer(&co[i][0]))
	}
	code := a.nvrtcCompileProgram(prog, int32(len(ptrs)), unsafe.Pointer(&ptrs[0]))
	runtime.KeepAlive(co)
	if code != 0 {
		var n uintptr
		a.nvrtcGetProgramLogSize(prog, &n)
		log := make([]byte, n+1)
		a.nvrtcGetProgramLog(prog, &log[0])
		return nil, &CUDAError{Call: "nvrtcCompileProgram", Code: int(code),
			Detail: name + ": " + strings.TrimRight(string(log[:max(int(n)-1, 0)]), "\n")}
	}
	var n uintptr
	if err := checkNVRTC(a.nvrtcGetCUBINSize(prog, &n), "nvrtcGetCUBINSize"); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &CUDAError{Call: "nvrtcGetCUBINSize", Detail: fmt.Sprintf("empty CUBIN for %s", name)}
	}
	bin := make([]byte, n)
	if err := checkNVRTC(a.nvrtcGetCUBIN(prog, &bin[0]), "nvrtcGetCUBIN"); err != nil {
		return nil, err
	}
	return bin, nil
}

// Name returns the module's source name.
func (m *Module) Name() string { return m.name }

// Func returns the kernel with the C name name, or a *CUDAError for
// cuModuleGetFunction (CUDA_ERROR_NOT_FOUND for a missing name) whose
// Detail names it. It returns ErrClosed after Close.
func (m *Module) Func(name string) (*Func, error) {
	if m.handle == 0 || m.d.ctx == 0 {
		return nil, ErrClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := m.d.api
	if err := a.check(a.cuCtxSetCurrent(m.d.ctx), "cuCtxSetCurrent"); err != nil {
		return nil, err
	}
	kn := cBytes(name)
	f := &Func{m: m, name: name}
	if err := a.check(a.cuModuleGetFunction(&f.fn, m.handle, &kn[0]), "cuModuleGetFunction"); err != nil {
		err.(*CUDAError).Detail = fmt.Sprintf("kernel %s in module %s", name, m.name)
		return nil, err
	}
	return f, nil
}

// Close unloads the module; its Funcs must not be launched afterwards. A
// second Close, and Close after the device's last Backend was closed
// (which released the context and the module with it), are no-ops.
func (m *Module) Close() error {
	if m == nil || m.handle == 0 {
		return nil
	}
	h := m.handle
	m.handle = 0
	if m.d.ctx == 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := m.d.api
	if err := a.check(a.cuCtxSetCurrent(m.d.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	return a.check(a.cuModuleUnload(h), "cuModuleUnload")
}

// Name returns the kernel's C name.
func (f *Func) Name() string { return f.name }

// Launch queues the kernel f on b's stream with the given grid and block
// shapes, shmem bytes of dynamic shared memory and the kernel's
// parameters in order, one 8-byte slot each (ArgPtr, ArgInt, ArgFloat32,
// ArgFloat64): the driver reads the size of each C parameter from the
// low-order bytes of its slot, so an int or float parameter takes ArgInt
// or ArgFloat32 and a pointer, long long or double takes a full slot. The
// number of arguments must be the kernel's: the driver cannot check it.
// A launch allocates nothing.
//
// It panics with ErrForeign if f belongs to another device and for more
// than 24 arguments or a negative shape (programmer errors), and returns a
// *CUDAError for cuLaunchKernel naming the kernel (an invalid shape, too
// much shared memory), ErrClosed for a closed Backend or Module.
func (b *Backend) Launch(f *Func, grid, block Dim3, shmem int, args ...uint64) error {
	if f.m.d != b.device {
		panic(ErrForeign)
	}
	if len(args) > len(b.argv) {
		panic(fmt.Sprintf("gpu: Launch of %s with %d arguments, at most %d", f.name, len(args), len(b.argv)))
	}
	for _, v := range []int{grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, shmem} {
		if v < 0 {
			panic(fmt.Sprintf("gpu: Launch of %s with grid %v, block %v, %d bytes of shared memory", f.name, grid, block, shmem))
		}
	}
	if f.m.handle == 0 {
		return ErrClosed
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	copy(b.argv[:], args)
	d := func(v int) uint32 { return uint32(max(v, 1)) }
	code := b.api.cuLaunchKernel(f.fn, d(grid.X), d(grid.Y), d(grid.Z), d(block.X), d(block.Y), d(block.Z),
		uint32(shmem), b.stream, unsafe.Pointer(&b.argp[0]), 0)
	if code != 0 {
		err := b.api.check(code, "cuLaunchKernel")
		err.(*CUDAError).Detail = fmt.Sprintf("kernel %s, grid %v, block %v, %d bytes shared", f.name, grid, block, shmem)
		return err
	}
	return nil
}

// ArgPtr is the kernel argument for a device pointer (Matrix.Ptr), 0 for
// a null pointer.
func ArgPtr(p uintptr) uint64 { return uint64(p) }

// ArgInt is the kernel argument for an int, long long or size_t
// parameter (two's complement: an int reads the low 4 bytes).
func ArgInt(v int) uint64 { return uint64(int64(v)) }

// ArgFloat32 is the kernel argument for a float parameter.
func ArgFloat32(x float32) uint64 { return uint64(math.Float32bits(x)) }

// ArgFloat64 is the kernel argument for a double parameter.
func ArgFloat64(x float64) uint64 { return math.Float64bits(x) }
