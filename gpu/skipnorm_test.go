package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// TestSkipNormDevice checks sampling's Options.SkipNorm on the device, for
// row-major bf16 and float32 activations of two shapes in one batch: the
// factors of QBBatchTo and QBTo equal bit for bit those computed with the
// read (the same gathered rows and products), ‖B‖² equal, ‖A‖² NaN, two
// host synchronisations for the batch instead of three; and a NaN or
// ±Inf anywhere — a sampled row or not, a column otherwise zero — gets the
// error it gets with the read (cuBLAS's products carry it into B).
func TestSkipNormDevice(t *testing.T) {
	b := open(t, nil)
	const m, k = 2048, 32
	dims := []int{384, 384, 1024}
	upload := func(d int, seed uint64, dt DType, edit func(*lowrank.Dense32)) *Matrix {
		x := testmat.To32(testmat.Incoherent(m, d, testmat.ActivationLike(d), seed))
		if edit != nil {
			edit(x)
		}
		g, err := b.UploadDense32(x, dt)
		require.NoError(t, err)
		return g
	}
	download := func(x lowrank.Matrix) *mat.Dense {
		var d mat.Dense
		require.NoError(t, b.Download(&d, x))
		return &d
	}
	for _, dt := range []DType{BFloat16, Float32} {
		as := make([]lowrank.Matrix, len(dims))
		read, skip := make([]*sampling.Options, len(dims)), make([]*sampling.Options, len(dims))
		for i, d := range dims {
			as[i] = upload(d, uint64(20+i), dt, nil)
			read[i] = &sampling.Options{Seed: uint64(i)}
			skip[i] = &sampling.Options{Seed: uint64(i), SkipNorm: true}
		}
		batch := func(opts []*sampling.Options) []*lowrank.Factors {
			dst := make([]*lowrank.Factors, len(as))
			for i := range dst {
				dst[i] = new(lowrank.Factors)
			}
			dec := sampling.NewDecomposer(b)
			defer dec.Close()
			require.NoError(t, dec.QBBatchTo(dst, as, k, opts)) // scratch
			require.NoError(t, b.Synchronize())
			s0 := b.Syncs()
			require.NoError(t, dec.QBBatchTo(dst, as, k, opts))
			want := int64(3)
			if opts[0].SkipNorm {
				want = 2
			}
			assert.Equal(t, want, b.Syncs()-s0, "%v skip %v: host synchronisations", dt, opts[0].SkipNorm)
			return dst
		}
		want, got := batch(read), batch(skip)
		single := sampling.NewDecomposer(b)
		for i := range as {
			name := fmt.Sprintf("%v item %d", dt, i)
			var f lowrank.Factors
			require.NoError(t, single.QBTo(&f, as[i], k, skip[i]), name)
			for _, g := range []*lowrank.Factors{got[i], &f} {
				assert.True(t, mat.Equal(download(want[i].Q), download(g.Q)), "%s: Q", name)
				assert.True(t, mat.Equal(download(want[i].B), download(g.B)), "%s: B", name)
				assert.Equal(t, want[i].SquaredNormB, g.SquaredNormB, "%s: ‖B‖²", name)
				assert.True(t, math.IsNaN(g.SquaredNormA), "%s: ‖A‖² %v", name, g.SquaredNormA)
			}
			f.Free(b)
			want[i].Free(b)
			got[i].Free(b)
		}
		single.Close()
		for _, a := range as {
			b.Free(a)
		}

		// Bad input.
		type bad struct {
			name string
			edit func(*lowrank.Dense32)
		}
		bads := []bad{
			{"NaN", func(x *lowrank.Dense32) { x.Row(700)[100] = float32(math.NaN()) }},
			{"+Inf", func(x *lowrank.Dense32) { x.Row(0)[0] = float32(math.Inf(1)) }},
			{"-Inf", func(x *lowrank.Dense32) { x.Row(m - 1)[x.Cols-1] = float32(math.Inf(-1)) }},
			{"NaN in a zero column", func(x *lowrank.Dense32) {
				for i := range m {
					x.Row(i)[11] = 0
				}
				x.Row(1500)[11] = float32(math.NaN())
			}},
		}
		for _, bd := range bads {
			as := make([]lowrank.Matrix, len(dims))
			for i, d := range dims {
				var e func(*lowrank.Dense32)
				if i == 1 {
					e = bd.edit
				}
				as[i] = upload(d, uint64(30+i), dt, e)
			}
			name := fmt.Sprintf("%v %s", dt, bd.name)
			werr := sampling.NewDecomposer(b).QBTo(new(lowrank.Factors), as[1], k, read[1])
			var nf *lowrank.NotFiniteError
			require.ErrorAs(t, werr, &nf, name)
			gerr := sampling.NewDecomposer(b).QBTo(new(lowrank.Factors), as[1], k, skip[1])
			require.Error(t, gerr, name)
			assert.Equal(t, werr.Error(), gerr.Error(), "%s: QBTo", name)
			dst := []*lowrank.Factors{{}, {}, {}}
			err := sampling.NewDecomposer(b).QBBatchTo(dst, as, k, skip)
			var be *lowrank.BatchError
			require.ErrorAs(t, err, &be, name)
			assert.NoError(t, be.Errs[0], name)
			assert.NoError(t, be.Errs[2], name)
			require.Error(t, be.Errs[1], name)
			assert.Equal(t, werr.Error(), be.Errs[1].Error(), "%s: QBBatchTo", name)
			for i, a := range as {
				dst[i].Free(b)
				b.Free(a)
			}
		}
	}
}
