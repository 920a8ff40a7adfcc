package activation_test

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/lowrank"
)

// lowRankActivation returns a (batch=4, seq=16, hidden=32) activation of
// rank 3 in float32, as a training loop would hold it.
func lowRankActivation() []float32 {
	const L, d = 4 * 16, 32
	x := make([]float32, L*d)
	for i := 0; i < L; i++ {
		for j := 0; j < d; j++ {
			a, b := float64(i), float64(j)
			x[i*d+j] = float32(math.Sin(0.1*a+0.2*b) + 0.5*math.Cos(0.3*a))
		}
	}
	return x
}

// A linear layer y = x·W (W in×out, gonum's layout) saves its input
// compressed at forward time, and computes its weight gradient x̃ᵀ·g from
// the factors at backward time (WeightGradOutIn gives gᵀ·x̃ for
// PyTorch's y = x·Wᵀ).
func ExampleCompressor() {
	c, err := activation.New(activation.Config{
		Method:    activation.RowSampling, // LoRAct's row-sampled QB
		Rank:      activation.Fixed(4),    // k = 4
		Precision: lowrank.BFloat16,       // 2 bytes per stored element
		Seed:      1,
		// measure the error of the stored bf16 factors, not only that of
		// the decomposition
		MeasureError: true,
	})
	if err != nil {
		panic(err)
	}
	x := activation.View(4, 16, 32, lowRankActivation()) // 64×32

	// forward
	saved, err := c.Compress("fc1", x)
	if err != nil {
		panic(err)
	}
	// X has rank 3: what remains is bf16 rounding, ≈ 2⁻⁹ relative.
	fmt.Printf("rank %d, %d bytes instead of %d, relative error %.3f\n",
		saved.Rank(), saved.Bytes(), saved.DenseBytes(), saved.RelError())

	// backward: g is the gradient of the layer's output (64×8).
	g := mat.NewDense(64, 8, nil)
	for i := 0; i < 64; i++ {
		g.Set(i, i%8, 1)
	}
	var dw mat.Dense // x̃ᵀ·g, 32×8 like W: Rᵀ·(Pᵀ·g), x̃ never formed
	if err := saved.WeightGradInOut(&dw, g); err != nil {
		panic(err)
	}
	r, cols := dw.Dims()
	fmt.Printf("weight gradient %d×%d\n", r, cols)
	if err := saved.Release(); err != nil {
		panic(err)
	}
	st := c.Stats()
	fmt.Printf("live %d bytes, peak %d of %d uncompressed\n", st.Total.Live, st.Total.Peak, st.Total.DensePeak)
	fmt.Println(saved.Release())
	// Output:
	// rank 4, 768 bytes instead of 8192, relative error 0.002
	// weight gradient 32×8
	// live 0 bytes, peak 768 of 8192 uncompressed
	// activation: layer "fc1": activation: handle already released
}

// Compressed checkpointing: a block saves only its compressed input, and
// backward recomputes the block from the reconstruction.
func ExampleSaved_Reconstruct() {
	c, _ := activation.New(activation.Config{Rank: activation.Tolerance(0.01, 0), Precision: lowrank.Float32})
	x := activation.View(4, 16, 32, lowRankActivation())
	saved, err := c.Compress("block0.in", x)
	if err != nil {
		panic(err)
	}
	// ... forward through the block without saving anything else ...

	// backward: rebuild the input, then recompute the block's forward with
	// its tape on and run its backward.
	var xr mat.Dense
	if err := saved.Reconstruct(&xr); err != nil {
		panic(err)
	}
	var diff float64
	for i := 0; i < 64; i++ {
		for j := 0; j < 32; j++ {
			diff = math.Max(diff, math.Abs(xr.At(i, j)-x.At(i, j)))
		}
	}
	fmt.Printf("rank %d chosen for ε = 0.01; max deviation < 1e-5: %v\n", saved.Rank(), diff < 1e-5)
	_ = saved.Release()
	// Output:
	// rank 3 chosen for ε = 0.01; max deviation < 1e-5: true
}

// The q, k and v projections of an attention layer read one tensor: it is
// compressed once, by whichever projection saves it first, and each
// consumer releases it once. CompressKey finds the live handle by the
// caller's key; a new step (the buffer overwritten) uses a new Version.
func ExampleCompressor_CompressKey() {
	c, err := activation.New(activation.Config{Rank: activation.Fixed(4)})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	x := activation.View(4, 16, 32, lowRankActivation())
	for step := uint64(0); step < 2; step++ {
		key := activation.Key{ID: 7, Version: step} // the LayerNorm output of block 0, this step
		var saved []*activation.Saved
		for _, proj := range []string{"q", "k", "v"} {
			s, err := c.CompressKey("attn."+proj, key, x)
			if err != nil {
				panic(err)
			}
			saved = append(saved, s)
		}
		fmt.Println("same handle:", saved[0] == saved[1] && saved[1] == saved[2])
		for _, s := range saved { // each projection's backward
			if err := s.Release(); err != nil {
				panic(err)
			}
		}
	}
	for _, l := range c.Stats().Layers {
		fmt.Printf("%s: %d compressions, %d shared\n", l.Layer, l.Calls, l.Shared)
	}
	// Output:
	// same handle: true
	// same handle: true
	// attn.q: 2 compressions, 0 shared
	// attn.k: 0 compressions, 2 shared
	// attn.v: 0 compressions, 2 shared
}

