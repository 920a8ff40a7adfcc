package activation

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// quantSlack is the relative slack of the per-element bound s/2: x/s is
// computed in float64 with |x/s| ≤ qmax, so rounding it to an integer
// errs by at most 1/2 + qmax·2⁻⁵³ units of s (see quantize).
func quantSlack(bits int) float64 { return 1 + 2*qmax(bits)*0x1p-53 }

// TestQuantizeBound: every element is within half its scale of the value
// stored, for both layouts, 4 and 8 bits, blocks that do and do not
// divide the row, zero blocks and magnitudes from 1e-40 (subnormal
// float32 scales) to 1e30; the scale is amax/qmax rounded up to float32.
func TestQuantizeBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		r, c, bits, block int
		perCol            bool
	}{{37, 5, 8, 37, true}, {5, 37, 8, 37, false}, {9, 37, 8, 8, false}, {9, 37, 4, 8, false},
		{9, 37, 4, 2, false}, {9, 38, 4, 64, false}, {1, 1, 4, 2, false}} {
		for _, mag := range []float64{1e-40, 1e-3, 1, 1e30} {
			src := mat.NewDense(tc.r, tc.c, nil)
			for i := range tc.r {
				for j := range tc.c {
					v := mag * rng.NormFloat64()
					if j%3 == 0 && i%2 == 0 {
						v *= 50 // outliers within a group
					}
					src.Set(i, j, v)
				}
			}
			if tc.r > 2 {
				for j := range tc.c { // a zero row: its scales are 0
					src.Set(2, j, 0)
				}
			}
			var z quant
			var err error
			if tc.perCol {
				err = z.quantizeCols(src, false, tc.bits)
			} else {
				err = z.quantizeRows(src, false, tc.bits, tc.block)
			}
			require.NoError(t, err)
			name := fmt.Sprintf("%+v mag %g", tc, mag)
			assert.Equal(t, quantBytes(tc.r, tc.c, tc.bits, tc.block, tc.perCol), z.bytes(), name)
			got := mat.NewDense(tc.r, tc.c, nil)
			z.dequantRows(got, 0, tc.r, false)
			amax := map[int]float64{}
			group := func(i, j int) int {
				if tc.perCol {
					return j
				}
				return i*z.blocks() + j/tc.block
			}
			for i := range tc.r {
				for j := range tc.c {
					g := group(i, j)
					amax[g] = math.Max(amax[g], math.Abs(src.At(i, j)))
				}
			}
			for i := range tc.r {
				for j := range tc.c {
					s := float64(z.scaleAt(i, j))
					a := amax[group(i, j)]
					require.GreaterOrEqual(t, s*qmax(tc.bits), a, "%s: scale rounded up", name)
					if a/qmax(tc.bits) >= 0x1p-126 { // a normal float32: one rounding up
						require.LessOrEqual(t, s, a/qmax(tc.bits)*(1+0x1p-23), name)
					}
					assert.LessOrEqual(t, math.Abs(got.At(i, j)-src.At(i, j)), s/2*quantSlack(tc.bits), "%s (%d, %d)", name, i, j)
					q := z.at(i, j)
					assert.LessOrEqual(t, math.Abs(float64(q)), qmax(tc.bits), name)
				}
			}
			// The added form adds the same values.
			sum := mat.DenseCopyOf(src)
			z.dequantRows(sum, 0, tc.r, true)
			want := mat.NewDense(tc.r, tc.c, nil)
			want.Add(src, got)
			assert.True(t, mat.Equal(want, sum), name)
		}
	}
}

// TestInt4Nibbles: every value in [−7, 7] at even and odd positions of
// rows of odd length reads back, and writing one nibble keeps its
// neighbour.
func TestInt4Nibbles(t *testing.T) {
	var z quant
	z.resize(3, 15, 4, 2, false)
	for i := range 3 {
		for j := range 15 {
			z.set(i, j, (i*15+j)%15-7)
		}
	}
	for i := range 3 {
		for j := range 15 {
			assert.Equal(t, (i*15+j)%15-7, z.at(i, j), "(%d, %d)", i, j)
		}
	}
	assert.Equal(t, 3*8, len(z.q), "⌈15/2⌉ bytes a row")
}

