package lowrank_test

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// A float32 activation held by a training loop, viewed as a matrix
// without a copy: 6 tokens × 4 channels, rank 2.
func ExampleNewDense32() {
	data := []float32{
		1, 2, 3, 4,
		2, 4, 6, 8,
		1, 0, 1, 0,
		3, 4, 7, 8,
		0, 0, 0, 0,
		2, 2, 4, 4,
	}
	x := lowrank.NewDense32(6, 4, data)
	r, c := x.Dims()
	fmt.Println(r, c, x.At(3, 2))
	data[0] = 10 // shared, not copied
	fmt.Println(x.At(0, 0))
	if err := lowrank.CheckFinite(x); err != nil {
		fmt.Println(err)
	}
	data[5] = float32(math.NaN())
	err := lowrank.CheckFinite(x)
	var nf *lowrank.NotFiniteError
	fmt.Println(errors.As(err, &nf), nf.Row, nf.Col)
	// Output:
	// 6 4 7
	// 10
	// true 1 1
}

// The relative error of an approximation, ‖A − Ã‖_F/‖A‖_F, computed in
// float64 without forming Ã: a rank-2 matrix is recovered exactly by a
// rank-2 QB, and a rank-1 QB leaves the second direction's share.
func ExampleRelError() {
	a := mat.NewDense(5, 3, []float64{
		3, 0, 0,
		0, 1, 0,
		3, 0, 0,
		0, 1, 0,
		3, 0, 0,
	}) // singular values 3√3 and √2
	for _, k := range []int{1, 2} {
		f, err := sampling.QB(a, k, &sampling.Options{Oversample: 1, Seed: 1})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("k = %d: relative error %.4f\n", k, lowrank.RelError(a, f))
	}
	fmt.Printf("optimal at k = 1: %.4f\n", math.Sqrt(2/(27+2.0)))
	// Output:
	// k = 1: relative error 0.2626
	// k = 2: relative error 0.0000
	// optimal at k = 1: 0.2626
}

// Storage precisions: bytes per element and the rounding a stored
// factor suffers.
func ExamplePrecision() {
	for _, p := range []lowrank.Precision{lowrank.BFloat16, lowrank.Float32, lowrank.Float64} {
		fmt.Printf("%-8v %d bytes, unit roundoff %.3g, π stored as %.10g\n", p, p.Size(), p.UnitRoundoff(), lowrank.RoundTo(math.Pi, p))
	}
	// Output:
	// bf16     2 bytes, unit roundoff 0.00391, π stored as 3.140625
	// float32  4 bytes, unit roundoff 5.96e-08, π stored as 3.141592741
	// float64  8 bytes, unit roundoff 1.11e-16, π stored as 3.141592654
}
