package gpu

import (
	"math"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
)

// upload64 copies the column-major float64 elements of g (r×c, leading
// dimension r) to a new device buffer. It and upper64 run between
// b.enter and b.leave.
func upload64(t *testing.T, b *Backend, g *mat.Dense) uintptr {
	t.Helper()
	r, c := g.Dims()
	host := make([]float64, r*c)
	for j := range c {
		for i := range r {
			host[i+j*r] = g.At(i, j)
		}
	}
	d, err := b.alloc(8 * r * c)
	require.NoError(t, err)
	require.NoError(t, b.api.check(b.api.cuMemcpyHtoDAsync(d, unsafe.Pointer(&host[0]), uintptr(8*r*c), b.stream), "cuMemcpyHtoDAsync_v2"))
	require.NoError(t, b.sync())
	return d
}

// upper64 downloads the upper triangle of the l×l float64 device matrix d.
func upper64(t *testing.T, b *Backend, d uintptr, l int) *mat.Dense {
	t.Helper()
	host := make([]float64, l*l)
	require.NoError(t, b.download(unsafe.Pointer(&host[0]), d, 8*l*l))
	r := mat.NewDense(l, l, nil)
	for j := range l {
		for i := 0; i <= j; i++ {
			r.Set(i, j, host[i+j*l])
		}
	}
	return r
}

// gramOf returns the Gram matrix YᵀY of an incoherent p×l Y
// (testmat.Incoherent from seed) whose first rank singular values fall
// geometrically from 1 to cond^{−1/2}, the rest zero: κ(G) = cond on its
// rank.
func gramOf(p, l int, cond float64, rank int, seed uint64) *mat.Dense {
	s := make([]float64, l)
	for i := range s {
		if i < rank {
			s[i] = math.Pow(cond, -0.5*float64(i)/float64(max(rank-1, 1)))
		}
	}
	y := testmat.Incoherent(p, l, s, seed)
	var g mat.Dense
	g.Mul(y.T(), y)
	return &g
}

