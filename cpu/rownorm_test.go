package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/vec"
	"github.com/loract/loract/lowrank"
)

// TestRowSumsDeterministic: SquaredNorm and GatherNorm give the same bits
// on 1, 2 and 7 cores, on inputs of one chunk (where they also equal the
// plain row loop's) and of many, and a NaN in any chunk comes out.
func TestRowSumsDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][2]int{{3, 5}, {31, 1000}, {4096, 97}, {64, 1 << 16}} {
		m, n := sh[0], sh[1]
		a := lowrank.NewDense32(m, n, nil)
		for i := range a.Data {
			a.Data[i] = float32(rnd.NormFloat64() * math.Exp(8*rnd.Float64()))
		}
		idx := []int{0, n / 2, n - 1}
		var want [2]float64
		for i := range m { // the plain loop over the rows
			s, mx := vec.ScaledSumSq32(a.Row(i), 1)
			want[0] += s
			want[1] = max(want[1], mx)
		}
		var ref [2]float64
		for pi, procs := range []int{1, 2, 7} {
			runtime.GOMAXPROCS(procs)
			s, mx, err := Backend{}.SquaredNorm(a, 1)
			require.NoError(t, err)
			dst := mat.NewDense(m, len(idx), nil)
			gs, gmx, err := Backend{}.GatherNorm(dst, a, true, idx)
			require.NoError(t, err)
			assert.Equal(t, [2]float64{s, mx}, [2]float64{gs, gmx}, "%d×%d on %d cores: GatherNorm = SquaredNorm", m, n, procs)
			if pi == 0 {
				ref = [2]float64{s, mx}
			}
			assert.Equal(t, ref, [2]float64{s, mx}, "%d×%d: %d cores against 1", m, n, procs)
			assert.InEpsilon(t, want[0], s, 4*float64(n)*0x1p-52*float64(m), "%d×%d against the plain loop", m, n)
			assert.Equal(t, want[1], mx)
			if m*n <= rowSumsChunk {
				assert.Equal(t, want[0], s, "one chunk: the plain loop's order")
			}
			assert.Equal(t, float64(a.Row(m - 1)[n-1]), dst.At(m-1, 2), "gathered")
		}
		a.Row(m - 1)[n/3] = float32(math.NaN())
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			s, mx, err := Backend{}.SquaredNorm(a, 1)
			require.NoError(t, err)
			assert.True(t, math.IsNaN(s) && math.IsNaN(mx), "%d×%d on %d cores: %g %g", m, n, procs, s, mx)
		}
	}
}
