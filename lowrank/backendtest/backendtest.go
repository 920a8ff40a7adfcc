// Package backendtest is the conformance suite for lowrank.Backend
// implementations, in the manner of gonum's testlapack: every backend (the
// CPU one in package cpu, the CUDA one in package gpu) runs the same
// checks against float64 host references.
package backendtest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// Config describes the backend under test.
type Config struct {
	// U is the unit roundoff of the backend's working arithmetic:
	// 2⁻⁵³ for float64, 2⁻²⁴ for float32. Tolerances are multiples of it.
	U float64
	// OrthTol is the allowed max-norm of QᵀQ − I per column of Q:
	// ‖QᵀQ − I‖_max ≤ OrthTol·l. docs/theory.md §10.1 (check 5) asks for 1e-13 in float64
	// and 1e-5 in float32.
	OrthTol float64
	// Input, if not nil, converts a host matrix to the backend's input
	// format (the read-only type activations arrive in, e.g. a row-major
	// float32 buffer), which Mul, Gather, SquaredRowNorms, SquaredNorm
	// and FindNonFinite must accept as an operand. Nil means inputs are
	// ordinary backend matrices made by New and Upload.
	Input func(t *testing.T, b lowrank.Backend, a *mat.Dense) lowrank.Matrix
	// InputU is the unit roundoff of the input format (its elements are
	// rounded once on conversion); 0 means U.
	InputU float64
}

// Run runs every conformance check on b.
func Run(t *testing.T, b lowrank.Backend, cfg Config) {
	if cfg.InputU == 0 {
		cfg.InputU = cfg.U
	}
	t.Run("New", func(t *testing.T) { testNew(t, b) })
	t.Run("Mul", func(t *testing.T) { testMul(t, b, cfg) })
	t.Run("MulInput", func(t *testing.T) { testMulInput(t, b, cfg) })
	t.Run("Slice", func(t *testing.T) { testSlice(t, b, cfg) })
	t.Run("Scale", func(t *testing.T) { testScale(t, b, cfg) })
	t.Run("Gather", func(t *testing.T) { testGather(t, b, cfg) })
	t.Run("Normal", func(t *testing.T) { testNormal(t, b) })
	t.Run("QR", func(t *testing.T) { testQR(t, b, cfg) })
	t.Run("LU", func(t *testing.T) { testLU(t, b, cfg) })
	t.Run("SVD", func(t *testing.T) { testSVD(t, b, cfg) })
	t.Run("Norms", func(t *testing.T) { testNorms(t, b, cfg) })
	t.Run("NonFinite", func(t *testing.T) { testNonFinite(t, b, cfg) })
	if gn, ok := b.(lowrank.GatherNormer); ok {
		t.Run("GatherNorm", func(t *testing.T) { testGatherNorm(t, b, gn, cfg) })
	}
	if tq, ok := b.(lowrank.TolerantQRer); ok {
		t.Run("QRTol", func(t *testing.T) { testQRTol(t, b, tq, cfg) })
	}
}

func randDense(rng *rand.Rand, r, c int) *mat.Dense {
	d := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			d.Set(i, j, rng.NormFloat64())
		}
	}
	return d
}

func upload(t *testing.T, b lowrank.Backend, a *mat.Dense) lowrank.Matrix {
	t.Helper()
	r, c := a.Dims()
	m, err := b.New(r, c)
	require.NoError(t, err)
	require.NoError(t, b.Upload(m, a))
	return m
}

func input(t *testing.T, b lowrank.Backend, cfg Config, a *mat.Dense) lowrank.Matrix {
	if cfg.Input == nil {
		return upload(t, b, a)
	}
	return cfg.Input(t, b, a)
}

func download(t *testing.T, b lowrank.Backend, m lowrank.Matrix) *mat.Dense {
	t.Helper()
	var d mat.Dense
	require.NoError(t, b.Download(&d, m))
	return &d
}

func op(a *mat.Dense, tr bool) mat.Matrix {
	if tr {
		return a.T()
	}
	return a
}

