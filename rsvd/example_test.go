package rsvd_test

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
)

// kernel returns the m×n Gaussian-kernel matrix a_ij = exp(−(x_i − y_j)²/w)
// on evenly spaced points of [0, 1]: smooth, so its singular values decay
// quickly with a width-dependent rate — no random numbers needed.
func kernel(m, n int, w float64) *mat.Dense {
	a := mat.NewDense(m, n, nil)
	for i := range m {
		for j := range n {
			d := float64(i)/float64(m-1) - float64(j)/float64(n-1)
			a.Set(i, j, math.Exp(-d*d/w))
		}
	}
	return a
}

func ExampleQB() {
	a := kernel(300, 100, 0.001)
	f, err := rsvd.QB(a, 10, &rsvd.Options{Seed: 1, Oversample: 10, PowerIters: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	svd, _ := exact.TruncatedSVD(a, 10)
	fmt.Printf("rank %d, error ÷ optimal %.3f\n", f.Rank(), lowrank.RelError(a, f)/lowrank.RelError(a, svd))
	// Output:
	// rank 10, error ÷ optimal 1.000
}

func ExampleSVD() {
	a := kernel(200, 80, 0.01)
	f, err := rsvd.SVD(a, 4, &rsvd.Options{Seed: 1, Oversample: 6, PowerIters: 2, Normalizer: rsvd.LU})
	if err != nil {
		fmt.Println(err)
		return
	}
	ref, _ := exact.TruncatedSVD(a, 4)
	fmt.Printf("randomized: %.4f\nexact:      %.4f\n", f.Values(nil), ref.Values(nil))
	// Output:
	// randomized: [21.7680 20.4572 18.4478 15.9658]
	// exact:      [21.7680 20.4572 18.4478 15.9658]
}

func ExampleAdaptiveQB() {
	a := kernel(400, 100, 0.002)
	f, err := rsvd.AdaptiveQB(a, 0.01, &rsvd.AdaptiveOptions{Seed: 1, BlockSize: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The smallest rank any method could use: the first k whose optimal
	// (Eckart–Young) error is at most 0.01.
	full, _ := exact.TruncatedSVD(a, 100)
	s := full.Values(nil)
	var tail, total float64
	for _, v := range s {
		total += v * v
	}
	kopt := len(s)
	for k := len(s) - 1; k >= 1; k-- {
		tail += s[k] * s[k]
		if math.Sqrt(tail/total) > 0.01 {
			kopt = k + 1
			break
		}
	}
	fmt.Printf("error ≤ 0.01: %v; rank %d, smallest possible %d\n", lowrank.RelError(a, f) <= 0.01, f.Rank(), kopt)
	// Output:
	// error ≤ 0.01: true; rank 29, smallest possible 29
}

// A Decomposer reuses its scratch between calls and reports the Gaussian
// test matrix of its last call (regenerated from the seed), e.g. for the
// certificate of package bounds. The same code runs on a *gpu.Backend.
func ExampleDecomposer() {
	d := rsvd.NewDecomposer(cpu.Backend{})
	defer d.Close()
	a := kernel(120, 90, 0.1)
	var f lowrank.Factors
	if err := d.QBTo(&f, a, 6, &rsvd.Options{Seed: 5, Oversample: 4}); err != nil {
		fmt.Println(err)
		return
	}
	var omega mat.Dense
	trans, err := d.TestMatrix(&omega)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, c := omega.Dims()
	fmt.Printf("Ω %d×%d (op(A) = Aᵀ: %v), rank %d, relative error %.2e\n", r, c, trans, f.Rank(), f.RelError())
	// Output:
	// Ω 120×10 (op(A) = Aᵀ: true), rank 6, relative error 1.38e-03
}
