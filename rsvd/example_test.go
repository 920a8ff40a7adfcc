package rsvd_test

import (
	"fmt"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
)

func ExampleQB() {
	sigma := testmat.PowerLaw(100, 1, 0)
	a := testmat.Incoherent(300, 100, sigma, 1)
	f, err := rsvd.QB(a, 10, &rsvd.Options{Seed: 1, Oversample: 10, PowerIters: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rank %d, error ÷ optimal %.3f\n", f.Rank(), lowrank.RelError(a, f)/testmat.OptimalError(sigma, 10))
	// Output:
	// rank 10, error ÷ optimal 1.000
}

func ExampleSVD() {
	a := testmat.Incoherent(200, 80, testmat.PowerLaw(80, 1, 0), 2)
	f, err := rsvd.SVD(a, 4, &rsvd.Options{Seed: 1, Oversample: 6, PowerIters: 2, Normalizer: rsvd.LU})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f\n", f.Values(nil))
	// Output:
	// [1.0000 0.5000 0.3333 0.2500]
}

func ExampleAdaptiveQB() {
	sigma := testmat.Exponential(100, 0.1)
	a := testmat.Incoherent(400, 100, sigma, 3)
	f, err := rsvd.AdaptiveQB(a, 0.01, &rsvd.AdaptiveOptions{Seed: 1, BlockSize: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	kopt := 1
	for testmat.OptimalError(sigma, kopt) > 0.01 {
		kopt++
	}
	fmt.Printf("error ≤ 0.01: %v; rank %d, smallest possible %d\n", lowrank.RelError(a, f) <= 0.01, f.Rank(), kopt)
	// Output:
	// error ≤ 0.01: true; rank 48, smallest possible 47
}
