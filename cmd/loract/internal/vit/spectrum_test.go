package vit

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// TestSavedSpectra: one spectrum per distinct tensor of the compressible
// set (the tensor q, k and v read is one), named by the layers that saved
// it, with min(L, d) descending singular values whose squares sum to the
// tensor's ‖X‖_F².
func TestSavedSpectra(t *testing.T) {
	cfg := Config{Side: 28, Patch: 14, Dim: 8, Heads: 2, MLP: 12, Depth: 2, Classes: 10, Seed: 1}
	m := New(cfg)
	const batch = 3
	rng := rand.New(rand.NewPCG(1, 2))
	px := make([]float64, batch*28*28)
	for i := range px {
		px[i] = rng.Float64()
	}
	got, err := SavedSpectra(m, px, batch)
	require.NoError(t, err)

	// The same forward pass, keeping ‖X‖_F² of each distinct tensor.
	type seen struct {
		x     *mat.Dense
		names []string
		norm2 float64
	}
	var want []*seen
	keep := func(layer string, x *mat.Dense) (Stash, error) {
		for _, s := range want {
			if s.x == x {
				s.names = append(s.names, layer)
				return Plain(layer, x)
			}
		}
		n := mat.Norm(x, 2)
		want = append(want, &seen{x: x, names: []string{layer}, norm2: n * n})
		return Plain(layer, x)
	}
	_, err = m.Forward(px, batch, Run{Main: keep, Rest: Plain}, &Tape{})
	require.NoError(t, err)

	require.Len(t, got, len(want))
	names := map[string]bool{}
	for i, ls := range got {
		assert.Equal(t, want[i].names, ls.Layers)
		r, c := want[i].x.Dims()
		assert.Equal(t, [2]int{r, c}, [2]int{ls.Rows, ls.Cols})
		require.Len(t, ls.Values, min(r, c))
		var ss float64
		for j, v := range ls.Values {
			ss += v * v
			if j > 0 {
				assert.LessOrEqual(t, v, ls.Values[j-1])
			}
		}
		// Σσ² = ‖X‖_F², to the SVD's backward error ε·min(L, d)·‖X‖².
		assert.InEpsilon(t, want[i].norm2, ss, 1e-12, ls.Layers)
		for _, n := range ls.Layers {
			assert.False(t, names[n], "%s listed twice", n)
			names[n] = true
		}
	}
	// Each block saves at least its q/k/v input, o, fc1, GELU and fc2
	// inputs: five distinct tensors.
	assert.GreaterOrEqual(t, len(got), 5*cfg.Depth)

	_, err = SavedSpectra(m, px[:10], 1)
	assert.ErrorContains(t, err, "fewer than 1 images")
	_, err = SavedSpectra(m, px, 0)
	assert.Error(t, err)
}
