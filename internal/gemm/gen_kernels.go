//go:build ignore

// gen_kernels writes kernel_amd64.s, the register-blocked micro-kernels.
// Run with: go generate ./internal/gemm (or go run gen_kernels.go).
package main

import (
	"bytes"
	"fmt"
	"os"
)

var w bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }

// kernel writes a micro-kernel computing the mr×nr tile
//
//	C = alpha·Σ_p a[p·mr+i]·b[p·nr+j] (+ beta·C when useBeta ≠ 0)
//
// with vl-wide vectors along j (a row of C): nv = nr/vl vectors per row,
// mr·nv accumulators, nv registers for the row of b and nbc rotating
// broadcast registers for the elements of a.
func kernel(name, reg string, vl, mr, nr, nbc int, zeroOp string, embed bool) {
	nv := nr / vl
	acc := func(i, v int) string { return fmt.Sprintf("%s%d", reg, i*nv+v) }
	breg := func(v int) string { return fmt.Sprintf("%s%d", reg, mr*nv+v) }
	bc := func(i int) string { return fmt.Sprintf("%s%d", reg, mr*nv+nv+i%nbc) }
	as, bs := mr*8, nr*8
	vb := vl * 8
	p("// func %s(kc int, a, b, c *float64, ldc int, alpha, beta float64, useBeta int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-64", name)
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ a+8(FP), SI")
	p("\tMOVQ b+16(FP), DI")
	p("\tMOVQ c+24(FP), DX")
	p("\tMOVQ ldc+32(FP), R8")
	p("\tSHLQ $3, R8")
	// Touch the rows of the C tile so they are in cache for the epilogue.
	p("\tMOVQ DX, R9")
	for i := 0; i < mr; i++ {
		p("\tPREFETCHT0 (R9)")
		if nr*8 > 64 {
			p("\tPREFETCHT0 %d(R9)", nr*8-8)
		}
		p("\tADDQ R8, R9")
	}
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			r := acc(i, v)
			p("\t%s %s, %s, %s", zeroOp, r, r, r)
		}
	}
	step := func(s int) {
		for v := 0; v < nv; v++ {
			p("\tVMOVUPD %d(DI), %s", s*bs+v*vb, breg(v))
		}
		for i := 0; i < mr; i++ {
			if embed {
				for v := 0; v < nv; v++ {
					p("\tVFMADD231PD.BCST %d(SI), %s, %s", s*as+i*8, breg(v), acc(i, v))
				}
				continue
			}
			p("\tVBROADCASTSD %d(SI), %s", s*as+i*8, bc(i))
			for v := 0; v < nv; v++ {
				p("\tVFMADD231PD %s, %s, %s", breg(v), bc(i), acc(i, v))
			}
		}
	}
	const unroll = 4
	p("\tCMPQ CX, $%d", unroll)
	p("\tJLT %s_tail", name)
	p("%s_loop4:", name)
	for off := 0; off < unroll*as; off += 64 {
		p("\tPREFETCHT0 %d(SI)", 2*unroll*as+off)
	}
	for s := 0; s < unroll; s++ {
		step(s)
	}
	p("\tADDQ $%d, SI", unroll*as)
	p("\tADDQ $%d, DI", unroll*bs)
	p("\tSUBQ $%d, CX", unroll)
	p("\tCMPQ CX, $%d", unroll)
	p("\tJGE %s_loop4", name)
	p("%s_tail:", name)
	p("\tTESTQ CX, CX")
	p("\tJEQ %s_epilogue", name)
	p("%s_loop1:", name)
	step(0)
	p("\tADDQ $%d, SI", as)
	p("\tADDQ $%d, DI", bs)
	p("\tDECQ CX")
	p("\tJNE %s_loop1", name)
	p("%s_epilogue:", name)
	alpha := bc(0)
	beta := bc(1)
	p("\tVBROADCASTSD alpha+40(FP), %s", alpha)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			p("\tVMULPD %s, %s, %s", alpha, acc(i, v), acc(i, v))
		}
	}
	p("\tMOVQ useBeta+56(FP), AX")
	p("\tTESTQ AX, AX")
	p("\tJEQ %s_store", name)
	p("\tVBROADCASTSD beta+48(FP), %s", beta)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			p("\tVFMADD231PD %d(DX), %s, %s", v*vb, beta, acc(i, v))
			p("\tVMOVUPD %s, %d(DX)", acc(i, v), v*vb)
		}
		p("\tADDQ R8, DX")
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("%s_store:", name)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			p("\tVMOVUPD %s, %d(DX)", acc(i, v), v*vb)
		}
		p("\tADDQ R8, DX")
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// packAsm writes the AVX-512 packing routines.
func packAsm() {
	// packRows8: 8 rows of a row-major matrix, 8 columns at a time, each
	// 8×8 block transposed in registers (unpack, then two rounds of
	// 128-bit lane shuffles) so that column p of the block is stored as
	// 8 contiguous doubles, dstStride doubles after column p−1.
	for _, f := range []struct {
		name, load string
		size       int
	}{{"packRows8f64", "VMOVUPD", 8}, {"packRows8f32", "VCVTPS2PD", 4}} {
		p("// func %s(dst *float64, src unsafe.Pointer, ld, n8, dstStride int)", f.name)
		p("TEXT ·%s(SB), NOSPLIT, $0-40", f.name)
		p("\tMOVQ dst+0(FP), DI")
		p("\tMOVQ src+8(FP), SI")
		p("\tMOVQ ld+16(FP), R8")
		p("\tMOVQ n8+24(FP), CX")
		p("\tMOVQ dstStride+32(FP), R11")
		p("\tSHLQ $3, R11")
		p("\tLEAQ (R11)(R11*2), R12")
		p("\tLEAQ (DI)(R11*4), R13")
		p("\tSHLQ $%d, R8", map[int]int{8: 3, 4: 2}[f.size])
		p("\tLEAQ (R8)(R8*2), R9")
		p("\tLEAQ (SI)(R8*4), R10")
		p("\tTESTQ CX, CX")
		p("\tJEQ %s_done", f.name)
		p("%s_loop:", f.name)
		rows := []string{"(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(SI)(R9*1)", "(R10)", "(R10)(R8*1)", "(R10)(R8*2)", "(R10)(R9*1)"}
		for i, r := range rows {
			p("\t%s %s, Z%d", f.load, r, i)
		}
		for _, r := range rows {
			p("\tPREFETCHT0 %d%s", 8*8*f.size, r)
		}
		// t(2j) = unpacklo(r(2j), r(2j+1)), t(2j+1) = unpackhi: Z8..Z15.
		for j := 0; j < 4; j++ {
			p("\tVUNPCKLPD Z%d, Z%d, Z%d", 2*j+1, 2*j, 8+2*j)
			p("\tVUNPCKHPD Z%d, Z%d, Z%d", 2*j+1, 2*j, 8+2*j+1)
		}
		// Even columns from t0, t2, t4, t6 (Z8, Z10, Z12, Z14), odd from
		// t1, t3, t5, t7 (Z9, Z11, Z13, Z15).
		for odd := 0; odd < 2; odd++ {
			t := func(i int) int { return 8 + 2*i + odd }
			s := 16 + 4*odd // s0..s3 in Z16.. or Z20..
			p("\tVSHUFF64X2 $0x44, Z%d, Z%d, Z%d", t(1), t(0), s)
			p("\tVSHUFF64X2 $0xEE, Z%d, Z%d, Z%d", t(1), t(0), s+1)
			p("\tVSHUFF64X2 $0x44, Z%d, Z%d, Z%d", t(3), t(2), s+2)
			p("\tVSHUFF64X2 $0xEE, Z%d, Z%d, Z%d", t(3), t(2), s+3)
			// columns odd+0, odd+2, odd+4, odd+6
			cols := []struct{ a, b, imm, c int }{{s, s + 2, 0x88, 0}, {s, s + 2, 0xDD, 2}, {s + 1, s + 3, 0x88, 4}, {s + 1, s + 3, 0xDD, 6}}
			dsts := []string{"(DI)", "(DI)(R11*1)", "(DI)(R11*2)", "(DI)(R12*1)", "(R13)", "(R13)(R11*1)", "(R13)(R11*2)", "(R13)(R12*1)"}
			for _, c := range cols {
				p("\tVSHUFF64X2 $0x%X, Z%d, Z%d, Z24", c.imm, c.b, c.a)
				p("\tVMOVUPD Z24, %s", dsts[c.c+odd])
			}
		}
		p("\tADDQ $%d, SI", 8*f.size)
		p("\tADDQ $%d, R10", 8*f.size)
		p("\tLEAQ (DI)(R11*8), DI")
		p("\tLEAQ (R13)(R11*8), R13")
		p("\tDECQ CX")
		p("\tJNE %s_loop", f.name)
		p("%s_done:", f.name)
		p("\tVZEROUPPER")
		p("\tRET")
		p("")
	}
	// dealRowW: one row of op(B) (or column of op(A)) dealt out to
	// npanels panels of W elements, stride elements apart.
	for _, w := range []int{8, 24} {
		for _, f := range []struct {
			name, load string
			size       int
		}{{fmt.Sprintf("dealRow%df64", w), "VMOVUPD", 8}, {fmt.Sprintf("dealRow%df32", w), "VCVTPS2PD", 4}} {
			p("// func %s(dst *float64, src unsafe.Pointer, npanels, stride int)", f.name)
			p("TEXT ·%s(SB), NOSPLIT, $0-32", f.name)
			p("\tMOVQ dst+0(FP), DI")
			p("\tMOVQ src+8(FP), SI")
			p("\tMOVQ npanels+16(FP), CX")
			p("\tMOVQ stride+24(FP), DX")
			p("\tSHLQ $3, DX")
			p("\tTESTQ CX, CX")
			p("\tJEQ %s_done", f.name)
			p("%s_loop:", f.name)
			for v := 0; v < w/8; v++ {
				p("\t%s %d(SI), Z%d", f.load, v*8*f.size, v)
			}
			for v := 0; v < w/8; v++ {
				p("\tVMOVUPD Z%d, %d(DI)", v, v*64)
			}
			p("\tADDQ $%d, SI", w*f.size)
			p("\tADDQ DX, DI")
			p("\tDECQ CX")
			p("\tJNE %s_loop", f.name)
			p("%s_done:", f.name)
			p("\tVZEROUPPER")
			p("\tRET")
			p("")
		}
	}
}

