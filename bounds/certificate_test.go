package bounds

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// machEps is the machine epsilon of float64, 2⁻⁵².
const machEps = 0x1p-52

// roundoff is the absolute rounding allowance on a computed error or
// certificate of an m×n A: both are norms of quantities produced by
// backward-stable QR, products and SVD (Higham, Accuracy and Stability,
// §3.5, §19.3; the SVD of A to ε·‖A‖ by Weyl), so each is exact up to an
// absolute error of order ε·(m+n)·‖A‖_F.
func roundoff(m, n int, normA float64) float64 {
	return machEps * float64(m+n) * normA
}

type fixture struct {
	spec  testmat.Spectrum
	str   testmat.Structure
	a     *mat.Dense
	ex    *Exact
	sigma []float64
	normA float64
	m, n  int
}

func newFixture(t testing.TB, sp testmat.Spectrum, st testmat.Structure, m, n, k int, seed uint64) fixture {
	sigma := sp.Values(min(m, n), k)
	a := st.Matrix(m, n, sigma, seed)
	ex, err := NewExact(a)
	require.NoError(t, err)
	return fixture{spec: sp, str: st, a: a, ex: ex, sigma: sigma, normA: mat.Norm(a, 2), m: m, n: n}
}

// TestCertificateEveryDraw checks HMT Thm 9.1 (and its row-sampling and
// power-scheme forms) on every single draw, for both sketches, q = 0 and
// 1, over every spectrum × structure, on a tall and a wide shape (so both
// orientations of the core library are exercised), together with the
// Eckart–Young lower bounds.
func TestCertificateEveryDraw(t *testing.T) {
	const k, p, draws = 12, 3, 4
	l := k + p
	worst := math.Inf(-1) // largest (err − cert)/cert seen, for the log
	for _, sh := range []struct{ m, n int }{{160, 96}, {96, 160}} {
		for si, sp := range testmat.Spectra() {
			for ti, st := range testmat.Structures() {
				f := newFixture(t, sp, st, sh.m, sh.n, k, uint64(10*si+ti))
				tol := roundoff(sh.m, sh.n, f.normA)
				tauL := OptimalFrobenius(f.sigma, l)
				for q := 0; q <= 1; q++ {
					for d := range draws {
						seed := uint64(1000*d + 7)
						name := fmt.Sprintf("%d×%d %s %s q=%d seed=%d", sh.m, sh.n, sp.Name, st.Name, q, seed)
						for _, method := range []string{"rows", "gaussian"} {
							var tr Trial
							var err error
							if method == "rows" {
								tr, err = RowsTrial(f.a, f.ex, k, l, q, seed)
							} else {
								tr, err = GaussianTrial(f.a, f.ex, k, l, q, seed)
							}
							require.NoError(t, err)
							c := tr.Cert
							assert.LessOrEqual(t, tr.ErrF, c.Frobenius+tol, "%s %s: Frobenius certificate", name, method)
							assert.LessOrEqual(t, tr.ErrS, c.Spectral+tol, "%s %s: spectral certificate", name, method)
							assert.LessOrEqual(t, tr.ErrS, c.SpectralRoot+tol, "%s %s: HMT Thm 9.2 certificate", name, method)
							// Eckart–Young: no rank-ℓ projection beats τ_ℓ.
							assert.GreaterOrEqual(t, tr.ErrF, tauL-tol, "%s %s: Eckart–Young (Frobenius)", name, method)
							assert.GreaterOrEqual(t, tr.ErrS, f.sigma[l]-tol, "%s %s: Eckart–Young (spectral)", name, method)
							// The certificate is never below the optimum at rank k.
							// (τ_k of the computed singular values: the
							// certificate is built from them, to a few ε.)
							assert.GreaterOrEqual(t, c.Frobenius, OptimalFrobenius(f.ex.s, k)*(1-4*machEps), "%s %s: certificate ≥ τ_k", name, method)
							if !math.IsInf(c.Frobenius, 1) {
								worst = max(worst, (tr.ErrF-c.Frobenius)/c.Frobenius)
							}
							if tr.Row != nil {
								// The coherence form only loosens the exact form.
								assert.GreaterOrEqual(t, tr.Row.CoherenceFrobenius, c.Frobenius*(1-4*machEps), "%s: coherence form", name)
								assert.GreaterOrEqual(t, tr.Row.CoherenceSpectral, c.Spectral*(1-4*machEps), "%s: coherence form", name)
								assert.GreaterOrEqual(t, tr.Row.PinvNorm, 1-4*machEps, "%s: ‖(SU₁)†‖ ≥ 1", name)
							}
						}
						checkTruncated(t, f, k, l, q, seed, name, tol)
					}
				}
			}
		}
	}
	t.Logf("tightest draw: (error − certificate)/certificate = %.3g", worst)
}

