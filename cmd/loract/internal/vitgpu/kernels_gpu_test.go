package vitgpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

// Device tests: each kernel against a float64 reference computed from the
// same (rounded) inputs. Tolerances are first-order rounding-error bounds
// in units of u32 = 2⁻²⁴ (float32, the kernels' arithmetic; a CUDA expf,
// logf or tanhf is within 2 ulp = 4·u32 of the exact value, sqrtf and
// division are correctly rounded) and uStore(dt) for the final rounding
// to the output's type (2⁻⁸ for bf16). Each comment says which terms a
// bound sums.

const u32 = 0x1p-24

// uStore is the unit roundoff of storing in dt: 0 extra for float32
// beyond the kernel's own last rounding (counted in its bound), 2⁻⁸ for
// bf16.
func uStore(dt gpu.DType) float64 {
	if dt == gpu.BFloat16 {
		return lowrank.BFloat16.UnitRoundoff()
	}
	return u32
}

// gammaN is γ_n = n·u32/(1 − n·u32), the bound of a float32 sum or dot
// product of n terms relative to the sum of their magnitudes.
func gammaN(n int) float64 { return float64(n) * u32 / (1 - float64(n)*u32) }

var dtypes = []gpu.DType{gpu.Float32, gpu.BFloat16}

// open returns a backend on device 0, skipping the test with the reason
// where CUDA is unavailable.
func open(t *testing.T) *gpu.Backend {
	t.Helper()
	b, err := gpu.Open(0, nil)
	if errors.Is(err, gpu.ErrUnavailable) {
		t.Skip("no CUDA device: ", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

func openKernels(t *testing.T) (*gpu.Backend, *kernels) {
	b := open(t)
	k, err := loadKernels(b)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, k.close()) })
	return b, k
}

// round returns v as stored in dt.
func round(v float64, dt gpu.DType) float64 {
	if dt == gpu.BFloat16 {
		return float64(lowrank.FromBF16(lowrank.ToBF16(float32(v))))
	}
	return float64(float32(v))
}

// upload returns a row-major rows×cols tensor of type dt holding f(i, j)
// rounded to dt, and the rounded values on the host.
func upload(t *testing.T, b *gpu.Backend, rows, cols int, dt gpu.DType, f func(i, j int) float64) (*gpu.Matrix, *mat.Dense) {
	t.Helper()
	return uploadAt(t, b, rows, cols, dt, 0, f)
}

// uploadAt is upload into a tensor placed off elements past a 256-byte
// aligned allocation (newTensorAt).
func uploadAt(t *testing.T, b *gpu.Backend, rows, cols int, dt gpu.DType, off int, f func(i, j int) float64) (*gpu.Matrix, *mat.Dense) {
	t.Helper()
	h := mat.NewDense(rows, cols, nil)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			h.Set(i, j, round(f(i, j), dt))
		}
	}
	x := newTensorAt(t, b, rows, cols, dt, off)
	require.NoError(t, b.Upload(x, h))
	return x, h
}

// newTensor returns a zeroed row-major rows×cols tensor freed at the end
// of the test.
func newTensor(t *testing.T, b *gpu.Backend, rows, cols int, dt gpu.DType) *gpu.Matrix {
	t.Helper()
	return newTensorAt(t, b, rows, cols, dt, 0)
}

// newTensorAt is newTensor placed off elements past the start of its
// allocation (which the allocator aligns to 256 bytes): with off = 1 a
// bf16 tensor is 2 bytes off the 16-byte alignment of the elementwise
// kernels' bf16x8 path, so they take the scalar one.
func newTensorAt(t *testing.T, b *gpu.Backend, rows, cols int, dt gpu.DType, off int) *gpu.Matrix {
	t.Helper()
	x, err := b.NewMatrix(rows*cols+off, 1, dt)
	require.NoError(t, err)
	t.Cleanup(func() { b.Free(x) })
	return gpu.RowMajor(x.Ptr()+uintptr(off*dt.Size()), rows, cols, cols, dt)
}

// offsets are the element offsets the elementwise kernels are tested at:
// aligned (the bf16x8 path for bf16) and one element off (the scalar one).
var offsets = []int{0, 1}

func download(t *testing.T, b *gpu.Backend, x *gpu.Matrix) *mat.Dense {
	t.Helper()
	var d mat.Dense
	require.NoError(t, b.Download(&d, x))
	return &d
}

