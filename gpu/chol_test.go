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
	gram := func(l int, cond float64, rank int, seed uint64) *mat.Dense {
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
	for _, l := range []int{32, 33, 64, 100, 128, 138, 255, 256, 300, 512} {
		if cholBlkSmem(l) > b.smemMax {
			continue
		}
		shift := 2 * float64(p+l*(l+1)) * u64
		rel := 10 * float64(p+l) * u64
		for _, cond := range []float64{1, 1e4, 1e10} {
			g := gram(l, cond, l, uint64(l))
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
		g := gram(l, 1e2, l/2, uint64(l)+1)
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
		g = gram(l, 1, l, 7)
		g.Set(l-1, l-1, -1)
		_, code = run(g, shift, rel)
		assert.EqualValues(t, 1, code, "l %d: indefinite", l)
		g = gram(l, 1, l, 8)
		g.Set(l/2, l/2, math.NaN())
		_, code = run(g, shift, rel)
		assert.EqualValues(t, 1, code, "l %d: NaN", l)
	}
}