func testNew(t *testing.T, b lowrank.Backend) {
	m, err := b.New(3, 5)
	require.NoError(t, err)
	defer b.Free(m)
	r, c := m.Dims()
	assert.Equal(t, [2]int{3, 5}, [2]int{r, c})
	assert.Equal(t, 0.0, mat.Norm(download(t, b, m), 1), "New must zero its matrix")
	_, err = b.New(0, 5)
	assert.Error(t, err, "New(0, 5) must return an error")
	rng := rand.New(rand.NewPCG(1, 1))
	a := randDense(rng, 4, 3)
	d := upload(t, b, a)
	defer b.Free(d)
	got := download(t, b, d)
	assert.True(t, mat.Equal(got, roundAll(a, b, nil)), "Upload then Download must round-trip")
	c2, err := b.New(4, 3)
	require.NoError(t, err)
	defer b.Free(c2)
	require.NoError(t, b.Copy(c2, d))
	assert.True(t, mat.Equal(download(t, b, c2), got), "Copy")
}

// roundAll returns a rounded to the backend's working precision, as Upload
// does, by a round trip through the backend.
func roundAll(a *mat.Dense, b lowrank.Backend, _ *Config) *mat.Dense {
	r, c := a.Dims()
	m, err := b.New(r, c)
	if err != nil {
		panic(err)
	}
	defer b.Free(m)
	if err := b.Upload(m, a); err != nil {
		panic(err)
	}
	var d mat.Dense
	if err := b.Download(&d, m); err != nil {
		panic(err)
	}
	return &d
}

// mulTol is the forward error bound of a product with inner dimension k,
// in the Frobenius norm: ‖ΔC‖_F ≤ (k+2)·u·‖A‖_F·‖B‖_F, from the dot-product
// bound |fl(xᵀy) − xᵀy| ≤ γ_k·|x|ᵀ|y| (Higham, Thm 3.5) plus one rounding of
// each operand on upload; the factor 2 covers γ_k ≈ k·u/(1 − k·u) and the
// beta term.
func mulTol(u float64, k int, na, nb, nc float64) float64 {
	return 2 * float64(k+2) * u * (na*nb + nc)
}

func testMul(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {7, 5, 3}, {33, 17, 64}, {64, 1, 9}, {1, 40, 21}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				ar, ac := s.m, s.k
				if ta {
					ar, ac = ac, ar
				}
				br, bc := s.k, s.n
				if tb {
					br, bc = bc, br
				}
				a, bm, c0 := randDense(rng, ar, ac), randDense(rng, br, bc), randDense(rng, s.m, s.n)
				da, db, dc := upload(t, b, a), upload(t, b, bm), upload(t, b, c0)
				const alpha, beta = 0.75, -0.5
				require.NoError(t, b.Mul(dc, alpha, da, ta, db, tb, beta))
				var want mat.Dense
				want.Mul(op(a, ta), op(bm, tb))
				want.Scale(alpha, &want)
				var bc0 mat.Dense
				bc0.Scale(beta, c0)
				want.Add(&want, &bc0)
				got := download(t, b, dc)
				var diff mat.Dense
				diff.Sub(got, &want)
				tol := mulTol(cfg.U, s.k, mat.Norm(a, 2), mat.Norm(bm, 2), mat.Norm(c0, 2))
				assert.LessOrEqual(t, mat.Norm(&diff, 2), tol, "Mul %v ta=%v tb=%v", s, ta, tb)
				// beta = 0 must not read c: fill it with NaN first.
				nan := mat.NewDense(s.m, s.n, nil)
				for i := 0; i < s.m; i++ {
					for j := 0; j < s.n; j++ {
						nan.Set(i, j, math.NaN())
					}
				}
				require.NoError(t, b.Upload(dc, nan))
				require.NoError(t, b.Mul(dc, 1, da, ta, db, tb, 0))
				got = download(t, b, dc)
				assert.False(t, hasNaN(got), "Mul with beta = 0 read NaN from c, %v ta=%v tb=%v", s, ta, tb)
				b.Free(da)
				b.Free(db)
				b.Free(dc)
			}
		}
	}
	d1, _ := b.New(2, 3)
	d2, _ := b.New(4, 5)
	d3, _ := b.New(2, 5)
	assert.Panics(t, func() { _ = b.Mul(d3, 1, d1, false, d2, false, 0) }, "shape mismatch must panic")
}

func hasNaN(m *mat.Dense) bool {
	r, c := m.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if math.IsNaN(m.At(i, j)) {
				return true
			}
		}
	}
	return false
}

