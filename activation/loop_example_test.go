package activation_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/lowrank"
)

func gelu(u float64) float64 { return 0.5 * u * (1 + math.Tanh(0.7978845608028654*(u+0.044715*u*u*u))) }

func geluPrime(u float64) float64 {
	const c, a = 0.7978845608028654, 0.044715
	t := math.Tanh(c * (u + a*u*u*u))
	return 0.5*(1+t) + 0.5*u*(1-t*t)*c*(1+3*a*u*u)
}

func randn(rng *rand.Rand, r, c int, scale float64) *mat.Dense {
	m := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			m.Set(i, j, scale*rng.NormFloat64())
		}
	}
	return m
}

// A user's own training loop: a two-layer MLP y = GELU(x·W₁)·W₂ fitted to
// a teacher by gradient descent, its three saved activations compressed
// asynchronously and used in backward without ever storing them whole.
// docs/activation.md walks through it.
func ExampleCompressor_trainingLoop() {
	const L, d, m, o = 256, 32, 64, 4
	rng := rand.New(rand.NewPCG(1, 2))
	// Inputs of rank 6 plus noise, as activations tend to be.
	x := mat.NewDense(L, d, nil)
	x.Mul(randn(rng, L, 6, 1), randn(rng, 6, d, 1/math.Sqrt(6))) // entries ≈ N(0, 1)
	x.Add(x, randn(rng, L, d, 0.01))
	var target mat.Dense
	target.Mul(x, randn(rng, d, o, 0.2))
	w1, w2 := randn(rng, d, m, 1/math.Sqrt(d)), randn(rng, m, o, 1/math.Sqrt(m))

	c, err := activation.New(activation.Config{
		Rank: activation.Ratio(0.25), Precision: lowrank.BFloat16, Workers: 1, Seed: 1,
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	var first, last float64
	for step := 0; step < 200; step++ {
		// forward
		sx, err := c.Compress("fc1.in", x) // returns at once; x stays untouched until Join
		if err != nil {
			panic(err)
		}
		var u, h, y mat.Dense
		u.Mul(x, w1)
		su, err := c.Compress("gelu.in", &u) // GELU's backward needs u
		if err != nil {
			panic(err)
		}
		h.Apply(func(_, _ int, v float64) float64 { return gelu(v) }, &u)
		sh, err := c.Compress("fc2.in", &h) // W₂'s gradient needs h
		if err != nil {
			panic(err)
		}
		y.Mul(&h, w2)
		var gy mat.Dense // loss = ½‖y − target‖²/L, gy = (y − target)/L
		gy.Sub(&y, &target)
		loss := 0.5 * mat.Norm(&gy, 2) * mat.Norm(&gy, 2) / L
		gy.Scale(1.0/L, &gy)
		if step == 0 {
			first = loss
		}
		last = loss

		if err := c.Join(); err != nil { // a NaN would be reported here, naming its layer
			panic(err)
		}

		// backward
		var gw2, gh, ur, gw1 mat.Dense
		if err := sh.WeightGradInOut(&gw2, &gy); err != nil { // h̃ᵀ·gy = Rᵀ·(Pᵀ·gy), m×o like W₂
			panic(err)
		}
		gh.Mul(&gy, w2.T())
		if err := su.Reconstruct(&ur); err != nil { // ũ, to differentiate GELU
			panic(err)
		}
		gh.Apply(func(i, j int, v float64) float64 { return v * geluPrime(ur.At(i, j)) }, &gh)
		if err := sx.WeightGradInOut(&gw1, &gh); err != nil { // x̃ᵀ·gh, d×m like W₁
			panic(err)
		}
		for _, s := range []*activation.Saved{sx, su, sh} {
			if err := s.Release(); err != nil {
				panic(err)
			}
		}
		const lr = 0.2
		var t1, t2 mat.Dense
		t1.Scale(lr, &gw1)
		w1.Sub(w1, &t1)
		t2.Scale(lr, &gw2)
		w2.Sub(w2, &t2)
	}
	fmt.Printf("loss fell to below a tenth: %v\n", last < first/10)
	st := c.Stats()
	for _, l := range st.Layers {
		fmt.Printf("%-8s rank %2d, peak %5d bytes of %5d\n", l.Layer, l.Rank, l.Peak, l.DensePeak)
	}
	fmt.Printf("total    peak %d of %d bytes (%.0f%%), live %d\n", st.Total.Peak, st.Total.DensePeak,
		100*float64(st.Total.Peak)/float64(st.Total.DensePeak), st.Total.Live)
	// Output:
	// loss fell to below a tenth: true
	// fc1.in   rank  8, peak  4608 bytes of 32768
	// gelu.in  rank 16, peak 10240 bytes of 65536
	// fc2.in   rank 16, peak 10240 bytes of 65536
	// total    peak 25088 of 163840 bytes (15%), live 0
}
