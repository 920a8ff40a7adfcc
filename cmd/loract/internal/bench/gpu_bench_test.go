package bench

import (
	"sync"
	"testing"

	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

var (
	gpuOnce sync.Once
	gpuBE   *gpu.Backend
	gpuErr  error
)

// openGPU opens device 0 once per process (opening compiles the kernels).
func openGPU() (*gpu.Backend, error) {
	gpuOnce.Do(func() { gpuBE, gpuErr = gpu.Open(0, nil) })
	return gpuBE, gpuErr
}

// gpuCases returns the GPU backend: the input uploaded once, row-major as
// a framework holds it, as float32 ("f32") or bf16 ("bf16"). Each
// benchmark skips with the reason when no CUDA device can be used.
func gpuCases() []backendCase {
	return []backendCase{{
		name:   "gpu",
		dtypes: []string{"bf16", "f32"},
		open: func(b *testing.B, x *Matrix, dtype string) (lowrank.Backend, lowrank.Matrix, func()) {
			if err := gpu.Available(); err != nil {
				b.Skip(err)
			}
			be, err := openGPU()
			if err != nil {
				b.Skip(err)
			}
			dt := gpu.Float32
			if dtype == "bf16" {
				dt = gpu.BFloat16
			}
			a, err := be.UploadDense32(x.A32, dt)
			if err != nil {
				b.Fatal(err)
			}
			return be, a, func() {
				if err := be.Synchronize(); err != nil {
					b.Error(err)
				}
				be.Free(a)
			}
		},
	}}
}
