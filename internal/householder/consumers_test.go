package householder_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// TestQBRankOneWithZeros is the regression test of the CPU backend's thin
// QR (cpu.householderQR, which calls QR): the QB decompositions of the
// audit, k = 150 of a 180×400 rank-1 matrix, here with a third of the
// entries of both factors exactly zero. The sketch is rank-deficient, so
// CholeskyQR falls back to Householder QR, which with gonum's
// lapack64.Geqrf/Orgqr (blocked for l > 128, through the defective Dlarft)
// gave ‖QᵀQ − I‖ up to 6.8e-2 on these 40 draws.
func TestQBRankOneWithZeros(t *testing.T) {
	const m, n, k = 180, 400, 150
	rng := rand.New(rand.NewPCG(1, 1))
	sparse := func(l int) *mat.VecDense {
		v := mat.NewVecDense(l, nil)
		for i := range l {
			if rng.IntN(3) != 0 {
				v.SetVec(i, rng.NormFloat64())
			}
		}
		return v
	}
	// Householder QR's Q is orthonormal to O(m·k·ε) in the worst case
	// (Higham, Thm. 19.4); 4·m·k·ε ≈ 2.4e-11, far below the defect's
	// 1e-4…1e-1 and far above the observed 2e-15.
	tol := 4 * float64(m*k) * 0x1p-52
	for it := range 40 {
		var a mat.Dense
		a.Outer(1, sparse(m), sparse(n))
		f, err := sampling.QB(&a, k, &sampling.Options{Seed: uint64(it)})
		require.NoError(t, err)
		assert.LessOrEqual(t, testmat.OrthError(f.Q()), tol, "sampling.QB, draw %d", it)
		g, err := rsvd.QB(&a, k, nil)
		require.NoError(t, err)
		assert.LessOrEqual(t, testmat.OrthError(g.Q()), tol, "rsvd.QB, draw %d", it)
	}
}
