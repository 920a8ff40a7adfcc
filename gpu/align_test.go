package gpu

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

// intMatrix returns an r×c matrix of integers in [−4, 4]: exact in bf16
// and float32, and so are all their products' partial sums for inner
// dimensions up to 2¹⁹ (|sum| ≤ 16·k < 2²⁴), whatever the order of
// accumulation. Products of such matrices are exact on every path.
func intMatrix(r, c int, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, 0))
	m := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			m.Set(i, j, float64(rng.IntN(9)-4))
		}
	}
	return m
}

// TestMisalignedProducts checks products large enough for gemm's padding
// (output dimensions off a multiple of 8, leading dimensions and view
// pointers off 16 bytes, transposed and row-major operands, beta ≠ 0, a
// row-major destination) against the exact integer product, with the
// padding on and off, with float32 and bf16 operands.
func TestMisalignedProducts(t *testing.T) {
	b := open(t, nil)
	up := func(a *mat.Dense, dt DType) *Matrix {
		r, c := a.Dims()
		m, err := b.NewMatrix(r, c, dt)
		require.NoError(t, err)
		require.NoError(t, b.Upload(m, a))
		t.Cleanup(func() { b.Free(m) })
		return m
	}
	// layout uploads x: column-major, or (rowMajor) as the transposed
	// view of its uploaded transpose, the same logical matrix.
	layout := func(x *mat.Dense, dt DType, rowMajor bool) *Matrix {
		if rowMajor {
			return up(mat.DenseCopyOf(x.T()), dt).T()
		}
		return up(x, dt)
	}
	// operand returns x on the device as layout does, and with off as
	// rows 1.. of a matrix one row taller (a view whose pointer is one
	// element off).
	operand := func(x *mat.Dense, dt DType, rowMajor, off bool) *Matrix {
		if !off {
			return layout(x, dt, rowMajor)
		}
		r, c := x.Dims()
		big := mat.NewDense(r+1, c, nil)
		big.Slice(1, r+1, 0, c).(*mat.Dense).Copy(x)
		return b.Slice(layout(big, dt, rowMajor), 1, r+1, 0, c).(*Matrix)
	}
	for _, tc := range []struct {
		name       string
		m, n, k    int
		ta, tb     bool // multiply by the transpose of the uploaded matrix
		rowA, rowB bool // operands stored row-major
		offA       bool
		beta       float64
		rowC       bool
	}{
		{name: "B=QᵀA at ℓ=257", m: 257, n: 512, k: 256, ta: true},
		{name: "Y=AΩ at ℓ=257", m: 512, n: 257, k: 256},
		{name: "Gram 257×257", m: 257, n: 257, k: 512, ta: true},
		{name: "row-major A, beta", m: 255, n: 512, k: 256, rowA: true, beta: -1},
		{name: "misaligned view", m: 257, n: 320, k: 256, offA: true},
		{name: "transposed row-major B", m: 512, n: 255, k: 256, tb: true, rowB: true},
		{name: "row-major C", m: 257, n: 512, k: 256, ta: true, rowC: true, beta: 1},
		{name: "output dimension below padTo", m: 4, n: 8192, k: 512, ta: true},
	} {
		require.GreaterOrEqual(t, tc.m*tc.n*tc.k, padMin, tc.name)
		ha, hb := intMatrix(tc.m, tc.k, 1), intMatrix(tc.k, tc.n, 2)
		c0 := intMatrix(tc.m, tc.n, 3)
		var want mat.Dense
		want.Mul(ha, hb)
		want.Scale(2, &want)
		var bc mat.Dense
		bc.Scale(tc.beta, c0)
		want.Add(&want, &bc)
		for _, dt := range []DType{Float32, BFloat16} {
			for _, noPad := range []bool{false, true} {
				b.noPad = noPad
				name := fmt.Sprintf("%s/%v/noPad=%v", tc.name, dt, noPad)
				sa, sb := mat.Matrix(ha), mat.Matrix(hb)
				if tc.ta {
					sa = ha.T()
				}
				if tc.tb {
					sb = hb.T()
				}
				da := operand(mat.DenseCopyOf(sa), dt, tc.rowA, tc.offA)
				db := operand(mat.DenseCopyOf(sb), dt, tc.rowB, false)
				dc := layout(c0, Float32, tc.rowC)
				require.NoError(t, b.Mul(dc, 2, da, tc.ta, db, tc.tb, tc.beta), name)
				assertExact(t, b, &want, dc, name)
			}
		}
	}
	b.noPad = false
}

