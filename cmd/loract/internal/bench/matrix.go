package bench

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// Matrix is an activation-like test matrix: A = W_m·diag(σ)·W_nᵀ with the
// spectrum testmat.ActivationLike (σ_j = 1/(j+1) + 1e-3) and random
// incoherent orthonormal W (testmat.Incoherent), in float64 and as a
// float32 copy. Its singular values are σ exactly (up to rounding), so
// the optimal rank-k error needs no SVD.
type Matrix struct {
	M, N  int
	Seed  uint64
	Sigma []float64
	A64   *mat.Dense
	A32   *lowrank.Dense32
}

var (
	cacheMu sync.Mutex
	cache   = map[[3]uint64]*Matrix{}
)

// Activation returns the m×n activation-like matrix of seed, built once per
// process and shared: callers must not modify it. Building costs
// O(m·n·log(m·n)): about 2.5 s at 8192×4096 and 10 s at 32768×4096 on one
// core.
func Activation(m, n int, seed uint64) *Matrix {
	key := [3]uint64{uint64(m), uint64(n), seed}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if x, ok := cache[key]; ok {
		return x
	}
	sigma := testmat.ActivationLike(min(m, n))
	a := testmat.Incoherent(m, n, sigma, seed)
	x := &Matrix{M: m, N: n, Seed: seed, Sigma: sigma, A64: a, A32: testmat.To32(a)}
	cache[key] = x
	return x
}

// Optimal returns the Eckart–Young relative Frobenius error at rank k.
func (x *Matrix) Optimal(k int) float64 { return testmat.OptimalError(x.Sigma, k) }

// Input returns the float64 ("fp64") or float32 ("fp32") form.
func (x *Matrix) Input(dtype string) mat.Matrix {
	switch dtype {
	case "fp64":
		return x.A64
	case "fp32":
		return x.A32
	}
	panic(fmt.Sprintf("bench: no host input of type %q", dtype))
}
