package gpucheck

import (
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

// TestDeviceSkipErrorEstimate checks Config.SkipErrorEstimate on the
// device, for a batch of bf16 activations of two shapes and for single
// compressions: the stored factors reconstruct bit for bit as the
// default's, RelError is NaN, and a batch makes two host
// synchronisations where the default makes three.
func TestDeviceSkipErrorEstimate(t *testing.T) {
	b := open(t)
	const L, k = 4096, 16
	names := []string{"a", "b", "c"}
	var xs []lowrank.Matrix
	for i, d := range []int{384, 384, 512} {
		x := upload(t, b, testmat.Incoherent(L, d, testmat.ActivationLike(d), uint64(40+i)), gpu.BFloat16)
		t.Cleanup(func() { b.Free(x) })
		xs = append(xs, x)
	}
	var recs [2][]*mat.Dense
	for v, skip := range []bool{false, true} {
		c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(k), Seed: 4,
			Precision: lowrank.BFloat16, SkipErrorEstimate: skip})
		require.NoError(t, err)
		ss, err := c.CompressBatch(names, xs) // warm-up
		require.NoError(t, err)
		for _, s := range ss {
			require.NoError(t, s.Release())
		}
		require.NoError(t, b.Synchronize())
		s0 := b.Syncs()
		ss, err = c.CompressBatch(names, xs)
		require.NoError(t, err)
		want := int64(3)
		if skip {
			want = 2
		}
		assert.Equal(t, want, b.Syncs()-s0, "skip %v: host synchronisations of the batch", skip)
		for _, s := range ss {
			recs[v] = append(recs[v], reconstruct(t, b, s))
			assert.Equal(t, skip, math.IsNaN(s.RelError()), "skip %v: RelError %v", skip, s.RelError())
			require.NoError(t, s.Release())
		}
		s, err := c.Compress("single", xs[2])
		require.NoError(t, err)
		recs[v] = append(recs[v], reconstruct(t, b, s))
		assert.Equal(t, skip, math.IsNaN(s.RelError()), "skip %v: RelError of Compress", skip)
		require.NoError(t, s.Release())
		c.Close()
	}
	for i := range recs[0] {
		assert.True(t, mat.Equal(recs[0][i], recs[1][i]), "item %d: the same factors", i)
	}
}
