package sampling_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// fusedCPU is the CPU backend with the optional lowrank.GatherNormer
// capability (Gather, then SquaredNorm), so that the Decomposer's fused
// path — rows drawn before the input is read, the input check completed
// from the gather's read — runs on the host.
type fusedCPU struct{ cpu.Backend }

func (f fusedCPU) GatherNorm(dst, a lowrank.Matrix, trans bool, idx []int) (float64, float64, error) {
	if err := f.Gather(dst, a, trans, idx); err != nil {
		return 0, 0, err
	}
	return f.SquaredNorm(a, 1)
}

var _ lowrank.GatherNormer = fusedCPU{}

// TestGatherNormerPath: the fused path gives bit-identical factors and
// norms to the two-read path for inputs of every magnitude (unscaled,
// scaled operands, a scaled copy), both orientations, oversampling, power
// iterations and a tolerance; and the same errors, in the same order (a
// NaN is reported with its position before an Indices error).
func TestGatherNormerPath(t *testing.T) {
	a := testmat.Incoherent(90, 50, testmat.ActivationLike(50), 3)
	for _, s := range []float64{1, 0x1p-30, 0x1p40, 0x1p-130, 0x1p130} {
		var as mat.Dense
		as.Scale(s, a)
		for _, o := range []*sampling.Options{
			{Seed: 2}, {Seed: 3, Oversample: 5, PowerIters: 1}, {Seed: 4, Tolerance: 0.3},
			{Seed: 5, Orientation: lowrank.OrientCols}, {Indices: []int{1, 8, 40, 3, 77, 12}},
		} {
			var fp, ff lowrank.Factors
			ep := sampling.NewDecomposer(cpu.Backend{}).QBTo(&fp, &as, 6, o)
			ef := sampling.NewDecomposer(fusedCPU{}).QBTo(&ff, &as, 6, o)
			assert.Equal(t, ep, ef, "s=%g %+v: error", s, o)
			if ep != nil {
				continue
			}
			assert.True(t, mat.Equal(fp.Q.(*mat.Dense), ff.Q.(*mat.Dense)), "s=%g %+v: Q", s, o)
			assert.True(t, mat.Equal(fp.B.(*mat.Dense), ff.B.(*mat.Dense)), "s=%g %+v: B", s, o)
			assert.Equal(t, [3]float64{fp.SquaredNormA, fp.SquaredNormB, fp.NormScale},
				[3]float64{ff.SquaredNormA, ff.SquaredNormB, ff.NormScale}, "s=%g %+v: norms", s, o)
		}
	}
	b := mat.DenseCopyOf(a)
	b.Set(7, 4, math.NaN())
	for _, o := range []*sampling.Options{{Seed: 1}, {Indices: []int{200, 1}}} {
		var f lowrank.Factors
		err := sampling.NewDecomposer(fusedCPU{}).QBTo(&f, b, 2, o)
		var nf *lowrank.NotFiniteError
		require.ErrorAs(t, err, &nf, "%+v", o)
		assert.Equal(t, [2]int{7, 4}, [2]int{nf.Row, nf.Col})
	}
	var f lowrank.Factors
	err := sampling.NewDecomposer(fusedCPU{}).QBTo(&f, a, 2, &sampling.Options{Indices: []int{200, 1}})
	assert.ErrorIs(t, err, lowrank.ErrOption)
}