func main() {
	p("// Code generated by gen_kernels.go; DO NOT EDIT.")
	p("")
	p("//go:build amd64 && !noasm")
	p("")
	p("#include \"textflag.h\"")
	p("")
	// AVX-512: 12×16 tile, 24 zmm accumulators, 2 for b, 6 broadcasts.
	// AVX-512: 8×24 tiles (24 zmm accumulators, 3 for b, 5 broadcasts),
	// and 8×16 and 8×8 for the last columns of C.
	kernel("kern512x24", "Z", 8, 8, 24, 5, "VPXORQ", false)
	kernel("kern512x16", "Z", 8, 8, 16, 5, "VPXORQ", false)
	kernel("kern512x8", "Z", 8, 8, 8, 5, "VPXORQ", false)
	// AVX2+FMA: 6×8 tiles (12 ymm accumulators, 2 for b, 2 broadcasts),
	// and 6×4 for the last columns.
	kernel("kern256x8", "Y", 4, 6, 8, 2, "VXORPD", false)
	kernel("kern256x4", "Y", 4, 6, 4, 2, "VXORPD", false)
	packAsm()
	p(`// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET`)
	if err := os.WriteFile("kernel_amd64.s", w.Bytes(), 0o644); err != nil {
		panic(err)
	}
}
