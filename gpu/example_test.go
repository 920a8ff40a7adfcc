package gpu_test

import (
	"errors"
	"fmt"
	"math"

	"github.com/loract/loract/gpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// Example compresses an activation that already lives on the device — here
// uploaded once as a stand-in for a training framework's row-major bf16
// buffer — with the LoRAct QB, keeping Q and B on the device and storing
// them in bf16. It has no checked output: its output depends on whether
// the machine has a GPU (the package's tests check the numbers).
func Example() {
	b, err := gpu.Open(0, nil)
	if errors.Is(err, gpu.ErrUnavailable) {
		fmt.Println("no GPU:", err)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	const m, n, k = 4096, 1024, 64
	host := testmat.To32(testmat.Incoherent(m, n, testmat.ActivationLike(n), 1))
	act, err := b.UploadDense32(host, gpu.BFloat16) // or gpu.RowMajor(ptr, m, n, n, gpu.BFloat16)
	if err != nil {
		fmt.Println(err)
		return
	}
	d := sampling.NewDecomposer(b)
	defer d.Close()
	var f lowrank.Factors
	if err := d.QBTo(&f, act, k, &sampling.Options{Seed: 1}); err != nil {
		fmt.Println(err)
		return
	}
	q16, err := b.ToBF16(f.Q)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Free(q16)
	fmt.Printf("relative error %.3f\n", lowrank.ErrorFromSquaredNorms(f.SquaredNormA, f.SquaredNormB))
}

// ExampleBackend_MulBatchedGrid computes the attention scores
// S = Q·Kᵀ/√dh of every image and head of a batch in one call. q and k
// are row-major (B·T)×d tensors, d = H·dh: head h of image i is the T×dh
// block at row i·T and column h·dh, a row-major view with leading
// dimension d, so images are T·d elements apart and heads dh. The scores
// are a row-major (B·H·T)×T tensor, image i's head h at (i·H + h)·T²: the
// images H·T² apart, the heads T². No single stride spans both levels;
// the two strides of each operand do. It has no checked output: its
// output depends on whether the machine has a GPU.
func ExampleBackend_MulBatchedGrid() {
	b, err := gpu.Open(0, nil)
	if errors.Is(err, gpu.ErrUnavailable) {
		fmt.Println("no GPU:", err)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	const B, T, H, dh = 4, 49, 6, 64
	const d = H * dh
	var bufs [3]*gpu.Matrix
	for i, n := range []int{B * T * d, B * T * d, B * H * T * T} {
		if bufs[i], err = b.NewMatrix(n, 1, gpu.Float32); err != nil {
			fmt.Println(err)
			return
		}
		defer b.Free(bufs[i])
	}
	for i := range 2 {
		if err := b.Normal(bufs[i], uint64(i+1)); err != nil {
			fmt.Println(err)
			return
		}
	}
	q := gpu.RowMajor(bufs[0].Ptr(), T, dh, d, gpu.Float32) // head 0 of image 0
	k := gpu.RowMajor(bufs[1].Ptr(), T, dh, d, gpu.Float32)
	s := gpu.RowMajor(bufs[2].Ptr(), T, T, T, gpu.Float32)
	err = b.MulBatchedGrid(B, H, s, H*T*T, T*T, 1/math.Sqrt(dh), q, false, T*d, dh, k, true, T*d, dh, 0)
	fmt.Println("scores of", B, "images ×", H, "heads:", err)
}