// testMulInput checks products where one operand is in the input format,
// in every position the algorithms use: op(A)·X, op(A)ᵀ·X and Xᵀ·op(A).
func testMulInput(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(3, 3))
	const m, n, l = 37, 23, 6
	a := randDense(rng, m, n)
	ai := input(t, b, cfg, a)
	u := cfg.U + cfg.InputU
	for _, tr := range []bool{false, true} {
		p, s := m, n
		if tr {
			p, s = n, m
		}
		x := randDense(rng, s, l)
		dx := upload(t, b, x)
		y, err := b.New(p, l)
		require.NoError(t, err)
		require.NoError(t, b.Mul(y, 1, ai, tr, dx, false, 0))
		var want mat.Dense
		want.Mul(op(a, tr), x)
		checkClose(t, download(t, b, y), &want, mulTol(u, s, mat.Norm(a, 2), mat.Norm(x, 2), 0), "op(A)·X trans=%v", tr)

		z := randDense(rng, p, l)
		dz := upload(t, b, z)
		w, err := b.New(s, l)
		require.NoError(t, err)
		require.NoError(t, b.Mul(w, 1, ai, !tr, dz, false, 0))
		want.Reset()
		want.Mul(op(a, tr).T(), z)
		checkClose(t, download(t, b, w), &want, mulTol(u, p, mat.Norm(a, 2), mat.Norm(z, 2), 0), "op(A)ᵀ·X trans=%v", tr)

		bb, err := b.New(l, s)
		require.NoError(t, err)
		require.NoError(t, b.Mul(bb, 1, dz, true, ai, tr, 0))
		want.Reset()
		want.Mul(z.T(), op(a, tr))
		checkClose(t, download(t, b, bb), &want, mulTol(u, p, mat.Norm(a, 2), mat.Norm(z, 2), 0), "Xᵀ·op(A) trans=%v", tr)
		for _, f := range []lowrank.Matrix{dx, y, dz, w, bb} {
			b.Free(f)
		}
	}
}

func checkClose(t *testing.T, got, want *mat.Dense, tol float64, msg string, args ...any) {
	t.Helper()
	var d mat.Dense
	d.Sub(got, want)
	assert.LessOrEqual(t, mat.Norm(&d, 2), tol, append([]any{msg}, args...)...)
}

func testSlice(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(4, 4))
	c0 := randDense(rng, 7, 8)
	dc := upload(t, b, c0)
	defer b.Free(dc)
	a, x := randDense(rng, 5, 4), randDense(rng, 4, 3)
	da, dx := upload(t, b, a), upload(t, b, x)
	defer b.Free(da)
	defer b.Free(dx)
	// A view of rows [1, 6) and columns [2, 5): a product into it writes
	// exactly that block.
	v := b.Slice(dc, 1, 6, 2, 5)
	r, c := v.Dims()
	require.Equal(t, [2]int{5, 3}, [2]int{r, c})
	require.NoError(t, b.Mul(v, 1, da, false, dx, false, 0))
	got := download(t, b, dc)
	var prod mat.Dense
	prod.Mul(a, x)
	rounded := roundAll(c0, b, nil)
	for i := 0; i < 7; i++ {
		for j := 0; j < 8; j++ {
			if i >= 1 && i < 6 && j >= 2 && j < 5 {
				assert.InDelta(t, prod.At(i-1, j-2), got.At(i, j), mulTol(cfg.U, 4, mat.Norm(a, 2), mat.Norm(x, 2), 0))
			} else {
				assert.Equal(t, rounded.At(i, j), got.At(i, j), "Mul into a view wrote outside it")
			}
		}
	}
	// A view is an operand too, and a view of a view composes.
	vv := b.Slice(v, 1, 3, 1, 3)
	sub := download(t, b, vv)
	checkClose(t, sub, mat.DenseCopyOf(prod.Slice(1, 3, 1, 3)), mulTol(cfg.U, 4, mat.Norm(a, 2), mat.Norm(x, 2), 0), "view of a view")
	assert.Panics(t, func() { b.Slice(dc, 0, 8, 0, 1) }, "rows out of range")
	assert.Panics(t, func() { b.Slice(dc, 0, 1, 3, 2) }, "j1 < j0")
}