// near asserts |got(i, j) − want(i, j)| ≤ tol(i, j) everywhere.
func near(t *testing.T, name string, want, got *mat.Dense, tol func(i, j int) float64) {
	t.Helper()
	r, c := want.Dims()
	gr, gc := got.Dims()
	require.Equal(t, [2]int{r, c}, [2]int{gr, gc}, name)
	bad := 0
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if d := math.Abs(got.At(i, j) - want.At(i, j)); !(d <= tol(i, j)) {
				if bad < 5 {
					t.Errorf("%s(%d, %d) = %g, want %g ± %g", name, i, j, got.At(i, j), want.At(i, j), tol(i, j))
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements outside the bound", name, bad, r*c)
	}
}

func normal(rng *rand.Rand, scale float64) func(i, j int) float64 {
	return func(int, int) float64 { return scale * rng.NormFloat64() }
}

// TestFillCast: fill writes the value; cast_bf16 rounds as lowrank.ToBF16
// does, bit for bit.
func TestFillCast(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 1000
	p := newTensor(t, b, n, 1, gpu.Float32)
	require.NoError(t, k.fill(p, 0.3))
	for i, v := range download(t, b, p).RawMatrix().Data {
		require.Equal(t, float64(float32(0.3)), v, "element %d", i)
	}
	src, hs := upload(t, b, n, 1, gpu.Float32, func(int, int) float64 { return math.Ldexp(rng.NormFloat64(), rng.IntN(40)-20) })
	dst := newTensor(t, b, n, 1, gpu.BFloat16)
	require.NoError(t, k.castBF16(dst, src))
	got := download(t, b, dst)
	for i := 0; i < n; i++ {
		require.Equal(t, round(hs.At(i, 0), gpu.BFloat16), got.At(i, 0), "element %d", i)
	}
}

// TestPatches compares the patch matrix with vit.Model.Patches of the
// same images, taken out of order through the index vector: a copy, exact
// up to the rounding to the storage type.
func TestPatches(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(2, 1))
	cfg := tinyCfg
	px := cfg.Side * cfg.Side
	const nImg = 5
	images, himg := upload(t, b, nImg, px, gpu.Float32, func(int, int) float64 { return rng.Float64() })
	order := []int{3, 0, 4}
	idx, _ := upload(t, b, len(order), 1, gpu.Float32, func(i, _ int) float64 { return float64(order[i]) })
	var pixels []float64
	for _, i := range order {
		pixels = append(pixels, himg.RawRowView(i)...)
	}
	want := vit.New(cfg).Patches(pixels, len(order))
	for _, dt := range dtypes {
		out := newTensor(t, b, len(order)*cfg.Tokens(), cfg.Patch*cfg.Patch, dt)
		require.NoError(t, k.patches(out, images.Ptr(), idx.Ptr(), len(order), cfg.Side, cfg.Patch))
		got := download(t, b, out)
		near(t, "patches/"+dt.String(), roundAll(want, dt), got, func(int, int) float64 { return 0 })
	}
}

func roundAll(m *mat.Dense, dt gpu.DType) *mat.Dense {
	var out mat.Dense
	out.Apply(func(_, _ int, v float64) float64 { return round(v, dt) }, m)
	return &out
}

