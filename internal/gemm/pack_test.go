package gemm

import (
	"fmt"
	"testing"
)

// TestPackATransposed checks packA for a transposed float32 A into float32
// panels of 8 rows — the case whose fast path deals two columns of op(A)
// at a time (dealTwoRowsFast) — element by element against its definition,
// dst[panel·mr·kc + p·mr + i] = op(A)[i0 + panel·mr + i, p0 + p], zero past
// mc: block widths with and without a partial panel, odd and even kc, and
// offsets into the stored matrix.
func TestPackATransposed(t *testing.T) {
	const mr, ld = 8, 211
	rows := 80 // rows of the stored A: columns of op(A)
	a := matrix[float32]{data: make([]float32, rows*ld), ld: ld, trans: true}
	for i := range a.data {
		a.data[i] = float32(i + 1) // every element distinct and exact
	}
	for _, mc := range []int{1, 5, 8, 13, 24, 197} {
		for _, kc := range []int{1, 2, 3, 8, 65} {
			for _, off := range [][2]int{{0, 0}, {3, 7}} {
				i0, p0 := off[0], off[1]
				t.Run(fmt.Sprintf("mc=%d/kc=%d/i0=%d/p0=%d", mc, kc, i0, p0), func(t *testing.T) {
					panels := (mc + mr - 1) / mr
					dst := make([]float32, panels*mr*kc)
					for i := range dst {
						dst[i] = -1 // every element must be written
					}
					packA(dst, a, i0, mc, p0, kc, mr)
					for q := 0; q < panels; q++ {
						for p := 0; p < kc; p++ {
							for i := 0; i < mr; i++ {
								var want float32
								if r := q*mr + i; r < mc {
									want = a.data[(p0+p)*ld+i0+r] // op(A)[i0+r, p0+p]
								}
								if got := dst[q*mr*kc+p*mr+i]; got != want {
									t.Fatalf("panel %d, column %d, row %d: got %v, want %v", q, p, i, got, want)
								}
							}
						}
					}
				})
			}
		}
	}
}