func testScale(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(11, 11))
	a := randDense(rng, 6, 5)
	da := upload(t, b, a)
	defer b.Free(da)
	// Scaling by a power of two is exact in binary floating point.
	require.NoError(t, b.Scale(da, 0x1p-40))
	want := roundAll(a, b, nil)
	want.Scale(0x1p-40, want)
	assert.True(t, mat.Equal(want, download(t, b, da)), "Scale by 2⁻⁴⁰")
	require.NoError(t, b.Scale(b.Slice(da, 0, 6, 1, 2), 3))
	got := download(t, b, da)
	for i := 0; i < 6; i++ {
		assert.InDelta(t, 3*want.At(i, 1), got.At(i, 1), 2*cfg.U*3*math.Abs(want.At(i, 1)))
		assert.Equal(t, want.At(i, 0), got.At(i, 0), "Scale of a view wrote outside it")
	}
}

func testGather(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(5, 5))
	a := randDense(rng, 9, 5)
	ai := input(t, b, cfg, a)
	for _, tr := range []bool{false, true} {
		idx := []int{3, 0, 4}
		p, s := 9, 5
		if tr {
			p, s = 5, 9
		}
		_ = p
		d, err := b.New(s, len(idx))
		require.NoError(t, err)
		require.NoError(t, b.Gather(d, ai, tr, idx))
		got := download(t, b, d)
		oa := op(a, tr)
		for j, i := range idx {
			for r := 0; r < s; r++ {
				want := oa.At(i, r)
				assert.InDelta(t, want, got.At(r, j), cfg.InputU*math.Abs(want)+cfg.U*math.Abs(want), "Gather trans=%v", tr)
			}
		}
		b.Free(d)
	}
}

func testNormal(t *testing.T, b lowrank.Backend) {
	const r, c = 200, 50
	m1, err := b.New(r, c)
	require.NoError(t, err)
	defer b.Free(m1)
	m2, _ := b.New(r, c)
	defer b.Free(m2)
	m3, _ := b.New(r, c)
	defer b.Free(m3)
	require.NoError(t, b.Normal(m1, 42))
	require.NoError(t, b.Normal(m2, 42))
	require.NoError(t, b.Normal(m3, 43))
	x1, x2, x3 := download(t, b, m1), download(t, b, m2), download(t, b, m3)
	assert.True(t, mat.Equal(x1, x2), "Normal with equal seeds must be identical")
	assert.False(t, mat.Equal(x1, x3), "Normal with different seeds must differ")
	// N = 10000 samples of N(0,1): the sample mean has sd 1/√N = 0.01 and
	// the sample variance sd √(2/N) ≈ 0.0141; allow 5 sd (false alarm
	// probability < 1e-6).
	const n = r * c
	var s, s2 float64
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			v := x1.At(i, j)
			s += v
			s2 += v * v
		}
	}
	mean := s / n
	variance := s2/n - mean*mean
	assert.InDelta(t, 0, mean, 5/math.Sqrt(n), "sample mean")
	assert.InDelta(t, 1, variance, 5*math.Sqrt(2.0/n), "sample variance")
}

func testQR(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(6, 6))
	cases := []struct {
		name string
		a    *mat.Dense
	}{
		{"random 50x8", randDense(rng, 50, 8)},
		{"square 6x6", randDense(rng, 6, 6)},
		{"column 30x1", randDense(rng, 30, 1)},
		{"zero 20x4", mat.NewDense(20, 4, nil)},
	}
	// Rank 2 with 5 columns: dependent columns.
	lr := mat.NewDense(40, 5, nil)
	lr.Mul(randDense(rng, 40, 2), randDense(rng, 2, 5))
	cases = append(cases, struct {
		name string
		a    *mat.Dense
	}{"rank-deficient 40x5", lr})
	// Graded columns: condition number 1e6 in the working precision's range.
	gr := randDense(rng, 60, 6)
	for j := 0; j < 6; j++ {
		for i := 0; i < 60; i++ {
			gr.Set(i, j, gr.At(i, j)*math.Pow(10, -float64(j)))
		}
	}
	cases = append(cases, struct {
		name string
		a    *mat.Dense
	}{"graded 60x6", gr})
	for _, tc := range cases {
		p, l := tc.a.Dims()
		da := upload(t, b, tc.a)
		dr, err := b.New(l, l)
		require.NoError(t, err)
		require.NoError(t, b.QR(da, dr), tc.name)
		q := download(t, b, da)
		r := download(t, b, dr)
		assert.LessOrEqual(t, testmat.OrthError(q), cfg.OrthTol*float64(l), "%s: ‖QᵀQ − I‖_max", tc.name)
		assert.False(t, hasNaN(q), "%s: NaN in Q", tc.name)
		for i := 0; i < l; i++ {
			for j := 0; j < i; j++ {
				assert.Equal(t, 0.0, r.At(i, j), "%s: R must be upper triangular", tc.name)
			}
		}
		var qr mat.Dense
		qr.Mul(q, r)
		// Householder/Cholesky QR are backward stable: ‖A − QR‖_F ≤ c·p·l·u·‖A‖_F;
		// c = 10 covers the constants of both.
		checkClose(t, &qr, tc.a, 10*float64(p*l)*cfg.U*mat.Norm(tc.a, 2)+1e-300, "%s: A = QR", tc.name)
		_ = p
		b.Free(da)
		b.Free(dr)
	}
	// r == nil is allowed.
	da := upload(t, b, randDense(rng, 10, 3))
	require.NoError(t, b.QR(da, nil))
	b.Free(da)
}

