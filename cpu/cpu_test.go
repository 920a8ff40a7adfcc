package cpu_test

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/lowrank/backendtest"
)

func TestCPUConformance(t *testing.T) {
	backendtest.Run(t, cpu.Backend{}, backendtest.Config{
		U:       0x1p-53,
		OrthTol: 1e-13,
	})
}

func TestCPUConformanceFloat32Input(t *testing.T) {
	backendtest.Run(t, cpu.Backend{}, backendtest.Config{
		U:       0x1p-53,
		OrthTol: 1e-13,
		Input: func(t *testing.T, b lowrank.Backend, a *mat.Dense) lowrank.Matrix {
			return toDense32(a)
		},
		InputU: 0x1p-24,
	})
}

func toDense32(a mat.Matrix) *lowrank.Dense32 {
	m, n := a.Dims()
	d := lowrank.NewDense32(m, n, nil)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			d.Data[i*n+j] = float32(a.At(i, j))
		}
	}
	return d
}