// TestBiasRows checks out = bias + pos + add with each of them present or
// not, and in place (out = add): two float32 additions of exact inputs,
// ≤ 2·u32·(|bias| + |pos| + |add|), then the store. n = 16 with an aligned
// out takes the bf16 path's eight elements a thread; n = 7, or out one
// element off, the scalar path.
func TestBiasRows(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(3, 1))
	const rows, T = 10, 3
	for _, n := range []int{7, 16} {
		bias, hb := upload(t, b, 1, n, gpu.Float32, normal(rng, 1))
		pos, hp := upload(t, b, T, n, gpu.Float32, normal(rng, 1))
		for _, dt := range dtypes {
			add, ha := upload(t, b, rows, n, dt, normal(rng, 3))
			for _, c := range []struct {
				name         string
				bias, pos    bool
				add, inPlace bool
			}{{"all", true, true, true, false}, {"bias", true, false, false, false}, {"pos+add", false, true, true, false},
				{"in place", true, true, true, true}} {
				want := mat.NewDense(rows, n, nil)
				mag := mat.NewDense(rows, n, nil)
				for i := 0; i < rows; i++ {
					for j := 0; j < n; j++ {
						var v, m float64
						if c.bias {
							v, m = v+hb.At(0, j), m+math.Abs(hb.At(0, j))
						}
						if c.pos {
							v, m = v+hp.At(i%T, j), m+math.Abs(hp.At(i%T, j))
						}
						if c.add {
							v, m = v+ha.At(i, j), m+math.Abs(ha.At(i, j))
						}
						want.Set(i, j, v)
						mag.Set(i, j, m)
					}
				}
				var bp, pp uintptr
				var ad *gpu.Matrix
				if c.bias {
					bp = bias.Ptr()
				}
				if c.pos {
					pp = pos.Ptr()
				}
				for _, off := range offsets { // off = 1: out misaligned, the scalar path
					out := newTensorAt(t, b, rows, n, dt, off)
					if c.add {
						ad = add
						if c.inPlace {
							require.NoError(t, b.Copy(out.T(), add.T()))
							ad = out
						}
					}
					require.NoError(t, k.biasRows(out, bp, pp, T, ad))
					near(t, fmt.Sprintf("biasRows/n=%d/%s/%s/off=%d", n, c.name, dt, off), want, download(t, b, out), func(i, j int) float64 {
						return 2*u32*mag.At(i, j) + uStore(dt)*math.Abs(want.At(i, j))
					})
				}
			}
		}
	}
}

// TestBiasRowsStrided checks bias_rows' path that strides each thread
// down the rows of one column vector (bf16, no position table), with
// biasBlocks at 1 (every thread loops; n = 392 leaves 11 of the 256
// threads idle) and at its default, with and without the addend, against
// the float64 sums within TestBiasRows' bound.
func TestBiasRowsStrided(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(4, 1))
	const rows = 300
	for _, n := range []int{48, 392} {
		bias, hb := upload(t, b, 1, n, gpu.Float32, normal(rng, 1))
		add, ha := upload(t, b, rows, n, gpu.BFloat16, normal(rng, 3))
		for _, blocks := range []int{1, biasBlocks} {
			for _, withAdd := range []bool{false, true} {
				want, mag := mat.NewDense(rows, n, nil), mat.NewDense(rows, n, nil)
				for i := range rows {
					for j := range n {
						v, m := hb.At(0, j), math.Abs(hb.At(0, j))
						if withAdd {
							v, m = v+ha.At(i, j), m+math.Abs(ha.At(i, j))
						}
						want.Set(i, j, v)
						mag.Set(i, j, m)
					}
				}
				var ad *gpu.Matrix
				if withAdd {
					ad = add
				}
				out := newTensorAt(t, b, rows, n, gpu.BFloat16, 0)
				saved := biasBlocks
				biasBlocks = blocks
				err := k.biasRows(out, bias.Ptr(), 0, 1, ad)
				biasBlocks = saved
				require.NoError(t, err)
				near(t, fmt.Sprintf("biasRows/n=%d/blocks=%d/add=%v", n, blocks, withAdd), want, download(t, b, out), func(i, j int) float64 {
					return 2*u32*mag.At(i, j) + uStore(gpu.BFloat16)*math.Abs(want.At(i, j))
				})
			}
		}
	}
}

// lnTol bounds a LayerNorm output of d columns: the two row sums of d
// terms (each lane sums ⌈d/32⌉ terms, then 5 butterfly levels: ≤ d + 5
// roundings on any path, relative to the sum of magnitudes), the
// subtraction, 1/√(·) and two products, each relative u32, on values
// xhat = O(max|x − μ|/σ); 4× covers the propagation of the mean's and the
// variance's errors through (x − μ)·rstd (|∂xhat/∂μ| = rstd, and the
// variance enters squared-rooted: ½).
func lnTol(d int, scale float64) float64 { return 4 * float64(d+16) * u32 * scale }