// testQRTol checks the optional lowrank.TolerantQRer: tol = 0 gives QR's
// result bit for bit, and a tolerance between the working precision's and
// 1 gives ‖QᵀQ − I‖_F ≤ tol + p·l·U (the slack for the backend's check of
// its own Gram matrix, γ_p·l for a float64 one, and for this test's) with
// QR's residual bound, on tall inputs (2000×48, large enough for a
// backend's CholeskyQR) that are well and badly conditioned.
func testQRTol(t *testing.T, b lowrank.Backend, tq lowrank.TolerantQRer, cfg Config) {
	rng := rand.New(rand.NewPCG(16, 16))
	const p, l = 2000, 48
	gauss := randDense(rng, p, l)
	graded := randDense(rng, p, l)
	for j := 0; j < l; j++ {
		for i := 0; i < p; i++ {
			graded.Set(i, j, graded.At(i, j)*math.Pow(10, -6*float64(j)/float64(l-1)))
		}
	}
	for _, tc := range []struct {
		name string
		a    *mat.Dense
	}{{"gaussian", gauss}, {"graded to 1e-6", graded}} {
		da := upload(t, b, tc.a)
		require.NoError(t, b.QR(da, nil), tc.name)
		want := download(t, b, da)
		b.Free(da)
		da = upload(t, b, tc.a)
		require.NoError(t, tq.QRTol(da, nil, 0), tc.name)
		assert.True(t, mat.Equal(want, download(t, b, da)), "%s: QRTol with tol = 0 is QR", tc.name)
		b.Free(da)
		for _, tol := range []float64{1e-9, 1e-3} {
			da = upload(t, b, tc.a)
			dr, err := b.New(l, l)
			require.NoError(t, err)
			require.NoError(t, tq.QRTol(da, dr, tol), "%s tol=%g", tc.name, tol)
			q, r := download(t, b, da), download(t, b, dr)
			var g mat.Dense
			g.Mul(q.T(), q)
			for i := 0; i < l; i++ {
				g.Set(i, i, g.At(i, i)-1)
			}
			assert.LessOrEqual(t, mat.Norm(&g, 2), tol+float64(p*l)*cfg.U, "%s tol=%g: ‖QᵀQ − I‖_F", tc.name, tol)
			var qr mat.Dense
			qr.Mul(q, r)
			checkClose(t, &qr, tc.a, 10*float64(p*l)*cfg.U*mat.Norm(tc.a, 2), "%s tol=%g: A = QR", tc.name, tol)
			b.Free(da)
			b.Free(dr)
		}
	}
}

