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
		// A product of finite factors overflows only if its exact value
		// can reach MaxFloat64 within the rounding of the product, a
		// relative ε·(m+n+k): |x̃ᵢⱼ| ≤ ‖X‖_F ≤ √(mn)·max|xᵢⱼ| and
		// |(Gᵀx̃)ᵢⱼ| ≤ ‖G‖₂·‖x̃‖₂.
		slack := 1 + 64*float64(m+n)*0x1p-52
		maxAbs := math.Max(mat.Max(x), -mat.Min(x))
		overflowed := func(err error, bound float64, what string) bool {
			var nf *lowrank.NotFiniteError
			if err == nil || !errors.Is(err, lowrank.ErrNotFinite) || errors.As(err, &nf) {
				return false
			}
			if bound*slack < math.MaxFloat64 {
				t.Errorf("%s: %v, but its bound %g is below MaxFloat64", what, err, bound)
			}
			return true
		}
		var rec mat.Dense
		if err := s.Reconstruct(&rec); overflowed(err, math.Sqrt(float64(m*n))*maxAbs, "reconstruction") {
			return
		} else if err != nil {
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
		gradBound := mat.Norm(g, 2) * mat.Norm(&rec, 2) // Frobenius, ≥ the spectral norm
		err1, err2 := s.WeightGradOutIn(&outIn, g), s.WeightGradInOut(&inOut, g)
		if overflowed(err1, gradBound, "WeightGradOutIn") || overflowed(err2, gradBound, "WeightGradInOut") {
			return
		} else if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		want.Mul(g.T(), &rec)
		if lowrank.CheckFinite(&want) != nil { // the reference overflowed, ours did not
			if gradBound*slack < math.MaxFloat64 {
				t.Errorf("gᵀ·x̃ overflows below its bound %g", gradBound)
			}
			return
		}
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

// FuzzQuantStorage compresses a decoded activation (magnitudes from 2⁻¹⁰²⁴
// to 2¹⁰¹⁶) with int8 factors and/or a quantized residual as the bytes
// choose (the randomized methods: the storage does not depend on the
// method), and checks: no panic, an error only of the documented kind (a
// scale or factor beyond float32, wrapping lowrank.ErrNotFinite), the bytes
// Config.StoredBytes predicts, a finite reconstruction, and with a
// residual every element within half its block's scale of X (the bound of
// TestResidual, whose slack is the float64 rounding of the products).
func FuzzQuantStorage(f *testing.F) {
	f.Add(uint16(0x0c20), uint8(3), uint8(0x05), []byte{1, 0, 2, 0, 3, 1})
	f.Add(uint16(0x1d27), uint8(5), uint8(0x0a), []byte{7, 0x80, 9, 0x7f, 0, 0, 5, 0xc0})
	f.Add(uint16(0x0808), uint8(2), uint8(0x0f), []byte{127, 16, 120, 16}) // beyond float32's range
	f.Add(uint16(0x0909), uint8(1), uint8(0x16), []byte{3, 0x81, 1, 0x82}) // near the bottom of the range
	f.Add(uint16(0x1717), uint8(0), uint8(0x0e), []byte{0, 0})             // zero activation
	f.Fuzz(func(t *testing.T, shape uint16, kb, flags uint8, elems []byte) {
		x := testmat.FuzzMatrix(shape, elems, 24)
		m, n := x.Dims()
		k := 1 + int(kb)%min(m, n)
		cfg := Config{Rank: Fixed(k), FactorBits: 8 * int(flags&1), ResidualBits: []int{0, 4, 8, 4}[(flags>>1)%4],
			ResidualBlock: 2 * (1 + int(kb>>4)%8), Method: []Method{RowSampling, Gaussian}[(flags>>3)%2], Seed: uint64(kb)}
		if cfg.FactorBits == 0 && cfg.ResidualBits == 0 {
			cfg.FactorBits = 8
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := c.Compress("fuzz", x)
		if err != nil {
			var nf *lowrank.NotFiniteError
			if errors.Is(err, lowrank.ErrNotFinite) && !errors.As(err, &nf) {
				return // beyond the storage's range: documented
			}
			t.Fatalf("%d×%d %+v: %v", m, n, cfg, err)
		}
		if got, want := s.Bytes(), cfg.StoredBytes(m, n, k); got != want {
			t.Errorf("%d bytes stored, StoredBytes says %d", got, want)
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
		if s.res.empty() {
			return
		}
		p := mat.NewDense(m, s.p.c, nil)
		s.p.unpackRows(p, 0, m)
		r := mat.NewDense(s.r.r, n, nil)
		s.r.unpackRows(r, 0, s.r.r)
		var pr, abs mat.Dense
		pr.Mul(p, r)
		abs.Mul(absOf(p), absOf(r))
		gamma := float64(k) * 0x1p-53 / (1 - float64(k)*0x1p-53)
		for i := range m {
			for j := range n {
				e := x.At(i, j) - pr.At(i, j)
				bound := float64(s.res.scaleAt(i, j))/2*quantSlack(cfg.ResidualBits) + 2*gamma*abs.At(i, j) + 0x1p-53*math.Abs(e)
				if d := math.Abs(rec.At(i, j) - x.At(i, j)); d > bound {
					t.Fatalf("%+v: element (%d, %d) off by %g > %g", cfg, i, j, d, bound)
				}
			}
		}
	})
}

// FuzzAllocate checks the byte-budget allocation on small decoded
// instances against enumeration: within the budget, never below the
// optimum, above it by at most the stated margin (0 for equal costs).
func FuzzAllocate(f *testing.F) {
	f.Add(uint16(500), []byte{3, 100, 0, 9, 4, 2, 50, 40, 8, 3, 1, 150, 0, 7, 7})
	f.Add(uint16(40), []byte{1, 10, 0, 255, 1, 10, 0, 255})
	f.Add(uint16(0), []byte{2, 1, 1, 1})
	f.Fuzz(func(t *testing.T, budget uint16, spec []byte) {
		// Each demand: length (1–6), perRank (1–255), fixed, then gains
		// as bytes, made non-increasing and scaled to sum ≤ 1.
		var ds []demand
		for len(spec) >= 3 && len(ds) < 4 {
			n := 1 + int(spec[0])%6
			d := demand{perRank: 1 + int(spec[1]), fixed: int(spec[2])}
			spec = spec[3:]
			d.gain = make([]float64, n)
			var sum float64
			for j := range d.gain {
				if j < len(spec) {
					d.gain[j] = float64(spec[j])
				}
				if j > 0 {
					d.gain[j] = math.Min(d.gain[j], d.gain[j-1])
				}
				sum += d.gain[j]
			}
			spec = spec[min(n, len(spec)):]
			if sum > 0 {
				for j := range d.gain {
					d.gain[j] /= sum
				}
			}
			ds = append(ds, d)
		}
		if len(ds) == 0 {
			return
		}
		ks, margin, ok := allocate(ds, int(budget), 0)
		ones := make([]int, len(ds))
		for i := range ones {
			ones[i] = 1
		}
		if !ok {
			if planBytes(ds, ones) <= int(budget) {
				t.Fatalf("rank 1 everywhere fits (%d ≤ %d) but allocate says not", planBytes(ds, ones), budget)
			}
			return
		}
		if b := planBytes(ds, ks); b > int(budget) {
			t.Fatalf("ranks %v take %d > %d bytes", ks, b, budget)
		}
		got, opt := planError(ds, ks), bruteForce(ds, int(budget))
		if got < opt-1e-12 || got-opt > margin+1e-12 {
			t.Fatalf("error %g, optimum %g, margin %g (ranks %v)", got, opt, margin, ks)
		}
	})
}