// smoothActivation returns an L×d activation whose singular values decay
// as 1/j^a: a larger a compresses better.
func smoothActivation(L, d int, a float64) *mat.Dense {
	x := mat.NewDense(L, d, nil)
	for j := 1; j <= d; j++ {
		s := math.Pow(float64(j), -a)
		for i := 0; i < L; i++ {
			for c := 0; c < d; c++ {
				// rank-one term j: s·u_j v_jᵀ with cosine vectors
				x.Set(i, c, x.At(i, c)+s*math.Cos(float64(j*i)*0.37+0.1*float64(c))*math.Cos(float64(j*c)*0.71))
			}
		}
	}
	return x
}

// A byte budget across two layers: the first step is a calibration step
// (rank 1 everywhere, the widest sketch); from the second step the ranks
// follow the spectra, more to the layer whose spectrum decays slowly, and
// the live bytes never exceed the budget.
func ExampleBudget() {
	const L, d = 256, 32
	fast, slow := smoothActivation(L, d, 2), smoothActivation(L, d, 0.5)
	perRank := (L + d) * 2 // bf16 bytes of one rank
	c, err := activation.New(activation.Config{Rank: activation.Budget(16 * perRank), Seed: 1})
	if err != nil {
		panic(err)
	}
	for step := 0; step < 3; step++ {
		a, err := c.Compress("fast", fast)
		if err != nil {
			panic(err)
		}
		b, err := c.Compress("slow", slow)
		if err != nil {
			panic(err)
		}
		if err := c.Join(); err != nil { // plans the next step
			panic(err)
		}
		fmt.Printf("step %d: ranks %d and %d, %d of %d bytes\n", step, a.Rank(), b.Rank(), c.Stats().Total.Live, 16*perRank)
		_ = a.Release()
		_ = b.Release()
	}
	// Output:
	// step 0: ranks 1 and 1, 1152 of 9216 bytes
	// step 1: ranks 3 and 13, 9216 of 9216 bytes
	// step 2: ranks 3 and 13, 9216 of 9216 bytes
}

// ExampleBudget's two layers under BudgetFloor(·, 1): the equal split
// of its 16 ranks is 8 each, so the fast-decaying layer keeps 8 ranks
// instead of the plain budget's 3 (its sketch shows energy above bf16's
// rounding beyond them) and the slow one 8 instead of 13; a floor below 1
// leaves the greedy the rest.
func ExampleBudgetFloor() {
	const L, d = 256, 32
	fast, slow := smoothActivation(L, d, 2), smoothActivation(L, d, 0.5)
	perRank := (L + d) * 2
	c, err := activation.New(activation.Config{Rank: activation.BudgetFloor(16*perRank, 1), Seed: 1})
	if err != nil {
		panic(err)
	}
	for step := 0; step < 2; step++ {
		a, err := c.Compress("fast", fast)
		if err != nil {
			panic(err)
		}
		b, err := c.Compress("slow", slow)
		if err != nil {
			panic(err)
		}
		if err := c.Join(); err != nil {
			panic(err)
		}
		fmt.Printf("step %d: ranks %d and %d\n", step, a.Rank(), b.Rank())
		_ = a.Release()
		_ = b.Release()
	}
	// Output:
	// step 0: ranks 1 and 1
	// step 1: ranks 8 and 8
}

// In no more bytes than bf16 factors at rank 12, int8 factors at rank 23
// or bf16 factors at rank 2 with a 4-bit residual keep more of X; the
// residual bounds every element's error by half its block's scale.
func ExampleConfig_storage() {
	const L, d = 1024, 32
	x := smoothActivation(L, d, 0.5)
	for _, cfg := range []activation.Config{
		{Rank: activation.Fixed(12)},
		{Rank: activation.Fixed(23), FactorBits: 8},
		{Rank: activation.Fixed(2), ResidualBits: 4},
	} {
		cfg.MeasureError = true
		c, err := activation.New(cfg)
		if err != nil {
			panic(err)
		}
		s, err := c.Compress("x", x)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%d factor bits, %d residual bits, rank %2d: %d bytes (StoredBytes %d), relative error %.2f\n",
			cfg.FactorBits, cfg.ResidualBits, s.Rank(), s.Bytes(), cfg.StoredBytes(L, d, s.Rank()), s.RelError())
	}
	// Output:
	// 0 factor bits, 0 residual bits, rank 12: 25344 bytes (StoredBytes 25344), relative error 0.66
	// 8 factor bits, 0 residual bits, rank 23: 24472 bytes (StoredBytes 24472), relative error 0.37
	// 0 factor bits, 4 residual bits, rank  2: 24704 bytes (StoredBytes 24704), relative error 0.15
}
