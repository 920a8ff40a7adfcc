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

// TestNormalChunks: Normal gives the same matrix on 1, 2 and 7 cores; an
// m of one chunk is the single PCG stream it always was; and the chunks'
// streams are not copies or shifts of each other: the correlation of
// chunk 0 with chunk 1, element by element and shifted by one, and the
// mean and variance of all 150 000 samples lie within 5 standard
// deviations of their values for independent normals (false alarm
// probability < 1e-6 each).
func TestNormalChunks(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	small := mat.NewDense(300, 50, nil) // 15 000 elements: one chunk
	require.NoError(t, Backend{}.Normal(small, 9))
	rng := rand.New(rand.NewPCG(9, 0x9e3779b97f4a7c15))
	for i := range 300 {
		for j := range 50 {
			require.Equal(t, rng.NormFloat64(), small.At(i, j), "(%d, %d)", i, j)
		}
	}

	const m, n = 3000, 50 // 10 chunks of 327 rows
	var ref *mat.Dense
	for _, procs := range []int{1, 2, 7} {
		runtime.GOMAXPROCS(procs)
		x := mat.NewDense(m, n, nil)
		require.NoError(t, Backend{}.Normal(x, 9))
		if ref == nil {
			ref = x
			continue
		}
		assert.True(t, mat.Equal(ref, x), "%d cores against 1", procs)
	}
	data := ref.RawMatrix().Data
	assert.Equal(t, small.RawMatrix().Data, data[:300*50], "chunk 0 starts as the single stream")
	per := normalChunk / n * n // elements of one chunk
	c0, c1 := data[:per], data[per:2*per]
	corr := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * b[i]
		}
		return s / float64(len(a))
	}
	lim := 5 / math.Sqrt(float64(per))
	assert.InDelta(t, 0, corr(c0, c1), lim, "chunks 0 and 1")
	assert.InDelta(t, 0, corr(c0[1:], c1[:per-1]), lim, "chunk 1 is not chunk 0 shifted")
	var s, s2 float64
	for _, v := range data {
		s, s2 = s+v, s2+v*v
	}
	N := float64(len(data))
	assert.InDelta(t, 0, s/N, 5/math.Sqrt(N), "mean")
	assert.InDelta(t, 1, s2/N-(s/N)*(s/N), 5*math.Sqrt(2/N), "variance")
}
