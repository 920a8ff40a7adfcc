package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// userSource exercises every kind of argument slot and a 3D launch:
// out[z][y][x] = a·x + b·y + c·z + (n − 2⁴⁰), for float a, double b, int
// c and long long n, written through a pointer: with n = 2⁴⁰ + 7 the last
// term is 7 only if all 8 bytes of n's slot are read.
const userSource = `
extern "C" __global__ void probe(float* out, float a, double b, int c, long long n, int nx, int ny) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y, z = blockIdx.z;
    if (x >= nx) return;
    out[((long long)z * ny + y) * nx + x] = a * x + (float)(b * y) + (float)(c * z) + (float)(n - 1099511627776LL);
}
extern "C" __global__ void twice(float* p, long long n) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x)
        p[e] *= 2.0f;
}
`

// TestModule compiles a module of the caller's, launches its kernels on
// the backend's stream (a 3D grid, each argument kind, a negative int),
// checks the result, the cache, a Fork's use of the module and the errors
// for a missing kernel, a compile error and a closed module.
func TestModule(t *testing.T) {
	b := open(t, nil)
	before := userCompiles.Load()
	mod, err := b.Compile("probe.cu", userSource)
	require.NoError(t, err)
	defer func() { assert.NoError(t, mod.Close()) }()
	probe, err := mod.Func("probe")
	require.NoError(t, err)
	const nx, ny, nz = 70, 3, 2
	out, err := b.NewMatrix(nx*ny*nz, 1, Float32)
	require.NoError(t, err)
	defer b.Free(out)
	const a, bb, c, n = 0.5, 0.25, -3, 1<<40 + 7
	require.NoError(t, b.Launch(probe, Dim3{X: (nx + 31) / 32, Y: ny, Z: nz}, Dim3{X: 32}, 0,
		ArgPtr(out.Ptr()), ArgFloat32(a), ArgFloat64(bb), ArgInt(c), ArgInt(n), ArgInt(nx), ArgInt(ny)))
	var got mat.Dense
	require.NoError(t, b.Download(&got, out))
	for z := 0; z < nz; z++ {
		for y := 0; y < ny; y++ {
			for x := 0; x < nx; x++ {
				// Every term and partial sum is a multiple of 1/4 below
				// 2⁷: exact in float32.
				want := a*float64(x) + bb*float64(y) + float64(c*z) + 7
				assert.Equal(t, want, got.At((z*ny+y)*nx+x, 0), "(%d, %d, %d)", x, y, z)
			}
		}
	}

	// The same source again: no NVRTC run, a second module.
	mod2, err := b.Compile("probe.cu", userSource)
	require.NoError(t, err)
	assert.Equal(t, before+1, userCompiles.Load(), "the CUBIN is cached per source")
	require.NoError(t, mod2.Close())
	assert.NoError(t, mod2.Close(), "second Close")
	_, err = mod2.Func("probe")
	assert.ErrorIs(t, err, ErrClosed)

	// A Fork launches the module's kernels on its own stream.
	f, err := b.Fork()
	require.NoError(t, err)
	defer f.Close()
	twice, err := mod.Func("twice")
	require.NoError(t, err)
	require.NoError(t, b.Synchronize())
	require.NoError(t, f.Launch(twice, Dim3{X: 2}, Dim3{X: 64}, 0, ArgPtr(out.Ptr()), ArgInt(nx*ny*nz)))
	require.NoError(t, f.Synchronize())
	var got2 mat.Dense
	require.NoError(t, b.Download(&got2, out))
	for i := 0; i < nx*ny*nz; i++ {
		assert.Equal(t, 2*got.At(i, 0), got2.At(i, 0), "doubling is exact")
	}

	_, err = mod.Func("nosuch")
	var ce *CUDAError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Detail, "nosuch")

	_, err = b.Compile("broken.cu", `extern "C" __global__ void k(float* p) { p[0] = undeclared; }`)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "nvrtcCompileProgram", ce.Call)
	assert.Contains(t, ce.Detail, "undeclared", "the compile log names the error")

	assert.Panics(t, func() { _ = b.Launch(probe, Dim3{X: -1}, Dim3{X: 1}, 0) })
	assert.Panics(t, func() { _ = b.Launch(probe, Dim3{X: 1}, Dim3{X: 1}, 0, make([]uint64, 25)...) })
}

