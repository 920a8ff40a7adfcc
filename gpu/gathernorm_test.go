package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// TestGatherNorm checks the fused first read against Gather and
// SquaredNorm at shapes that take every path of its kernels: samples as
// stored rows (tiles of 32 columns, a partial last tile) and as stored
// columns, 16-byte loads (aligned columns) and scalar ones (odd rows, a
// leading dimension that breaks the alignment), float32 and bf16, ℓ from 1
// to 1000.
func TestGatherNorm(t *testing.T) {
	b := open(t, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		m, n, ld, l int
		dt          DType
		rowMajor    bool
	}{
		{4096, 1024, 1024, 256, BFloat16, true}, {1000, 4096, 4096, 64, BFloat16, true},
		{777, 333, 340, 33, Float32, true}, {2048, 515, 2050, 1000, Float32, false},
		{513, 4096, 4096, 1, BFloat16, true}, {3000, 96, 3000, 96, Float32, false},
	} {
		m, n := c.m, c.n
		sc := n
		if c.rowMajor {
			sc = m
		}
		host := make([]float32, c.ld*sc)
		for i := range host {
			host[i] = float32(rng.NormFloat64())
		}
		raw, err := b.NewMatrix(c.ld, sc, c.dt)
		require.NoError(t, err)
		require.NoError(t, b.Upload(raw, denseOf(host, c.ld, sc)))
		var a *Matrix
		if c.rowMajor {
			a = RowMajor(raw.Ptr(), m, n, c.ld, c.dt)
		} else {
			a = ColMajor(raw.Ptr(), m, n, c.ld, c.dt)
		}
		for _, tr := range []bool{false, true} {
			p, s := m, n
			if tr {
				p, s = n, m
			}
			l := min(c.l, p)
			idx := rng.Perm(p)[:l]
			name := fmt.Sprintf("%dx%d ld=%d l=%d %v rowmajor=%v trans=%v", m, n, c.ld, l, c.dt, c.rowMajor, tr)
			want, err := b.NewMatrix(s, l, Float32)
			require.NoError(t, err)
			got, err := b.NewMatrix(s, l, Float32)
			require.NoError(t, err)
			require.NoError(t, b.Gather(want, a, tr, idx))
			n2, mx, err := b.SquaredNorm(a, 1)
			require.NoError(t, err)
			var hw mat.Dense
			require.NoError(t, b.Download(&hw, want))
			// Every variant of the stored-row kernel (gatherMode) and of
			// the stored-column one (gatherColsMode).
			for mode := range max(gatherModes, gatherColsModes) {
				b.gatherMode, b.gatherColsMode = mode%gatherModes, mode%gatherColsModes
				require.NoError(t, b.Scale(got, 0)) // no stale Ω from the previous mode
				g2, gmx, err := b.GatherNorm(got, a, tr, idx)
				require.NoError(t, err)
				var hg mat.Dense
				require.NoError(t, b.Download(&hg, got))
				assert.True(t, mat.Equal(&hw, &hg), "%s mode %d: Ω", name, mode)
				// Two float64 summation orders of m·n squares: ≤
				// 2·m·n·2⁻⁵³ relative (Higham's γ_N for each, both on
				// positive terms).
				assert.InDelta(t, n2, g2, 2*float64(m*n)*0x1p-53*n2, "%s mode %d: ‖A‖²", name, mode)
				assert.Equal(t, mx, gmx, "%s mode %d: max", name, mode)
			}
			b.gatherMode, b.gatherColsMode = 0, 0
			b.Free(want)
			b.Free(got)
		}
		b.Free(raw)
	}
}

