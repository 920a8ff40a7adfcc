package sampling_test

import (
	"errors"
	"fmt"
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

// skipCase is one input of the SkipNorm tests and its options (SkipNorm
// set by the test).
type skipCase struct {
	name string
	a    lowrank.Matrix
	opts sampling.Options
}

func skipCases() []skipCase {
	const m, n = 120, 40
	in := func(seed uint64, scale float64) *mat.Dense {
		a := testmat.Haar(m, n, testmat.ActivationLike(n), seed)
		a.Scale(scale, a)
		return a
	}
	f32 := lowrank.NewDense32(m, n, nil)
	src := in(9, 1)
	for i := range m {
		for j, v := range src.RawRowView(i) {
			f32.Row(i)[j] = float32(v)
		}
	}
	zeroCol := in(10, 1) // one column zero but for one element: NaN below
	for i := range m {
		zeroCol.Set(i, 11, 0)
	}
	return []skipCase{
		{"plain", in(1, 1), sampling.Options{Seed: 1}},
		{"transposed shape", testmat.Haar(n, m, testmat.ActivationLike(n), 2), sampling.Options{Seed: 2}},
		{"oversampled", in(3, 1), sampling.Options{Seed: 3, Oversample: 4}},
		{"power iteration", in(4, 1), sampling.Options{Seed: 4, PowerIters: 1}},
		{"spectrum", in(5, 1), sampling.Options{Seed: 5, Spectrum: true}},
		{"float32", f32, sampling.Options{Seed: 6}},
		// Scaled by the read's path; without it, products exact unscaled.
		{"large", in(7, 0x1p40), sampling.Options{Seed: 7}},
		// ‖B‖_F below 2⁻¹⁶: computed again with the read (scaled copy).
		{"tiny", in(8, 0x1p-90), sampling.Options{Seed: 8}},
		{"zero", mat.NewDense(m, n, nil), sampling.Options{Seed: 11}},
		{"zero column", zeroCol, sampling.Options{Seed: 12}},
	}
}

// TestSkipNorm checks Options.SkipNorm on QBTo and QBBatchTo, on the CPU
// backend and on one with a Batcher (the batched path): the factors are
// bit for bit those computed with the read (the read only chooses a
// power-of-two scaling, which changes no rounding), ‖B‖² the same in the
// caller's units, ‖A‖² and the error estimate NaN; an input that needs the
// read (too small, zero) is computed again with it.
func TestSkipNorm(t *testing.T) {
	const k = 6
	cases := skipCases()
	for _, be := range []lowrank.Backend{cpu.Backend{}, &counting{}} {
		var dst []*lowrank.Factors
		var as []lowrank.Matrix
		var opts []*sampling.Options
		for _, c := range cases {
			o := c.opts
			o.SkipNorm = true
			dst, as, opts = append(dst, new(lowrank.Factors)), append(as, c.a), append(opts, &o)
		}
		require.NoError(t, sampling.NewDecomposer(be).QBBatchTo(dst, as, k, opts))
		for i, c := range cases {
			name := fmt.Sprintf("%T/%s", be, c.name)
			var want, single lowrank.Factors
			require.NoError(t, sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, c.a, k, &c.opts), name)
			require.NoError(t, sampling.NewDecomposer(be).QBTo(&single, c.a, k, opts[i]), name)
			for _, got := range []*lowrank.Factors{dst[i], &single} {
				assert.True(t, mat.Equal(want.Q.(mat.Matrix), got.Q.(mat.Matrix)), "%s: Q", name)
				assert.True(t, mat.Equal(want.B.(mat.Matrix), got.B.(mat.Matrix)), "%s: B", name)
				// Squared norms are held scaled by NormScale², a power of
				// two: the comparison in the caller's units is exact.
				unscaled := func(f *lowrank.Factors) float64 { return f.SquaredNormB / (f.NormScale * f.NormScale) }
				assert.Equal(t, unscaled(&want), unscaled(got), "%s: ‖B‖²", name)
				assert.Equal(t, want.Spectrum == nil, got.Spectrum == nil, "%s: spectrum", name)
				redone := c.name == "tiny" || c.name == "zero"
				if redone {
					assert.Equal(t, want.SquaredNormA, got.SquaredNormA, "%s: computed again with the read", name)
				} else {
					assert.True(t, math.IsNaN(got.SquaredNormA), "%s: ‖A‖² not read, have %v", name, got.SquaredNormA)
					assert.True(t, math.IsNaN(got.RelError()), "%s: no error estimate", name)
				}
			}
		}
		if c, ok := be.(*counting); ok {
			// One batch without a read of the inputs: no GatherNormBatch
			// but for the inputs computed again (by QBTo, not batched).
			assert.Empty(t, c.gathers, "GatherNormBatch calls")
			assert.Equal(t, 1, len(c.qrs), "QRBatch calls: %v", c.qrs)
		}
	}
}

// TestSkipNormBadInput checks that without the read bad input gets the
// error it gets with it, from QBTo and from QBBatchTo, whatever the NaN's
// or ±Inf's place: inside the sample or not, in a column that is
// otherwise zero; and that SkipNorm with a Tolerance is an option error.
func TestSkipNormBadInput(t *testing.T) {
	const m, n, k = 120, 40, 6
	var cases []lowrank.Matrix
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, at := range [][2]int{{7, 11}, {0, 0}, {m - 1, n - 1}, {60, 20}} {
			a := testmat.Haar(m, n, testmat.ActivationLike(n), uint64(at[0]+at[1]))
			a.Set(at[0], at[1], bad)
			cases = append(cases, a)
		}
	}
	for _, c := range skipCases() {
		if c.name == "zero column" {
			a := mat.DenseCopyOf(c.a.(*mat.Dense))
			a.Set(70, 11, math.NaN())
			cases = append(cases, a)
		}
	}
	for _, be := range []lowrank.Backend{cpu.Backend{}, &counting{}} {
		skip := &sampling.Options{Seed: 3, SkipNorm: true}
		dst := make([]*lowrank.Factors, len(cases))
		opts := make([]*sampling.Options, len(cases))
		for i := range cases {
			dst[i], opts[i] = new(lowrank.Factors), skip
		}
		err := sampling.NewDecomposer(be).QBBatchTo(dst, cases, k, opts)
		var bat *lowrank.BatchError
		require.ErrorAs(t, err, &bat)
		for i, a := range cases {
			werr := sampling.NewDecomposer(cpu.Backend{}).QBTo(new(lowrank.Factors), a, k, &sampling.Options{Seed: 3})
			var nf *lowrank.NotFiniteError
			require.True(t, errors.As(werr, &nf), "case %d: %v", i, werr)
			gerr := sampling.NewDecomposer(be).QBTo(new(lowrank.Factors), a, k, skip)
			require.Error(t, gerr, "case %d", i)
			assert.Equal(t, werr.Error(), gerr.Error(), "case %d: QBTo", i)
			require.Error(t, bat.Errs[i], "case %d", i)
			assert.Equal(t, werr.Error(), bat.Errs[i].Error(), "case %d: QBBatchTo", i)
		}
	}
	err := sampling.NewDecomposer(cpu.Backend{}).QBTo(new(lowrank.Factors), testmat.Gaussian(m, n, 1), k,
		&sampling.Options{SkipNorm: true, Tolerance: 0.1})
	assert.ErrorIs(t, err, lowrank.ErrOption)
}