// TestLayerNorm checks ln_fwd (y, xhat, rstd) and ln_bwd (with and
// without the residual addend) against the float64 formulas of vit's
// LayerNorm, on rows of d = 48 (lanes loop, and d is not a multiple of
// 32) with a mean far from 0 (the two-pass variance's case).
func TestLayerNorm(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(4, 1))
	const rows, d, eps = 9, 48, 1e-5
	gamma, hg := upload(t, b, 1, d, gpu.Float32, func(int, int) float64 { return 1 + 0.3*rng.NormFloat64() })
	beta, hbeta := upload(t, b, 1, d, gpu.Float32, normal(rng, 0.2))
	for _, dt := range dtypes {
		x, hx := upload(t, b, rows, d, dt, func(int, int) float64 { return 3 + 2*rng.NormFloat64() })
		y, xhat, rstd := newTensor(t, b, rows, d, dt), newTensor(t, b, rows, d, dt), newTensor(t, b, rows, 1, gpu.Float32)
		require.NoError(t, k.lnFwd(y, xhat, rstd, x, gamma.Ptr(), beta.Ptr(), eps))
		wy, wh, wr := mat.NewDense(rows, d, nil), mat.NewDense(rows, d, nil), mat.NewDense(rows, 1, nil)
		maxH := make([]float64, rows)
		for i := 0; i < rows; i++ {
			var mu, v float64
			for j := 0; j < d; j++ {
				mu += hx.At(i, j) / d
			}
			for j := 0; j < d; j++ {
				v += (hx.At(i, j) - mu) * (hx.At(i, j) - mu) / d
			}
			rs := 1 / math.Sqrt(v+eps)
			wr.Set(i, 0, rs)
			for j := 0; j < d; j++ {
				h := (hx.At(i, j) - mu) * rs
				wh.Set(i, j, h)
				wy.Set(i, j, h*hg.At(0, j)+hbeta.At(0, j))
				maxH[i] = max(maxH[i], math.Abs(h))
			}
		}
		// The inputs' scale: (|x| + |μ|)·rstd ≈ |xhat| + |μ|·rstd, the
		// magnitude the subtraction x − μ rounds at.
		scale := func(i int) float64 {
			var mu float64
			for j := 0; j < d; j++ {
				mu += math.Abs(hx.At(i, j)) / d
			}
			return maxH[i] + 2*mu*wr.At(i, 0)
		}
		near(t, "ln_fwd xhat/"+dt.String(), wh, download(t, b, xhat), func(i, j int) float64 {
			return lnTol(d, scale(i)) + uStore(dt)*math.Abs(wh.At(i, j))
		})
		near(t, "ln_fwd y/"+dt.String(), wy, download(t, b, y), func(i, j int) float64 {
			return lnTol(d, scale(i))*math.Abs(hg.At(0, j)) + 2*u32*math.Abs(wy.At(i, j)) + uStore(dt)*math.Abs(wy.At(i, j))
		})
		near(t, "ln_fwd rstd/"+dt.String(), wr, download(t, b, rstd), func(i, j int) float64 {
			return lnTol(d, 1) * wr.At(i, 0)
		})
		// ln_affine rebuilds y from the stored xhat: the product and sum in
		// float32 (2u of |y|) of an xhat that carries its own store's
		// rounding (uStore·|xhat·gamma|), then y's store.
		// It runs on the aligned xhat (the bf16x8 path for bf16) and on a
		// copy one element off (the scalar path).
		hxs := download(t, b, xhat)
		wa := mat.NewDense(rows, d, nil)
		for i := 0; i < rows; i++ {
			for j := 0; j < d; j++ {
				wa.Set(i, j, hxs.At(i, j)*hg.At(0, j)+hbeta.At(0, j))
			}
		}
		var ya *gpu.Matrix
		for _, off := range offsets {
			xa := newTensorAt(t, b, rows, d, dt, off)
			require.NoError(t, b.Copy(xa.T(), xhat.T()))
			ya = newTensorAt(t, b, rows, d, dt, off)
			require.NoError(t, k.lnAffine(ya, xa, gamma.Ptr(), beta.Ptr()))
			near(t, fmt.Sprintf("ln_affine/%v/off=%d", dt, off), wa, download(t, b, ya), func(i, j int) float64 {
				return 2*u32*math.Abs(wa.At(i, j)) + uStore(dt)*math.Abs(wa.At(i, j))
			})
		}
		near(t, "ln_affine against ln_fwd's y/"+dt.String(), download(t, b, y), download(t, b, ya), func(i, j int) float64 {
			return uStore(dt)*math.Abs(hxs.At(i, j)*hg.At(0, j)) + 2*u32*math.Abs(wa.At(i, j)) + 2*uStore(dt)*math.Abs(wy.At(i, j)) + lnTol(d, scale(i))*math.Abs(hg.At(0, j))
		})

		// Backward from given xhat and rstd (as a tape holds them).
		dy, hdy := upload(t, b, rows, d, dt, normal(rng, 1))
		xh, hxh := upload(t, b, rows, d, dt, normal(rng, 1))
		rs, hrs := upload(t, b, rows, 1, gpu.Float32, func(int, int) float64 { return 0.5 + 1.5*rng.Float64() })
		add, hadd := upload(t, b, rows, d, dt, normal(rng, 1))
		for _, withAdd := range []bool{false, true} {
			dx := newTensor(t, b, rows, d, dt)
			var ad *gpu.Matrix
			if withAdd {
				ad = add
			}
			require.NoError(t, k.lnBwd(dx, dy, xh, rs, gamma.Ptr(), ad))
			want, mag := mat.NewDense(rows, d, nil), mat.NewDense(rows, d, nil)
			for i := 0; i < rows; i++ {
				var m1, m2, a1, a2 float64
				for j := 0; j < d; j++ {
					g := hdy.At(i, j) * hg.At(0, j)
					m1, a1 = m1+g/d, a1+math.Abs(g)/d
					m2, a2 = m2+g*hxh.At(i, j)/d, a2+math.Abs(g*hxh.At(i, j))/d
				}
				for j := 0; j < d; j++ {
					g := hdy.At(i, j) * hg.At(0, j)
					v := hrs.At(i, 0) * (g - m1 - hxh.At(i, j)*m2)
					m := hrs.At(i, 0) * (math.Abs(g) + a1 + math.Abs(hxh.At(i, j))*a2)
					if withAdd {
						v += hadd.At(i, j)
						m += math.Abs(hadd.At(i, j))
					}
					want.Set(i, j, v)
					mag.Set(i, j, m)
				}
			}
			// The same sums and a few operations on the magnitudes
			// rstd·(|g| + mean|g| + |xhat|·mean|g·xhat|) (+ |add|).
			near(t, "ln_bwd/"+dt.String(), want, download(t, b, dx), func(i, j int) float64 {
				return lnTol(d, mag.At(i, j)) + uStore(dt)*math.Abs(want.At(i, j))
			})
		}
	}
}