func TestScaleOverflow(t *testing.T) {
	_, err := scaleFor(1e300, 8)
	assert.ErrorIs(t, err, lowrank.ErrNotFinite)
	s, err := scaleFor(0, 4)
	require.NoError(t, err)
	assert.Zero(t, s)
	assert.Zero(t, quantize(3, 0, 4))
}

// TestInt8Factors compares int8 factors with the float64 factors of the
// same draw (same seed): every element of P̂ and R̂ within half its scale,
// and the Frobenius bound on the product that follows,
//
//	‖P̂·R̂ − P·R‖_F ≤ ‖ΔP‖_F·‖R‖₂ + ‖P‖₂·‖ΔR‖_F + ‖ΔP‖_F·‖ΔR‖_F,
//	‖ΔP‖_F ≤ ½·(L·Σ_j sP_j²)^{1/2},  ‖ΔR‖_F ≤ ½·(d·Σ_j sR_j²)^{1/2};
//
// the bytes are k·(L+d) + 8·k, and the backward products are those of the
// dequantized factors.
func TestInt8Factors(t *testing.T) {
	for _, sh := range shapes {
		for _, m := range []Method{RowSampling, ExactSVD} {
			const k = 6
			x := testmat.Incoherent(sh.L, sh.d, testmat.ActivationLike(min(sh.L, sh.d)), 7)
			cfg := Config{Method: m, Rank: Fixed(k), Precision: lowrank.Float64, Seed: 5}
			ref, err := New(cfg)
			require.NoError(t, err)
			cfg.FactorBits = 8
			cfg.MeasureError = true
			c, err := New(cfg)
			require.NoError(t, err)
			sf, err := ref.Compress("x", x)
			require.NoError(t, err)
			sq, err := c.Compress("x", x)
			require.NoError(t, err)
			name := fmt.Sprintf("%v %v", m, sh)
			require.True(t, sq.Compressed(), name)
			assert.Equal(t, k*(sh.L+sh.d)+8*k, sq.Bytes(), name)
			unpack := func(p *packed) *mat.Dense {
				d := mat.NewDense(p.r, p.c, nil)
				p.unpackRows(d, 0, p.r)
				return d
			}
			p, r := unpack(&sf.p), unpack(&sf.r)
			ph, rh := unpack(&sq.p), unpack(&sq.r)
			var sp2, sr2 float64
			for j := range k {
				sp, sr := float64(sq.p.qz.scale[j]), float64(sq.r.qz.scale[j])
				sp2, sr2 = sp2+sp*sp, sr2+sr*sr
				for i := range sh.L {
					require.LessOrEqual(t, math.Abs(ph.At(i, j)-p.At(i, j)), sp/2*quantSlack(8), name)
				}
				for i := range sh.d {
					require.LessOrEqual(t, math.Abs(rh.At(j, i)-r.At(j, i)), sr/2*quantSlack(8), name)
				}
			}
			dP := 0.5 * math.Sqrt(float64(sh.L)*sp2) * quantSlack(8)
			dR := 0.5 * math.Sqrt(float64(sh.d)*sr2) * quantSlack(8)
			var pr, phrh, diff mat.Dense
			pr.Mul(p, r)
			phrh.Mul(ph, rh)
			diff.Sub(&phrh, &pr)
			bound := dP*spectral(r) + spectral(p)*dR + dP*dR
			assert.LessOrEqual(t, mat.Norm(&diff, 2), bound*(1+1e-12), "%s: product bound (float64 products: 1e-12)", name)
			t.Logf("%s: ‖P̂R̂ − PR‖_F = %.3g ≤ %.3g; errors %.4f (float64 factors) → %.4f (int8)",
				name, mat.Norm(&diff, 2), bound, sf.RelError(), sq.RelError())
			// The measured error (MeasureError) is that of P̂·R̂.
			var xr mat.Dense
			xr.Sub(x, &phrh)
			assert.InDelta(t, mat.Norm(&xr, 2)/mat.Norm(x, 2), sq.RelError(), 1e-12, name)
			var rec mat.Dense
			require.NoError(t, sq.Reconstruct(&rec))
			assert.Less(t, relDiff(&phrh, &rec), 1e-12, name)
			g := testmat.Gaussian(sh.L, 3, 9)
			var want, got mat.Dense
			want.Mul(g.T(), &phrh)
			require.NoError(t, sq.WeightGradOutIn(&got, g))
			assert.Less(t, relDiff(&want, &got), 1e-12, name)
		}
	}
}

