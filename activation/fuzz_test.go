package activation

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// FuzzCompress compresses a decoded activation (testmat.FuzzMatrix) with
// the configuration its bytes choose, as float64 or float32, and checks
// the handle: no panic, an error only of the documented kinds (storage
// overflow, a missed tolerance is not an error), finite results, a
// reconstruction whose error is the reported one, and both weight
// gradients equal to the products with the reconstruction. Seeds in
// testdata/fuzz; campaigns: go test -run '^$' -fuzz FuzzCompress ./activation.
func FuzzCompress(f *testing.F) {
	f.Add(uint16(0x0c20), uint8(3), uint8(0), []byte{1, 0, 2, 0, 3, 1})
	f.Add(uint16(0x1d27), uint8(5), uint8(0x2a), []byte{7, 0x80, 9, 0x7f, 0, 0, 5, 0xc0})
	f.Add(uint16(0x0808), uint8(2), uint8(0xd3), []byte{127, 16, 120, 16}) // beyond float32's range
	f.Add(uint16(0x1717), uint8(0), uint8(0x47), []byte{0, 0})             // zero activation, tolerance
	f.Fuzz(func(t *testing.T, shape uint16, kb, flags uint8, elems []byte) {
		x := testmat.FuzzMatrix(shape, elems, 24)
		m, n := x.Dims()
		rank := Fixed(1 + int(kb)%min(m, n))
		if flags&0x40 != 0 {
			rank = Tolerance(0.5/float64(1+int(kb)%8), 0)
		}
		cfg := Config{
			Method: Method(flags % 4), Rank: rank, Precision: lowrank.Precision((flags >> 2) % 3),
			Oversample: int(kb % 3), PowerIters: int(flags>>4) % 2, MeasureError: true, Seed: uint64(kb),
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var in lowrank.Matrix = x
		ref := mat.Matrix(x)
		if flags&0x80 != 0 && math.Max(mat.Max(x), -mat.Min(x)) <= math.MaxFloat32 { // a float32 input that exists
			x32 := testmat.To32(x)
			in, ref = x32, x32
		}
		s, err := c.Compress("fuzz", in)
		if err != nil {
			var nf *lowrank.NotFiniteError
			if errors.Is(err, lowrank.ErrNotFinite) && !errors.As(err, &nf) {
				return // factors beyond the storage precision: documented
			}
			t.Fatalf("%d×%d %+v: %v", m, n, cfg, err)
		}
		var rec mat.Dense
		if err := s.Reconstruct(&rec); err != nil {
			t.Fatal(err)
		}
		for _, v := range rec.RawMatrix().Data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("reconstruction holds %v", v)
			}
		}
		if e, want := s.RelError(), lowrank.RelError(ref, stored{s}); math.Abs(e-want) > 1e-12 {
			t.Errorf("RelError %g, measured %g", e, want)
		}
		if s.RelError() > 1+1e-12 && s.Compressed() {
			t.Errorf("relative error %g > 1 for a projection", s.RelError())
		}
		g := testmat.Gaussian(m, 3, uint64(flags))
		var outIn, inOut, want mat.Dense
		if err := s.WeightGradOutIn(&outIn, g); err != nil {
			t.Fatal(err)
		}
		if err := s.WeightGradInOut(&inOut, g); err != nil {
			t.Fatal(err)
		}
		want.Mul(g.T(), &rec)
		// The same stored factors multiplied in another order: relative
		// ε·(m+n+k) of the product of the norms.
		tol := 64 * float64(m+n) * 0x1p-52 * mat.Norm(g, 2) * mat.Norm(&rec, 2)
		if !mat.EqualApprox(&want, &outIn, tol) || !mat.EqualApprox(want.T(), &inOut, tol) {
			t.Errorf("weight gradients differ from gᵀ·x̃ beyond %g", tol)
		}
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	})
}