// geluRef returns vit's gelu and its derivative, and a bound on the
// float32 evaluation error of each: the argument c·(u + a·u³) carries
// ≤ 6 roundings (relative u32 of |arg|), tanhf ≤ 4·u32 absolute (|th| ≤ 1);
// so δth ≤ 6·u32·|arg| + 4·u32 (tanh' ≤ 1), δy ≤ ½·|u|·δth + 3·u32·|y|,
// and the derivative's terms ½(1 + th) and ½u(1 − th²)c(1 + 3au²) carry
// δth times ½ and |u|·c·(1 + 3au²) (∂(1 − th²)/∂th ≤ 2) plus 8·u32 of
// their magnitudes.
func geluRef(u float64) (y, dy, ty, tdy float64) {
	const c, a = 0.7978845608028654, 0.044715
	arg := c * (u + a*u*u*u)
	th := math.Tanh(arg)
	y = 0.5 * u * (1 + th)
	dy = 0.5*(1+th) + 0.5*u*(1-th*th)*c*(1+3*a*u*u)
	dth := 6*u32*math.Abs(arg) + 4*u32
	ty = 0.5*math.Abs(u)*dth + 3*u32*math.Abs(y)
	tdy = (0.5+math.Abs(u)*c*(1+3*a*u*u))*dth + 8*u32*(1+math.Abs(u)*c*(1+3*a*u*u))
	return y, dy, ty, tdy
}

