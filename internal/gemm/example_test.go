package gemm_test

import (
	"fmt"

	"github.com/loract/loract/internal/gemm"
)

func ExampleDgemm() {
	// C = A·Bᵀ for A (2×3) and B (2×3), row-major.
	a := []float64{
		1, 2, 3,
		4, 5, 6,
	}
	b := []float64{
		1, 0, 1,
		0, 1, 0,
	}
	c := make([]float64, 2*2)
	gemm.Dgemm(false, true, 2, 2, 3, 1, a, 3, b, 3, 0, c, 2)
	fmt.Println(c)
	// Output: [4 2 10 5]
}

func ExampleGemm() {
	// A float32 activation times a float64 matrix: C = 2·Xᵀ·W, X 3×2.
	x := []float32{
		1, 2,
		3, 4,
		5, 6,
	}
	w := []float64{
		1, 0,
		0, 1,
		1, 1,
	}
	c := make([]float64, 2*2)
	gemm.Gemm(true, false, 2, 2, 3, 2, x, 2, w, 2, 0, c, 2)
	fmt.Println(c)
	// Output: [12 16 16 20]
}

func ExampleSgemm() {
	// C = Xᵀ·W − C in float32, X 3×2, W 3×2, C 2×2.
	x := []float32{
		1, 2,
		3, 4,
		5, 6,
	}
	w := []float32{
		1, 0,
		0, 1,
		1, 1,
	}
	c := []float32{
		1, 1,
		1, 1,
	}
	gemm.Sgemm(true, false, 2, 2, 3, 1, x, 2, w, 2, -1, c, 2)
	fmt.Println(c)
	// Output: [5 7 7 9]
}
