package sampling_test

import (
	"errors"
	"testing"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// FuzzQB decodes a small matrix (testmat.FuzzMatrix: zeros, subnormals,
// 1e±300, dependent rows) and options, runs the three decompositions and
// checks testmat.CheckQB's oracle on each: no panic, finite orthonormal
// factors, an error no smaller than Eckart–Young's and equal to the one
// reported. Its seed corpus (testdata/fuzz/FuzzQB) runs in every
// go test; campaigns: go test -run '^$' -fuzz FuzzQB ./sampling.
func FuzzQB(f *testing.F) {
	f.Add(uint16(0x0807), uint8(3), uint8(0), uint8(0), uint8(0), []byte{1, 0, 2, 0, 3, 1})
	f.Add(uint16(0x1d27), uint8(5), uint8(2), uint8(1), uint8(3), []byte{7, 0x80, 9, 0x7f, 0, 0, 5, 0xc0}) // 1e-300 and 1e300 entries
	f.Add(uint16(0x0101), uint8(0), uint8(255), uint8(0), uint8(1), []byte{127, 127, 120, 127})            // 2×2 near overflow, Oversample 255
	f.Add(uint16(0x1717), uint8(23), uint8(0), uint8(2), uint8(2), []byte{0, 0})                           // zero matrix
	f.Fuzz(func(t *testing.T, shape uint16, kb, over, q, flags uint8, elems []byte) {
		a := testmat.FuzzMatrix(shape, elems, 24)
		m, n := a.Dims()
		k := 1 + int(kb)%min(m, n)
		opts := &sampling.Options{
			Oversample: int(over), PowerIters: int(q % 3), Seed: uint64(flags),
			Sampler:     sampling.Sampler(flags & 1),
			Orientation: lowrank.Orientation((flags >> 1) % 3),
		}
		d := sampling.NewDecomposer(cpu.Backend{})
		for _, run := range []func(*lowrank.Factors) error{
			func(f *lowrank.Factors) error { return d.QBTo(f, a, k, opts) },
			func(f *lowrank.Factors) error { return d.NystromTo(f, a, k, opts) },
		} {
			var fd lowrank.Factors
			if err := run(&fd); err != nil {
				if testmat.Overflows(err) {
					return
				}
				t.Fatalf("%d×%d k=%d: %v", m, n, k, err)
			}
			qb, err := fd.ToQB(cpu.Backend{})
			if err != nil {
				t.Fatal(err)
			}
			testmat.CheckQB(t, a, qb, fd.RelError())
		}
		svd, err := sampling.SVD(a, k, opts)
		if err != nil && !errors.Is(err, lowrank.ErrRank) && !testmat.Overflows(err) { // the SVD form needs ℓ ≤ the columns of op(A)
			t.Fatal(err)
		}
		if err == nil {
			s := svd.Values(nil)
			for i := 1; i < len(s); i++ {
				if !(s[i] <= s[i-1] && s[i] >= 0) {
					t.Fatalf("singular values %v not non-increasing and non-negative", s)
				}
			}
		}
	})
}
