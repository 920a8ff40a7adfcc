package gpu_test

import (
	"errors"
	"fmt"

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
