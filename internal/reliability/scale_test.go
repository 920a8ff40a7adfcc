package reliability

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

const eps = 0x1p-52

// long runs the full counts of the randomized property tests (10,000
// rank-deficient matrices; about 3 minutes on 2 cores):
// go test ./internal/reliability -args -reliability.long.
var long = flag.Bool("reliability.long", false, "run the full counts of the property tests")

// method is one randomized entry point: it returns the host QB of a and
// the error it reported (from ‖A‖² − ‖B‖²).
type method struct {
	name string
	qb   func(a mat.Matrix, k int, seed uint64) (*lowrank.QB, float64, error)
}

func fromFactors(be lowrank.Backend, run func(*lowrank.Factors) error) (*lowrank.QB, float64, error) {
	var f lowrank.Factors
	if err := run(&f); err != nil {
		return nil, 0, err
	}
	q, err := f.ToQB(be)
	return q, f.RelError(), err
}

func methods() []method {
	be := cpu.Backend{}
	ms := []method{
		{"sampling.QB", func(a mat.Matrix, k int, seed uint64) (*lowrank.QB, float64, error) {
			return fromFactors(be, func(f *lowrank.Factors) error {
				return sampling.NewDecomposer(be).QBTo(f, a, k, &sampling.Options{Seed: seed, Oversample: 3, PowerIters: 1})
			})
		}},
		{"sampling.QB/gather-norm", func(a mat.Matrix, k int, seed uint64) (*lowrank.QB, float64, error) {
			// The fused first read (lowrank.GatherNormer) on the host.
			return fromFactors(be, func(f *lowrank.Factors) error {
				return sampling.NewDecomposer(fusedCPU{}).QBTo(f, a, k, &sampling.Options{Seed: seed, Oversample: 3, PowerIters: 1})
			})
		}},
		{"sampling.QB/length-squared", func(a mat.Matrix, k int, seed uint64) (*lowrank.QB, float64, error) {
			return fromFactors(be, func(f *lowrank.Factors) error {
				return sampling.NewDecomposer(be).QBTo(f, a, k, &sampling.Options{Seed: seed, Sampler: sampling.LengthSquared})
			})
		}},
		{"sampling.Nystrom", func(a mat.Matrix, k int, seed uint64) (*lowrank.QB, float64, error) {
			return fromFactors(be, func(f *lowrank.Factors) error {
				return sampling.NewDecomposer(be).NystromTo(f, a, k, &sampling.Options{Seed: seed, Oversample: 2})
			})
		}},
	}
	for _, nz := range []rsvd.Normalizer{rsvd.QR, rsvd.LU, rsvd.None} {
		ms = append(ms, method{"rsvd.QB/" + nz.String(), func(a mat.Matrix, k int, seed uint64) (*lowrank.QB, float64, error) {
			return fromFactors(be, func(f *lowrank.Factors) error {
				return rsvd.NewDecomposer(be).QBTo(f, a, k, &rsvd.Options{Seed: seed, Oversample: 4, PowerIters: 2, Normalizer: nz})
			})
		}})
	}
	return ms
}

// TestScaleInvariance: for every method, the QB of s·A is s times the QB of
// A for s from 1e-300 to 1e300 (where s·A is finite): the same draw gives
// the same reconstruction to rounding, and the reported error equals the
// measured one. A power of two scales exactly, so the factors of 2^e·A are
// bit for bit 2^e times those of A; other s add one rounding per element.
func TestScaleInvariance(t *testing.T) {
	sigma := testmat.PowerLaw(36, 1.5, 0)
	a := testmat.Incoherent(60, 36, sigma, 1)
	const k = 6
	for _, m := range methods() {
		f0, rep0, err := m.qb(a, k, 7)
		require.NoError(t, err, m.name)
		var r0 mat.Dense
		f0.Reconstruct(&r0)
		e0 := lowrank.RelError(a, f0)
		for _, s := range []float64{1e-300, 1e-200, 0x1p-400, 1e-100, 1e-20, 1e20, 1e100, 0x1p400, 1e200, 1e300} {
			var as mat.Dense
			as.Scale(s, a)
			f, rep, err := m.qb(&as, k, 7)
			require.NoError(t, err, "%s s=%g", m.name, s)
			var r mat.Dense
			f.Reconstruct(&r)
			r.Scale(1/s, &r)
			// One rounding of s·a_ij (ε), propagated through the
			// decomposition with its backward error O((m+n)·ℓ·ε):
			// 1e-12 relative to ‖A‖ holds for these sizes. Without
			// normalisation, the q = 2 power iterations give the sketch
			// the condition number (σ₁/σ_ℓ)^(2q+1) = 10^7.5 here, which
			// multiplies that perturbation in the computed basis.
			tol := 1e-12
			if m.name == "rsvd.QB/none" {
				tol = math.Pow(sigma[0]/sigma[k+4-1], 5) * float64(60+36) * eps
			}
			assert.Less(t, relDiff(&r0, &r), tol, "%s s=%g: Q·B(s·A)/s ≠ Q·B(A)", m.name, s)
			e := lowrank.RelError(&as, f)
			assert.InDelta(t, e0, e, tol, "%s s=%g: error", m.name, s)
			assert.InDelta(t, rep0, rep, 1e-9, "%s s=%g: reported error", m.name, s)
			assert.InDelta(t, e*e, rep*rep, 64*float64(60+36)*eps, "%s s=%g: reported ≠ measured", m.name, s)
		}
	}
}

func relDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(a, 2)
}

// TestActivationScaleInvariance: the adapter's handle of s·X reconstructs
// s·X̃ and reports the same error, from 1e-30 to 1e30 in float32 storage
// (float32's range) and 1e-300 to 1e300 in float64.
func TestActivationScaleInvariance(t *testing.T) {
	x := testmat.Incoherent(120, 24, testmat.ActivationLike(24), 2)
	for _, c := range []struct {
		p      lowrank.Precision
		scales []float64
		tol    float64 // the storage rounding, (1+√k)·u, relative
	}{
		{lowrank.Float64, []float64{1e-300, 1e-100, 1e100, 1e300}, 1e-12},
		{lowrank.Float32, []float64{1e-30, 1e-10, 1e10, 1e30}, 4 * 0x1p-24},
	} {
		// A fresh compressor for each input: its first call draws from the
		// stream of (Seed, 0), the same draw for every scale.
		compress := func(x mat.Matrix) (*activation.Saved, error) {
			comp, err := activation.New(activation.Config{Rank: activation.Fixed(4), Precision: c.p, Seed: 3})
			require.NoError(t, err)
			return comp.Compress("x", x)
		}
		s0, err := compress(x)
		require.NoError(t, err)
		var r0 mat.Dense
		require.NoError(t, s0.Reconstruct(&r0))
		for _, s := range c.scales {
			var xs mat.Dense
			xs.Scale(s, x)
			h, err := compress(&xs)
			require.NoError(t, err, "%v s=%g", c.p, s)
			var r mat.Dense
			require.NoError(t, h.Reconstruct(&r))
			r.Scale(1/s, &r)
			assert.Less(t, relDiff(&r0, &r), c.tol, "%v s=%g", c.p, s)
			assert.InDelta(t, s0.RelError(), h.RelError(), 1e-9, "%v s=%g", c.p, s)
		}
	}
}

// TestRankDeficient: random matrices of every rank 0…min(m, n), shapes up
// to 200×200, decomposed by every randomized method at a random rank k:
// the QB oracle (testmat.CheckQB: finite orthonormal factors, error ≥ the
// Eckart–Young optimum, reported error = measured), and exact recovery
// (error ≤ 1e-10) whenever k ≥ rank — with ℓ ≥ rank, the sketch of a
// generic (incoherent) rank-r matrix spans its range. 300 matrices per
// method by default, 10,000 under -reliability.long.
func TestRankDeficient(t *testing.T) {
	n := 300
	if *long {
		n = 10000
	}
	if testing.Short() {
		n = 40
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, m := range methods() {
		t.Run(m.name, func(t *testing.T) {
			for trial := range n {
				rows, cols := 1+rng.IntN(200), 1+rng.IntN(200)
				if trial%3 != 0 { // most trials small, for speed
					rows, cols = 1+rng.IntN(40), 1+rng.IntN(40)
				}
				r := rng.IntN(min(rows, cols) + 1)
				a := mat.NewDense(rows, cols, nil)
				if r > 0 {
					a.Mul(testmat.Gaussian(rows, r, rng.Uint64()), testmat.Gaussian(r, cols, rng.Uint64()))
				}
				k := 1 + rng.IntN(min(rows, cols))
				f, reported, err := m.qb(a, k, rng.Uint64())
				if err != nil {
					t.Fatalf("%d×%d rank %d k=%d: %v", rows, cols, r, k, err)
				}
				sub := &failOnce{TB: t, what: fmt.Sprintf("trial %d: %d×%d rank %d k=%d", trial, rows, cols, r, k)}
				testmat.CheckQB(sub, a, f, reported)
				// Exact recovery: the sketch spans range(A) when ℓ ≥ k ≥ r
				// (generic Gaussian factors are incoherent), and the
				// backward error of the products and QR is ≲ (m+n)·ℓ·ε·κ,
				// κ(A_r) of Gaussian factors ≤ 10³ here: 1e-10.
				if k >= r {
					if e := lowrank.RelError(a, f); e > 1e-10 {
						sub.Errorf("rank %d ≤ k = %d, error %g", r, k, e)
					}
				}
				if sub.failed {
					return
				}
			}
		})
	}
}

// failOnce records the context of a failing trial once.
type failOnce struct {
	testing.TB
	what   string
	failed bool
}

func (f *failOnce) Errorf(format string, args ...any) {
	f.TB.Helper()
	f.failed = true
	f.TB.Errorf(f.what+": "+format, args...)
}

func (f *failOnce) Fatalf(format string, args ...any) {
	f.TB.Helper()
	f.failed = true
	f.TB.Fatalf(f.what+": "+format, args...)
}

// fusedCPU is the CPU backend with the optional lowrank.GatherNormer
// capability, so that the Decomposer's fused first read runs here too.
type fusedCPU struct{ cpu.Backend }

func (f fusedCPU) GatherNorm(dst, a lowrank.Matrix, trans bool, idx []int) (float64, float64, error) {
	if err := f.Gather(dst, a, trans, idx); err != nil {
		return 0, 0, err
	}
	return f.SquaredNorm(a, 1)
}
