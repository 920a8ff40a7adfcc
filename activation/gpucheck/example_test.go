package gpucheck_test

import (
	"fmt"
	"log"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

// A LoRA linear layer y = x·Wᵀ + (x·Aᵀ)·Bᵀ trained on the GPU with its
// saved input compressed on the device: forward compresses x and frees
// it; backward computes A's gradient from the factors. Nothing crosses to
// the host but the sampled row indices and a few scalars per step. (No
// output is checked: the example needs a CUDA device; TestSteadyState runs
// the same loop.)
func Example_deviceLoop() {
	b, err := gpu.Open(0, nil) // or &gpu.Options{Stream: yourStream}
	if err != nil {
		log.Fatal(err) // errors.Is(err, gpu.ErrUnavailable) without CUDA
	}
	defer b.Close()
	const L, d, o, r = 8192, 4096, 4096, 16
	newMat := func(rows, cols int) *gpu.Matrix { // row-major bf16, as frameworks hold tensors
		m, err := b.NewMatrix(cols, rows, gpu.BFloat16)
		if err != nil {
			log.Fatal(err)
		}
		return m.T()
	}
	w, a, bm := newMat(o, d), newMat(r, d), newMat(o, r) // weights: fill them with your init
	y, h, gy, gh := newMat(L, o), newMat(L, r), newMat(L, o), newMat(L, r)
	gx := newMat(L, d)
	ga, err := b.NewMatrix(r, d, gpu.Float32) // A's gradient, float32
	if err != nil {
		log.Fatal(err)
	}

	c, err := activation.New(activation.Config{Backend: b, Rank: activation.Fixed(256), Precision: lowrank.BFloat16})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for step := 0; step < 3; step++ {
		x := newMat(L, d) // this step's input, produced by the previous layer
		// forward
		check(b.Mul(y, 1, x, false, w, true, 0))  // y = x·Wᵀ
		check(b.Mul(h, 1, x, false, a, true, 0))  // h = x·Aᵀ (L×r: kept as it is)
		check(b.Mul(y, 1, h, false, bm, true, 1)) // y += h·Bᵀ
		s, err := c.Compress("proj.in", x)
		check(err)
		b.Free(x) // stream order: the compression's reads come first
		// … the rest of forward and the loss give gy = dL/dy …

		// backward
		check(b.Mul(gh, 1, gy, false, bm, false, 0)) // gh = gy·B
		check(s.WeightGradOutIn(ga, gh))             // ∇A = ghᵀ·X̃ = (ghᵀ·P)·R, on the device
		check(b.Mul(gx, 1, gy, false, w, false, 0))  // ∇x = gy·W + gh·A: no activation needed
		check(b.Mul(gx, 1, gh, false, a, false, 1))
		check(s.Release())
	}
	st := c.Stats().Total
	fmt.Printf("saved %d bytes at peak for %d in float32\n", st.Peak, st.DensePeak)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
