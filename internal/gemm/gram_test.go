package gemm

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
)

// TestGram checks that Gram equals the full product aᵀ·a bit for bit (and
// GramRows a·aᵀ),
// both triangles (the full product is symmetric bit for bit: c_ij and c_ji
// are the same products summed in the same order), on 1, 2, 3 and 5
// workers, with the default blocks and with smallBlocks (many kc, mc and
// nc blocks, shared packing), for widths around the micro-tile sizes and
// a padded stride.
func TestGram(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rnd := rand.New(rand.NewPCG(1, 2))
	shapes := []struct{ m, n, pad int }{
		{0, 5, 0}, {1, 1, 0}, {3, 7, 2}, {40, 23, 0}, {40, 24, 1}, {41, 25, 0},
		{64, 100, 3}, {300, 97, 0}, {129, 300, 5}, {1500, 180, 0},
	}
	for _, blk := range []*blocking{nil, &smallBlocks} {
		testBlocking = blk
		for _, procs := range []int{1, 2, 3, 5} {
			runtime.GOMAXPROCS(procs)
			for _, s := range shapes {
				a, lda := operand[float64](rnd, s.m, s.n, false, s.pad)
				ag := blas64.General{Rows: s.m, Cols: s.n, Stride: lda, Data: a}
				want := make([]float64, s.n*s.n)
				General(true, false, 1, ag, ag, 0, blas64.General{Rows: s.n, Cols: s.n, Stride: s.n, Data: want})
				ldc := s.n + 2
				c := make([]float64, (s.n-1)*ldc+s.n)
				for i := range c {
					c[i] = math.NaN() // every element must be written
				}
				Gram(blas64.General{Rows: s.n, Cols: s.n, Stride: ldc, Data: c}, ag)
				for i := range s.n {
					require.Equal(t, want[i*s.n:(i+1)*s.n], c[i*ldc:i*ldc+s.n], "small blocks %v, %d workers, %d×%d: row %d", blk != nil, procs, s.m, s.n, i)
				}
				// GramRows of the same a: a·aᵀ, m×m.
				wantRows := make([]float64, s.m*s.m)
				General(false, true, 1, ag, ag, 0, blas64.General{Rows: s.m, Cols: s.m, Stride: max(s.m, 1), Data: wantRows})
				cr := make([]float64, s.m*s.m)
				for i := range cr {
					cr[i] = math.NaN()
				}
				GramRows(blas64.General{Rows: s.m, Cols: s.m, Stride: max(s.m, 1), Data: cr}, ag)
				require.Equal(t, wantRows, cr, "GramRows, small blocks %v, %d workers, %d×%d", blk != nil, procs, s.m, s.n)
			}
		}
	}
	testBlocking = nil
}

// TestGramUpdate checks that GramUpdate's upper triangle equals the full
// product alpha·aᵀ·a + beta·c bit for bit (alpha = −1, beta = 1: the
// Cholesky trailing update), on 1 and 3 workers with the default and the
// small blocks, and that it panics on a c of the wrong shape.
func TestGramUpdate(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, blk := range []*blocking{nil, &smallBlocks} {
		testBlocking = blk
		for _, procs := range []int{1, 3} {
			runtime.GOMAXPROCS(procs)
			for _, s := range []struct{ m, n int }{{1, 1}, {64, 23}, {64, 300}, {1, 129}, {200, 97}} {
				a, lda := operand[float64](rnd, s.m, s.n, false, 1)
				ag := blas64.General{Rows: s.m, Cols: s.n, Stride: lda, Data: a}
				c0, ldc := operand[float64](rnd, s.n, s.n, false, 2)
				want := append([]float64(nil), c0...)
				General(true, false, -1, ag, ag, 1, blas64.General{Rows: s.n, Cols: s.n, Stride: ldc, Data: want})
				c := append([]float64(nil), c0...)
				GramUpdate(-1, ag, 1, blas64.General{Rows: s.n, Cols: s.n, Stride: ldc, Data: c})
				for i := range s.n {
					require.Equal(t, want[i*ldc+i:i*ldc+s.n], c[i*ldc+i:i*ldc+s.n], "small blocks %v, %d workers, %d×%d: row %d", blk != nil, procs, s.m, s.n, i)
				}
			}
		}
	}
	testBlocking = nil
	assert.Panics(t, func() {
		GramUpdate(1, blas64.General{Rows: 2, Cols: 3, Stride: 3, Data: make([]float64, 6)}, 0, blas64.General{Rows: 2, Cols: 2, Stride: 2, Data: make([]float64, 4)})
	})
}

