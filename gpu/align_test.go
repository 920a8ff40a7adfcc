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
		{name: "inner 231 (a reconstruction P·R)", m: 1024, n: 1536, k: 231, rowA: true, rowB: true},
		{name: "inner 231, transposed, beta", m: 1031, n: 1024, k: 231, ta: true, beta: 1},
		{name: "inner 231 into row-major C", m: 1024, n: 1032, k: 231, tb: true, rowC: true, offA: true},
		{name: "inner 231, an output below padKMin", m: 512, n: 384, k: 231, rowA: true, rowB: true},
		{name: "inner below padTo", m: 2048, n: 2048, k: 5},
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

// TestPadPlan checks gemm's padding decisions (no GPU needed): an output
// dimension off a multiple of padTo padded on the smaller operand only,
// none for operands of a size or an output below padTo; an inner
// dimension off a multiple of padTo padded on both operands where both
// outputs reach padKMin; nothing below padMin or with noPad.
func TestPadPlan(t *testing.T) {
	for _, tc := range []struct {
		m, n, k int
		noPad   bool
		want    padPlan
	}{
		{257, 512, 256, false, padPlan{264, 512, 256, true, false}},      // B = QᵀA at ℓ = 257
		{512, 257, 256, false, padPlan{512, 264, 256, false, true}},      // Y = AΩ
		{257, 257, 512, false, padPlan{257, 257, 512, false, false}},     // a Gram matrix
		{4, 8192, 512, false, padPlan{4, 8192, 512, false, false}},       // an output below padTo
		{12544, 1536, 231, false, padPlan{12544, 1536, 232, true, true}}, // the per-op reconstruction
		{12544, 1536, 231, true, padPlan{12544, 1536, 231, false, false}},
		{12544, 384, 116, false, padPlan{12544, 384, 116, false, true}}, // an output below padKMin
		{2048, 2048, 7, false, padPlan{2048, 2048, 7, false, false}},    // an inner dimension below padTo
		{1024, 1032, 231, false, padPlan{1024, 1032, 232, true, true}},
		{100, 100, 100, false, padPlan{100, 100, 100, false, false}}, // below padMin
	} {
		assert.Equal(t, tc.want, planPad(tc.m, tc.n, tc.k, tc.noPad), "%d×%d×%d noPad=%v", tc.m, tc.n, tc.k, tc.noPad)
	}
}

// TestInnerPadded checks that a product above padMin whose inner
// dimension is off a multiple of padTo and whose output dimensions are
// both at least padKMin runs on copies of both operands with it padded
// (the scratch of each holds a copy with 232 rows for an inner dimension
// of 231), exactly (TestMisalignedProducts), and on the operands
// themselves with noPad, an inner dimension below padTo or an output
// dimension below padKMin.
func TestInnerPadded(t *testing.T) {
	for _, tc := range []struct {
		m, n, k int
		noPad   bool
		padded  bool
	}{
		{1024, 1536, 231, false, true}, {1024, 1536, 231, true, false}, {1024, 1536, 232, false, false},
		{2048, 2048, 7, false, false}, {8192, 512, 231, false, false},
	} {
		m, n := tc.m, tc.n
		require.GreaterOrEqual(t, m*n*tc.k, padMin)
		b := open(t, nil)
		b.noPad = tc.noPad
		ha, hb := intMatrix(m, tc.k, 4), intMatrix(tc.k, n, 5)
		// Row-major, as a compression's factors P (m×k) and R (k×n) are:
		// P is stored k×m, its leading dimension k.
		da, err := b.UploadDense32(testmat.To32(ha), BFloat16)
		require.NoError(t, err)
		db, err := b.UploadDense32(testmat.To32(hb), BFloat16)
		require.NoError(t, err)
		dc, err := b.NewMatrix(m, n, Float32)
		require.NoError(t, err)
		a0, b0 := b.sc.mulA.bytes, b.sc.mulB.bytes
		require.NoError(t, b.Mul(dc, 1, da, false, db, false, 0))
		var want mat.Dense
		want.Mul(ha, hb)
		name := fmt.Sprintf("%d×%d×%d noPad=%v", m, n, tc.k, tc.noPad)
		assertExact(t, b, &want, dc, name)
		kp := roundUp(tc.k, padTo)
		if tc.padded {
			assert.GreaterOrEqual(t, b.sc.mulA.bytes, kp*m*2, "%s: A copied with %d rows", name, kp)
			assert.GreaterOrEqual(t, b.sc.mulB.bytes, kp*n*2, "%s: B copied with %d rows", name, kp)
		} else {
			assert.Equal(t, [2]int{a0, b0}, [2]int{b.sc.mulA.bytes, b.sc.mulB.bytes}, "%s: the operands as they are", name)
		}
	}
}

