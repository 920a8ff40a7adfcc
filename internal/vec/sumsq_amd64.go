//go:build amd64 && !noasm

package vec

import "github.com/loract/loract/internal/gemm"

// sumSq32AVX512 accumulates the squares of x[0:n] (n a positive multiple
// of 32) in float64 into acc, lane j of accumulator a holding the
// elements 32·t + 8·a + j (a = 0…3, j = 0…7), and the largest magnitude
// bits (x's bits with the sign cleared, as uint32) lane-wise into mx.
//
//go:noescape
func sumSq32AVX512(x *float32, n int, acc *[32]float64, mx *[16]uint32)

// sumSq64AVX512 is sumSq32AVX512 for float64 elements: lane j of
// accumulator a holds the elements 32·t + 8·a + j, and mx the lane-wise
// largest magnitude bits (uint64).
//
//go:noescape
func sumSq64AVX512(x *float64, n int, acc *[32]float64, mx *[8]uint64)

// hasVecKernels says the AVX-512 kernels of this file (the sums of squares
// and DotAxpy's) run on this CPU.
var hasVecKernels = gemm.AVX512()

// dotAxpyAVX512 is DotAxpy's kernel for n a positive multiple of 32: it
// returns Σ a_i·x_i, lane j of accumulator c (c = 0…3) summing the
// products of i = 32·t + 8·c + j and the 32 lanes then summed pairwise as
// reduce32 does, and adds alpha·a[0:n] to y[0:n], each by fused
// multiply-add.
//
//go:noescape
func dotAxpyAVX512(a, x, y *float64, n int, alpha float64) float64