// checkTruncated runs both methods at rank k with ℓ = k+p (the factors are
// truncated to rank k) and checks the truncation certificate and the
// Eckart–Young bound at rank k.
func checkTruncated(t *testing.T, f fixture, k, l, q int, seed uint64, name string, tol float64) {
	t.Helper()
	tauK := OptimalFrobenius(f.sigma, k)
	rq, d, err := rowsQB(f.a, k, &sampling.Options{Seed: seed, Oversample: l - k, PowerIters: q})
	require.NoError(t, err)
	ef, es := Residual(f.a, rq)
	rc := f.ex.ForSampling(&d, k, q)
	assert.LessOrEqual(t, ef, rc.TruncFrobenius+tol, "%s rows: truncated Frobenius certificate", name)
	assert.LessOrEqual(t, es, rc.TruncSpectral+tol, "%s rows: truncated spectral certificate", name)
	assert.GreaterOrEqual(t, ef, tauK-tol, "%s rows: Eckart–Young at rank k", name)
	assert.GreaterOrEqual(t, es, f.sigma[k]-tol, "%s rows: Eckart–Young at rank k (spectral)", name)

	gq, omega, trans, err := gaussianQB(f.a, k, &rsvd.Options{Seed: seed, Oversample: l - k, PowerIters: q})
	require.NoError(t, err)
	ef, es = Residual(f.a, gq)
	gc := f.ex.ForGaussian(omega, trans, k, q)
	assert.LessOrEqual(t, ef, gc.TruncFrobenius+tol, "%s gaussian: truncated Frobenius certificate", name)
	assert.LessOrEqual(t, es, gc.TruncSpectral+tol, "%s gaussian: truncated spectral certificate", name)
	assert.GreaterOrEqual(t, ef, tauK-tol, "%s gaussian: Eckart–Young at rank k", name)
}

// TestRowSamplingMatchesStructural checks the specialisation (theory.md,
// Theorem 1) against the general Thm 9.1 evaluation with the explicit test
// matrix Ω = Aᵀ·Sᵀ: two independent computations of the same number.
func TestRowSamplingMatchesStructural(t *testing.T) {
	const m, n, k = 90, 70, 8
	for si, sp := range testmat.Spectra()[:4] {
		f := newFixture(t, sp, testmat.Structures()[0], m, n, k, uint64(si))
		for q := 0; q <= 2; q++ {
			for _, l := range []int{k, k + 2, 3 * k} {
				idx := make([]int, l)
				for j := range idx {
					idx[j] = (7*j + 3*q + si) % m
				}
				rc := f.ex.RowSampling(idx, k, q)
				// Ω = Aᵀ·Sᵀ: column j is row idx[j] of A.
				omega := mat.NewDense(n, l, nil)
				for j, i := range idx {
					for c := 0; c < n; c++ {
						omega.Set(c, j, f.a.At(i, c))
					}
				}
				gc := f.ex.Structural(omega, k, q)
				require.True(t, rc.FullRank && gc.FullRank, "%s q=%d ℓ=%d", sp.Name, q, l)
				// Both evaluate W₁† for W₁ = Σ₁·U₁ᵀSᵀ (condition number
				// at most κ = (σ₁/σ_k)·‖(SU₁)†‖) with backward-stable
				// steps, so they agree to a relative ε·(m+n)·κ.
				kappa := f.sigma[0] / f.sigma[k-1] * rc.PinvNorm
				rel := machEps * float64(m+n) * kappa
				assert.InEpsilon(t, gc.Frobenius, rc.Frobenius, rel, "%s q=%d ℓ=%d Frobenius", sp.Name, q, l)
				assert.InEpsilon(t, gc.Spectral, rc.Spectral, rel, "%s q=%d ℓ=%d spectral", sp.Name, q, l)
				assert.InEpsilon(t, gc.SpectralRoot, rc.SpectralRoot, rel, "%s q=%d ℓ=%d root", sp.Name, q, l)
				assert.InEpsilon(t, f.ex.PinvNorm(idx, k), rc.PinvNorm, rel, "%s PinvNorm", sp.Name)
			}
		}
	}
}

// TestCertificateExactCases checks the cases where the certificate is
// known in closed form.
func TestCertificateExactCases(t *testing.T) {
	const m, n = 50, 40
	sigma := testmat.PowerLaw(min(m, n), 1, 0)
	a := testmat.Haar(m, n, sigma, 3)
	ex, err := NewExact(a)
	require.NoError(t, err)

	// Ω = V₁ exactly: Ω₂ = 0, so the certificate is the optimum.
	var v mat.Dense
	v.CloneFrom(ex.v.Slice(0, n, 0, 5))
	c := ex.Structural(&v, 5, 0)
	// Ω₂ = V₂ᵀV₁ is zero to about ε·√n, so the second term is ε-small
	// relative to σ₁: the certificate equals τ_k to ε·(m+n)·σ₁.
	assert.InDelta(t, OptimalFrobenius(sigma, 5), c.Frobenius, machEps*float64(m+n)*sigma[0])
	assert.InDelta(t, sigma[5], c.Spectral, machEps*float64(m+n)*sigma[0])

	// k = min(m, n): nothing is left out, the bound is 0.
	all := make([]int, m)
	for i := range all {
		all[i] = i
	}
	assert.Zero(t, ex.RowSampling(all, n, 0).Frobenius)

	// Fewer sampled rows than k: the theorem does not apply.
	rc := ex.RowSampling([]int{1, 2, 3}, 5, 0)
	assert.False(t, rc.FullRank)
	assert.True(t, math.IsInf(rc.Frobenius, 1) && math.IsInf(rc.PinvNorm, 1))

	// Coherent U = I (rows version): sampling rows that miss coordinate 0
	// leaves S·U₁ rank deficient.
	co := testmat.Coherent(m, n, sigma, true, 1)
	ec, err := NewExact(co)
	require.NoError(t, err)
	rc = ec.RowSampling([]int{5, 6, 7, 8, 9, 10, 11, 12}, 3, 0)
	assert.False(t, rc.FullRank)
	assert.True(t, math.IsInf(rc.Frobenius, 1))
	// Sampling exactly the rows 0..2 recovers the top directions: the
	// cross term U₂ᵀSᵀ vanishes and the bound is the optimum.
	rc = ec.RowSampling([]int{0, 1, 2}, 3, 0)
	assert.InDelta(t, OptimalFrobenius(sigma, 3), rc.Frobenius, machEps*float64(m+n)*sigma[0])
	assert.InDelta(t, 1, rc.PinvNorm, machEps*float64(m+n))
}

