package bounds

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// TestEstimators checks the a-posteriori estimators against the directly
// computed error: the ‖A‖²−‖B‖² identity to its cancellation limit, and
// HMT's probe bound on every draw (r = 10 probes: each failure has
// probability ≤ 10⁻¹⁰).
func TestEstimators(t *testing.T) {
	const k = 10
	rng := rand.New(rand.NewPCG(3, 4))
	for si, sp := range testmat.Spectra() {
		for _, sh := range []struct{ m, n int }{{120, 80}, {80, 120}} {
			sigma := sp.Values(min(sh.m, sh.n), k)
			a := testmat.Haar(sh.m, sh.n, sigma, uint64(si))
			for d := range 3 {
				var fs []*lowrank.QB
				f, err := sampling.QB(a, k, &sampling.Options{Seed: uint64(d)})
				require.NoError(t, err)
				fs = append(fs, f)
				f, err = rsvd.QB(a, k, &rsvd.Options{Seed: uint64(d), Oversample: 3})
				require.NoError(t, err)
				fs = append(fs, f)
				for _, f := range fs {
					ef, es := Residual(a, f)
					nrm := lowrank.SquaredFrobenius(a)
					// ‖A‖² and ‖B‖² each carry a relative rounding error
					// ≈ ε·(m+n); the difference of squares loses it
					// absolutely: |err² − err̂²| ≤ 2ε·(m+n)·‖A‖_F².
					id := IdentityError(a, f)
					assert.InDelta(t, ef*ef, id*id, 2*machEps*float64(sh.m+sh.n)*nrm, "%s identity", sp.Name)
					pb := ProbeBound(a, f, 10, rng)
					assert.GreaterOrEqual(t, pb, es, "%s probe bound", sp.Name)
				}
			}
		}
	}
}
