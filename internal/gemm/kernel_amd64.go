//go:build amd64 && !noasm

package gemm

//go:generate go run gen_kernels.go

//go:noescape
func kern512(kc int, a, b, c *float64, ldc int, alpha, beta float64, useBeta int)

//go:noescape
func kern256(kc int, a, b, c *float64, ldc int, alpha, beta float64, useBeta int)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// detect reports which vector extensions the CPU and the operating system
// support, from CPUID and XGETBV (the OS must save the ymm/zmm state).
func detect() (avx2FMA, avx512 bool) {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false, false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false, false
	}
	xcr0, _ := xgetbv()
	const (
		ymmState = 0x6  // SSE and AVX state
		zmmState = 0xe6 // plus opmask, ZMM_Hi256, Hi16_ZMM
	)
	if xcr0&ymmState != ymmState {
		return false, false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const (
		avx2    = 1 << 5
		avx512f = 1 << 16
	)
	avx2FMA = ebx7&avx2 != 0 && ecx1&fma != 0
	avx512 = avx2FMA && ebx7&avx512f != 0 && xcr0&zmmState == zmmState
	return avx2FMA, avx512
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func asm512(kc int, a, b, c []float64, ldc int, alpha, beta float64, useBeta bool) {
	kern512(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, b2i(useBeta))
}

func asm256(kc int, a, b, c []float64, ldc int, alpha, beta float64, useBeta bool) {
	kern256(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, b2i(useBeta))
}

// kernels lists the micro-kernels usable on this CPU, fastest first.
func kernels() []microKernel {
	avx2FMA, avx512 := detect()
	var ks []microKernel
	if avx512 {
		ks = append(ks, microKernel{name: "avx512", mr: 12, nr: 16, fn: asm512})
	}
	if avx2FMA {
		ks = append(ks, microKernel{name: "avx2", mr: 6, nr: 8, fn: asm256})
	}
	return append(ks, goKernel)
}
