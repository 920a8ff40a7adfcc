package vec

import "fmt"

// transposeTile is the side of the square tiles Transpose copies: 8
// float64 are one 64-byte cache line, so a tile reads 8 whole lines and
// writes 8 whole lines. Larger tiles lose at power-of-two strides, where
// the lines of a tile's rows fall into the same L1 set and more of them
// than the set's ways evict each other: 1024×1024 took 0.9 ms with tiles
// of 8, 2.5 ms with 16 and 5.8 ms with 32 (1000×1000: 0.9, 0.8–1.2 and
// 0.9–1.6 ms; BenchmarkTranspose, the Zen 5 of docs/gemm.md).
const transposeTile = 8

// Transpose writes the transpose of the r×c row-major src (stride lds)
// into the c×r row-major dst (stride ldd): dst[j·ldd+i] = src[i·lds+j].
// It panics if a stride is shorter than its row or a slice too short;
// src and dst must not overlap.
func Transpose(r, c int, src []float64, lds int, dst []float64, ldd int) {
	if r == 0 || c == 0 {
		return
	}
	if r < 0 || c < 0 || lds < c || ldd < r || len(src) < (r-1)*lds+c || len(dst) < (c-1)*ldd+r {
		panic(fmt.Sprintf("vec: Transpose of %d×%d (stride %d, len %d) into stride %d, len %d", r, c, lds, len(src), ldd, len(dst)))
	}
	for i0 := 0; i0 < r; i0 += transposeTile {
		i1 := min(i0+transposeTile, r)
		for j0 := 0; j0 < c; j0 += transposeTile {
			j1 := min(j0+transposeTile, c)
			for i := i0; i < i1; i++ {
				row := src[i*lds+j0 : i*lds+j1]
				for k, x := range row {
					dst[(j0+k)*ldd+i] = x
				}
			}
		}
	}
}
