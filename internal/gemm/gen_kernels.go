//go:build ignore

// gen_kernels writes kernel_amd64.s, the register-blocked micro-kernels
// and the assembly packing routines. Run with: go generate ./internal/gemm
// (or go run gen_kernels.go); -o names another output file (the drift
// test, TestGeneratedKernels, writes to a temporary one).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
)

var w bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }

// elem describes the element type of a micro-kernel: its size in bytes,
// its Go name and the vector instructions for it.
type elem struct {
	size                 int
	typ                  string
	mov, bcast, fma, mul string
}

var (
	f64 = elem{8, "float64", "VMOVUPD", "VBROADCASTSD", "VFMADD231PD", "VMULPD"}
	f32 = elem{4, "float32", "VMOVUPS", "VBROADCASTSS", "VFMADD231PS", "VMULPS"}
)

// kernel writes a micro-kernel computing the mr×nr tile
//
//	C = alpha·Σ_p a[p·mr+i]·b[p·nr+j] (+ beta·C when useBeta ≠ 0)
//
// with vl-wide vectors of elements e along j (a row of C): nv = nr/vl
// vectors per row, mr·nv accumulators, nv registers for the row of b and
// nbc rotating broadcast registers for the elements of a.
func kernel(name, reg string, vl, mr, nr, nbc int, zeroOp string, embed bool, e elem) {
	kernelWith(name, reg, vl, mr, nr, nbc, zeroOp, embed, false, e)
}

// eightRows returns the operands addressing 8 rows of a row-major
// matrix: registers r0 and r4 point at rows 0 and 4, one and three hold
// one and three row strides in bytes.
func eightRows(r0, r4, one, three string) []string {
	var rows []string
	for _, base := range []string{r0, r4} {
		rows = append(rows, "("+base+")", "("+base+")("+one+"*1)", "("+base+")("+one+"*2)", "("+base+")("+three+"*1)")
	}
	return rows
}

// directRows addresses the 8 rows of an unpacked A in the direct kernels.
var directRows = eightRows("SI", "R10", "R11", "R12")

