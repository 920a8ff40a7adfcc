package gpucheck

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

func relDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(a, 2)
}

// TestCompressOnGPU compresses one activation with the decomposition on
// the GPU and on the CPU, with the same seed (so the same sampled rows),
// and compares what the handles give back.
func TestCompressOnGPU(t *testing.T) {
	b, err := gpu.Open(0, nil)
	if err != nil {
		t.Skip("no CUDA device: ", err)
	}
	defer b.Close()
	t.Logf("device %s", b.Name())

	const L, d, k = 2048, 128, 24
	x := testmat.To32(testmat.Incoherent(L, d, testmat.ActivationLike(d), 1))
	for _, dt := range []gpu.DType{gpu.Float32, gpu.BFloat16} {
		for _, m := range []activation.Method{activation.RowSampling, activation.Gaussian} {
			dx, err := b.UploadDense32(x, dt)
			require.NoError(t, err)
			cfg := activation.Config{Method: m, Rank: activation.Fixed(k), Precision: lowrank.BFloat16, MeasureError: true, Seed: 3}
			cc, err := activation.New(cfg)
			require.NoError(t, err)
			cfg.Backend = b
			gc, err := activation.New(cfg)
			require.NoError(t, err)
			sc, err := cc.Compress("x", x)
			require.NoError(t, err)
			sg, err := gc.Compress("x", dx)
			require.NoError(t, err)
			assert.Equal(t, sc.Rank(), sg.Rank())
			assert.Equal(t, sc.Bytes(), sg.Bytes())
			// Both errors are measured from bf16-stored factors: each lies
			// within u·(1+√k) of the unrounded error (u = 2⁻⁸, see
			// activation's TestPrecision), and a bf16 input adds u·‖X‖ once
			// more; float32 against float64 arithmetic is far below that.
			u := lowrank.BFloat16.UnitRoundoff()
			tol := 2*u*(1+math.Sqrt(k)) + u
			assert.InDelta(t, sc.RelError(), sg.RelError(), tol, "%v %v", dt, m)
			t.Logf("%v input, %v: relative error CPU %.4f GPU %.4f", dt, m, sc.RelError(), sg.RelError())

			var rc, rg mat.Dense
			require.NoError(t, sc.Reconstruct(&rc))
			require.NoError(t, sg.Reconstruct(&rg))
			// Two approximations of X, each within its error of X.
			assert.Less(t, relDiff(&rc, &rg), sc.RelError()+sg.RelError()+tol)

			g := mat.NewDense(L, 8, nil)
			for i := 0; i < L; i++ {
				g.Set(i, i%8, 1)
			}
			var wg, want mat.Dense
			require.NoError(t, sg.WeightGradOutIn(&wg, g))
			want.Mul(g.T(), &rg)
			// The same stored factors multiplied in another order, in
			// float64: ε·(L+d).
			assert.Less(t, relDiff(&want, &wg), 1e-12)
			require.NoError(t, sg.Release())
			require.NoError(t, sc.Release())
			assert.Zero(t, gc.Stats().Total.Live)
			gc.Close()
			cc.Close()
		}
	}

	// A NaN in a device activation is an error naming the layer.
	y := testmat.To32(testmat.Incoherent(256, 32, testmat.Flat(32), 2))
	y.Data[40*32+7] = float32(math.NaN())
	dy, err := b.UploadDense32(y, gpu.Float32)
	require.NoError(t, err)
	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(4)})
	require.NoError(t, err)
	_, err = c.Compress("blk2.fc2", dy)
	require.Error(t, err)
	var le *activation.LayerError
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Equal(t, "blk2.fc2", le.Layer)
	assert.ErrorIs(t, err, lowrank.ErrNotFinite)

	// Several workers would share the device's stream.
	_, err = activation.New(activation.Config{Backend: b, Workers: 2})
	assert.ErrorIs(t, err, lowrank.ErrOption)
}
