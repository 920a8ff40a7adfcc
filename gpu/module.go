package gpu

import (
	_ "embed"
	"fmt"
	"sync"
	"unsafe"
)

//go:embed kernels.cu
var kernelSource string

// The compiled kernels are cached per process, source and architecture:
// NVRTC runs once, and every Backend loads the cached CUBIN
// (cuModuleLoadData).
var (
	cubinMu    sync.Mutex
	cubinCache = map[string][]byte{}
)

// compile returns the CUBIN of kernels.cu for sm_<cc>.
func compile(a *cudaAPI, arch string) ([]byte, error) {
	return compileSource(a, arch, "loract_kernels.cu", kernelSource)
}

// compileSource returns the CUBIN of the CUDA source src (named name in
// NVRTC's messages) for arch, cached per process by name and arch.
func compileSource(a *cudaAPI, arch, name, source string) ([]byte, error) {
	cubinMu.Lock()
	defer cubinMu.Unlock()
	key := name + "/" + arch
	if c, ok := cubinCache[key]; ok {
		return c, nil
	}
	src := cBytes(source)
	cname := cBytes(name)
	var prog uintptr
	if err := checkNVRTC(a.nvrtcCreateProgram(&prog, &src[0], &cname[0], 0, 0, 0), "nvrtcCreateProgram"); err != nil {
		return nil, err
	}
	defer a.nvrtcDestroyProgram(&prog)
	opts := [][]byte{cBytes("--gpu-architecture=" + arch), cBytes("-std=c++17")}
	ptrs := make([]uintptr, len(opts))
	for i := range opts {
		ptrs[i] = uintptr(unsafe.Pointer(&opts[i][0]))
	}
	code := a.nvrtcCompileProgram(prog, int32(len(ptrs)), unsafe.Pointer(&ptrs[0]))
	if code != 0 {
		var n uintptr
		a.nvrtcGetProgramLogSize(prog, &n)
		log := make([]byte, n+1)
		a.nvrtcGetProgramLog(prog, &log[0])
		return nil, &CUDAError{Call: "nvrtcCompileProgram", Code: int(code), Detail: string(log[:max(int(n)-1, 0)])}
	}
	var n uintptr
	if err := checkNVRTC(a.nvrtcGetCUBINSize(prog, &n), "nvrtcGetCUBINSize"); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &CUDAError{Call: "nvrtcGetCUBINSize", Detail: fmt.Sprintf("empty CUBIN for %s", arch)}
	}
	bin := make([]byte, n)
	if err := checkNVRTC(a.nvrtcGetCUBIN(prog, &bin[0]), "nvrtcGetCUBIN"); err != nil {
		return nil, err
	}
	cubinCache[key] = bin
	return bin, nil
}