// spectral returns ‖a‖₂.
func spectral(a mat.Matrix) float64 {
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDNone) {
		panic("svd")
	}
	return svd.Values(nil)[0]
}

// TestResidual: with a quantized residual every element of the
// reconstruction is within half its block's scale of X, up to the
// rounding of the two float64 products of the factors (at compression and
// at reconstruction, each ≤ γ_k·(|P̂|·|R̂|)_ij, γ_k = k·2⁻⁵³/(1−k·2⁻⁵³))
// and of the subtraction forming E (2⁻⁵³·|E_ij|); RelError, accumulated
// while quantizing, is the measured error; the bytes are the factors'
// plus the residual's; Reconstruct into float32 and both weight gradients
// agree with the float64 reconstruction.
func TestResidual(t *testing.T) {
	for _, sh := range []struct{ L, d int }{{300, 24}, {20, 48}, {600, 70}} {
		for _, tc := range []struct {
			bits, block, fbits int
			prec               lowrank.Precision
		}{{4, 64, 0, lowrank.BFloat16}, {8, 64, 0, lowrank.BFloat16}, {4, 2, 8, lowrank.BFloat16},
			{8, 7, 0, lowrank.Float32}, {4, 16, 8, lowrank.BFloat16}} {
			const k = 4
			x := testmat.Incoherent(sh.L, sh.d, testmat.ActivationLike(min(sh.L, sh.d)), 3)
			cfg := Config{Rank: Fixed(k), Precision: tc.prec, FactorBits: tc.fbits, ResidualBits: tc.bits, ResidualBlock: tc.block, Seed: 2}
			c, err := New(cfg)
			require.NoError(t, err)
			name := fmt.Sprintf("%v %+v", sh, tc)
			for _, in := range []lowrank.Matrix{x, testmat.To32(x)} {
				s, err := c.Compress("x", in)
				require.NoError(t, err, name)
				xm := mat.DenseCopyOf(in.(mat.Matrix))
				assert.Equal(t, cfg.factorBytes(sh.L, sh.d, k)+quantBytes(sh.L, sh.d, tc.bits, tc.block, false), s.Bytes(), name)
				var rec mat.Dense
				require.NoError(t, s.Reconstruct(&rec))
				p := mat.NewDense(sh.L, k, nil)
				s.p.unpackRows(p, 0, sh.L)
				r := mat.NewDense(k, sh.d, nil)
				s.r.unpackRows(r, 0, k)
				var abs, pr mat.Dense
				abs.Mul(absOf(p), absOf(r))
				pr.Mul(p, r)
				gamma := float64(k) * 0x1p-53 / (1 - float64(k)*0x1p-53)
				for i := range sh.L {
					for j := range sh.d {
						e := xm.At(i, j) - pr.At(i, j)
						bound := float64(s.res.scaleAt(i, j))/2*quantSlack(tc.bits) + 2*gamma*abs.At(i, j) + 0x1p-53*math.Abs(e)
						require.LessOrEqual(t, math.Abs(rec.At(i, j)-xm.At(i, j)), bound, "%s (%d, %d)", name, i, j)
					}
				}
				var d mat.Dense
				d.Sub(&rec, xm)
				measured := mat.Norm(&d, 2) / mat.Norm(xm, 2)
				// The accumulated error differs from the measured one only
				// by the product rounding above: 1e-12 relative.
				assert.InDelta(t, measured, s.RelError(), 1e-12*measured+1e-15, name)
				var fr mat.Dense
				fr.Sub(&pr, xm)
				assert.Less(t, measured, mat.Norm(&fr, 2)/mat.Norm(xm, 2), "%s: the residual reduces the error", name)

				var r32 lowrank.Dense32
				require.NoError(t, s.Reconstruct(&r32))
				assert.Less(t, relDiff(&rec, &r32), 1e-6, "%s: float32 rounding", name)
				g := testmat.Gaussian(sh.L, 5, 4)
				var outIn, inOut, got mat.Dense
				outIn.Mul(g.T(), &rec)
				inOut.Mul(rec.T(), g)
				require.NoError(t, s.WeightGradOutIn(&got, g))
				assert.Less(t, relDiff(&outIn, &got), 1e-12, name)
				got.Reset()
				require.NoError(t, s.WeightGradInOut(&got, g))
				assert.Less(t, relDiff(&inOut, &got), 1e-12, name)
				gt := mat.DenseCopyOf(g.T())
				got.Reset()
				require.NoError(t, s.WeightGradOutIn(&got, gt.T()))
				assert.Less(t, relDiff(&outIn, &got), 1e-12, "%s: g a transpose view", name)
				got.Reset()
				require.NoError(t, s.WeightGradInOut(&got, testmat.To32(g)))
				assert.Less(t, relDiff(&inOut, &got), 1e-6, "%s: g float32", name)
				require.NoError(t, s.Release())
			}
			assert.Zero(t, c.Stats().Total.Live)
		}
	}
}

