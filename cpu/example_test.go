package cpu_test

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// The CPU backend as the algorithms use it: products with transposes on
// the module's GEMM, reading a float32 activation in place, and a thin QR
// whose Q has orthonormal columns.
func ExampleBackend() {
	be := cpu.Backend{}
	x := lowrank.NewDense32(4, 3, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	g, _ := be.New(3, 3) // the 3×3 Gram matrix XᵀX, in float64
	if err := be.Mul(g, 1, x, true, x, false, 0); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(mat.Formatted(g.(*mat.Dense)))

	y0 := mat.NewDense(4, 2, []float64{1, 0, 1, 1, 1, 2, 1, 3})
	y := mat.DenseCopyOf(y0)
	r := mat.NewDense(2, 2, nil)
	if err := be.QR(y, r); err != nil { // y becomes Q
		fmt.Println(err)
		return
	}
	var qtq, qr mat.Dense
	qtq.Mul(y.T(), y)
	qr.Mul(y, r)
	fmt.Printf("QᵀQ = I: %v, Q·R = Y: %v, |R₁₁| = %.4f\n", mat.EqualApprox(&qtq, mat.NewDiagDense(2, []float64{1, 1}), 1e-14),
		mat.EqualApprox(&qr, y0, 1e-14), math.Abs(r.At(0, 0)))
	// Output:
	// ⎡166  188  210⎤
	// ⎢188  214  240⎥
	// ⎣210  240  270⎦
	// QᵀQ = I: true, Q·R = Y: true, |R₁₁| = 2.0000
}

// The same decomposition on any backend: a Decomposer keeps its scratch
// between calls, and its factors live where the backend computes (here
// host memory; with gpu.Open, device memory).
func ExampleBackend_decomposer() {
	a := mat.NewDense(6, 4, nil)
	for i := 0; i < 6; i++ {
		for j := 0; j < 4; j++ {
			a.Set(i, j, float64((i+1)*(j+1))) // rank 1
		}
	}
	d := sampling.NewDecomposer(cpu.Backend{})
	defer d.Close()
	var f lowrank.Factors
	if err := d.QBTo(&f, a, 1, &sampling.Options{Seed: 1}); err != nil {
		fmt.Println(err)
		return
	}
	qb, err := f.ToQB(cpu.Backend{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rank %d, relative error below 1e-15: %v\n", qb.Rank(), lowrank.RelError(a, qb) < 1e-15)
	// Output:
	// rank 1, relative error below 1e-15: true
}
