package sampling_test

import (
	"fmt"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// Compress a float32 activation (batch·seq = 512 tokens, hidden = 128) to
// rank 16 with the LoRAct row-sampled QB.
func ExampleQB() {
	sigma := testmat.Exponential(128, 0.3)
	x := testmat.To32(testmat.Incoherent(512, 128, sigma, 1)) // *lowrank.Dense32
	f, err := sampling.QB(x, 16, &sampling.Options{Seed: 1, PowerIters: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	m, n := f.Dims()
	fmt.Printf("A %d×%d ≈ rank %d, Q in the smaller dimension: %v\n", m, n, f.Rank(), f.Trans())
	fmt.Printf("bytes: %d instead of %d\n", f.Bytes(lowrank.Float32), m*n*4)
	fmt.Printf("relative error %.4f, optimal %.4f\n", lowrank.RelError(x, f), testmat.OptimalError(sigma, 16))
	// Output:
	// A 512×128 ≈ rank 16, Q in the smaller dimension: true
	// bytes: 40960 instead of 262144
	// relative error 0.0100, optimal 0.0082
}

func ExampleSVD() {
	sigma := testmat.PowerLaw(60, 2, 0)
	a := testmat.Incoherent(100, 60, sigma, 2)
	f, err := sampling.SVD(a, 3, &sampling.Options{Seed: 1, Oversample: 5, PowerIters: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f\n", f.Values(nil))
	// Output:
	// [1.0000 0.2500 0.1111]
}

func ExampleNystrom() {
	sigma := testmat.Exponential(50, 0.5)
	a := testmat.Incoherent(80, 50, sigma, 3)
	f, err := sampling.Nystrom(a, 8, &sampling.Options{Seed: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("error ÷ optimal %.2f\n", lowrank.RelError(a, f)/testmat.OptimalError(sigma, 8))
	// Output:
	// error ÷ optimal 1.39
}

// A training loop compresses an activation every step: a Decomposer keeps
// its scratch matrices and the Factors their Q and B between calls, so the
// steady state allocates no matrix memory. The same code runs on the GPU
// with gpu.Open(0, nil) in place of cpu.Backend{}.
func ExampleDecomposer() {
	d := sampling.NewDecomposer(cpu.Backend{})
	defer d.Close()
	var f sampling.Factors
	sigma := testmat.PowerLaw(64, 1.5, 0)
	for step := range 3 {
		x := testmat.To32(testmat.Incoherent(256, 64, sigma, uint64(step)))
		if err := d.QBTo(&f, x, 8, &sampling.Options{Seed: uint64(step), PowerIters: 1}); err != nil {
			fmt.Println(err)
			return
		}
		q, k := f.Q.Dims()
		fmt.Printf("step %d: Q %d×%d (Xᵀ ≈ Q·B: %v), error ÷ optimal %.2f\n", step, q, k, f.Trans,
			lowrank.ErrorFromNorms(f.Norm2A, f.Norm2B)/testmat.OptimalError(sigma, 8))
	}
	// Output:
	// step 0: Q 64×8 (Xᵀ ≈ Q·B: true), error ÷ optimal 1.01
	// step 1: Q 64×8 (Xᵀ ≈ Q·B: true), error ÷ optimal 1.05
	// step 2: Q 64×8 (Xᵀ ≈ Q·B: true), error ÷ optimal 1.03
}