func absOf(a *mat.Dense) *mat.Dense {
	var b mat.Dense
	b.Apply(func(_, _ int, v float64) float64 { return math.Abs(v) }, a)
	return &b
}

func TestQuantOptions(t *testing.T) {
	for _, cfg := range []Config{{FactorBits: 4}, {FactorBits: 16}, {ResidualBits: 2}, {ResidualBits: 4, ResidualBlock: 3},
		{ResidualBlock: -1}, {Method: Uncompressed, FactorBits: 8}, {Method: Uncompressed, ResidualBits: 8}} {
		_, err := New(cfg)
		assert.ErrorIs(t, err, lowrank.ErrOption, "%+v", cfg)
	}
	for _, cfg := range []Config{{FactorBits: 8}, {ResidualBits: 8, ResidualBlock: 3}, {ResidualBits: 4}} {
		_, err := New(cfg)
		assert.NoError(t, err, "%+v", cfg)
	}
}

// TestResidualKeptDense: past the break-even rank X is stored as it is,
// with no residual, whatever the options.
func TestResidualKeptDense(t *testing.T) {
	x := testmat.Incoherent(20, 12, testmat.Flat(12), 1)
	c, err := New(Config{Rank: Fixed(10), Precision: lowrank.Float32, FactorBits: 8, ResidualBits: 4})
	require.NoError(t, err)
	s, err := c.Compress("x", x)
	require.NoError(t, err)
	assert.False(t, s.Compressed())
	assert.Equal(t, 4*20*12, s.Bytes())
	assert.Zero(t, s.RelError())
}

// TestStoredBytes: the bytes Config.StoredBytes predicts are those every
// storage stores, factors, residual or the activation itself.
func TestStoredBytes(t *testing.T) {
	for _, sh := range shapes {
		x := testmat.Incoherent(sh.L, sh.d, testmat.ActivationLike(min(sh.L, sh.d)), 1)
		for _, cfg := range []Config{{}, {Precision: lowrank.Float32}, {FactorBits: 8}, {ResidualBits: 4},
			{FactorBits: 8, ResidualBits: 8, ResidualBlock: 5}, {Method: ExactSVD, ResidualBits: 4, ResidualBlock: 6}} {
			for _, k := range []int{1, 3, min(sh.L, sh.d)} {
				cfg.Rank = Fixed(k)
				c, err := New(cfg)
				require.NoError(t, err)
				s, err := c.Compress("x", x)
				require.NoError(t, err)
				got, ok := cfg.Rank.Rank(sh.L, sh.d)
				require.True(t, ok)
				assert.Equal(t, k, got)
				assert.Equal(t, cfg.StoredBytes(sh.L, sh.d, k), s.Bytes(), "%v %+v k=%d", sh, cfg, k)
			}
		}
	}
	_, ok := Tolerance(0.1, 0).Rank(10, 10)
	assert.False(t, ok)
	_, ok = Budget(100).Rank(10, 10)
	assert.False(t, ok)
	k, _ := Ratio(0.25).Rank(100, 40)
	assert.Equal(t, 10, k)
	assert.Panics(t, func() { Config{}.StoredBytes(10, 10, 0) })
}