func TestCertificatePanics(t *testing.T) {
	a := testmat.Haar(20, 10, testmat.PowerLaw(10, 1, 0), 1)
	ex, err := NewExact(a)
	require.NoError(t, err)
	assert.PanicsWithError(t, "bounds: parameter out of range: k = 0, want 1 ≤ k ≤ min(m, n) = 10", func() {
		ex.RowSampling([]int{1, 2}, 0, 0)
	})
	assert.Panics(t, func() { ex.RowSampling([]int{1, 2}, 1, -1) })
	assert.Panics(t, func() { ex.RowSampling([]int{1, 20}, 1, 0) })
	assert.Panics(t, func() { ex.Structural(mat.NewDense(9, 3, nil), 1, 0) })
	assert.Panics(t, func() { GaussianFrobenius([]float64{3, 2, 1, 0.5, 0.1}, 2, 1) })
	assert.Panics(t, func() { GaussianFrobenius([]float64{1, 2, 3, 4, 5}, 2, 2) })
	assert.Panics(t, func() { GaussianSpectral([]float64{3, 2, 1, 0.5}, 2, 3) })
}

// TestInputsUnmodified checks that the certificates read their inputs only.
func TestInputsUnmodified(t *testing.T) {
	a := testmat.Haar(30, 20, testmat.PowerLaw(20, 1, 0), 2)
	ac := mat.DenseCopyOf(a)
	ex, err := NewExact(a)
	require.NoError(t, err)
	assert.True(t, mat.Equal(a, ac))
	omega := mat.NewDense(20, 6, nil)
	for i := 0; i < 20; i++ {
		for j := 0; j < 6; j++ {
			omega.Set(i, j, float64((3*i+j)%7)-3)
		}
	}
	oc := mat.DenseCopyOf(omega)
	idx := []int{4, 1, 9, 12, 0, 7}
	ic := append([]int(nil), idx...)
	vals := ex.Values()
	ex.Structural(omega, 4, 1)
	ex.RowSampling(idx, 4, 1)
	ex.T().Coherence(3)
	f, err := sampling.QB(a, 5, nil)
	require.NoError(t, err)
	Residual(a, f)
	IdentityError(a, f)
	ProbeBound(a, f, 2, rand.New(rand.NewPCG(1, 1)))
	assert.True(t, mat.Equal(a, ac))
	assert.True(t, mat.Equal(omega, oc))
	assert.Equal(t, ic, idx)
	assert.Equal(t, vals, ex.Values())
}

// TestCertificateNormalizers: Proposition 3 needs only range(Y) =
// range((AAᵀ)^q·A·Ω), so the certificate holds whatever rsvd's
// re-normalisation between products (QR, LU, none) for q = 2.
func TestCertificateNormalizers(t *testing.T) {
	const m, n, k, l, q = 120, 80, 8, 12, 2
	for si, sp := range testmat.Spectra()[:3] {
		f := newFixture(t, sp, testmat.Structures()[0], m, n, k, uint64(si))
		tol := roundoff(m, n, f.normA)
		for _, nz := range []rsvd.Normalizer{rsvd.QR, rsvd.LU, rsvd.None} {
			for d := range 3 {
				g, omega, trans, err := gaussianQB(f.a, l, &rsvd.Options{Seed: uint64(d), PowerIters: q, Normalizer: nz})
				require.NoError(t, err)
				ef, es := Residual(f.a, g)
				c := f.ex.ForGaussian(omega, trans, k, q)
				assert.LessOrEqual(t, ef, c.Frobenius+tol, "%s %v seed %d", sp.Name, nz, d)
				assert.LessOrEqual(t, es, c.Spectral+tol, "%s %v seed %d", sp.Name, nz, d)
				assert.LessOrEqual(t, es, c.SpectralRoot+tol, "%s %v seed %d", sp.Name, nz, d)
			}
		}
	}
}
