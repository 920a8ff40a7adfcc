//go:build !amd64 || noasm

package gemm

import "unsafe"

// kernels lists the micro-kernels usable on this CPU, fastest first.
func kernels() []microKernel { return []microKernel{goKernel} }

// packRows8Fast is the assembly fast path of packRows8; there is none here.
func packRows8Fast(dst []float64, src unsafe.Pointer, elemSize uintptr, ld, kc, stride int) int {
	return 0
}

// dealRowFast is the assembly fast path of packA and packB; there is none
// here.
func dealRowFast(dst []float64, src unsafe.Pointer, elemSize uintptr, w, npanels, stride int) bool {
	return false
}