// TestGELU checks gelu_fwd, gelu_bwd (in place, as the model runs it) and
// mul_elem.
func TestGELU(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(5, 1))
	const rows, cols = 13, 37 // 481 elements: 60 bf16x8 vectors and one left over
	for c := range len(dtypes) * len(offsets) {
		dt, off := dtypes[c/len(offsets)], offsets[c%len(offsets)]
		u, hu := uploadAt(t, b, rows, cols, dt, off, func(int, int) float64 { return 8*rng.Float64() - 4 })
		g, hgr := uploadAt(t, b, rows, cols, dt, off, normal(rng, 1))
		out := newTensorAt(t, b, rows, cols, dt, off)
		require.NoError(t, k.geluFwd(out, u))
		du := newTensorAt(t, b, rows, cols, dt, off)
		require.NoError(t, b.Copy(du.T(), g.T()))
		require.NoError(t, k.geluBwd(du, du, u))
		prod := newTensorAt(t, b, rows, cols, dt, off)
		require.NoError(t, k.mulElem(prod, u, g))
		name := fmt.Sprintf("/%v/off=%d", dt, off)
		wy, wd, wp := mat.NewDense(rows, cols, nil), mat.NewDense(rows, cols, nil), mat.NewDense(rows, cols, nil)
		ty, td := mat.NewDense(rows, cols, nil), mat.NewDense(rows, cols, nil)
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				y, dy, ey, edy := geluRef(hu.At(i, j))
				gv := hgr.At(i, j)
				wy.Set(i, j, y)
				wd.Set(i, j, gv*dy)
				wp.Set(i, j, hu.At(i, j)*gv)
				ty.Set(i, j, ey+uStore(dt)*math.Abs(y))
				td.Set(i, j, math.Abs(gv)*edy+u32*math.Abs(gv*dy)+uStore(dt)*math.Abs(gv*dy))
			}
		}
		near(t, "gelu_fwd"+name, wy, download(t, b, out), func(i, j int) float64 { return ty.At(i, j) })
		near(t, "gelu_bwd"+name, wd, download(t, b, du), func(i, j int) float64 { return td.At(i, j) })
		// One product of exact inputs: one rounding, then the store.
		near(t, "mul_elem"+name, wp, download(t, b, prod), func(i, j int) float64 {
			return (u32 + uStore(dt)) * math.Abs(wp.At(i, j))
		})
	}
}

// TestSoftmax checks softmax_fwd and softmax_bwd on rows of n = 49 (the
// demo's token count: two elements per lane).
func TestSoftmax(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(6, 1))
	const rows, n, scale = 11, 49, 0.125
	s, hs := upload(t, b, rows, n, gpu.Float32, normal(rng, 3))
	for _, dt := range dtypes {
		p := newTensor(t, b, rows, n, dt)
		require.NoError(t, k.softmaxFwd(p, s))
		want, tol := mat.NewDense(rows, n, nil), mat.NewDense(rows, n, nil)
		for i := 0; i < rows; i++ {
			mx := math.Inf(-1)
			for j := 0; j < n; j++ {
				mx = max(mx, hs.At(i, j))
			}
			var sum float64
			for j := 0; j < n; j++ {
				sum += math.Exp(hs.At(i, j) - mx)
			}
			for j := 0; j < n; j++ {
				pj := math.Exp(hs.At(i, j)-mx) / sum
				want.Set(i, j, pj)
				// Relative: the subtraction's rounding u32·|s − mx| is
				// an absolute error of the exponent; expf 4·u32; the sum
				// of n positive terms γ_n (+ each term's 4·u32 + the
				// exponent's error, bounded by the largest |s − mx|); the
				// division u32.
				var spread float64
				for jj := 0; jj < n; jj++ {
					spread = max(spread, math.Abs(hs.At(i, jj)-mx))
				}
				rel := u32*math.Abs(hs.At(i, j)-mx) + 4*u32 + gammaN(n) + 4*u32 + u32*spread + u32
				tol.Set(i, j, (rel+uStore(dt))*pj)
			}
		}
		near(t, "softmax_fwd/"+dt.String(), want, download(t, b, p), func(i, j int) float64 { return tol.At(i, j) })

		// Backward from given p (as stored) and dp.
		pp, hp := upload(t, b, rows, n, dt, func(int, int) float64 { return rng.Float64() / n * 2 })
		dp, hdp := upload(t, b, rows, n, gpu.Float32, normal(rng, 1))
		ds := newTensor(t, b, rows, n, dt)
		require.NoError(t, k.softmaxBwd(ds, dp, pp, scale))
		wds, tds := mat.NewDense(rows, n, nil), mat.NewDense(rows, n, nil)
		for i := 0; i < rows; i++ {
			var dot, mag float64
			for j := 0; j < n; j++ {
				dot += hdp.At(i, j) * hp.At(i, j)
				mag += math.Abs(hdp.At(i, j) * hp.At(i, j))
			}
			for j := 0; j < n; j++ {
				v := hp.At(i, j) * (hdp.At(i, j) - dot) * scale
				wds.Set(i, j, v)
				// dot: γ_n·Σ|dp·p|; then a subtraction and two products,
				// each u32 of |p|·(|dp| + |dot|)·scale.
				tds.Set(i, j, scale*hp.At(i, j)*(gammaN(n)*mag+3*u32*(math.Abs(hdp.At(i, j))+math.Abs(dot)))+uStore(dt)*math.Abs(v))
			}
		}
		near(t, "softmax_bwd/"+dt.String(), wds, download(t, b, ds), func(i, j int) float64 { return tds.At(i, j) })
	}
}

