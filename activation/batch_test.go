package activation

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// TestCompressBatch checks that CompressBatch gives what Compress gives
// called in the same order (the same seeds, factors, accounting and
// errors), synchronously and with workers: a NaN item fails alone (nil
// handle, its *LayerError in the joined error; with workers, from its
// handle and Join), a nil activation is refused at once, and the other
// handles reconstruct exactly as Compress's.
func TestCompressBatch(t *testing.T) {
	const n = 6
	xs := make([]lowrank.Matrix, n)
	layers := make([]string, n)
	for i := range xs {
		d := 16 + 8*(i%2) // two shapes
		x := testmat.To32(testmat.Incoherent(96, d, testmat.ActivationLike(d), uint64(i)))
		if i == 3 {
			x.Data[4*d+1] = float32(math.NaN())
		}
		xs[i], layers[i] = x, string(rune('a'+i))
	}
	withNil := append(append([]lowrank.Matrix(nil), xs[:2]...), append([]lowrank.Matrix{nil}, xs[2:]...)...)
	nilLayers := append(append([]string(nil), layers[:2]...), append([]string{"nil"}, layers[2:]...)...)
	for _, workers := range []int{0, 2} {
		cfg := Config{Rank: Fixed(4), Workers: workers, Seed: 9}
		one, err := New(cfg)
		require.NoError(t, err)
		want := make([]*Saved, len(withNil))
		for i, x := range withNil {
			want[i], _ = one.Compress(nilLayers[i], x)
		}
		if jerr := one.Join(); workers > 0 {
			require.Error(t, jerr)
		}
		batch, err := New(cfg)
		require.NoError(t, err)
		got, berr := batch.CompressBatch(nilLayers, withNil)
		require.Len(t, got, len(withNil))
		assert.ErrorIs(t, berr, lowrank.ErrEmpty, "the nil activation, at once")
		jerr := batch.Join()
		for i := range withNil {
			switch {
			case i == 2:
				assert.Nil(t, got[i])
			case i == 4: // xs[3], the NaN
				if workers == 0 {
					assert.Nil(t, got[i])
					assert.ErrorIs(t, berr, lowrank.ErrNotFinite)
				} else {
					assert.ErrorIs(t, got[i].Wait(), lowrank.ErrNotFinite)
					assert.ErrorIs(t, jerr, lowrank.ErrNotFinite)
				}
				var le *LayerError
				require.True(t, errors.As(errors.Join(berr, jerr), &le))
			default:
				require.NotNil(t, got[i], "item %d", i)
				require.NoError(t, got[i].Wait())
				var a, b mat.Dense
				require.NoError(t, want[i].Reconstruct(&a))
				require.NoError(t, got[i].Reconstruct(&b))
				assert.True(t, mat.Equal(&a, &b), "workers %d item %d: Compress's factors", workers, i)
				assert.Equal(t, want[i].Bytes(), got[i].Bytes())
			}
		}
		ws, gs := one.Stats().Total, batch.Stats().Total
		if workers > 0 {
			// Asynchronous completions come in any order: the last
			// relative error and the summation order of the mean differ.
			assert.InDelta(t, ws.MeanRelError, gs.MeanRelError, 1e-15)
			ws.RelError, ws.MeanRelError = gs.RelError, gs.MeanRelError
		}
		assert.Equal(t, ws, gs, "workers %d: the same accounting", workers)
		assert.Panics(t, func() { _, _ = batch.CompressBatch([]string{"a"}, nil) })
		one.Close()
		batch.Close()
	}
}
