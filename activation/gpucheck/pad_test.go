package gpucheck

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// poison returns the pool's cached blocks to the driver, then caches
// blocks of NaN: four of the bytes of each r×c matrix of type dt in
// shapes, allocated, written with NaN and freed, so that storage of one of
// those sizes taken from the pool next holds NaN wherever it is not
// written. It checks that it does: an uninitialised matrix of each shape
// reads NaN.
func poison(t *testing.T, b *gpu.Backend, dt gpu.DType, shapes ...[2]int) {
	t.Helper()
	require.NoError(t, b.Synchronize())
	require.NoError(t, b.TrimPool())
	var ms []*gpu.Matrix
	for _, sh := range shapes {
		nan := mat.NewDense(sh[0], sh[1], nil)
		for i := range sh[0] {
			for j := range sh[1] {
				nan.Set(i, j, math.NaN())
			}
		}
		for range 4 {
			m, err := b.NewMatrix(sh[0], sh[1], dt)
			require.NoError(t, err)
			require.NoError(t, b.Upload(m, nan))
			ms = append(ms, m)
		}
	}
	for _, m := range ms {
		b.Free(m)
	}
	for _, sh := range shapes {
		m, err := b.NewMatrixUninit(sh[0], sh[1], dt)
		require.NoError(t, err)
		got := download(t, b, m)
		b.Free(m)
		require.True(t, math.IsNaN(got.At(0, 0)), "the pool hands out a poisoned %d×%d block", sh[0], sh[1])
	}
}

