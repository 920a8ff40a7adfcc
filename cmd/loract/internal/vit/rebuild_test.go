package vit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
)

// TestRebuiltStashes: each rebuilt stash's Reconstruct writes the tensor
// it stands for — x̂·γ + β, P·V, GELU(u), the forward's formulas, so
// exactly — into an empty destination and over a pre-sized one holding
// other values, and its WeightGradOutIn is gᵀ·X of that tensor, the
// product plainStash forms (so exactly as well).
func TestRebuiltStashes(t *testing.T) {
	seed := uint64(9)
	randDense := func(r, c int) *mat.Dense {
		seed++
		return testmat.Gaussian(r, c, seed)
	}
	const batch, heads, T, d = 2, 2, 3, 4
	L := batch * T
	ln := &LayerNorm{Name: "ln", Gamma: newParam("ln.g", 1, d), Beta: newParam("ln.b", 1, d)}
	ln.Gamma.W, ln.Beta.W = randDense(1, d), randDense(1, d)
	xhat := randDense(L, d)
	wantLN := mat.NewDense(L, d, nil)
	for i := 0; i < L; i++ {
		for j := 0; j < d; j++ {
			wantLN.Set(i, j, xhat.At(i, j)*ln.Gamma.W.At(0, j)+ln.Beta.W.At(0, j))
		}
	}
	p, v := randDense(batch*heads*T, T), randDense(L, d)
	wantAtt := mat.NewDense(L, d, nil)
	attentionOutput(wantAtt, p, v, batch, heads)
	u := randDense(L, d)
	wantGELU := mat.NewDense(L, d, nil)
	for i := 0; i < L; i++ {
		for j := 0; j < d; j++ {
			y, _ := gelu(u.At(i, j))
			wantGELU.Set(i, j, y)
		}
	}
	for _, tc := range []struct {
		name string
		s    Stash
		want *mat.Dense
	}{
		{"LayerNorm output", &lnOutput{t: &lnTape{xhat: plainStash{xhat}}, ln: ln, refs: 1}, wantLN},
		{"attention output", attnOutput{p: plainStash{p}, v: plainStash{v}, batch: batch, heads: heads}, wantAtt},
		{"GELU output", &geluOutput{u: plainStash{u}}, wantGELU},
	} {
		var empty mat.Dense
		require.NoError(t, tc.s.Reconstruct(&empty), tc.name)
		assert.True(t, mat.Equal(tc.want, &empty), "%s: into an empty destination", tc.name)
		sized := randDense(L, d)
		require.NoError(t, tc.s.Reconstruct(sized), tc.name)
		assert.True(t, mat.Equal(tc.want, sized), "%s: over a pre-sized one", tc.name)
		g := randDense(L, 2)
		var got, want mat.Dense
		require.NoError(t, tc.s.WeightGradOutIn(&got, g), tc.name)
		want.Mul(g.T(), tc.want)
		assert.True(t, mat.Equal(&want, &got), "%s: gᵀ·X", tc.name)
		require.NoError(t, tc.s.Release(), tc.name)
	}
}
