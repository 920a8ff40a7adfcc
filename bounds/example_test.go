package bounds_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/bounds"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// withSpectrum returns the m×n matrix U·diag(σ)·Vᵀ with U and V the
// orthonormal factors of QRs of seeded Gaussian matrices (Haar-random
// bases), so that its singular values are exactly σ.
func withSpectrum(m, n int, sigma []float64, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, 1))
	basis := func(p, r int) *mat.Dense {
		g := mat.NewDense(p, r, nil)
		for i := range p {
			for j := range r {
				g.Set(i, j, rng.NormFloat64())
			}
		}
		var qr mat.QR
		qr.Factorize(g)
		var q mat.Dense
		qr.QTo(&q)
		return mat.DenseCopyOf(q.Slice(0, p, 0, r))
	}
	r := len(sigma)
	u, v := basis(m, r), basis(n, r)
	var us, a mat.Dense
	us.Mul(u, mat.NewDiagDense(r, sigma))
	a.Mul(&us, v.T())
	return &a
}

// powerLaw returns σ_j = j^−alpha, j = 1..n.
func powerLaw(n int, alpha float64) []float64 {
	s := make([]float64, n)
	for j := range s {
		s[j] = math.Pow(float64(j+1), -alpha)
	}
	return s
}

// A caller who ran the LoRAct decomposition computes the certificate of
// the exact rows it drew, and compares it with the measured error and the
// optimum.
func ExampleExact_ForSampling() {
	sigma := powerLaw(60, 1) // σ_j = 1/j
	a := withSpectrum(100, 60, sigma, 1)
	ex, err := bounds.NewExact(a)
	if err != nil {
		panic(err)
	}
	const k, l = 8, 12
	d := sampling.NewDecomposer(cpu.Backend{})
	var fd lowrank.Factors
	if err := d.QBTo(&fd, a, l, &sampling.Options{Seed: 7}); err != nil { // width-ℓ sketch
		panic(err)
	}
	f, err := fd.ToQB(cpu.Backend{})
	if err != nil {
		panic(err)
	}
	draw := d.Draw()
	errF, _ := bounds.Residual(a, f)
	c := ex.ForSampling(&draw, k, 0)
	opt := bounds.OptimalFrobenius(sigma, k)
	fmt.Println("columns sampled:", draw.Trans, "count:", len(draw.Indices))
	fmt.Println("error ≤ certificate:", errF <= c.Frobenius)
	fmt.Printf("certificate ÷ optimal %.1f, coherence form ÷ optimal ≥ it: %v\n",
		c.Frobenius/opt, c.CoherenceFrobenius >= c.Frobenius)
	// Output:
	// columns sampled: true count: 12
	// error ≤ certificate: true
	// certificate ÷ optimal 1.1, coherence form ÷ optimal ≥ it: true
}

// The Gaussian bounds of HMT §10 for a spectrum σ_j = 1/j.
func ExampleGaussianFrobenius() {
	sigma := powerLaw(100, 1)
	k, p := 10, 5
	opt := bounds.OptimalFrobenius(sigma, k)
	fmt.Printf("Thm 10.5 ÷ optimal: %.3f\n", bounds.GaussianFrobenius(sigma, k, p)/opt)
	fmt.Printf("Thm 10.6 ÷ σ_{k+1}: %.3f\n", bounds.GaussianSpectral(sigma, k, p)/sigma[k])
	fmt.Printf("Cor 10.10 (q=2) ÷ σ_{k+1}: %.3f\n", bounds.GaussianPower(sigma, k, p, 2)/sigma[k])
	// Output:
	// Thm 10.5 ÷ optimal: 1.871
	// Thm 10.6 ÷ σ_{k+1}: 9.342
	// Cor 10.10 (q=2) ÷ σ_{k+1}: 1.401
}

// The certificate of the exact Gaussian test matrix an rsvd Decomposer
// call drew.
func ExampleExact_ForGaussian() {
	sigma := make([]float64, 40)
	for j := range sigma {
		sigma[j] = math.Exp(-0.3 * float64(j))
	}
	a := withSpectrum(40, 70, sigma, 2)
	ex, err := bounds.NewExact(a)
	if err != nil {
		panic(err)
	}
	d := rsvd.NewDecomposer(cpu.Backend{})
	var fd lowrank.Factors
	if err := d.QBTo(&fd, a, 9, &rsvd.Options{Seed: 3, PowerIters: 1}); err != nil {
		panic(err)
	}
	f, err := fd.ToQB(cpu.Backend{})
	if err != nil {
		panic(err)
	}
	var omega mat.Dense
	trans, err := d.TestMatrix(&omega)
	if err != nil {
		panic(err)
	}
	_, errS := bounds.Residual(a, f)
	c := ex.ForGaussian(&omega, trans, 6, 1)
	r, cols := omega.Dims()
	fmt.Println("Ω is", r, "×", cols, "trans:", trans)
	fmt.Println("spectral error ≤ both certificates:", errS <= c.Spectral && errS <= c.SpectralRoot)
	// Output:
	// Ω is 70 × 9 trans: false
	// spectral error ≤ both certificates: true
}

// A-posteriori checks of a decomposition without the SVD of A: the exact
// Frobenius error from the norms, and HMT's probe bound on the spectral error.
func ExampleProbeBound() {
	a := withSpectrum(80, 50, powerLaw(50, 2), 4)
	f, err := sampling.QB(a, 10, &sampling.Options{Seed: 1})
	if err != nil {
		panic(err)
	}
	errF, errS := bounds.Residual(a, f)
	id := bounds.IdentityError(a, f)
	pb := bounds.ProbeBound(a, f, 10, rand.New(rand.NewPCG(1, 2)))
	fmt.Printf("identity matches the direct error: %v\n", math.Abs(id-errF) < 1e-12)
	fmt.Printf("probe bound ≥ spectral error: %v\n", pb >= errS)
	// Output:
	// identity matches the direct error: true
	// probe bound ≥ spectral error: true
}

// How many uniformly sampled rows the coherence lemma asks for.
func ExampleUniformSampleSize() {
	l := bounds.UniformSampleSize(1.5, 16, 0.1, 0.5)
	// 2·1.5·16·ln(16/0.1)/0.5² = 974.4; 4096/(0.5·975) = 8.40.
	fmt.Printf("rows: %d, ‖(SU₁)†‖² ≤ %.2f\n", l, bounds.UniformPinvBound(4096, l, 0.5))
	// Output:
	// rows: 975, ‖(SU₁)†‖² ≤ 8.40
}
