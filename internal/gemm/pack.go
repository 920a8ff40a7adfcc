package gemm

import "unsafe"

// Float is the element type of an operand or of a product: operands are
// converted to the product's type while they are packed (float32 to
// float64 for Gemm, nothing for Dgemm and Sgemm).
type Float interface{ float32 | float64 }

// prefetchRows is how many rows of the stored operand ahead the float32
// packing of contiguous runs (rows of op(B), columns of op(A)) prefetches:
// the runs are 0.4–0.8 KiB, 16–32 KiB apart, a pattern the hardware
// prefetchers follow late. BenchmarkSgemmPrefetch, GOMAXPROCS=1, best of 3,
// GFLOP per CPU-second, rows = 0 / 2 / 4 / 8 / 16: AᵀQ 86 / 93 / 92 / 90 /
// 91, QᵀA 92 / 96 / 95 / 95 / 96, Gram 103 / 103 / 102 / 105 / 102, Yᵀ·Xᵀ
// (whose large operand is packed by packRows8s, which prefetches along its
// rows instead) 100 / 99 / 99 / 98 / 99. (A variable so that the benchmark
// can vary it.)
var prefetchRows = 4

// matrix is a row-major operand: op(M)[i, j] is data[i·ld+j], or
// data[j·ld+i] when trans is set.
type matrix[T Float] struct {
	data  []T
	ld    int
	trans bool
}

// packA writes rows [i0, i0+mc) and columns [p0, p0+kc) of op(A) into dst
// as ⌈mc/mr⌉ micro-panels of mr rows, each stored column by column
// (dst[panel·mr·kc + p·mr + i]); rows past mc are zero.
func packA[T, E Float](dst []E, a matrix[T], i0, mc, p0, kc, mr int) {
	if a.trans {
		// Column p of op(A) is contiguous: read it once along the block
		// and deal it out to the panels.
		full := mc / mr * mr // rows in full panels
		pf := prefetchRows * a.ld * int(unsafe.Sizeof(a.data[0]))
		for p := 0; p < kc; p++ {
			off := (p0+p)*a.ld + i0
			col := a.data[off : off+mc]
			// Two columns at a time where the assembly can: each panel's
			// two columns are then written together.
			if p+1 < kc && full > 0 {
				next := a.data[off+a.ld : off+a.ld+mc]
				if dealTwoRowsFast(dst[p*mr:], unsafe.Pointer(&col[0]), unsafe.Sizeof(col[0]), a.ld, mr, full/mr, mr*kc, pf) {
					if full < mc {
						for q, c := range [2][]T{col, next} {
							d := dst[full*kc+(p+q)*mr : full*kc+(p+q+1)*mr]
							for i, v := range c[full:] {
								d[i] = E(v)
							}
							clear(d[mc-full:])
						}
					}
					p++
					continue
				}
			}
			// col[:full] is in bounds, and so are the full/mr runs read.
			if full == 0 || !dealRowFast(dst[p*mr:], unsafe.Pointer(&col[0]), unsafe.Sizeof(col[0]), mr, full/mr, mr*kc, pf) {
				for ip := 0; ip < full; ip += mr {
					src := col[ip : ip+mr]
					d := dst[ip*kc+p*mr : ip*kc+p*mr+len(src)]
					for i := range d {
						d[i] = E(src[i])
					}
				}
			}
			if full < mc {
				d := dst[full*kc+p*mr : full*kc+(p+1)*mr]
				for i, v := range col[full:] {
					d[i] = E(v)
				}
				clear(d[mc-full:])
			}
		}
		return
	}
	for ip := 0; ip < mc; ip += mr {
		rows := min(mr, mc-ip)
		panel := dst[ip*kc : ip*kc+mr*kc]
		if rows == 8 && mr == 8 {
			packRows8(panel, a, i0+ip, p0, kc)
			continue
		}
		// Row i of op(A) is contiguous: scatter it down the panel.
		for i := 0; i < rows; i++ {
			off := (i0+ip+i)*a.ld + p0
			src := a.data[off : off+kc]
			for p, v := range src {
				panel[p*mr+i] = E(v)
			}
		}
		if rows < mr {
			for p := 0; p < kc; p++ {
				clear(panel[p*mr+rows : (p+1)*mr])
			}
		}
	}
}

