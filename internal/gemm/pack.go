package gemm

// Float is the element type of an operand: float32 operands are converted
// to float64 while they are packed.
type Float interface{ float32 | float64 }

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
func packA[T Float](dst []float64, a matrix[T], i0, mc, p0, kc, mr int) {
	for ip := 0; ip < mc; ip += mr {
		rows := min(mr, mc-ip)
		panel := dst[ip*kc : ip*kc+mr*kc]
		if !a.trans {
			// Row i of op(A) is contiguous: scatter it down the panel.
			for i := 0; i < rows; i++ {
				off := (i0+ip+i)*a.ld + p0
				src := a.data[off : off+kc]
				for p, v := range src {
					panel[p*mr+i] = float64(v)
				}
			}
			if rows < mr {
				for p := 0; p < kc; p++ {
					clear(panel[p*mr+rows : (p+1)*mr])
				}
			}
			continue
		}
		// Column p of op(A) is contiguous.
		for p := 0; p < kc; p++ {
			off := (p0+p)*a.ld + i0 + ip
			src := a.data[off : off+rows]
			d := panel[p*mr : (p+1)*mr]
			for i, v := range src {
				d[i] = float64(v)
			}
			clear(d[rows:])
		}
	}
}

// packB writes rows [p0, p0+kc) and columns [j0, j0+nc) of op(B) into dst
// as micro-panels of nr columns, each stored row by row
// (dst[jp·kc + p·nr + j] for the panel starting at column jp); the last
// panel is only as wide as mk.width gives for the columns left, and its
// columns past nc are zero.
func packB[T Float](dst []float64, b matrix[T], p0, kc, j0, nc int, mk *microKernel) {
	for jp := 0; jp < nc; jp += mk.nr {
		cols := min(mk.nr, nc-jp)
		nr, _ := mk.width(cols)
		panel := dst[jp*kc : jp*kc+nr*kc]
		if !b.trans {
			// Row p of op(B) is contiguous.
			for p := 0; p < kc; p++ {
				off := (p0+p)*b.ld + j0 + jp
				src := b.data[off : off+cols]
				d := panel[p*nr : (p+1)*nr]
				for j, v := range src {
					d[j] = float64(v)
				}
				clear(d[cols:])
			}
			continue
		}
		// Column j of op(B) is contiguous: scatter it down the panel.
		for j := 0; j < cols; j++ {
			off := (j0+jp+j)*b.ld + p0
			src := b.data[off : off+kc]
			for p, v := range src {
				panel[p*nr+j] = float64(v)
			}
		}
		if cols < nr {
			for p := 0; p < kc; p++ {
				clear(panel[p*nr+cols : (p+1)*nr])
			}
		}
	}
}
