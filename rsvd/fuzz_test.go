package rsvd_test

import (
	"errors"
	"testing"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
)

// FuzzRangeFinder runs the Gaussian QB with every normaliser, its SVD form
// and the adaptive QB on a decoded matrix (testmat.FuzzMatrix) and checks
// testmat.CheckQB's oracle on the QBs. Seeds in testdata/fuzz; campaigns:
// go test -run '^$' -fuzz FuzzRangeFinder ./rsvd.
func FuzzRangeFinder(f *testing.F) {
	f.Add(uint16(0x0a0c), uint8(4), uint8(3), uint8(2), uint8(0), []byte{3, 0, 1, 0, 4, 1, 1, 5})
	f.Add(uint16(0x1d27), uint8(5), uint8(2), uint8(2), uint8(1), []byte{7, 0x80, 9, 0x7f, 0, 0, 5, 0xc0}) // 1e-300 and 1e300 entries
	f.Add(uint16(0x0505), uint8(2), uint8(0), uint8(4), uint8(5), []byte{1, 0x82, 2, 0x82})                // all subnormal, LU
	f.Add(uint16(0x1210), uint8(9), uint8(200), uint8(1), uint8(2), []byte{1, 0, 1, 0})                    // rank 1, huge oversampling
	f.Fuzz(func(t *testing.T, shape uint16, kb, over, q, flags uint8, elems []byte) {
		a := testmat.FuzzMatrix(shape, elems, 24)
		m, n := a.Dims()
		k := 1 + int(kb)%min(m, n)
		opts := &rsvd.Options{
			Oversample: int(over), PowerIters: int(q % 3), Seed: uint64(flags),
			Normalizer:  rsvd.Normalizer(flags % 3),
			Orientation: lowrank.Orientation((flags / 3) % 3),
		}
		d := rsvd.NewDecomposer(cpu.Backend{})
		var fd lowrank.Factors
		if err := d.QBTo(&fd, a, k, opts); err != nil {
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

		tol := 0.5 / float64(1+int(flags)%8) // 0.5 … 0.0625
		err = d.AdaptiveQBTo(&fd, a, tol, &rsvd.AdaptiveOptions{BlockSize: 1 + int(kb)%5, Seed: uint64(flags)})
		if err != nil && !errors.Is(err, lowrank.ErrTolerance) {
			if testmat.Overflows(err) {
				return
			}
			t.Fatal(err)
		}
		if qb, err = fd.ToQB(cpu.Backend{}); err != nil {
			t.Fatal(err)
		}
		testmat.CheckQB(t, a, qb, fd.RelError())

		if _, err := rsvd.SVD(a, k, opts); err != nil && !errors.Is(err, lowrank.ErrRank) && !testmat.Overflows(err) {
			t.Fatal(err)
		}
	})
}
