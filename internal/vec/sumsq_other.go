//go:build !amd64 || noasm

package vec

const hasVecKernels = false

func sumSq32AVX512(x *float32, n int, acc *[32]float64, mx *[16]uint32) {
	panic("vec: no assembly in this build")
}

func sumSq64AVX512(x *float64, n int, acc *[32]float64, mx *[8]uint64) {
	panic("vec: no assembly in this build")
}

func dotAxpyAVX512(a, x, y *float64, n int, alpha float64) float64 {
	panic("vec: no assembly in this build")
}