// TestMeanPool checks mean_pool (a sum of T terms and a division:
// (T + 1)·u32 of the mean of magnitudes) and mean_pool_bwd (one division).
func TestMeanPool(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(7, 1))
	const B, T, d = 3, 5, 7
	for _, dt := range dtypes {
		x, hx := upload(t, b, B*T, d, dt, normal(rng, 1))
		out := newTensor(t, b, B, d, dt)
		require.NoError(t, k.meanPool(out, x, T))
		want, mag := mat.NewDense(B, d, nil), mat.NewDense(B, d, nil)
		for bb := 0; bb < B; bb++ {
			for j := 0; j < d; j++ {
				var s, m float64
				for tt := 0; tt < T; tt++ {
					s += hx.At(bb*T+tt, j) / T
					m += math.Abs(hx.At(bb*T+tt, j)) / T
				}
				want.Set(bb, j, s)
				mag.Set(bb, j, m)
			}
		}
		near(t, "mean_pool/"+dt.String(), want, download(t, b, out), func(i, j int) float64 {
			return float64(T+1)*u32*mag.At(i, j) + uStore(dt)*math.Abs(want.At(i, j))
		})
		dp, hdp := upload(t, b, B, d, dt, normal(rng, 1))
		dx := newTensor(t, b, B*T, d, dt)
		require.NoError(t, k.meanPoolBwd(dx, dp, T))
		wdx := mat.NewDense(B*T, d, nil)
		for i := 0; i < B*T; i++ {
			for j := 0; j < d; j++ {
				wdx.Set(i, j, hdp.At(i/T, j)/T)
			}
		}
		near(t, "mean_pool_bwd/"+dt.String(), wdx, download(t, b, dx), func(i, j int) float64 {
			return (u32 + uStore(dt)) * math.Abs(wdx.At(i, j))
		})
	}
}

// TestCrossEntropy checks xent against vit.Loss: the mean loss, the
// gradient, and the count of correct predictions (exact), over 300 rows
// (more than the block's 256 threads) with labels gathered through a
// permuted index vector and a row with a tied maximum (the first wins, as
// in vit.Loss).
func TestCrossEntropy(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(8, 1))
	const B, C = 300, 10
	logits, hl := upload(t, b, B, C, gpu.Float32, normal(rng, 3))
	// Row 0: a tie between classes 2 and 5, the label 5.
	tie := mat.NewDense(1, C, []float64{0, 0, 4, 0, 0, 4, 0, 0, 0, 0})
	require.NoError(t, b.Upload(gpu.RowMajor(logits.Ptr(), 1, C, C, gpu.Float32), tie))
	hl.SetRow(0, tie.RawRowView(0))
	perm := rng.Perm(B)
	labelsByImage := make([]int, B)
	for i := range labelsByImage {
		labelsByImage[i] = rng.IntN(C)
	}
	labelsByImage[perm[0]] = 5
	labels, _ := upload(t, b, B, 1, gpu.Float32, func(i, _ int) float64 { return float64(labelsByImage[i]) })
	idx, _ := upload(t, b, B, 1, gpu.Float32, func(i, _ int) float64 { return float64(perm[i]) })
	want := make([]int, B)
	for i := range want {
		want[i] = labelsByImage[perm[i]]
	}
	wl, wg, wc := vit.Loss(hl, want)
	dl := newTensor(t, b, B, C, gpu.Float32)
	slots := newTensor(t, b, 2, 1, gpu.Float32)
	require.NoError(t, k.fill(slots, 0))
	require.NoError(t, k.xent(dl, logits, labels.Ptr(), idx.Ptr(), slots.Ptr(), slots.Ptr()+4))
	require.NoError(t, k.xent(nil, logits, labels.Ptr(), idx.Ptr(), 0, slots.Ptr()+4))
	got := download(t, b, slots)
	var maxLogit float64
	for _, v := range hl.RawMatrix().Data {
		maxLogit = max(maxLogit, math.Abs(v))
	}
	// Each row's loss log(Σ e) + mx − z_y: logf and expf 4·u32 each, the
	// sum γ_C, the two additions u32 of |mx| + |z_y| ≤ 2·max|z|; the mean
	// over B rows (per-thread sums, then a tree) γ_B of Σ|loss_i|/B.
	tolLoss := (8*u32+gammaN(C))*(1+2*maxLogit) + gammaN(B)*wl
	assert.InDelta(t, wl, got.At(0, 0), tolLoss, "mean loss")
	assert.Equal(t, float64(2*wc), got.At(1, 0), "correct predictions, counted twice")
	// The gradient (softmax − onehot)/B: the softmax's relative bound of
	// TestSoftmax (spread ≤ 2·max|z|), one subtraction, one division.
	near(t, "xent grad", wg, download(t, b, dl), func(i, j int) float64 {
		p := math.Abs(wg.At(i, j)) * B
		rel := 2*u32*2*maxLogit + 8*u32 + gammaN(C) + 2*u32
		return (rel*(p+1) + 2*u32*(p+1)) / B
	})
}