// assertExact downloads m and requires it to equal want exactly.
func assertExact(t *testing.T, b *Backend, want mat.Matrix, m lowrank.Matrix, msg string) {
	t.Helper()
	var got mat.Dense
	require.NoError(t, b.Download(&got, m))
	var d mat.Dense
	d.Sub(&got, want)
	assert.Zero(t, mat.Norm(&d, math.Inf(1)), msg)
}

// TestSymEig checks the float64 divide-and-conquer eigensolver of small
// symmetric matrices against the host's, and against the Jacobi SVD it
// replaces in the truncation.
func TestSymEig(t *testing.T) {
	b := open(t, nil)
	for _, tc := range []struct{ l, rows int }{{1, 5}, {2, 5}, {33, 300}, {40, 20}, {138, 4096}, {257, 1000}} {
		// G = XᵀX of a rows×l Gaussian X, rounded to float32: positive
		// semidefinite, singular when rows < l.
		x := testmat.Gaussian(tc.rows, tc.l, uint64(tc.l))
		var g mat.SymDense
		g.SymOuterK(1, x.T())
		g32 := mat.NewDense(tc.l, tc.l, nil)
		for i := range tc.l {
			for j := range tc.l {
				g32.Set(i, j, float64(float32(g.At(i, j))))
			}
		}
		dg := uploadFloat32(t, b, g32, false)
		w, err := b.NewMatrix(tc.l, tc.l, Float32)
		require.NoError(t, err)
		lam := make([]float64, tc.l)
		require.NoError(t, b.SymEig(w, lam, dg))
		var hw mat.Dense
		require.NoError(t, b.Download(&hw, w))

		var es mat.EigenSym
		require.True(t, es.Factorize(mat.NewSymDense(tc.l, g32.RawMatrix().Data), false))
		ref := es.Values(nil)
		norm := mat.Norm(g32, 2)
		// dsyevd is backward stable in float64: each eigenvalue within
		// c·l·u₆₄·‖G‖ of the host's on the same float32 G (c = 10 for
		// both solvers' constants).
		for j := range tc.l {
			assert.InDelta(t, max(ref[tc.l-1-j], 0), lam[j], 10*float64(tc.l)*0x1p-53*norm, "l=%d: λ_%d", tc.l, j)
			assert.GreaterOrEqual(t, lam[j], 0.0)
			if j > 0 {
				assert.LessOrEqual(t, lam[j], lam[j-1], "l=%d: non-increasing", tc.l)
			}
		}
		// w is the float64 eigenvector matrix W rounded to float32, ŵ =
		// W + Δ with |Δ| ≤ u₃₂·|W|: each inner product of ŵ's columns is
		// off by ≤ 2·u₃₂ (Cauchy–Schwarz) plus dsyevd's l·u₆₄, and each
		// entry of G·ŵ − ŵ·Λ by ≤ |G·Δ| + |Δ·Λ| ≤ 2·u₃₂·‖G‖₂; margin 2.
		assert.LessOrEqual(t, testmat.OrthError(&hw), 4*u32, "l=%d: orthogonality", tc.l)
		var gw, wl mat.Dense
		gw.Mul(g32, &hw)
		wl.Mul(&hw, mat.NewDiagDense(tc.l, lam))
		gw.Sub(&gw, &wl)
		res := 0.0
		for _, v := range gw.RawMatrix().Data {
			res = max(res, math.Abs(v))
		}
		assert.LessOrEqual(t, res, 4*u32*norm, "l=%d: residual", tc.l)

		// The Jacobi SVD (float32) on the same G: the same values up to
		// its float32 accuracy, 10·l·u₃₂·‖G‖.
		b.noSymEig = true
		lamJ := make([]float64, tc.l)
		require.NoError(t, b.SymEig(w, lamJ, dg))
		b.noSymEig = false
		for j := range tc.l {
			assert.InDelta(t, lam[j], lamJ[j], 10*float64(tc.l)*u32*norm, "l=%d: SVD and dsyevd λ_%d", tc.l, j)
		}
		b.Free(w)
		b.Free(dg)
	}
	assert.Panics(t, func() {
		g, _ := b.NewMatrix(3, 3, Float32)
		w, _ := b.NewMatrix(3, 3, Float32)
		_ = b.SymEig(w, make([]float64, 2), g)
	}, "eigenvalue slice of the wrong length")
}