// TestMulBatched compares MulBatched with a float64 product per matrix,
// for float32 and bf16 operands, float32 and bf16 destinations, every
// combination of transposes and of row- and column-major layouts, strides
// with gaps between the matrices, and beta ≠ 0; and checks that the
// memory between the matrices is left alone.
func TestMulBatched(t *testing.T) {
	b := open(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	const count, m, n, k, gap = 6, 7, 6, 9, 3
	type layout struct{ rowMajor, trans bool }
	layouts := []layout{{false, false}, {false, true}, {true, false}, {true, true}}
	for _, dt := range []DType{Float32, BFloat16} {
		for _, ct := range []DType{Float32, BFloat16} {
			if dt == Float32 && ct == BFloat16 {
				continue // refused: checked below
			}
			for _, la := range layouts {
				for _, lb := range layouts {
					for _, lc := range []bool{false, true} {
						for _, grid := range []int{1, 2, 3} {
							name := fmt.Sprintf("%v→%v grid %d", dt, ct, grid)
							checkBatched(t, b, rng, name, count, grid, m, n, k, gap, dt, ct, la.rowMajor, la.trans, lb.rowMajor, lb.trans, lc)
						}
					}
				}
			}
		}
	}
	// Shape, type and alias errors are programmer errors.
	x, err := b.NewMatrix(4, 4, Float32)
	require.NoError(t, err)
	defer b.Free(x)
	y, err := b.NewMatrix(4, 4, BFloat16)
	require.NoError(t, err)
	defer b.Free(y)
	assert.Panics(t, func() { _ = b.MulBatched(1, x, 0, 1, x, false, 0, y, false, 0, 0) }, "operand types differ")
	z, err := b.NewMatrix(4, 4, Float32)
	require.NoError(t, err)
	defer b.Free(z)
	assert.Panics(t, func() { _ = b.MulBatched(1, y, 0, 1, x, false, 0, z, false, 0, 0) }, "float32 operands into bf16")
	assert.Panics(t, func() { _ = b.MulBatched(2, x, 0, 1, x, false, 0, x, false, 0, 0) }, "alias")
	assert.Panics(t, func() { _ = b.MulBatched(-1, x, 0, 1, y, false, 0, y, false, 0, 0) }, "count")
	assert.NoError(t, b.MulBatched(0, x, 0, 1, y, false, 0, y, false, 0, 0), "count 0")
	// c's second matrix, 16 elements on, is a: an overlap only the second
	// level makes.
	w, err := b.NewMatrix(32, 1, Float32)
	require.NoError(t, err)
	defer b.Free(w)
	wc, wa := ColMajor(w.Ptr(), 2, 2, 2, Float32), ColMajor(w.Ptr()+16*4, 2, 2, 2, Float32)
	require.NoError(t, b.MulBatchedGrid(1, 1, wc, 0, 16, 1, wa, false, 0, 0, ColMajor(x.Ptr(), 2, 2, 4, Float32), false, 0, 0, 0), "one level: apart")
	assert.Panics(t, func() {
		_ = b.MulBatchedGrid(1, 2, wc, 0, 16, 1, wa, false, 0, 0, ColMajor(x.Ptr(), 2, 2, 4, Float32), false, 0, 0, 0)
	}, "alias over the second level")
	assert.Panics(t, func() { _ = b.MulBatchedGrid(1, -1, x, 0, 0, 1, y, false, 0, 0, y, false, 0, 0, 0) }, "count2")
	assert.Panics(t, func() { _ = b.MulBatchedGrid(1, 1, x, 0, -1, 1, y, false, 0, 0, y, false, 0, 0, 0) }, "stride2")
	assert.NoError(t, b.MulBatchedGrid(2, 0, x, 0, 0, 1, y, false, 0, 0, y, false, 0, 0, 0), "count2 0")
}

// batch holds count matrices of logical shape r×c, stored one after the
// other stride elements apart in one allocation, with their host values.
type batch struct {
	all    *Matrix // the allocation
	view   *Matrix // matrix 0
	stride int
	host   []*mat.Dense
}

// newBatch fills count r×c matrices (row-major storage if rowMajor) with
// values rounded to dt, the gaps with a sentinel.
func newBatch(t *testing.T, b *Backend, rng *rand.Rand, count, r, c, gap int, dt DType, rowMajor bool) *batch {
	t.Helper()
	sr, sc := r, c // stored column-major shape
	if rowMajor {
		sr, sc = c, r
	}
	ld := sr + gap
	stride := ld*sc + gap
	total := stride * count
	all, err := b.NewMatrix(total, 1, dt)
	require.NoError(t, err)
	t.Cleanup(func() { b.Free(all) })
	vals := mat.NewDense(total, 1, nil)
	for i := 0; i < total; i++ {
		vals.Set(i, 0, 1e6) // sentinel between the matrices
	}
	bt := &batch{all: all, stride: stride}
	for z := 0; z < count; z++ {
		h := mat.NewDense(r, c, nil)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				v := rng.NormFloat64()
				if dt == BFloat16 {
					v = float64(lowrank.FromBF16(lowrank.ToBF16(float32(v))))
				} else {
					v = float64(float32(v))
				}
				h.Set(i, j, v)
				x, y := i, j
				if rowMajor {
					x, y = j, i
				}
				vals.Set(z*stride+x+y*ld, 0, v)
			}
		}
		bt.host = append(bt.host, h)
	}
	require.NoError(t, b.Upload(all, vals))
	if rowMajor {
		bt.view = RowMajor(all.Ptr(), r, c, ld, dt)
	} else {
		bt.view = ColMajor(all.Ptr(), r, c, ld, dt)
	}
	return bt
}