// kernelWith is kernel, and with direct the variant that reads A where it
// is stored instead of from a packed panel: 8 rows of a row-major A, lda
// elements apart (an extra argument after ldc), element p of row i at
// a[i·lda+p].
func kernelWith(name, reg string, vl, mr, nr, nbc int, zeroOp string, embed, direct bool, e elem) {
	if direct && (mr != 8 || embed) {
		panic("direct kernels are 8 rows, broadcast loads")
	}
	nv := nr / vl
	acc := func(i, v int) string { return fmt.Sprintf("%s%d", reg, i*nv+v) }
	breg := func(v int) string { return fmt.Sprintf("%s%d", reg, mr*nv+v) }
	bc := func(i int) string { return fmt.Sprintf("%s%d", reg, mr*nv+nv+i%nbc) }
	as, bs := mr*e.size, nr*e.size
	vb := vl * e.size
	// Arguments: kc, a, b, c, ldc at 0–39, then alpha and beta of e.size
	// bytes, then useBeta aligned to 8.
	alphaOff := 40
	if direct {
		alphaOff = 48
	}
	betaOff := alphaOff + e.size
	useBetaOff := (betaOff + e.size + 7) / 8 * 8
	shift := map[int]int{8: 3, 4: 2}[e.size]
	if direct {
		p("// func %s(kc int, a, b, c *%s, ldc, lda int, alpha, beta %s, useBeta int)", name, e.typ, e.typ)
	} else {
		p("// func %s(kc int, a, b, c *%s, ldc int, alpha, beta %s, useBeta int)", name, e.typ, e.typ)
	}
	p("TEXT ·%s(SB), NOSPLIT, $0-%d", name, useBetaOff+8)
	p("\tMOVQ kc+0(FP), CX")
	p("\tMOVQ a+8(FP), SI")
	p("\tMOVQ b+16(FP), DI")
	p("\tMOVQ c+24(FP), DX")
	p("\tMOVQ ldc+32(FP), R8")
	p("\tSHLQ $%d, R8", shift)
	if direct {
		p("\tMOVQ lda+40(FP), R11")
		p("\tSHLQ $%d, R11", shift)
		p("\tLEAQ (R11)(R11*2), R12")
		p("\tLEAQ (SI)(R11*4), R10")
	}
	aAddr := func(s, i int) string { // element s of row i, in this step
		if direct {
			return fmt.Sprintf("%d%s", s*e.size, directRows[i])
		}
		return fmt.Sprintf("%d(SI)", s*as+i*e.size)
	}
	aStep := as // bytes A advances per k
	if direct {
		aStep = e.size
	}
	// Touch the rows of the C tile so they are in cache for the epilogue.
	p("\tMOVQ DX, R9")
	for i := 0; i < mr; i++ {
		p("\tPREFETCHT0 (R9)")
		if nr*e.size > 64 {
			p("\tPREFETCHT0 %d(R9)", nr*e.size-8)
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
			p("\t%s %d(DI), %s", e.mov, s*bs+v*vb, breg(v))
		}
		for i := 0; i < mr; i++ {
			if embed {
				for v := 0; v < nv; v++ {
					p("\t%s.BCST %d(SI), %s, %s", e.fma, s*as+i*e.size, breg(v), acc(i, v))
				}
				continue
			}
			p("\t%s %s, %s", e.bcast, aAddr(s, i), bc(i))
			for v := 0; v < nv; v++ {
				p("\t%s %s, %s, %s", e.fma, breg(v), bc(i), acc(i, v))
			}
		}
	}
	const unroll = 4
	p("\tCMPQ CX, $%d", unroll)
	p("\tJLT %s_tail", name)
	p("%s_loop4:", name)
	if direct {
		// Each row's line 256 bytes on (64 steps ahead in float32, 32
		// in float64).
		for _, r := range directRows {
			p("\tPREFETCHT0 256%s", r)
		}
	} else {
		for off := 0; off < unroll*as; off += 64 {
			p("\tPREFETCHT0 %d(SI)", 2*unroll*as+off)
		}
	}
	for s := 0; s < unroll; s++ {
		step(s)
	}
	p("\tADDQ $%d, SI", unroll*aStep)
	if direct {
		p("\tADDQ $%d, R10", unroll*aStep)
	}
	p("\tADDQ $%d, DI", unroll*bs)
	p("\tSUBQ $%d, CX", unroll)
	p("\tCMPQ CX, $%d", unroll)
	p("\tJGE %s_loop4", name)
	p("%s_tail:", name)
	p("\tTESTQ CX, CX")
	p("\tJEQ %s_epilogue", name)
	p("%s_loop1:", name)
	step(0)
	p("\tADDQ $%d, SI", aStep)
	if direct {
		p("\tADDQ $%d, R10", aStep)
	}
	p("\tADDQ $%d, DI", bs)
	p("\tDECQ CX")
	p("\tJNE %s_loop1", name)
	p("%s_epilogue:", name)
	alpha := bc(0)
	beta := bc(1)
	p("\t%s alpha+%d(FP), %s", e.bcast, alphaOff, alpha)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			p("\t%s %s, %s, %s", e.mul, alpha, acc(i, v), acc(i, v))
		}
	}
	p("\tMOVQ useBeta+%d(FP), AX", useBetaOff)
	p("\tTESTQ AX, AX")
	p("\tJEQ %s_store", name)
	p("\t%s beta+%d(FP), %s", e.bcast, betaOff, beta)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			p("\t%s %d(DX), %s, %s", e.fma, v*vb, beta, acc(i, v))
			p("\t%s %s, %d(DX)", e.mov, acc(i, v), v*vb)
		}
		p("\tADDQ R8, DX")
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("%s_store:", name)
	for i := 0; i < mr; i++ {
		for v := 0; v < nv; v++ {
			p("\t%s %s, %d(DX)", e.mov, acc(i, v), v*vb)
		}
		p("\tADDQ R8, DX")
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// loopEnd closes a packing routine's loop: count CX down to zero, then
// clear the upper vector state and return.
func loopEnd(name string) {
	p("\tDECQ CX")
	p("\tJNE %s_loop", name)
	p("%s_done:", name)
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
		rows := eightRows("SI", "R10", "R8", "R9")
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
			dsts := eightRows("DI", "R13", "R11", "R12")
			for _, c := range cols {
				p("\tVSHUFF64X2 $0x%X, Z%d, Z%d, Z24", c.imm, c.b, c.a)
				p("\tVMOVUPD Z24, %s", dsts[c.c+odd])
			}
		}
		p("\tADDQ $%d, SI", 8*f.size)
		p("\tADDQ $%d, R10", 8*f.size)
		p("\tLEAQ (DI)(R11*8), DI")
		p("\tLEAQ (R13)(R11*8), R13")
		loopEnd(f.name)
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
			loopEnd(f.name)
		}
	}
}