func testLU(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(7, 7))
	a := randDense(rng, 40, 6)
	da := upload(t, b, a)
	defer b.Free(da)
	require.NoError(t, b.LU(da))
	l := download(t, b, da)
	// range(L) = range(A): the residual of A projected onto range(L) is
	// at rounding level (the projection uses a float64 QR of L).
	// Pivoted LU has growth factor ≤ 2^(l−1) in theory and ~l in practice;
	// 100·p·l·u covers it for these sizes.
	assert.LessOrEqual(t, testmat.ProjectionResidual(a, l, 6), 100*40*6*cfg.U, "range(L) ≠ range(A)")
	// L is unit lower trapezoidal up to a row permutation: 6 rows hold
	// the identity pattern's ones and |entries| ≤ 1 (partial pivoting).
	for i := 0; i < 40; i++ {
		for j := 0; j < 6; j++ {
			assert.LessOrEqual(t, math.Abs(l.At(i, j)), 1+4*cfg.U, "partial pivoting bounds |L| by 1")
		}
	}

	// Rank 2 with repeated rows, one kind 2^e times the other (a power
	// iteration's sketch of a matrix with identical rows and a tiny
	// second direction, found by FuzzRangeFinder): the pivots after the
	// second are rounding residue, subnormal in float64 for e = -1030
	// (gonum's Getrf divided by them: ±Inf, then NaN). L must stay
	// finite, bounded by 1, with range(L) ⊇ range(A).
	e := -1030
	if cfg.U > 0x1p-30 { // float32 working precision: inside its normal range
		e = -60
	}
	w0, w1 := make([]float64, 6), make([]float64, 6)
	for j := range w0 {
		w0[j], w1[j] = math.Ldexp(rng.NormFloat64(), e), 100*rng.NormFloat64()
	}
	low := mat.NewDense(6, 6, nil)
	for i := 0; i < 6; i++ {
		if i%2 == 0 {
			low.SetRow(i, w0)
		} else {
			low.SetRow(i, w1)
		}
	}
	dl := upload(t, b, low)
	defer b.Free(dl)
	require.NoError(t, b.LU(dl))
	ll := download(t, b, dl)
	for i := 0; i < 6; i++ {
		for j := 0; j < 6; j++ {
			x := ll.At(i, j)
			require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "L(%d, %d) = %v for a finite rank-deficient input", i, j, x)
			assert.LessOrEqual(t, math.Abs(x), 1+4*cfg.U, "rank-deficient input: |L| ≤ 1")
		}
	}
	assert.LessOrEqual(t, testmat.ProjectionResidual(low, ll, 6), 100*6*6*cfg.U, "rank-deficient input: range(L) ⊉ range(A)")
}

func testSVD(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, l := range []int{1, 5, 16} {
		a := randDense(rng, l, l)
		da := upload(t, b, a)
		du, _ := b.New(l, l)
		dv, _ := b.New(l, l)
		s := make([]float64, l)
		require.NoError(t, b.SVD(du, s, dv, da))
		u, v := download(t, b, du), download(t, b, dv)
		for i := 1; i < l; i++ {
			assert.LessOrEqual(t, s[i], s[i-1], "singular values must be non-increasing")
		}
		assert.LessOrEqual(t, testmat.OrthError(u), cfg.OrthTol*float64(l), "U orthonormal")
		assert.LessOrEqual(t, testmat.OrthError(v), cfg.OrthTol*float64(l), "V orthonormal")
		us := mat.DenseCopyOf(u)
		for j := 0; j < l; j++ {
			for i := 0; i < l; i++ {
				us.Set(i, j, us.At(i, j)*s[j])
			}
		}
		var rec mat.Dense
		rec.Mul(us, v.T())
		// Backward stable SVD: ‖A − UΣVᵀ‖_F ≤ c·l²·u·‖A‖_F with c = 10.
		checkClose(t, &rec, roundAll(a, b, nil), 10*float64(l*l)*cfg.U*mat.Norm(a, 2), "A = UΣVᵀ, l=%d", l)
		for _, m := range []lowrank.Matrix{da, du, dv} {
			b.Free(m)
		}
	}
}

