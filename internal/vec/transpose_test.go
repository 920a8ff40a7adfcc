package vec

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTranspose checks every element of the transpose for shapes around
// the tile size, with strides longer than the rows, and that the padding
// of dst beyond its rows is not written.
func TestTranspose(t *testing.T) {
	for _, s := range [][2]int{{1, 1}, {1, 40}, {40, 1}, {31, 33}, {32, 32}, {65, 97}, {100, 64}} {
		r, c := s[0], s[1]
		lds, ldd := c+3, r+5
		src := make([]float64, (r-1)*lds+c)
		for i := range src {
			src[i] = float64(i) + 0.5
		}
		dst := make([]float64, (c-1)*ldd+r)
		for i := range dst {
			dst[i] = -1
		}
		Transpose(r, c, src, lds, dst, ldd)
		for j := range c {
			for i := range r {
				require.Equal(t, src[i*lds+j], dst[j*ldd+i], "%d×%d: (%d, %d)", r, c, i, j)
			}
			for i := r; i < ldd && j*ldd+i < len(dst); i++ {
				require.Equal(t, -1.0, dst[j*ldd+i], "%d×%d: padding (%d, %d)", r, c, j, i)
			}
		}
	}
	assert.Panics(t, func() { Transpose(2, 3, make([]float64, 6), 2, make([]float64, 6), 2) }, "short stride")
	assert.Panics(t, func() { Transpose(2, 3, make([]float64, 5), 3, make([]float64, 6), 2) }, "short src")
	Transpose(0, 5, nil, 5, nil, 0)
}

// BenchmarkTranspose times the 1024×1024 transpose of the eigensolver's
// vectors.
func BenchmarkTranspose(b *testing.B) {
	for _, n := range []int{1000, 1024} {
		src, dst := make([]float64, n*n), make([]float64, n*n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(16 * n * n))
			for b.Loop() {
				Transpose(n, n, src, n, dst, n)
			}
		})
	}
}