// TestUpperTiles checks the upper-triangle product of every kernel, float64
// and float32, for each transpose: every element on and above the diagonal
// equals the full product's bit for bit, and no element far enough below
// it to lie in a tile wholly below the diagonal (i ≥ j + mr + nr − 1) is
// written — so the product does skip those tiles.
func TestUpperTiles(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, blk := range []*blocking{nil, &smallBlocks} {
		testBlocking = blk
		for _, procs := range []int{1, 3} {
			runtime.GOMAXPROCS(procs)
			for _, mk := range kernels() {
				checkUpper(t, mk, rnd, procs)
			}
			for _, mk := range kernels32() {
				checkUpper(t, mk, rnd, procs)
			}
		}
	}
	testBlocking = nil
}

func checkUpper[E Float](t *testing.T, mk microKernel[E], rnd *rand.Rand, procs int) {
	t.Helper()
	for _, n := range []int{1, 9, 50, 131, 260} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				k := 37 + n/3
				a, lda := operand[E](rnd, n, k, tA, 1)
				b, ldb := operand[E](rnd, k, n, tB, 0)
				want := make([]E, n*n)
				gemmWith(mk, false, tA, tB, n, n, k, 1.5, a, lda, b, ldb, 0, want, n)
				c := make([]E, n*n)
				sentinel := E(math.Inf(-1))
				for i := range c {
					c[i] = sentinel
				}
				gemmWith(mk, true, tA, tB, n, n, k, 1.5, a, lda, b, ldb, 0, c, n)
				for i := range n {
					for j := range n {
						switch {
						case j >= i:
							require.Equal(t, want[i*n+j], c[i*n+j], "%s %d workers n=%d tA=%v tB=%v: (%d,%d)", mk.name, procs, n, tA, tB, i, j)
						case i >= j+mk.mr+mk.nr-1:
							require.Equal(t, sentinel, c[i*n+j], "%s %d workers n=%d: (%d,%d) below the diagonal was computed", mk.name, procs, n, i, j)
						}
					}
				}
			}
		}
	}
}

// TestChunkUpper checks that the row ranges of an upper-triangle product
// tile [0, n) in order, cut at multiples of the unit, and hold equal
// shares of the triangle to within one unit of rows each way.
func TestChunkUpper(t *testing.T) {
	for _, n := range []int{1, 7, 8, 100, 1024, 4099} {
		for _, parts := range []int{1, 2, 3, 8, 64} {
			unit := 8
			prev := 0
			area := func(r int) float64 { return float64(r) * float64(2*n-r) / 2 }
			for i := range parts {
				lo, hi := chunkUpper(n, parts, i, unit)
				require.Equal(t, prev, lo, "n=%d parts=%d piece %d", n, parts, i)
				require.LessOrEqual(t, lo, hi)
				if hi < n {
					assert.Zero(t, hi%unit)
				}
				// A cut moved by at most unit/2 rows moves at most unit/2·n of area.
				share := area(hi) - area(lo)
				assert.InDelta(t, area(n)/float64(parts), share, float64(unit*n)+1, "n=%d parts=%d piece %d", n, parts, i)
				prev = hi
			}
			require.Equal(t, n, prev, "n=%d parts=%d: the last piece ends at n", n, parts)
		}
	}
}
