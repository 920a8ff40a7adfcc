package sampling_test

import (
	"fmt"
	"math"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// smooth returns an m×n float32 matrix sampled from a smooth function of
// the row and column positions, x_ij = 1/(1 + 8·|i/m − j/n|), whose
// singular values decay fast: an activation-like input with no random
// numbers.
func smooth(m, n int) *lowrank.Dense32 {
	x := lowrank.NewDense32(m, n, nil)
	for i := range m {
		for j := range n {
			x.Data[i*n+j] = float32(1 / (1 + 8*math.Abs(float64(i)/float64(m)-float64(j)/float64(n))))
		}
	}
	return x
}

// Compress a float32 activation (batch·seq = 512 tokens, hidden = 128) to
// rank 16 with the LoRAct row-sampled QB, and compare its error with the
// optimal rank-16 error of the exact SVD.
func ExampleQB() {
	x := smooth(512, 128) // *lowrank.Dense32: read in place, never widened to float64
	f, err := sampling.QB(x, 16, &sampling.Options{Seed: 1, PowerIters: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	m, n := f.Dims()
	l, r := f.Left(), f.Right()
	lr, lc := l.Dims()
	rr, rc := r.Dims()
	fmt.Printf("X %d×%d ≈ L %d×%d · R %d×%d, L orthonormal: %v\n", m, n, lr, lc, rr, rc, f.LeftOrthonormal())
	fmt.Printf("bytes in bf16: %d instead of %d in float32\n", f.Bytes(lowrank.BFloat16), m*n*4)
	svd, err := exact.TruncatedSVD(x, 16)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("error ÷ optimal: %.2f\n", lowrank.RelError(x, f)/lowrank.RelError(x, svd))
	// Output:
	// X 512×128 ≈ L 512×16 · R 16×128, L orthonormal: false
	// bytes in bf16: 20480 instead of 262144 in float32
	// error ÷ optimal: 1.17
}

func ExampleSVD() {
	x := smooth(200, 60)
	f, err := sampling.SVD(x, 3, &sampling.Options{Seed: 1, Oversample: 5, PowerIters: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	ref, _ := exact.TruncatedSVD(x, 3)
	fmt.Printf("sampled: %.4f\nexact:   %.4f\n", f.Values(nil), ref.Values(nil))
	// Output:
	// sampled: [40.7690 17.0150 10.3698]
	// exact:   [40.7690 17.0150 10.3699]
}

func ExampleNystrom() {
	x := smooth(160, 100)
	f, err := sampling.Nystrom(x, 8, &sampling.Options{Seed: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	svd, _ := exact.TruncatedSVD(x, 8)
	fmt.Printf("rank %d, error ÷ optimal: %.2f\n", f.Rank(), lowrank.RelError(x, f)/lowrank.RelError(x, svd))
	// Output:
	// rank 8, error ÷ optimal: 1.19
}

// A training loop compresses an activation every step: a Decomposer keeps
// its scratch matrices and the Factors their Q and B between calls, so the
// steady state allocates no matrix memory. The same code runs on the GPU
// with a *gpu.Backend in place of cpu.Backend{}. Draw reports the rows
// (here: channels, since op(X) = Xᵀ) each call sampled, for package bounds.
func ExampleDecomposer() {
	d := sampling.NewDecomposer(cpu.Backend{})
	defer d.Close()
	var f lowrank.Factors
	x := smooth(256, 64)
	for step := range 3 {
		if err := d.QBTo(&f, x, 8, &sampling.Options{Seed: uint64(step), PowerIters: 1}); err != nil {
			fmt.Println(err)
			return
		}
		q, k := f.Q.Dims()
		draw := d.Draw()
		fmt.Printf("step %d: Q %d×%d, sampled %d of op(X)'s rows (op(X) = Xᵀ: %v), error %.4f\n",
			step, q, k, len(draw.Indices), draw.Trans, f.RelError())
	}
	// Output:
	// step 0: Q 64×8, sampled 8 of op(X)'s rows (op(X) = Xᵀ: true), error 0.0948
	// step 1: Q 64×8, sampled 8 of op(X)'s rows (op(X) = Xᵀ: true), error 0.0991
	// step 2: Q 64×8, sampled 8 of op(X)'s rows (op(X) = Xᵀ: true), error 0.0837
}
