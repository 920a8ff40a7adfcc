package gpu

import (
	_ "embed"
	"sync"
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
	bin, err := nvrtcCUBIN(a, name, source, []string{"--gpu-architecture=" + arch, "-std=c++17"})
	if err != nil {
		return nil, err
	}
	cubinCache[key] = bin
	return bin, nil
}
