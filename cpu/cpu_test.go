package cpu_test

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/lowrank/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// TestMulAliasing: the contract forbids c sharing memory with a or b; Mul
// detects it (element ranges of views of one matrix, not just addresses).
func TestMulAliasing(t *testing.T) {
	be := cpu.Backend{}
	a := mat.NewDense(6, 6, nil)
	for i := range 6 {
		a.Set(i, i, 1)
	}
	left := a.Slice(0, 6, 0, 3).(*mat.Dense)
	right := a.Slice(0, 6, 3, 6).(*mat.Dense)
	top := a.Slice(0, 3, 0, 6).(*mat.Dense)
	x := mat.NewDense(3, 3, nil)
	assert.PanicsWithValue(t, lowrank.ErrAlias, func() { _ = be.Mul(a, 1, a, false, a, false, 0) }, "c = a")
	assert.PanicsWithValue(t, lowrank.ErrAlias, func() { _ = be.Mul(top, 1, x, false, top, false, 0) }, "c = b")
	assert.PanicsWithValue(t, lowrank.ErrAlias, func() {
		_ = be.Mul(a.Slice(2, 5, 0, 3).(*mat.Dense), 1, x, false, left.Slice(0, 3, 0, 3), false, 0)
	}, "overlapping row blocks")
	// Disjoint column blocks of one matrix are not aliases, although
	// their address ranges interleave.
	assert.NotPanics(t, func() { _ = be.Mul(right, 1, left, false, x, false, 0) })
	d32 := lowrank.NewDense32(6, 6, nil)
	assert.NotPanics(t, func() { _ = be.Mul(mat.NewDense(6, 6, nil), 1, d32, false, a, false, 0) })
}

// TestMalformedDense32: a hand-built Dense32 with short Data or a bad
// stride panics with an error wrapping lowrank.ErrShape, never an index
// out of range deep inside a kernel.
func TestMalformedDense32(t *testing.T) {
	be := cpu.Backend{}
	bad := &lowrank.Dense32{Rows: 4, Cols: 3, Stride: 3, Data: make([]float32, 10)}
	for name, f := range map[string]func(){
		"Mul":             func() { _ = be.Mul(mat.NewDense(3, 3, nil), 1, bad, true, bad, false, 0) },
		"Gather":          func() { _ = be.Gather(mat.NewDense(3, 1, nil), bad, false, []int{0}) },
		"SquaredNorm":     func() { _, _, _ = be.SquaredNorm(bad, 1) },
		"SquaredRowNorms": func() { _ = be.SquaredRowNorms(make([]float64, 4), bad, false, 1) },
		"FindNonFinite":   func() { _, _, _, _, _ = be.FindNonFinite(bad) },
	} {
		func() {
			defer func() {
				r := recover()
				err, ok := r.(error)
				require.True(t, ok, "%s: panic value %v", name, r)
				assert.ErrorIs(t, err, lowrank.ErrShape, name)
			}()
			f()
		}()
	}
}