// TestMisalignedBatch checks MulBatch's padding of misaligned products
// (mulUniform) exactly, as TestMisalignedProducts checks Mul's: batches of
// three integer products above padMin with an output dimension of 231 —
// the B = Qᵀ·op(A) and the sketch Y = op(A)·Ω of a Decomposer's batch at
// ℓ = 231 (Q and Ω float32 column blocks of one matrix, A bf16 row-major)
// — into column-major and row-major destinations, with beta ≠ 0, and into
// views whose pointers and leading dimensions are misaligned, with the
// padding on and off. Where the stored destination has 231 rows (B into a
// column-major destination) the product is padded: its address table
// lists the padded scratch copies beside the destinations (4n entries,
// not 3n) and the scratch holds n destinations of 232 rows; where 231 is
// the stored column count (Y; B into a row-major destination) it runs as
// it is.
func TestMisalignedBatch(t *testing.T) {
	b := open(t, nil)
	const n, l, d, rows = 3, 231, 256, 512
	require.GreaterOrEqual(t, l*rows*d, padMin)
	require.Zero(t, b.sc.mulC.bytes, "a fresh backend has no padded destination scratch")
	hq := make([]*mat.Dense, n) // Q (and Ω): d×l
	ha := make([]*mat.Dense, n) // A: rows×d
	blocks, err := b.NewMatrix(d, l*n, Float32)
	require.NoError(t, err)
	t.Cleanup(func() { b.Free(blocks) })
	all := mat.NewDense(d, l*n, nil)
	qs, as := make([]lowrank.Matrix, n), make([]lowrank.Matrix, n)
	for i := range n {
		hq[i] = intMatrix(d, l, uint64(10+i))
		all.Slice(0, d, i*l, (i+1)*l).(*mat.Dense).Copy(hq[i])
		ha[i] = intMatrix(rows, d, uint64(20+i))
		x, err := b.UploadDense32(testmat.To32(ha[i]), BFloat16)
		require.NoError(t, err)
		t.Cleanup(func() { b.Free(x) })
		as[i] = x
	}
	require.NoError(t, b.Upload(blocks, all))
	for i := range n {
		qs[i] = b.Slice(blocks, 0, d, i*l, (i+1)*l)
	}
	// dest returns n float32 r×c destinations holding c0[i], row-major or
	// column-major, or (off) views one row into a matrix one row taller.
	dest := func(r, c int, rowMajor, off bool, c0 []*mat.Dense) []lowrank.Matrix {
		out := make([]lowrank.Matrix, n)
		for i := range out {
			h := c0[i]
			if off {
				big := mat.NewDense(r+1, c, nil)
				big.Slice(1, r+1, 0, c).(*mat.Dense).Copy(h)
				h = big
			}
			hr, hc := h.Dims()
			var x *Matrix
			var err error
			if rowMajor {
				x, err = b.NewMatrix(hc, hr, Float32)
				require.NoError(t, err)
				x = x.T()
			} else {
				x, err = b.NewMatrix(hr, hc, Float32)
				require.NoError(t, err)
			}
			t.Cleanup(func() { b.Free(x) })
			require.NoError(t, b.Upload(x, h))
			out[i] = x
			if off {
				out[i] = b.Slice(x, 1, r+1, 0, c)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		qFirst   bool // B = Qᵀ·Aᵀ (l×rows); else Y = A·Ω (rows×l)
		rowMajor bool
		off      bool
		beta     float64
		padded   bool
	}{
		{name: "B=Qᵀ·Aᵀ at ℓ=231", qFirst: true, padded: true},
		{name: "B=Qᵀ·Aᵀ misaligned views, beta", qFirst: true, off: true, beta: 2, padded: true},
		{name: "B=Qᵀ·Aᵀ row-major c, beta", qFirst: true, rowMajor: true, beta: -1},
		{name: "Y=A·Ω at ℓ=231"},
		{name: "Y=A·Ω misaligned views, beta", off: true, beta: 2},
	} {
		want := make([]*mat.Dense, n)
		c0 := make([]*mat.Dense, n)
		for i := range n {
			var p mat.Dense
			if tc.qFirst {
				p.Mul(hq[i].T(), ha[i].T())
			} else {
				p.Mul(ha[i], hq[i])
			}
			r, c := p.Dims()
			c0[i] = intMatrix(r, c, uint64(30+i))
			p.Scale(2, &p)
			var bc mat.Dense
			bc.Scale(tc.beta, c0[i])
			p.Add(&p, &bc)
			want[i] = &p
		}
		r, c := want[0].Dims()
		for _, noPad := range []bool{false, true} {
			b.noPad = noPad
			name := fmt.Sprintf("%s/noPad=%v", tc.name, noPad)
			cs := dest(r, c, tc.rowMajor, tc.off, c0)
			if tc.qFirst {
				require.NoError(t, b.MulBatch(cs, 2, qs, true, as, true, tc.beta), name)
			} else {
				require.NoError(t, b.MulBatch(cs, 2, as, false, qs, false, tc.beta), name)
			}
			for i := range n {
				assertExact(t, b, want[i], cs[i], fmt.Sprintf("%s: item %d", name, i))
			}
			padded := tc.padded && !noPad
			entries := 3 * n
			if padded {
				entries = 4 * n
				assert.GreaterOrEqual(t, b.sc.mulC.bytes, n*padLD(roundUp(l, padTo), Float32)*rows*4, name)
			}
			assert.Len(t, b.batch.table, entries, "%s: address table (padded: %v)", name, padded)
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