// packB writes rows [p0, p0+kc) and columns [j0, j0+nc) of op(B) into dst
// as micro-panels laid out as mk.panel says (nr columns, then one or two
// narrower tail panels), each stored row by row (dst[jp·kc + p·w + j] for
// the panel of width w starting at column jp); columns past nc are zero.
func packB[T, E Float](dst []E, b matrix[T], p0, kc, j0, nc int, mk *microKernel[E]) {
	nr := mk.nr
	if !b.trans {
		// Row p of op(B) is contiguous: read it once from end to end (a
		// long run the prefetchers stream) and deal it out to the panels.
		full := mk.tail(nc) // columns in full-width panels
		pf := prefetchRows * b.ld * int(unsafe.Sizeof(b.data[0]))
		for p := 0; p < kc; p++ {
			off := (p0+p)*b.ld + j0
			row := b.data[off : off+nc]
			// row[:full] is in bounds, and so are the full/nr runs read.
			if full == 0 || !dealRowFast(dst[p*nr:], unsafe.Pointer(&row[0]), unsafe.Sizeof(row[0]), nr, full/nr, nr*kc, pf) {
				for jp := 0; jp < full; jp += nr {
					src := row[jp : jp+nr]
					d := dst[jp*kc+p*nr : jp*kc+p*nr+len(src)]
					for j := range d {
						d[j] = E(src[j])
					}
				}
			}
			for jp := full; jp < nc; {
				w, _ := mk.panel(nc, jp)
				cols := min(w, nc-jp)
				d := dst[jp*kc+p*w : jp*kc+(p+1)*w]
				// A panel as wide as its columns is one more run.
				if cols < w || !dealRowFast(d, unsafe.Pointer(&row[jp]), unsafe.Sizeof(row[0]), w, 1, w, pf) {
					for j, v := range row[jp : jp+cols] {
						d[j] = E(v)
					}
					clear(d[cols:])
				}
				jp += w
			}
		}
		return
	}
	for jp := 0; jp < nc; {
		w, _ := mk.panel(nc, jp)
		cols := min(w, nc-jp)
		panel := dst[jp*kc : jp*kc+w*kc]
		// Column j of op(B) is contiguous: transpose 8 of them at a time
		// where the assembly can, scatter the rest down the panel.
		done := 0
		if cols == w && w%8 == 0 {
			done = kc
			for g := 0; g < w; g += 8 {
				off := (j0+jp+g)*b.ld + p0
				_ = b.data[off+7*b.ld : off+7*b.ld+kc] // the 8 rows are in bounds
				done = min(done, packRows8Fast(panel[g:], unsafe.Pointer(&b.data[off]), unsafe.Sizeof(b.data[0]), b.ld, kc, w))
			}
		}
		for j := 0; j < cols; j++ {
			off := (j0+jp+j)*b.ld + p0
			src := b.data[off+done : off+kc]
			for p, v := range src {
				panel[(done+p)*w+j] = E(v)
			}
		}
		if cols < w {
			for p := 0; p < kc; p++ {
				clear(panel[p*w+cols : (p+1)*w])
			}
		}
		jp += w
	}
}

// packRows8 is packA's inner loop for a full panel of 8 rows of a
// row-major A: it reads the 8 rows side by side and writes the panel in
// order, one 8-element column at a time.
func packRows8[T, E Float](panel []E, a matrix[T], i, p0, kc int) {
	off := i*a.ld + p0
	ld := a.ld
	r0 := a.data[off : off+kc]
	r1 := a.data[off+ld : off+ld+kc]
	r2 := a.data[off+2*ld : off+2*ld+kc]
	r3 := a.data[off+3*ld : off+3*ld+kc]
	r4 := a.data[off+4*ld : off+4*ld+kc]
	r5 := a.data[off+5*ld : off+5*ld+kc]
	r6 := a.data[off+6*ld : off+6*ld+kc]
	r7 := a.data[off+7*ld : off+7*ld+kc]
	panel = panel[:8*kc]
	// r0 … r7 are in bounds, so the 8 rows of kc elements are.
	done := packRows8Fast(panel, unsafe.Pointer(&r0[0]), unsafe.Sizeof(r0[0]), ld, kc, 8)
	for p := done; p < kc; p++ {
		d := panel[8*p : 8*p+8 : 8*p+8]
		d[0] = E(r0[p])
		d[1] = E(r1[p])
		d[2] = E(r2[p])
		d[3] = E(r3[p])
		d[4] = E(r4[p])
		d[5] = E(r5[p])
		d[6] = E(r6[p])
		d[7] = E(r7[p])
	}
}
