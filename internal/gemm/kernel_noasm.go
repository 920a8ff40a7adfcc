//go:build !amd64 || noasm

package gemm

import "unsafe"

// kernels lists the micro-kernels usable on this CPU, fastest first.
func kernels() []microKernel[float64] { return []microKernel[float64]{goKernel} }

// kernels32 lists the float32 micro-kernels usable on this CPU.
func kernels32() []microKernel[float32] { return []microKernel[float32]{goKernel32} }

// packRows8Fast is the assembly fast path of packRows8; there is none here.
func packRows8Fast[E Float](dst []E, src unsafe.Pointer, elemSize uintptr, ld, kc, stride int) int {
	return 0
}

// dealRowFast is the assembly fast path of packA and packB; there is none
// here.
func dealRowFast[E Float](dst []E, src unsafe.Pointer, elemSize uintptr, w, npanels, stride, pf int) bool {
	return false
}

// dealTwoRowsFast is the assembly fast path of packA's transposed float32
// case; there is none here.
func dealTwoRowsFast[E Float](dst []E, src unsafe.Pointer, elemSize uintptr, ld, w, npanels, stride, pf int) bool {
	return false
}

// AVX512 reports false: this build has no assembly.
func AVX512() bool { return false }