func testNorms(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(9, 9))
	a := randDense(rng, 13, 7)
	ai := input(t, b, cfg, a)
	n2, amax, err := b.SquaredNorm(ai, 1)
	require.NoError(t, err)
	want := mat.Norm(a, 2)
	want *= want
	// Each element is rounded once (InputU) and squared and summed in
	// float64 or better: relative error ≤ 2·InputU + 91·2⁻⁵³.
	assert.InDelta(t, want, n2, (2*cfg.InputU+1e-14)*want)
	wantMax := math.Max(mat.Max(a), -mat.Min(a))
	assert.InDelta(t, wantMax, amax, cfg.InputU*wantMax, "max |a_ij|")
	// A power-of-two scale multiplies the sum by its square exactly.
	n2s, amaxs, err := b.SquaredNorm(ai, 0x1p-300)
	require.NoError(t, err)
	assert.Equal(t, n2*0x1p-600, n2s, "scaled squared norm")
	assert.Equal(t, amax, amaxs, "max |a_ij| is unscaled")
	for _, tr := range []bool{false, true} {
		p := 13
		if tr {
			p = 7
		}
		dst := make([]float64, p)
		require.NoError(t, b.SquaredRowNorms(dst, ai, tr, 1))
		oa := op(a, tr)
		for i := 0; i < p; i++ {
			w := 0.0
			_, s := oa.Dims()
			for j := 0; j < s; j++ {
				v := oa.At(i, j)
				w += v * v
			}
			assert.InDelta(t, w, dst[i], (2*cfg.InputU+1e-14)*w, "SquaredRowNorms trans=%v row %d", tr, i)
		}
	}
}

func testNonFinite(t *testing.T, b lowrank.Backend, cfg Config) {
	rng := rand.New(rand.NewPCG(10, 10))
	a := randDense(rng, 5, 6)
	_, _, _, found, err := b.FindNonFinite(input(t, b, cfg, a))
	require.NoError(t, err)
	assert.False(t, found)
	a.Set(3, 4, math.Inf(-1))
	a.Set(4, 0, math.NaN())
	i, j, v, found, err := b.FindNonFinite(input(t, b, cfg, a))
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, [2]int{3, 4}, [2]int{i, j}, "first non-finite element in row-major order")
	assert.True(t, math.IsInf(v, -1))
	n2, amax, err := b.SquaredNorm(input(t, b, cfg, a), 1)
	require.NoError(t, err)
	assert.True(t, math.IsNaN(n2) || math.IsInf(n2, 0), "SquaredNorm of a non-finite matrix is %v", n2)
	assert.True(t, math.IsNaN(amax) || math.IsInf(amax, 0), "max |a_ij| of a non-finite matrix is %v", amax)
}

// testGatherNorm checks the optional lowrank.GatherNormer against Gather
// and SquaredNorm: the same Ω bit for bit (both copy elements), the same
// maximum, and the squared norm to float64 summation rounding (the order
// of summation may differ), for both orientations, distinct and repeated
// indices, and a non-finite input.
func testGatherNorm(t *testing.T, b lowrank.Backend, gn lowrank.GatherNormer, cfg Config) {
	rng := rand.New(rand.NewPCG(11, 11))
	a := randDense(rng, 37, 21)
	ai := input(t, b, cfg, a)
	for _, tr := range []bool{false, true} {
		p, s := 37, 21
		if tr {
			p, s = 21, 37
		}
		for _, idx := range [][]int{{3, 0, p - 1, 7}, {5, 5, 1}, {p - 1}} {
			want, err := b.New(s, len(idx))
			require.NoError(t, err)
			got, err := b.New(s, len(idx))
			require.NoError(t, err)
			require.NoError(t, b.Gather(want, ai, tr, idx))
			n2, mx, err := b.SquaredNorm(ai, 1)
			require.NoError(t, err)
			g2, gmx, err := gn.GatherNorm(got, ai, tr, idx)
			require.NoError(t, err)
			assert.True(t, mat.Equal(download(t, b, want), download(t, b, got)), "GatherNorm trans=%v idx=%v: Ω", tr, idx)
			// Σ of 777 squares in float64, two orders: ≤ 2·777·2⁻⁵³ relative.
			assert.InDelta(t, n2, g2, 2*777*0x1p-53*n2, "GatherNorm trans=%v idx=%v: ‖A‖²", tr, idx)
			assert.Equal(t, mx, gmx, "GatherNorm trans=%v idx=%v: max", tr, idx)
			b.Free(want)
			b.Free(got)
		}
	}
	a.Set(4, 2, math.NaN())
	d, err := b.New(21, 2)
	require.NoError(t, err)
	n2, mx, err := gn.GatherNorm(d, input(t, b, cfg, a), false, []int{4, 9})
	require.NoError(t, err)
	assert.True(t, math.IsNaN(n2) || math.IsInf(n2, 0) || math.IsNaN(mx) || math.IsInf(mx, 0), "GatherNorm of a NaN input: %v, %v", n2, mx)
	b.Free(d)
}