// packAsm32 writes the packing routines of the float32 product: float32
// elements into float32 panels. They use only AVX (ymm) instructions, so
// they serve the AVX2 machines as well as the AVX-512 ones.
func packAsm32() {
	// packRows8s: 8 rows of a row-major matrix, 8 columns at a time, each
	// 8×8 block transposed in registers (unpack pairs of rows, shuffle
	// pairs of pairs, then swap 128-bit lanes) so that column p of the
	// block is stored as 8 contiguous floats, dstStride floats after
	// column p−1.
	const name = "packRows8s"
	p("// func %s(dst *float32, src unsafe.Pointer, ld, n8, dstStride int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ src+8(FP), SI")
	p("\tMOVQ ld+16(FP), R8")
	p("\tMOVQ n8+24(FP), CX")
	p("\tMOVQ dstStride+32(FP), R11")
	p("\tSHLQ $2, R11")
	p("\tLEAQ (R11)(R11*2), R12")
	p("\tLEAQ (DI)(R11*4), R13")
	p("\tSHLQ $2, R8")
	p("\tLEAQ (R8)(R8*2), R9")
	p("\tLEAQ (SI)(R8*4), R10")
	p("\tTESTQ CX, CX")
	p("\tJEQ %s_done", name)
	p("%s_loop:", name)
	rows := eightRows("SI", "R10", "R8", "R9")
	for i, r := range rows {
		p("\tVMOVUPS %s, Y%d", r, i)
	}
	for _, r := range rows {
		p("\tPREFETCHT0 256%s", r)
	}
	// t(2j) = unpacklo(r(2j), r(2j+1)), t(2j+1) = unpackhi: Y8..Y15, so
	// t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5].
	for j := 0; j < 4; j++ {
		p("\tVUNPCKLPS Y%d, Y%d, Y%d", 2*j+1, 2*j, 8+2*j)
		p("\tVUNPCKHPS Y%d, Y%d, Y%d", 2*j+1, 2*j, 8+2*j+1)
	}
	// s(4h+q) for the rows 4h..4h+3 (h = 0, 1) holds columns q | q+4:
	// s0 = shuffle(t0, t2, 0x44) = r0[0] r1[0] r2[0] r3[0] | … [4]. Y0..Y7.
	for h := 0; h < 2; h++ {
		t := 8 + 4*h
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", t+2, t, 4*h)
		p("\tVSHUFPS $0xEE, Y%d, Y%d, Y%d", t+2, t, 4*h+1)
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", t+3, t+1, 4*h+2)
		p("\tVSHUFPS $0xEE, Y%d, Y%d, Y%d", t+3, t+1, 4*h+3)
	}
	// Column q = low lanes of s(q) and s(q+4), column q+4 the high lanes.
	dsts := eightRows("DI", "R13", "R11", "R12")
	for q := 0; q < 4; q++ {
		p("\tVPERM2F128 $0x20, Y%d, Y%d, Y%d", q+4, q, 8+q)
		p("\tVPERM2F128 $0x31, Y%d, Y%d, Y%d", q+4, q, 12+q)
	}
	for c := 0; c < 8; c++ {
		p("\tVMOVUPS Y%d, %s", 8+c, dsts[c])
	}
	p("\tADDQ $32, SI")
	p("\tADDQ $32, R10")
	p("\tLEAQ (DI)(R11*8), DI")
	p("\tLEAQ (R13)(R11*8), R13")
	loopEnd(name)
	// dealRowWs: one row of op(B) (or column of op(A)) dealt out to
	// npanels panels of W floats, stride floats apart, prefetching the
	// same run pf bytes further on (the row that will be dealt pf/ld
	// rows later; pf = 0 prefetches the run itself, to no effect).
	for _, w := range []int{8, 16, 32, 48} {
		dealRowS(fmt.Sprintf("dealRow%ds", w), w, 1)
	}
	// dealRow8s2: two consecutive columns of op(A) (rows src and src+ld
	// of the stored A, ld in elements) dealt out to npanels panels of 8
	// floats, so that each panel receives the 16 floats of its two packed
	// columns — one 64-byte line when the panel is aligned — in two
	// adjacent stores, rather than half a line now and half after the
	// other panels' stores have evicted it.
	dealRowS("dealRow8s2", 8, 2)
}

