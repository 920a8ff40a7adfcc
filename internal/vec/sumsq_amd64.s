//go:build amd64 && !noasm

#include "textflag.h"

// func sumSq32AVX512(x *float32, n int, acc *[32]float64, mx *[16]uint32)
//
// 32 float32 elements an iteration: two 64-byte loads, their magnitudes'
// bits (the sign cleared) into two lane-wise unsigned maxima, and four
// 8-wide float64 conversions squared into four accumulators (the product
// of two float32 values is exact in float64, so the fused multiply-add
// rounds once, as a sum does). A NaN's magnitude bits exceed +Inf's.
TEXT ·sumSq32AVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ acc+16(FP), DI
	MOVQ mx+24(FP), DX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z6

loop:
	VMOVUPS (SI), Z7
	VMOVUPS 64(SI), Z8
	VPANDD Z6, Z7, Z9
	VPMAXUD Z9, Z4, Z4
	VPANDD Z6, Z8, Z10
	VPMAXUD Z10, Z5, Z5
	VCVTPS2PD Y7, Z11
	VEXTRACTF64X4 $1, Z7, Y12
	VCVTPS2PD Y12, Z12
	VFMADD231PD Z11, Z11, Z0
	VFMADD231PD Z12, Z12, Z1
	VCVTPS2PD Y8, Z13
	VEXTRACTF64X4 $1, Z8, Y14
	VCVTPS2PD Y14, Z14
	VFMADD231PD Z13, Z13, Z2
	VFMADD231PD Z14, Z14, Z3
	ADDQ $128, SI
	SUBQ $32, CX
	JNZ loop

	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VMOVUPD Z2, 128(DI)
	VMOVUPD Z3, 192(DI)
	VPMAXUD Z5, Z4, Z4
	VMOVDQU32 Z4, (DX)
	VZEROUPPER
	RET

// func sumSq64AVX512(x *float64, n int, acc *[32]float64, mx *[8]uint64)
//
// ScaledSumSq64's kernel at scale 1: 32 float64 elements an iteration,
// four 8-wide accumulators (by FMA: one rounding a step, where the loop
// rounds the square and the sum), the magnitudes' bits maxed lane-wise.
TEXT ·sumSq64AVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ acc+16(FP), DI
	MOVQ mx+24(FP), DX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	MOVQ $0x7fffffffffffffff, AX
	VPBROADCASTQ AX, Z6

loop64:
	VMOVUPD (SI), Z7
	VMOVUPD 64(SI), Z8
	VMOVUPD 128(SI), Z9
	VMOVUPD 192(SI), Z10
	VPANDQ Z6, Z7, Z11
	VPMAXUQ Z11, Z4, Z4
	VPANDQ Z6, Z8, Z12
	VPMAXUQ Z12, Z5, Z5
	VPANDQ Z6, Z9, Z13
	VPMAXUQ Z13, Z4, Z4
	VPANDQ Z6, Z10, Z14
	VPMAXUQ Z14, Z5, Z5
	VFMADD231PD Z7, Z7, Z0
	VFMADD231PD Z8, Z8, Z1
	VFMADD231PD Z9, Z9, Z2
	VFMADD231PD Z10, Z10, Z3
	ADDQ $256, SI
	SUBQ $32, CX
	JNZ loop64

	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VMOVUPD Z2, 128(DI)
	VMOVUPD Z3, 192(DI)
	VPMAXUQ Z5, Z4, Z4
	VMOVDQU64 Z4, (DX)
	VZEROUPPER
	RET

// func dotAxpyAVX512(a, x, y *float64, n int, alpha float64) float64
//
// 32 float64 elements an iteration: four 64-byte loads of a, each
// multiplied into an accumulator with x from memory and, times the
// broadcast alpha, added to y (load, fused multiply-add, store).
TEXT ·dotAxpyAVX512(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ x+8(FP), BX
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	VBROADCASTSD alpha+32(FP), Z9
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3

loopda:
	VMOVUPD (SI), Z4
	VMOVUPD 64(SI), Z5
	VMOVUPD 128(SI), Z6
	VMOVUPD 192(SI), Z7
	VFMADD231PD (BX), Z4, Z0
	VFMADD231PD 64(BX), Z5, Z1
	VFMADD231PD 128(BX), Z6, Z2
	VFMADD231PD 192(BX), Z7, Z3
	VMOVUPD (DI), Z10
	VMOVUPD 64(DI), Z11
	VMOVUPD 128(DI), Z12
	VMOVUPD 192(DI), Z13
	VFMADD231PD Z9, Z4, Z10
	VFMADD231PD Z9, Z5, Z11
	VFMADD231PD Z9, Z6, Z12
	VFMADD231PD Z9, Z7, Z13
	VMOVUPD Z10, (DI)
	VMOVUPD Z11, 64(DI)
	VMOVUPD Z12, 128(DI)
	VMOVUPD Z13, 192(DI)
	ADDQ $256, SI
	ADDQ $256, BX
	ADDQ $256, DI
	SUBQ $32, CX
	JNZ loopda

	// The lanes summed pairwise, as reduce32: lane j += lane j+16, then
	// j+8, j+4, j+2, j+1.
	VADDPD Z2, Z0, Z0
	VADDPD Z3, Z1, Z1
	VADDPD Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+40(FP)
	VZEROUPPER
	RET