// TestCholBlk64 checks the one-block Cholesky kernel against its
// backward-error bound on Gram matrices of κ(G) = 1 … 10¹⁰ at widths
// that cover one partial panel, several full ones and the largest ℓ it
// serves, its shifted retry on a rank-deficient Gram matrix, and its
// failure on an indefinite one and on NaN.
func TestCholBlk64(t *testing.T) {
	b := open(t, nil)
	require.NoError(t, b.enter())
	defer b.leave()
	const p = 4096
	const u64 = 0x1p-53
	info, err := b.alloc(8)
	require.NoError(t, err)
	defer func() { assert.NoError(t, b.free(info)) }()
	readInfo := func() int32 {
		var v [2]int32
		require.NoError(t, b.download(unsafe.Pointer(&v[0]), info, 8))
		return v[0]
	}
	run := func(g *mat.Dense, shift, rel float64) (*mat.Dense, int32) {
		l, _ := g.Dims()
		d := upload64(t, b, g)
		out, err := b.alloc(8 * l * l)
		require.NoError(t, err)
		defer func() { assert.NoError(t, b.free(d)); assert.NoError(t, b.free(out)) }()
		require.NoError(t, b.api.check(b.api.cuMemsetD8Async(info, 0, 8, b.stream), "cuMemsetD8Async"))
		require.NoError(t, b.cholBlk64(d, l, out, l, l, shift, rel, info))
		return upper64(t, b, out, l), readInfo()
	}
	for _, l := range []int{32, 33, 64, 100, 128, 138, 255, 256, 300, 512} {
		if cholBlkSmem(l) > b.smemMax {
			continue
		}
		shift := 2 * float64(p+l*(l+1)) * u64
		rel := 10 * float64(p+l) * u64
		for _, cond := range []float64{1, 1e4, 1e10} {
			g := gramOf(p, l, cond, l, uint64(l))
			r, code := run(g, shift, rel)
			require.Zero(t, code, "l %d cond %g: breakdown", l, cond)
			// Cholesky's backward error is |RᵀR − G| ≤ γ_{ℓ+1}|R|ᵀ|R|
			// (Higham, Thm 10.3), ‖|R|ᵀ|R|‖_F ≤ ‖R‖_F² = tr G; the panels
			// are solved with the explicit inverse of each 32×32
			// diagonal block, which multiplies the panel's residual by
			// at most κ(R_kk) ≤ κ(R) = √κ(G) (Du Croz and Higham 1992).
			var res mat.Dense
			res.Mul(r.T(), r)
			res.Sub(&res, g)
			tol := 2 * float64(l+1) * u64 * math.Sqrt(cond) * mat.Trace(g)
			assert.LessOrEqual(t, mat.Norm(&res, 2), tol, "l %d cond %g", l, cond)
			for i := range l {
				assert.Greater(t, r.At(i, i), 0.0, "l %d cond %g: diagonal %d", l, cond, i)
			}
		}
		// Rank ℓ/2: the unshifted factorisation breaks down and the retry
		// factors G + s·I, s = shift·tr G.
		g := gramOf(p, l, 1e2, l/2, uint64(l)+1)
		r, code := run(g, shift, rel)
		require.Zero(t, code, "l %d rank %d: the shifted retry failed", l, l/2)
		s := shift * mat.Trace(g)
		var res mat.Dense
		res.Mul(r.T(), r)
		res.Sub(&res, g)
		for i := range l {
			res.Set(i, i, res.At(i, i)-s)
		}
		tol := 2 * float64(l+1) * u64 * mat.Trace(g) * math.Sqrt(mat.Trace(g)/s)
		assert.LessOrEqual(t, mat.Norm(&res, 2), tol, "l %d rank %d: RᵀR = G + s·I", l, l/2)
		// Indefinite beyond the shift, and NaN: info = 1.
		g = gramOf(p, l, 1, l, 7)
		g.Set(l-1, l-1, -1)
		_, code = run(g, shift, rel)
		assert.EqualValues(t, 1, code, "l %d: indefinite", l)
		g = gramOf(p, l, 1, l, 8)
		g.Set(l/2, l/2, math.NaN())
		_, code = run(g, shift, rel)
		assert.EqualValues(t, 1, code, "l %d: NaN", l)
	}
}