// dealRowS writes a routine dealing rows runs of w floats (rows = 1, or 2
// runs ld elements apart, w = 8) to npanels panels, stride floats apart,
// each panel's runs stored one after the other.
func dealRowS(name string, w, rows int) {
	args, ldArg := "npanels, stride, pf int", 0
	if rows == 2 {
		args, ldArg = "ld, npanels, stride, pf int", 8
	}
	p("// func %s(dst *float32, src unsafe.Pointer, %s)", name, args)
	p("TEXT ·%s(SB), NOSPLIT, $0-%d", name, 40+ldArg)
	p("\tMOVQ dst+0(FP), DI")
	p("\tMOVQ src+8(FP), SI")
	if rows == 2 {
		p("\tMOVQ ld+16(FP), R10")
		p("\tSHLQ $2, R10")
	}
	p("\tMOVQ npanels+%d(FP), CX", 16+ldArg)
	p("\tMOVQ stride+%d(FP), DX", 24+ldArg)
	p("\tMOVQ pf+%d(FP), R9", 32+ldArg)
	p("\tADDQ SI, R9")
	p("\tSHLQ $2, DX")
	p("\tTESTQ CX, CX")
	p("\tJEQ %s_done", name)
	p("%s_loop:", name)
	row := []string{"", "(R10*1)"}
	for r := 0; r < rows; r++ {
		for off := 0; off < w*4; off += 64 {
			p("\tPREFETCHT0 %d(R9)%s", off, row[r])
		}
	}
	for r := 0; r < rows; r++ {
		for v := 0; v < w/8; v++ {
			p("\tVMOVUPS %d(SI)%s, Y%d", v*32, row[r], r*w/8+v)
		}
	}
	for v := 0; v < rows*w/8; v++ {
		p("\tVMOVUPS Y%d, %d(DI)", v, v*32)
	}
	p("\tADDQ $%d, SI", w*4)
	p("\tADDQ $%d, R9", w*4)
	p("\tADDQ DX, DI")
	loopEnd(name)
}

func main() {
	out := flag.String("o", "kernel_amd64.s", "output `file`")
	flag.Parse()
	p("// Code generated by gen_kernels.go; DO NOT EDIT.")
	p("")
	p("//go:build amd64 && !noasm")
	p("")
	p("#include \"textflag.h\"")
	p("")
	// AVX-512: 12×16 tile, 24 zmm accumulators, 2 for b, 6 broadcasts.
	// AVX-512: 8×24 tiles (24 zmm accumulators, 3 for b, 5 broadcasts),
	// and 8×16 and 8×8 for the last columns of C.
	kernel("kern512x24", "Z", 8, 8, 24, 5, "VPXORQ", false, f64)
	kernel("kern512x16", "Z", 8, 8, 16, 5, "VPXORQ", false, f64)
	kernel("kern512x8", "Z", 8, 8, 8, 5, "VPXORQ", false, f64)
	// The same tiles reading a row-major float64 A where it is stored.
	kernelWith("kern512x24d", "Z", 8, 8, 24, 5, "VPXORQ", false, true, f64)
	kernelWith("kern512x16d", "Z", 8, 8, 16, 5, "VPXORQ", false, true, f64)
	kernelWith("kern512x8d", "Z", 8, 8, 8, 5, "VPXORQ", false, true, f64)
	// AVX2+FMA: 6×8 tiles (12 ymm accumulators, 2 for b, 2 broadcasts),
	// and 6×4 for the last columns.
	kernel("kern256x8", "Y", 4, 6, 8, 2, "VXORPD", false, f64)
	kernel("kern256x4", "Y", 4, 6, 4, 2, "VXORPD", false, f64)
	packAsm()
	// float32, AVX-512: 8×48 tiles (24 zmm accumulators of 16 floats, 3
	// for b, 5 broadcasts), and 8×32 and 8×16 for the last columns of C.
	kernel("kern512s8x48", "Z", 16, 8, 48, 5, "VPXORQ", false, f32)
	kernel("kern512s8x32", "Z", 16, 8, 32, 5, "VPXORQ", false, f32)
	kernel("kern512s8x16", "Z", 16, 8, 16, 5, "VPXORQ", false, f32)
	// The same tiles reading a row-major float32 A where it is stored.
	kernelWith("kern512s8x48d", "Z", 16, 8, 48, 5, "VPXORQ", false, true, f32)
	kernelWith("kern512s8x32d", "Z", 16, 8, 32, 5, "VPXORQ", false, true, f32)
	kernelWith("kern512s8x16d", "Z", 16, 8, 16, 5, "VPXORQ", false, true, f32)
	// float32, AVX2+FMA: 6×16 tiles (12 ymm accumulators of 8 floats, 2
	// for b, 2 broadcasts), and 6×8 for the last columns.
	kernel("kern256s6x16", "Y", 8, 6, 16, 2, "VXORPS", false, f32)
	kernel("kern256s6x8", "Y", 8, 6, 8, 2, "VXORPS", false, f32)
	packAsm32()
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
	if err := os.WriteFile(*out, w.Bytes(), 0o644); err != nil {
		panic(err)
	}
}