// TestAdam checks one Adam step (t = 3) against vit.Adam's float64 update.
// m = β1·m + (1−β1)·g: each term carries its constant's rounding to
// float32 and its product's, and the sum one more: 3·u32 of the terms'
// magnitudes; v's second term (1−β2)·g·g has two products: 4·u32. The
// update lr·(m/c1)/(√(v/c2) + ε) carries 10 more relative roundings (the
// rounded constants lr, c1, c2, two divisions, the root, the sum, the
// division, the product) plus m's relative error and half of v's (under
// the root); w one subtraction; the bf16 copy is the rounding of w, bit
// for bit.
func TestAdam(t *testing.T) {
	b, k := openKernels(t)
	rng := rand.New(rand.NewPCG(9, 1))
	const n, lr, b1, b2, eps, step = 1000, 2e-3, 0.9, 0.999, 1e-8, 3
	w, hw := upload(t, b, n, 1, gpu.Float32, normal(rng, 1))
	g, hg := upload(t, b, n, 1, gpu.Float32, normal(rng, 0.1))
	m, hm := upload(t, b, n, 1, gpu.Float32, normal(rng, 0.05))
	v, hv := upload(t, b, n, 1, gpu.Float32, func(int, int) float64 { return 0.01 * rng.Float64() })
	wb := newTensor(t, b, n, 1, gpu.BFloat16)
	c1, c2 := 1-math.Pow(b1, step), 1-math.Pow(b2, step)
	require.NoError(t, k.adam(w, wb, g, m, v, lr, b1, b2, eps, c1, c2))
	gw, gm, gv, gb := download(t, b, w), download(t, b, m), download(t, b, v), download(t, b, wb)
	for i := 0; i < n; i++ {
		gi := hg.At(i, 0)
		mi := b1*hm.At(i, 0) + (1-b1)*gi
		vi := b2*hv.At(i, 0) + (1-b2)*gi*gi
		upd := lr * (mi / c1) / (math.Sqrt(vi/c2) + eps)
		wi := hw.At(i, 0) - upd
		tm := 3 * u32 * (b1*math.Abs(hm.At(i, 0)) + (1-b1)*math.Abs(gi))
		tv := 4 * u32 * (b2*hv.At(i, 0) + (1-b2)*gi*gi)
		assert.InDelta(t, mi, gm.At(i, 0), tm, "m[%d]", i)
		assert.InDelta(t, vi, gv.At(i, 0), tv, "v[%d]", i)
		relUpd := 10*u32 + tm/math.Abs(mi) + 0.5*tv/vi
		assert.InDelta(t, wi, gw.At(i, 0), relUpd*math.Abs(upd)+u32*(math.Abs(wi)+math.Abs(upd)), "w[%d]", i)
		assert.Equal(t, round(gw.At(i, 0), gpu.BFloat16), gb.At(i, 0), "bf16 copy of w[%d]", i)
	}
}