// TestChol64 checks chol64 against Cholesky's backward-error bound on
// batches of Gram matrices of κ(G) = 1, 10⁴ and 10¹⁰ in one launch, at
// widths that cover partial, single and many panels, partial 8×8 tiles and
// the largest ℓ it serves; that it leaves the lower triangles as they
// were; and that it reports a breakdown as cuSOLVER's dpotrf does (devInfo
// = the first failing pivot, 1-based), per matrix of the batch.
func TestChol64(t *testing.T) {
	b := open(t, nil)
	require.NoError(t, b.enter())
	defer b.leave()
	const p = 4096
	const u64 = 0x1p-53
	const sentinel = 12345.0
	// run factors gs (l×l each) in one launch, each lower triangle set
	// to the sentinel first, and returns the matrices as they come back
	// and the infos.
	run := func(gs []*mat.Dense, lib bool) ([]*mat.Dense, []int32) {
		l, _ := gs[0].Dims()
		n := len(gs)
		host := make([]float64, n*l*l)
		for k, g := range gs {
			for j := range l {
				for i := range l {
					v := g.At(i, j)
					if i > j {
						v = sentinel
					}
					host[k*l*l+i+j*l] = v
				}
			}
		}
		d, err := b.alloc(8 * n * l * l)
		require.NoError(t, err)
		info, err := b.alloc(4 * n)
		require.NoError(t, err)
		defer func() { assert.NoError(t, b.free(d)); assert.NoError(t, b.free(info)) }()
		require.NoError(t, b.api.check(b.api.cuMemcpyHtoDAsync(d, unsafe.Pointer(&host[0]), uintptr(8*n*l*l), b.stream), "cuMemcpyHtoDAsync_v2"))
		require.NoError(t, b.api.check(b.api.cuMemsetD8Async(info, 0xff, uintptr(4*n), b.stream), "cuMemsetD8Async"))
		if lib {
			w, lw, err := b.potrfWork(d, l)
			require.NoError(t, err)
			for k := range n {
				require.NoError(t, checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), d+uintptr(8*k*l*l), int32(l), w, lw, info+uintptr(4*k)), "cusolverDnDpotrf"))
			}
		} else {
			require.NoError(t, b.chol64(d, l, l*l, info, n))
		}
		require.NoError(t, b.download(unsafe.Pointer(&host[0]), d, 8*n*l*l))
		infos := make([]int32, n)
		require.NoError(t, b.download(unsafe.Pointer(&infos[0]), info, 4*n))
		out := make([]*mat.Dense, n)
		for k := range out {
			out[k] = mat.NewDense(l, l, nil)
			for j := range l {
				for i := range l {
					out[k].Set(i, j, host[k*l*l+i+j*l])
				}
			}
		}
		return out, infos
	}
	conds := []float64{1, 1e4, 1e10}
	for _, l := range []int{1, 2, 7, 31, 32, 33, 64, 100, 115, 128, 231, 255, 256, 300, 512} {
		if chol64Smem(l) > b.smemMax {
			t.Logf("l %d: chol64's shared memory exceeds this device's", l)
			continue
		}
		gs := make([]*mat.Dense, len(conds))
		for k, c := range conds {
			gs[k] = gramOf(p, l, c, l, uint64(l*10+k))
		}
		rs, infos := run(gs, false)
		for k, cond := range conds {
			require.Zero(t, infos[k], "l %d cond %g: breakdown", l, cond)
			r := mat.NewDense(l, l, nil)
			for j := range l {
				for i := range l {
					if i > j {
						require.Equal(t, sentinel, rs[k].At(i, j), "l %d cond %g: lower triangle (%d, %d) written", l, cond, i, j)
					} else {
						r.Set(i, j, rs[k].At(i, j))
					}
				}
				assert.Greater(t, r.At(j, j), 0.0, "l %d cond %g: diagonal %d", l, cond, j)
			}
			// Cholesky's backward error is |RᵀR − G| ≤ γ_{ℓ+1}|R|ᵀ|R|
			// (Higham, Thm 10.3), with ‖|R|ᵀ|R|‖₂ ≤ ‖R‖_F² = tr G. chol64
			// divides by a pivot's root as a product with y = rsqrt_nr(d)
			// and forms the root as d·y: two roundings where the theorem
			// counts one, hence twice the constant. y itself is within
			// 2u of 1/√d (Newton's last step from an iterate already that
			// close) and scales row j of R as a whole, which perturbs
			// RᵀR's rank-one term rⱼᵀrⱼ by at most twice that, 4u, and
			// 2u more for the product's own rounding: 6u beyond 2γ.
			var res mat.Dense
			res.Mul(r.T(), r)
			res.Sub(&res, gs[k])
			tol := (2*float64(l+1) + 6) * u64 * mat.Trace(gs[k])
			assert.LessOrEqual(t, mat.Norm(&res, 2), tol, "l %d cond %g", l, cond)
		}
		if l < 2 {
			continue
		}
		// Breakdowns at pivot j = l/2 (a negative diagonal entry stays
		// negative under the updates, which subtract squares; a NaN
		// stays NaN) and at the last pivot, between matrices that
		// factor: the infos are the failing pivots, 1-based, as dpotrf's.
		j := l / 2
		bad := []*mat.Dense{gramOf(p, l, 1, l, 1), gramOf(p, l, 1, l, 2), gramOf(p, l, 1, l, 3), gramOf(p, l, 1, l, 4)}
		bad[1].Set(j, j, -1)
		bad[2].Set(j, j, math.NaN())
		bad[3].Set(l-1, l-1, -1)
		_, infos = run(bad, false)
		assert.Equal(t, []int32{0, int32(j + 1), int32(j + 1), int32(l)}, infos, "l %d: infos", l)
		_, lib := run([]*mat.Dense{bad[0], bad[1], bad[3]}, true)
		assert.Equal(t, []int32{infos[0], infos[1], infos[3]}, lib, "l %d: dpotrf's infos", l)
	}
}