func allFinite(m *mat.Dense) bool {
	r, c := m.Dims()
	for i := range r {
		for _, v := range m.RawRowView(i)[:c] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// TestDevicePaddedFactors compresses activations at ranks off a multiple
// of 8, whose factors the device stores at Precision with the rank
// dimension rounded up to one (P L×k₈ and R k₈×d, the padding zero; see
// activation's storeFactorsDevice), for both input layouts, every method,
// both storage precisions and a residual, and checks through the public
// API what the padding must keep: the reported rank k; the bytes of the
// padded storage; a finite reconstruction from storage taken from a pool
// poisoned with NaN (a NaN left in the padding of either factor reaches
// the product through NaN·0 = NaN); the error and reconstruction of the
// host's compression of the same values; and a row-major reconstruction
// and weight gradients, products that read the padded factors. A rank
// whose padding would add more than an eighth of the bytes (20 → 24) is
// stored as it is, with the host's bytes.
func TestDevicePaddedFactors(t *testing.T) {
	b := open(t)
	const o = 40
	for _, tc := range []struct {
		L, d, k  int
		rowMajor bool
		method   activation.Method
		prec     lowrank.Precision
		residual int
	}{
		{12544, 384, 115, false, activation.RowSampling, lowrank.BFloat16, 0}, // the GPU demo's block input and rank
		{2048, 1536, 231, true, activation.RowSampling, lowrank.BFloat16, 0},  // the demo's per-op rank
		{2048, 1536, 231, false, activation.Gaussian, lowrank.BFloat16, 0},
		{2048, 384, 115, true, activation.ExactSVD, lowrank.BFloat16, 0},
		{2048, 384, 115, false, activation.RowSampling, lowrank.Float32, 0},
		{2048, 384, 115, true, activation.RowSampling, lowrank.BFloat16, 4},
		{2048, 384, 20, false, activation.RowSampling, lowrank.BFloat16, 0}, // 4 more ranks would add a fifth: not padded
	} {
		L, d, k := tc.L, tc.d, tc.k
		k8 := (k + 7) / 8 * 8
		if 8*(k8-k) > k { // a small rank is stored as it is (Config.StoredBytes)
			k8 = k
		}
		name := fmt.Sprintf("%d×%d rank %d, row-major %v, %v, %v storage, residual %d bits", L, d, k, tc.rowMajor, tc.method, tc.prec, tc.residual)
		xh := testmat.Incoherent(L, d, testmat.ActivationLike(d), uint64(k))
		var x *gpu.Matrix
		if tc.rowMajor {
			x = upload(t, b, xh, gpu.BFloat16)
		} else {
			x = newMat(t, b, L, d, gpu.BFloat16, false)
			require.NoError(t, b.Upload(x, xh))
		}
		xv := download(t, b, x) // the bf16 values the device holds
		nx := mat.Norm(xv, 2)
		cfg := activation.Config{Method: tc.method, Rank: activation.Fixed(k), Precision: tc.prec,
			ResidualBits: tc.residual, MeasureError: true, Seed: 3}
		cc, err := activation.New(cfg)
		require.NoError(t, err)
		cfg.Backend = b
		gc, err := activation.New(cfg)
		require.NoError(t, err)

		dt := gpu.BFloat16
		if tc.prec == lowrank.Float32 {
			dt = gpu.Float32
		}
		poison(t, b, dt, [2]int{L, k8}, [2]int{k8, d})
		sg, err := gc.Compress("x", x)
		require.NoError(t, err, name)
		sc, err := cc.Compress("x", xv)
		require.NoError(t, err, name)
		require.NoError(t, b.Synchronize())

		assert.Equal(t, k, sg.Rank(), "%s: the rank reported is k, not the stored k₈", name)
		// The host stores k ranks of factors (a column of P and a row of
		// R each) and the same residual; the device k₈ − k zero ranks
		// more, and says so in its reservation.
		assert.Equal(t, sc.Bytes()+(k8-k)*(L+d)*tc.prec.Size(), sg.Bytes(), name)
		assert.Equal(t, cfg.StoredBytes(L, d, k), sg.Bytes(), name)
		assert.Equal(t, sg.Bytes(), gc.Stats().Total.Live, name)

		rg := reconstruct(t, b, sg)
		require.True(t, allFinite(rg), "%s: the reconstruction holds a NaN, from the factors' padding", name)
		// The reported error is that of the stored factors: recomputed
		// here from X̃ within float32 rounding of the difference, dot
		// products over k₈ terms (k of them nonzero) and X, as in
		// TestDeviceMatchesHost.
		measured := diffNorm(rg, xv) / nx
		assert.InDelta(t, measured, sg.RelError(), float64(k8+2)*u32*(1+mat.Norm(rg, 2)/nx), name)
		// Against the host's compression of the same values: with the
		// same draw (row sampling; the exact SVD has none), each error
		// within u·(1+√k) of the unrounded one and float32 against
		// float64 arithmetic ≲ (L+d)·u32, as in TestDeviceMatchesHost (a
		// residual's codes may round the other way: not compared); X̃
		// against the host's within both errors.
		u := tc.prec.UnitRoundoff()
		tol := 2*u*(1+math.Sqrt(float64(k))) + float64(L+d)*u32
		if tc.method != activation.Gaussian && tc.residual == 0 {
			assert.InDelta(t, sc.RelError(), sg.RelError(), tol, name)
		}
		var rc mat.Dense
		require.NoError(t, sc.Reconstruct(&rc))
		assert.LessOrEqual(t, diffNorm(&rc, rg), (sc.RelError()+sg.RelError()+tol)*nx, name)
		t.Logf("%s: error host %.5f device %.5f (measured %.5f)", name, sc.RelError(), sg.RelError(), measured)

		// A row-major destination, the product computed the other way
		// round: each element within k₈·u32·(|P|·|R|)_ij of exact,
		// ‖|P|·|R|‖_F ≤ ‖P‖_F·‖R‖_F ≤ √k·‖X̃‖_F (one factor near-orthonormal,
		// the padding adding nothing to the norms), plus the rounding of a
		// residual's addition; as in TestDeviceQuantizedStorage.
		rm := newMat(t, b, L, d, gpu.Float32, true)
		require.NoError(t, sg.Reconstruct(rm))
		assert.LessOrEqual(t, diffNorm(download(t, b, rm), rg), (2*float64(k8)*u32*math.Sqrt(float64(k))+4*u32)*mat.Norm(rg, 2), name)
		b.Free(rm)

		g := testmat.Gaussian(L, o, 2)
		for _, gdt := range []gpu.DType{gpu.Float32, gpu.BFloat16} {
			dg := upload(t, b, g, gdt)
			gv := download(t, b, dg)
			for _, outIn := range []bool{true, false} {
				var want mat.Dense
				var dst *gpu.Matrix
				if outIn {
					dst = newMat(t, b, o, d, gpu.Float32, false)
					require.NoError(t, sg.WeightGradOutIn(dst, dg), name)
					want.Mul(gv.T(), rg)
				} else {
					dst = newMat(t, b, d, o, gpu.Float32, true)
					require.NoError(t, sg.WeightGradInOut(dst, dg), name)
					want.Mul(rg.T(), gv)
				}
				// (Gᵀ·P)·R against Gᵀ·X̃, as in TestDeviceMatchesHost: G
				// rounded to the factors' type and the o×k₈ intermediate
				// stored in it (2u, u bf16's if G is bf16), float32
				// accumulation over L and k₈ terms, so ‖ΔW‖_F ≤ (2u +
				// (L+k₈)·u32)·‖G‖_F·‖P‖_F·‖R‖_F with ‖P‖_F·‖R‖_F ≤ √k·‖X̃‖_F;
				// with a residual ‖P‖_F·‖R‖_F + ‖Ê‖_F ≤ (√k + 2)·‖X̃‖_F, as in
				// TestDeviceQuantizedStorage.
				uu := u
				if gdt == gpu.BFloat16 {
					uu = max(u, ubf)
				}
				norms := math.Sqrt(float64(k))
				if tc.residual != 0 {
					norms += 2
				}
				bound := (2*uu + float64(L+k8)*u32) * mat.Norm(gv, 2) * norms * mat.Norm(rg, 2)
				assert.LessOrEqual(t, diffNorm(download(t, b, dst), &want), bound, "%s, %v gradient, out×in %v", name, gdt, outIn)
				b.Free(dst)
			}
			b.Free(dg)
		}
		require.NoError(t, sg.Release())
		require.NoError(t, sc.Release())
		assert.Zero(t, gc.Stats().Total.Live, name)
		gc.Close()
		cc.Close()
		b.Free(x)
	}
}