// TestGatherNormExtreme checks every variant of the fused read on inputs
// whose squares leave float32's range: entries of 2⁻⁷⁰ (squares below
// float32's smallest normal), of 2⁷⁰ (squares beyond its largest), a mix
// of both with ordinary ones, and zeros with a NaN or an Inf. ‖A‖² must
// match SquaredNorm's float64 sums (the two summation orders, as in
// TestGatherNorm), NaN stays NaN, Inf stays Inf, and the maximum is
// exact. (A variant that summed each loaded vector in float32 was measured
// and not kept, docs/gpu.md: this test guards the float64 sums.)
func TestGatherNormExtreme(t *testing.T) {
	b := open(t, nil)
	const m, n = 512, 256
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		name string
		fill func(i int) float32
	}{
		{"tiny", func(int) float32 { return float32(0x1p-70 * (1 + rng.Float64())) }},
		{"huge", func(int) float32 { return float32(0x1p70 * (1 + rng.Float64())) }},
		{"mixed", func(i int) float32 {
			return float32([]float64{0x1p-70, 1, 0x1p70, 0x1p-30}[i%4] * rng.NormFloat64())
		}},
		{"zeros and a NaN", func(i int) float32 {
			if i == 1234 {
				return float32(math.NaN())
			}
			return 0
		}},
		{"zeros and an Inf", func(i int) float32 {
			if i == 4321 {
				return float32(math.Inf(-1))
			}
			return 0
		}},
	} {
		for _, dt := range []DType{Float32, BFloat16} {
			host := make([]float32, m*n)
			for i := range host {
				host[i] = c.fill(i)
			}
			raw, err := b.NewMatrix(n, m, dt)
			require.NoError(t, err)
			require.NoError(t, b.Upload(raw, denseOf(host, n, m)))
			a := RowMajor(raw.Ptr(), m, n, n, dt)
			n2, mx, err := b.SquaredNorm(a, 1)
			require.NoError(t, err)
			for _, tr := range []bool{false, true} {
				p, s := m, n
				if tr {
					p, s = n, m
				}
				idx := rng.Perm(p)[:32]
				got, err := b.NewMatrix(s, 32, Float32)
				require.NoError(t, err)
				for mode := range max(gatherModes, gatherColsModes) {
					b.gatherMode, b.gatherColsMode = mode%gatherModes, mode%gatherColsModes
					name := fmt.Sprintf("%s %v trans=%v mode %d", c.name, dt, tr, mode)
					g2, gmx, err := b.GatherNorm(got, a, tr, idx)
					require.NoError(t, err, name)
					switch {
					case math.IsNaN(n2):
						assert.True(t, math.IsNaN(g2), "%s: ‖A‖² = %g, want NaN", name, g2)
					case math.IsInf(n2, 1):
						assert.True(t, math.IsInf(g2, 1), "%s: ‖A‖² = %g, want +Inf", name, g2)
					default:
						require.True(t, n2 > 0 && !math.IsInf(n2, 0), "%s: SquaredNorm %g", name, n2)
						assert.InDelta(t, 1, g2/n2, 2*float64(m*n)*0x1p-53, "%s: ‖A‖² %g against %g", name, g2, n2)
					}
					assert.Equal(t, mx, gmx, "%s: max", name)
				}
				b.gatherMode, b.gatherColsMode = 0, 0
				b.Free(got)
			}
			b.Free(raw)
		}
	}
}

// denseOf returns the column-major r×c float32 data as a mat.Dense.
func denseOf(x []float32, r, c int) *mat.Dense {
	d := mat.NewDense(r, c, nil)
	for j := 0; j < c; j++ {
		for i := 0; i < r; i++ {
			d.Set(i, j, float64(x[i+j*r]))
		}
	}
	return d
}

// TestGatherNormQB checks that the fused read changes nothing in a QB but
// the last bits of ‖A‖²: the same draw gives bit-identical Q and B with
// the fused read and with Gather then SquaredNorm, in both orientations.
func TestGatherNormQB(t *testing.T) {
	b := open(t, nil)
	for _, c := range []struct{ m, n int }{{3000, 1024}, {700, 2048}} {
		a := testmat.To32(testmat.Incoherent(c.m, c.n, testmat.ActivationLike(min(c.m, c.n)), 8))
		da, err := b.UploadDense32(a, BFloat16)
		require.NoError(t, err)
		var fs [2]lowrank.Factors
		for i, noFuse := range []bool{false, true} {
			b.noFuse = noFuse
			d := sampling.NewDecomposer(b)
			require.NoError(t, d.QBTo(&fs[i], da, 48, &sampling.Options{Seed: 4}))
			d.Close()
		}
		b.noFuse = false
		var q0, q1, b0, b1 mat.Dense
		require.NoError(t, b.Download(&q0, fs[0].Q))
		require.NoError(t, b.Download(&q1, fs[1].Q))
		require.NoError(t, b.Download(&b0, fs[0].B))
		require.NoError(t, b.Download(&b1, fs[1].B))
		assert.True(t, mat.Equal(&q0, &q1), "%v: Q", c)
		assert.True(t, mat.Equal(&b0, &b1), "%v: B", c)
		assert.Equal(t, fs[0].SquaredNormB, fs[1].SquaredNormB, "%v", c)
		n := float64(c.m * c.n)
		assert.InDelta(t, fs[1].SquaredNormA, fs[0].SquaredNormA, 2*n*0x1p-53*fs[1].SquaredNormA, "%v", c)
		// A NaN is reported with its position, as on the two-read path.
		x := testmat.To32(testmat.Incoherent(64, 96, testmat.ActivationLike(64), 1))
		x.Data[5*x.Stride+7] = float32(math.NaN())
		dx, err := b.UploadDense32(x, Float32)
		require.NoError(t, err)
		var f lowrank.Factors
		err = sampling.NewDecomposer(b).QBTo(&f, dx, 8, &sampling.Options{Seed: 1})
		var nf *lowrank.NotFiniteError
		require.ErrorAs(t, err, &nf)
		assert.Equal(t, [2]int{5, 7}, [2]int{nf.Row, nf.Col})
		for _, m := range []lowrank.Matrix{fs[0].Q, fs[0].B, fs[1].Q, fs[1].B, da, dx} {
			b.Free(m)
		}
	}
}
