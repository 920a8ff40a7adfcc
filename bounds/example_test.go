package bounds_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/bounds"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// A caller who ran sampling.QB computes the certificate of the exact rows
// it drew, and compares it with the measured error and the optimum.
func ExampleExact_ForSampling() {
	sigma := testmat.PowerLaw(60, 1, 0) // σ_j = 1/j
	a := testmat.Haar(100, 60, sigma, 1)
	ex, err := bounds.NewExact(a)
	if err != nil {
		panic(err)
	}
	const k, l = 8, 12
	var d sampling.Draw
	f, err := sampling.QB(a, l, &sampling.Options{Seed: 7, Draw: &d}) // width-ℓ sketch
	if err != nil {
		panic(err)
	}
	errF, _ := bounds.Residual(a, f)
	c := ex.ForSampling(&d, k, 0)
	opt := bounds.OptimalFrobenius(sigma, k)
	fmt.Println("columns sampled:", d.Trans, "count:", len(d.Indices))
	fmt.Println("error ≤ certificate:", errF <= c.Frobenius)
	fmt.Printf("certificate ÷ optimal %.1f, coherence form ÷ optimal ≥ it: %v\n",
		c.Frobenius/opt, c.CoherenceFrobenius >= c.Frobenius)
	// Output:
	// columns sampled: true count: 12
	// error ≤ certificate: true
	// certificate ÷ optimal 1.4, coherence form ÷ optimal ≥ it: true
}

// The Gaussian bounds of HMT §10 for a spectrum σ_j = 1/j.
func ExampleGaussianFrobenius() {
	sigma := testmat.PowerLaw(100, 1, 0)
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

// The certificate of the exact Gaussian test matrix an rsvd.QB call drew.
func ExampleExact_ForGaussian() {
	sigma := testmat.Exponential(40, 0.3)
	a := testmat.Haar(40, 70, sigma, 2)
	ex, err := bounds.NewExact(a)
	if err != nil {
		panic(err)
	}
	var omega mat.Dense
	var trans bool
	f, err := rsvd.QB(a, 9, &rsvd.Options{Seed: 3, PowerIters: 1, TestMatrix: &omega, TransOut: &trans})
	if err != nil {
		panic(err)
	}
	_, errS := bounds.Residual(a, f)
	c := ex.ForGaussian(&omega, trans, 6, 1)
	fmt.Println("Ω is", omega.RawMatrix().Rows, "×", omega.RawMatrix().Cols, "trans:", trans)
	fmt.Println("spectral error ≤ both certificates:", errS <= c.Spectral && errS <= c.SpectralRoot)
	// Output:
	// Ω is 70 × 9 trans: false
	// spectral error ≤ both certificates: true
}

// A-posteriori checks of a decomposition without the SVD of A: the exact
// Frobenius error from the norms, and HMT's probe bound on the spectral error.
func ExampleProbeBound() {
	sigma := testmat.PowerLaw(50, 2, 0)
	a := testmat.Haar(80, 50, sigma, 4)
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