// checkBatched runs MulBatched on count products (grid = 1), or
// MulBatchedGrid on the same count as count/grid × grid, product (i, j)
// being matrix i + j·count/grid of each batch (its second level the outer
// one in memory), against the host's products.
func checkBatched(t *testing.T, b *Backend, rng *rand.Rand, name string, count, grid, m, n, k, gap int, dt, ct DType,
	aRow, ta, bRow, tb, cRow bool) {
	t.Helper()
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	A := newBatch(t, b, rng, count, ar, ac, gap, dt, aRow)
	B := newBatch(t, b, rng, count, br, bc, gap, dt, bRow)
	C := newBatch(t, b, rng, count, m, n, gap, ct, cRow)
	const alpha, beta = 0.75, -0.5
	if grid == 1 {
		require.NoError(t, b.MulBatched(count, C.view, C.stride, alpha, A.view, ta, A.stride, B.view, tb, B.stride, beta))
	} else {
		n1 := count / grid
		require.NoError(t, b.MulBatchedGrid(n1, grid, C.view, C.stride, n1*C.stride, alpha, A.view, ta, A.stride, n1*A.stride,
			B.view, tb, B.stride, n1*B.stride, beta))
	}
	var raw mat.Dense
	require.NoError(t, b.Download(&raw, C.all))
	u := 0x1p-24 // float32 accumulation
	uc := u
	if ct == BFloat16 {
		uc = 0x1p-8 // the product is rounded once more, to bf16
	}
	sr := m
	if cRow {
		sr = n
	}
	ld := sr + gap
	for z := 0; z < count; z++ {
		var want mat.Dense
		var aa, bb mat.Matrix = A.host[z], B.host[z]
		if ta {
			aa = aa.T()
		}
		if tb {
			bb = bb.T()
		}
		want.Mul(aa, bb)
		want.Scale(alpha, &want)
		want.Add(&want, scaled(beta, C.host[z]))
		// |fl(c) − c| ≤ γ_{k+2}·(|α|·|A||B| + |β||C|) for the float32
		// accumulation of k products and the two scalings (operands are
		// exact: they were rounded to dt on the host), plus uc·|c| for the
		// rounding of the result to its type; γ_j = j·u/(1 − j·u).
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var mag float64
				for l := 0; l < k; l++ {
					mag += math.Abs(alpha * at(aa, i, l) * at(bb, l, j))
				}
				mag += math.Abs(beta * C.host[z].At(i, j))
				g := float64(k+2) * u / (1 - float64(k+2)*u)
				tol := g*mag + uc*(math.Abs(want.At(i, j))+g*mag)
				x, y := i, j
				if cRow {
					x, y = j, i
				}
				got := raw.At(z*C.stride+x+y*ld, 0)
				assert.InDelta(t, want.At(i, j), got, tol, "%s ta=%v tb=%v rows a=%v b=%v c=%v: c_%d(%d, %d)", name, ta, tb, aRow, bRow, cRow, z, i, j)
			}
		}
	}
	// The gaps still hold the sentinel (rounded to the type): nothing was
	// written outside the matrices.
	inside := map[int]bool{}
	for z := 0; z < count; z++ {
		for x := 0; x < sr; x++ {
			for y := 0; y < (m*n)/sr; y++ {
				inside[z*C.stride+x+y*ld] = true
			}
		}
	}
	for i := 0; i < C.stride*count; i++ {
		if !inside[i] && raw.At(i, 0) != 1e6 {
			v := raw.At(i, 0)
			if ct == BFloat16 && v == float64(lowrank.FromBF16(lowrank.ToBF16(1e6))) {
				continue
			}
			t.Errorf("%s: element %d between the matrices was written: %g", name, i, v)
			return
		}
	}
}

func at(m mat.Matrix, i, j int) float64 { return m.At(i, j) }

func scaled(s float64, m *mat.Dense) *mat.Dense {
	var out mat.Dense
	out.Scale(s, m)
	return &out
}
