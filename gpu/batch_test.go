package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// geometric returns l values from 1 down to 1/kappa geometrically.
func geometric(l int, kappa float64) []float64 {
	s := make([]float64, l)
	for i := range s {
		s[i] = 1
		if l > 1 {
			s[i] = math.Pow(kappa, -float64(i)/float64(l-1))
		}
	}
	return s
}

// TestQRBatch checks QRBatch against QR's guarantees for batches laid out
// as the sampling Decomposer lays them (consecutive column blocks of one
// matrix: read and written in place) and as separate matrices (copied),
// of one height and of mixed heights (the four inputs of a transformer
// layer; heights interleaved),
// at widths the batched path serves (ℓ = 8 included, which QR gives a
// one-block kernel) and one it leaves to QR (ℓ = 1), with
// one rank-deficient matrix in the batch (its factorisation breaks down:
// QR alone finishes it) and well- and ill-conditioned ones (κ = 10 and
// 10⁴, the sketch's squared conditioning): every Q orthonormal within
// orthTol, its range that of Y (‖Y − Q·QᵀY‖_F within c·ℓ·√p·u·‖Y‖_F, as
// TestQRWidths' backward error), and one host synchronisation for a batch
// that needs no fallback.
func TestQRBatch(t *testing.T) {
	b := open(t, nil)
	rng := rand.New(rand.NewPCG(3, 3))
	// chol64 (the default), cuSOLVER's batched potrf (libPotrf), one
	// dpotrf per matrix (potrfLoop: the large-ℓ path).
	for _, v := range [][2]bool{{false, false}, {false, true}, {true, true}} {
		b.potrfLoop, b.libPotrf = v[0], v[1]
		testQRBatch(t, b, rng)
	}
	b.potrfLoop, b.libPotrf = false, false
	assert.Panics(t, func() {
		m1, _ := b.NewMatrix(64, 32, Float32)
		m2, _ := b.NewMatrix(64, 33, Float32)
		_ = b.QRBatch([]lowrank.Matrix{m1, m2})
	}, "widths differ")
	assert.Panics(t, func() {
		m1, _ := b.NewMatrix(64, 32, Float32)
		m2, _ := b.NewMatrix(31, 32, Float32)
		_ = b.QRBatch([]lowrank.Matrix{m1, m2})
	}, "a matrix wider than tall")
}

func testQRBatch(t *testing.T, b *Backend, rng *rand.Rand) {
	heights := func(p, n int) []int {
		ps := make([]int, n)
		for i := range ps {
			ps[i] = p
		}
		return ps
	}
	for _, c := range []struct {
		ps []int
		l  int
	}{{heights(384, 5), 58}, {heights(768, 7), 32}, {heights(1536, 3), 231}, {heights(4096, 4), 256}, {heights(384, 3), 8},
		{heights(100, 3), 1},
		// Mixed heights: the step's four inputs, and interleaved heights
		// (each height's matrices not consecutive).
		{[]int{4096, 4096, 4096, 11008}, 256}, {[]int{384, 1536, 384, 1536, 384}, 58}} {
		n := len(c.ps)
		pmax := 0
		for _, p := range c.ps {
			pmax = max(pmax, p)
		}
		for _, layout := range []string{"consecutive", "separate"} {
			for _, deficient := range []bool{false, true} {
				if deficient && c.l == 1 {
					continue
				}
				name := fmt.Sprintf("%vx%d/%s/deficient=%v/potrfLoop=%v/libPotrf=%v", c.ps, c.l, layout, deficient, b.potrfLoop, b.libPotrf)
				ys := make([]*mat.Dense, n)
				for i := range ys {
					ys[i] = testmat.Incoherent(c.ps[i], c.l, geometric(c.l, []float64{10, 1e4}[i%2]), rng.Uint64())
				}
				if deficient {
					// Column 1 repeats column 0: rank ℓ − 1.
					ys[1].SetCol(1, mat.Col(nil, 0, ys[1]))
				}
				var all *Matrix
				dm := make([]lowrank.Matrix, n)
				if layout == "consecutive" {
					// Column blocks of one matrix as tall as the tallest:
					// the shorter ones have a leading dimension above
					// their height (read in place all the same).
					var err error
					all, err = b.NewMatrix(pmax, c.l*n, Float32)
					require.NoError(t, err)
					for i := range dm {
						dm[i] = b.Slice(all, 0, c.ps[i], i*c.l, (i+1)*c.l)
					}
				} else {
					for i := range dm {
						m, err := b.NewMatrix(c.ps[i], c.l, Float32)
						require.NoError(t, err)
						dm[i] = m
					}
				}
				for i := range dm {
					require.NoError(t, b.Upload(dm[i], ys[i]))
				}
				require.NoError(t, b.Synchronize())
				s0 := b.Syncs()
				require.NoError(t, b.QRBatch(dm), name)
				if !deficient && c.l > 1 {
					assert.Equal(t, int64(1), b.Syncs()-s0, "%s: host synchronisations", name)
				}
				for i := range dm {
					var q mat.Dense
					require.NoError(t, b.Download(&q, dm[i]))
					assert.LessOrEqual(t, testmat.OrthError(&q), orthTol(c.ps[i], c.l), "%s: item %d ‖QᵀQ − I‖_max", name, i)
					var qty, res mat.Dense
					qty.Mul(q.T(), ys[i])
					res.Mul(&q, &qty)
					res.Sub(ys[i], &res)
					assert.LessOrEqual(t, mat.Norm(&res, 2), 10*float64(c.l)*u32*math.Sqrt(float64(c.ps[i]))*mat.Norm(ys[i], 2),
						"%s: item %d range", name, i)
				}
				testQRBatchDeferred(t, b, name, dm, ys, c.l > 1, deficient)
				if all != nil {
					b.Free(all)
				} else {
					for _, m := range dm {
						b.Free(m)
					}
				}
			}
		}
	}
}

// testQRBatchDeferred checks QRBatchDeferred on the batch dm that QRBatch
// has just orthogonalised from ys: uploaded anew, it makes no host
// synchronisation where the batched path serves (fast), Collect makes
// one, every matrix not failed holds QRBatch's result bit for bit (the
// same kernels), a failed one (the rank-deficient item 1, whose
// factorisation breaks down) holds its input unchanged, and QR then gives
// it QRBatch's result bit for bit (QRBatch's fallback is that QR).
func testQRBatchDeferred(t *testing.T, b *Backend, name string, dm []lowrank.Matrix, ys []*mat.Dense, fast, deficient bool) {
	n := len(dm)
	want, in := make([]mat.Dense, n), make([]mat.Dense, n)
	for i := range dm {
		require.NoError(t, b.Download(&want[i], dm[i]))
		require.NoError(t, b.Upload(dm[i], ys[i]))
		require.NoError(t, b.Download(&in[i], dm[i]))
	}
	failed := make([]bool, n)
	s0 := b.Syncs()
	require.NoError(t, b.QRBatchDeferred(dm, failed), name)
	if fast {
		assert.Equal(t, int64(0), b.Syncs()-s0, "%s: QRBatchDeferred's synchronisations", name)
	}
	s0 = b.Syncs()
	require.NoError(t, b.Collect(), name)
	if fast {
		assert.Equal(t, int64(1), b.Syncs()-s0, "%s: Collect's synchronisations", name)
		assert.Equal(t, deficient, failed[1], "%s: item 1 failed", name)
	} else {
		assert.Equal(t, make([]bool, n), failed, "%s: QRBatch's path fails nothing", name)
	}
	for i := range dm {
		var got mat.Dense
		require.NoError(t, b.Download(&got, dm[i]))
		if failed[i] {
			assert.True(t, mat.Equal(&in[i], &got), "%s: item %d failed and kept its input", name, i)
			require.NoError(t, b.QR(dm[i], nil))
			require.NoError(t, b.Download(&got, dm[i]))
		}
		assert.True(t, mat.Equal(&want[i], &got), "%s: item %d is QRBatch's", name, i)
	}
	assert.Panics(t, func() { _ = b.QRBatchDeferred(dm, failed[:n-1]) }, "%s: flags of another length", name)
}

// TestQBBatchDevice checks sampling's QBBatchTo on the device against
// QBTo of each activation with the same seed: the same draw, ‖A‖² and
// ‖B‖² within 2·γ_d relative (sums of squares of float32 products of
// length d, computed by other kernels in another order), Q orthonormal;
// one host synchronisation for the batch; nothing copied to the device
// by a repeated batch or a single QB (the sampled indices drawn there, the
// address tables reused), with the factors bit for bit those of the
// indices copied (noDraw); the batch's reads deferred to one host
// synchronisation, with the factors bit for bit those of the batch
// without lowrank.Deferrer (three); and GatherNormBatch and
// SquaredNormBatch, and their deferred forms, equal bit for bit to
// GatherNorm and SquaredNorm (the same kernels).
func TestQBBatchDevice(t *testing.T) {
	b := open(t, nil)
	const m, d, n = 2048, 384, 6
	for _, dt := range []DType{BFloat16, Float32} {
		for _, k := range []int{32, 58} {
			name := fmt.Sprintf("%v/k=%d", dt, k)
			as := make([]lowrank.Matrix, n)
			opts := make([]*sampling.Options, n)
			dst := make([]*lowrank.Factors, n)
			for i := range as {
				x, err := b.UploadDense32(testmat.To32(testmat.Incoherent(m, d, testmat.ActivationLike(d), uint64(10+i))), dt)
				require.NoError(t, err)
				as[i] = x // row-major, as UploadDense32 stores a Dense32
				opts[i] = &sampling.Options{Seed: uint64(i)}
				dst[i] = new(lowrank.Factors)
			}
			dec := sampling.NewDecomposer(b)
			require.NoError(t, dec.QBBatchTo(dst, as, k, opts)) // warm-up: scratch
			require.NoError(t, b.Synchronize())
			s0 := b.Syncs()
			up0, _ := b.Transfers()
			require.NoError(t, dec.QBBatchTo(dst, as, k, opts), name)
			assert.Equal(t, int64(1), b.Syncs()-s0, "%s: host synchronisations (the deferred reads)", name)
			up1, _ := b.Transfers()
			assert.Zero(t, up1-up0, "%s: bytes copied to the device by a repeated batch", name)
			// Without lowrank.Deferrer (syncOnly), the batch's three
			// synchronisations and the same factors bit for bit.
			sync := make([]*lowrank.Factors, n)
			for i := range sync {
				sync[i] = new(lowrank.Factors)
			}
			so := sampling.NewDecomposer(syncOnly{Backend: b})
			require.NoError(t, so.QBBatchTo(sync, as, k, opts), name)
			s1 := b.Syncs()
			require.NoError(t, so.QBBatchTo(sync, as, k, opts), name)
			assert.Equal(t, int64(3), b.Syncs()-s1, "%s: host synchronisations, not deferred", name)
			so.Close()
			for i := range sync {
				assertSameQB(t, b, dst[i], sync[i], fmt.Sprintf("%s item %d: deferred and not", name, i))
				assert.Equal(t, [3]float64{sync[i].SquaredNormA, sync[i].SquaredNormB, sync[i].NormScale},
					[3]float64{dst[i].SquaredNormA, dst[i].SquaredNormB, dst[i].NormScale}, "%s item %d: deferred and not", name, i)
				sync[i].Free(b)
			}
			up1, _ = b.Transfers()
			// A repeated batch copies nothing to the device: its indices
			// are drawn there and its address tables are those of the last
			// call (uploadTable's ring). Copied instead (noDraw), the same
			// indices: the same factors bit for bit, and at least the
			// indices' 8·n·k bytes go up.
			b.noDraw = true
			ref := make([]*lowrank.Factors, n)
			for i := range ref {
				ref[i] = new(lowrank.Factors)
			}
			require.NoError(t, dec.QBBatchTo(ref, as, k, opts), name)
			up2, _ := b.Transfers()
			b.noDraw = false
			assert.GreaterOrEqual(t, up2-up1, int64(8*n*k), "%s: bytes copied to the device with the indices copied", name)
			for i := range ref {
				assertSameQB(t, b, dst[i], ref[i], fmt.Sprintf("%s item %d: drawn on the device and copied", name, i))
				ref[i].Free(b)
			}
			gamma := 2 * float64(d) * u32 / (1 - float64(d)*u32)
			single := sampling.NewDecomposer(b)
			for i := range as {
				var f lowrank.Factors
				require.NoError(t, single.QBTo(&f, as[i], k, opts[i]))
				assert.InEpsilon(t, f.SquaredNormA, dst[i].SquaredNormA, 1e-12, "%s item %d: ‖A‖² (the same kernel)", name, i)
				assert.InEpsilon(t, f.SquaredNormB, dst[i].SquaredNormB, 2*gamma, "%s item %d: ‖B‖²", name, i)
				var q mat.Dense
				require.NoError(t, b.Download(&q, dst[i].Q))
				assert.LessOrEqual(t, testmat.OrthError(&q), orthTol(d, k), "%s item %d", name, i)
				f.Free(b)
			}
			// A single QB draws on the device too (GatherNormSeeded), with
			// the factors of the copied indices bit for bit.
			var f1, f2 lowrank.Factors
			u0, _ := b.Transfers()
			require.NoError(t, single.QBTo(&f1, as[0], k, opts[0]))
			u1, _ := b.Transfers()
			assert.Zero(t, u1-u0, "%s: bytes copied to the device for one QB", name)
			b.noDraw = true
			require.NoError(t, single.QBTo(&f2, as[0], k, opts[0]))
			b.noDraw = false
			u2, _ := b.Transfers()
			assert.Equal(t, int64(8*k), u2-u1, "%s: one QB with its indices copied", name)
			var q1, q2 mat.Dense
			require.NoError(t, b.Download(&q1, f1.Q))
			require.NoError(t, b.Download(&q2, f2.Q))
			assert.True(t, mat.Equal(&q1, &q2), "%s: one QB drawn on the device and copied", name)
			f1.Free(b)
			f2.Free(b)
			// The batched reductions against the single ones.
			sq, mx := make([]float64, n), make([]float64, n)
			require.NoError(t, b.SquaredNormBatch(as, 0.5, sq, mx))
			om := make([]lowrank.Matrix, n)
			idx := make([][]int, n)
			for i := range om {
				o, err := b.NewMatrix(d, k, Float32)
				require.NoError(t, err)
				om[i] = o
				idx[i] = rand.New(rand.NewPCG(uint64(i), 1)).Perm(m)[:k]
			}
			gs, gm := make([]float64, n), make([]float64, n)
			require.NoError(t, b.GatherNormBatch(om, as, false, idx, gs, gm))
			// Deferred: nothing waits until Collect, which gives the same
			// results bit for bit.
			dsq, dmx := make([]float64, n), make([]float64, n)
			s2 := b.Syncs()
			require.NoError(t, b.SquaredNormBatchDeferred(as, 0.5, dsq, dmx))
			assert.Equal(t, s2, b.Syncs(), "%s: the deferred call waits for nothing", name)
			require.NoError(t, b.Collect())
			assert.Equal(t, s2+1, b.Syncs(), "%s: Collect waits once", name)
			assert.Equal(t, [2][]float64{sq, mx}, [2][]float64{dsq, dmx}, "%s: deferred and not", name)
			testSketchDeferred(t, b, name, as, k)
			for i := range as {
				s1, m1, err := b.SquaredNorm(as[i], 0.5)
				require.NoError(t, err)
				assert.Equal(t, [2]float64{s1, m1}, [2]float64{sq[i], mx[i]}, "%s item %d: SquaredNormBatch", name, i)
				o, err := b.NewMatrix(d, k, Float32)
				require.NoError(t, err)
				s2, m2, err := b.GatherNorm(o, as[i], false, idx[i])
				require.NoError(t, err)
				assert.Equal(t, [2]float64{s2, m2}, [2]float64{gs[i], gm[i]}, "%s item %d: GatherNormBatch", name, i)
				var w, g mat.Dense
				require.NoError(t, b.Download(&w, o))
				require.NoError(t, b.Download(&g, om[i]))
				assert.True(t, mat.Equal(&w, &g), "%s item %d: the gathered rows", name, i)
				b.Free(o)
				b.Free(om[i])
			}
			for i := range as {
				dst[i].Free(b)
				b.Free(as[i])
			}
			dec.Close()
			single.Close()
		}
	}
}

// assertSameQB asserts that two factors' Q and B are equal bit for bit.
func assertSameQB(t *testing.T, b *Backend, f, g *lowrank.Factors, msg string) {
	t.Helper()
	for _, pair := range [][2]lowrank.Matrix{{f.Q, g.Q}, {f.B, g.B}} {
		var x, y mat.Dense
		require.NoError(t, b.Download(&x, pair[0]))
		require.NoError(t, b.Download(&y, pair[1]))
		assert.True(t, mat.Equal(&x, &y), msg)
	}
}

// testSketchDeferred checks SketchBatchDeferred on the batch as (m×d
// row-major, bf16 or float32) in both orientations against GatherNormBatch
// and MulBatch: the sums and maxima, and the sketches, bit for bit (a bf16
// Ω gathered as stored is what the bf16 product makes of the float32
// one); no synchronisation until Collect, one there; and Ω filled in
// float32 except where the batch's rows are gathered in bf16 (bf16 input,
// op(A) = Aᵀ: the sampled rows are stored rows), where it is left as it was
// (compared with its contents before the call).
func testSketchDeferred(t *testing.T, b *Backend, name string, as []lowrank.Matrix, k int) {
	n := len(as)
	m, d := as[0].Dims()
	bf16 := as[0].(*Matrix).DType() == BFloat16
	for _, tr := range []bool{false, true} {
		p, q := m, d
		if tr {
			p, q = d, m
		}
		nm := fmt.Sprintf("%s/trans=%v", name, tr)
		blocks := func() []lowrank.Matrix { // consecutive column blocks, as the Decomposer's
			all, err := b.NewMatrix(q, k*n, Float32)
			require.NoError(t, err)
			t.Cleanup(func() { b.Free(all) })
			out := make([]lowrank.Matrix, n)
			for i := range out {
				out[i] = b.Slice(all, 0, q, i*k, (i+1)*k)
			}
			return out
		}
		news := func(r, c int) []lowrank.Matrix {
			out := make([]lowrank.Matrix, n)
			for i := range out {
				x, err := b.NewMatrix(r, c, Float32)
				require.NoError(t, err)
				t.Cleanup(func() { b.Free(x) })
				out[i] = x
			}
			return out
		}
		idx := make([][]int, n)
		for i := range idx {
			idx[i] = rand.New(rand.NewPCG(uint64(i), 2)).Perm(p)[:k]
		}
		om, om2, y, y2 := blocks(), blocks(), news(p, k), news(p, k)
		gs, gm, ds, dm := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		require.NoError(t, b.GatherNormBatch(om, as, tr, idx, gs, gm), nm)
		require.NoError(t, b.MulBatch(y, 1, as, tr, om, false, 0), nm)
		before := make([]mat.Dense, n) // om2 as allocated, to tell "left as it was"
		for i := range n {
			require.NoError(t, b.Download(&before[i], om2[i]))
		}
		s0 := b.Syncs()
		require.NoError(t, b.SketchBatchDeferred(y2, om2, as, tr, idx, nil, ds, dm), nm)
		assert.Equal(t, s0, b.Syncs(), "%s: SketchBatchDeferred waits for nothing", nm)
		require.NoError(t, b.Collect())
		assert.Equal(t, s0+1, b.Syncs(), "%s: Collect waits once", nm)
		assert.Equal(t, [2][]float64{gs, gm}, [2][]float64{ds, dm}, "%s: sums and maxima", nm)
		for i := range n {
			var w, g, wo, go2 mat.Dense // a Dense takes one shape: y's p×k, Ω's q×k
			require.NoError(t, b.Download(&w, y[i]))
			require.NoError(t, b.Download(&g, y2[i]))
			assert.True(t, mat.Equal(&w, &g), "%s item %d: the sketch", nm, i)
			require.NoError(t, b.Download(&go2, om2[i]))
			if bf16 && tr {
				assert.True(t, mat.Equal(&before[i], &go2), "%s item %d: Ω gathered in bf16, the float32 one left as it was", nm, i)
			} else {
				require.NoError(t, b.Download(&wo, om[i]))
				assert.True(t, mat.Equal(&wo, &go2), "%s item %d: Ω in float32", nm, i)
			}
		}
	}
}

// syncOnly is a Backend without lowrank.Deferrer (its field Collect
// hides the method): sampling's batch then reads each call's results at
// once, as before the deferred reads.
type syncOnly struct {
	*Backend
	Collect struct{}
}

// TestQBBatchOrientations checks a batch of activations of both
// orientations (three 1024×384 row-major inputs, op(A) = Aᵀ, and one
// 1024×1536, op(A) = A): the fourth joins the batch through the view of
// its transpose (Backend.Transpose, lowrank.Transposer), so the repeated
// batch makes the one host synchronisation of one batch (not three more
// for a QB of its own) and copies nothing to the device; every item
// gets QBTo's orientation, Q orthonormal within orthTol, ‖A‖² from the
// same kernel on the same memory (within 10⁻¹²), and a relative error
// e² = 1 − ‖B‖²/‖A‖² within 2γ_d of QBTo's (the batched and single QRs
// round differently: TestDeviceCompressBatch).
func TestQBBatchOrientations(t *testing.T) {
	b := open(t, nil)
	const m, k = 1024, 32
	widths := []int{384, 384, 1536, 384}
	as := make([]lowrank.Matrix, len(widths))
	opts := make([]*sampling.Options, len(widths))
	dst := make([]*lowrank.Factors, len(widths))
	for i, w := range widths {
		x, err := b.UploadDense32(testmat.To32(testmat.Incoherent(m, w, testmat.ActivationLike(min(m, w)), uint64(30+i))), BFloat16)
		require.NoError(t, err)
		t.Cleanup(func() { b.Free(x) })
		as[i], opts[i], dst[i] = x, &sampling.Options{Seed: uint64(40 + i)}, new(lowrank.Factors)
	}
	dec := sampling.NewDecomposer(b)
	require.NoError(t, dec.QBBatchTo(dst, as, k, opts)) // warm-up: scratch, address tables
	require.NoError(t, b.Synchronize())
	s0 := b.Syncs()
	up0, _ := b.Transfers()
	require.NoError(t, dec.QBBatchTo(dst, as, k, opts))
	up1, _ := b.Transfers()
	assert.Equal(t, int64(1), b.Syncs()-s0, "host synchronisations of the batch (deferred reads)")
	assert.Zero(t, up1-up0, "bytes copied to the device by a repeated batch")
	single := sampling.NewDecomposer(b)
	defer dec.Close()
	defer single.Close()
	for i := range widths {
		var f lowrank.Factors
		require.NoError(t, single.QBTo(&f, as[i], k, opts[i]))
		assert.Equal(t, f.Trans, dst[i].Trans, "item %d: orientation", i)
		var q mat.Dense
		require.NoError(t, b.Download(&q, dst[i].Q))
		p, _ := q.Dims() // the rows of op(A): the length of B's products
		assert.LessOrEqual(t, testmat.OrthError(&q), orthTol(p, k), "item %d", i)
		gamma := float64(p) * u32 / (1 - float64(p)*u32)
		assert.InEpsilon(t, f.SquaredNormA, dst[i].SquaredNormA, 1e-12, "item %d: ‖A‖²", i)
		es, eb := 1-f.SquaredNormB/f.SquaredNormA, 1-dst[i].SquaredNormB/dst[i].SquaredNormA
		assert.InDelta(t, es, eb, 2*gamma, "item %d: e² batched and single", i)
		f.Free(b)
		dst[i].Free(b)
	}
}

// TestQRBatchPotrf (behind -gpu.prof) times QRBatch as it is (chol64
// where it serves), with cuSOLVER's batched potrf and with one dpotrf per
// matrix, and n single QRs, CUDA events around each (median of 20 after 3
// warm-ups): the measurement behind batchPotrfMax and chol64Max.
func TestQRBatchPotrf(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	name, _ := b.Device()
	for _, c := range []struct{ n, p, l int }{{64, 768, 32}, {16, 768, 64}, {3, 384, 58}, {6, 384, 116}, {8, 1024, 128},
		{2, 1536, 231}, {4, 1536, 231}, {3, 4096, 256}, {2, 4096, 512}} {
		all, err := b.NewMatrix(c.p, c.l*c.n, Float32)
		require.NoError(t, err)
		src, err := b.NewMatrix(c.p, c.l*c.n, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Normal(src, 1))
		ms := make([]lowrank.Matrix, c.n)
		for i := range ms {
			ms[i] = b.Slice(all, 0, c.p, i*c.l, (i+1)*c.l)
		}
		rec := map[string]any{"qr_batch": fmt.Sprintf("%d x %dx%d", c.n, c.p, c.l), "device": name}
		for _, v := range []struct {
			key       string
			loop, lib bool
			f         func() error
		}{{"default_ms", false, false, func() error { return b.QRBatch(ms) }},
			{"batched_potrf_ms", false, true, func() error { return b.QRBatch(ms) }},
			{"looped_dpotrf_ms", true, true, func() error { return b.QRBatch(ms) }},
			{"singles_ms", false, false, func() error {
				for _, m := range ms {
					if err := b.QR(m, nil); err != nil {
						return err
					}
				}
				return nil
			}}} {
			b.potrfLoop, b.libPotrf = v.loop, v.lib
			med, _ := tm.median(t, 20, func(int) error {
				if err := b.Copy(all, src); err != nil {
					return err
				}
				return v.f()
			})
			rec[v.key] = med
		}
		b.potrfLoop, b.libPotrf = false, false
		emit(rec)
		b.Free(all)
		b.Free(src)
	}
}

// TestBatchThroughput (behind -gpu.prof) times n single QBTo calls against
// one QBBatchTo of the same n activations, CUDA events around each
// (median of 10 after 3 warm-ups), at issue 13's case (64 activations of
// 1024×768 at k = 32, bf16 and fp32) and the GPU demo's per-op shapes
// (12544×384 at k = 58, three of them; 12544×1536 at k = 231, two).
func TestBatchThroughput(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	name, _ := b.Device()
	for _, c := range []struct {
		n, m, d, k int
		dt         DType
	}{{64, 1024, 768, 32, BFloat16}, {64, 1024, 768, 32, Float32}, {16, 1024, 768, 32, BFloat16},
		{3, 12544, 384, 58, BFloat16}, {2, 12544, 1536, 231, BFloat16}, {6, 12544, 384, 116, BFloat16}} {
		as := make([]lowrank.Matrix, c.n)
		stored := make([]*Matrix, c.n)
		opts := make([]*sampling.Options, c.n)
		dst := make([]*lowrank.Factors, c.n)
		for i := range as {
			g, err := b.NewMatrix(c.d, c.m, Float32)
			require.NoError(t, err)
			require.NoError(t, b.Normal(g, uint64(i)))
			st, err := b.NewMatrix(c.d, c.m, c.dt)
			require.NoError(t, err)
			require.NoError(t, b.Copy(st, g))
			b.Free(g)
			stored[i], as[i] = st, st.T() // row-major m×d, as a framework holds it
			opts[i] = &sampling.Options{Seed: uint64(i)}
			dst[i] = new(lowrank.Factors)
		}
		dec := sampling.NewDecomposer(b)
		single, _ := tm.median(t, 10, func(int) error {
			for i := range as {
				if err := dec.QBTo(dst[i], as[i], c.k, opts[i]); err != nil {
					return err
				}
			}
			return nil
		})
		s0 := b.Syncs()
		batched, _ := tm.median(t, 10, func(int) error { return dec.QBBatchTo(dst, as, c.k, opts) })
		syncs := float64(b.Syncs()-s0) / 13
		emit(map[string]any{"batch": fmt.Sprintf("%d x %dx%d k=%d %v", c.n, c.m, c.d, c.k, c.dt), "device": name,
			"singles_ms": single, "batched_ms": batched, "speedup": single / batched, "syncs_per_batch": syncs})
		for i := range as {
			dst[i].Free(b)
			b.Free(stored[i])
		}
		dec.Close()
	}
}

// TestMulCopyBatch checks MulBatch and CopyBatch against Mul and Copy
// exactly, on integer matrices whose products are exact in bf16 and
// float32 (entries |v| ≤ 8, inner length 64: sums below 2¹²): bf16
// row-major activations times float32 column blocks of one matrix (the
// sketch), a transposed first operand (B = Qᵀ·A), a row-major destination,
// beta ≠ 0, separate matrices (converted one by one), and products of
// mixed shapes (grouped by shape).
func TestMulCopyBatch(t *testing.T) {
	b := open(t, nil)
	rng := rand.New(rand.NewPCG(5, 5))
	ints := func(r, c int) *mat.Dense {
		m := mat.NewDense(r, c, nil)
		for i := range r {
			for j := range c {
				m.Set(i, j, float64(rng.IntN(17)-8))
			}
		}
		return m
	}
	const n, m, k, l = 4, 96, 64, 24
	as := make([]lowrank.Matrix, n)
	for i := range as {
		x, err := b.UploadDense32(testmat.To32(ints(m, k)), BFloat16) // row-major m×k
		require.NoError(t, err)
		as[i] = x
	}
	blocks, err := b.NewMatrix(k, l*n, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Upload(blocks, ints(k, l*n)))
	om := make([]lowrank.Matrix, n)
	sep := make([]lowrank.Matrix, n)
	for i := range om {
		om[i] = b.Slice(blocks, 0, k, i*l, (i+1)*l)
		s, err := b.NewMatrix(k, l, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Upload(s, ints(k, l)))
		sep[i] = s
	}
	newC := func(r, c int, rowMajor bool, from []*mat.Dense) ([]lowrank.Matrix, []*mat.Dense) {
		cs := make([]lowrank.Matrix, n)
		vals := make([]*mat.Dense, n)
		for i := range cs {
			var x *Matrix
			var err error
			if rowMajor {
				x, err = b.NewMatrix(c, r, Float32)
				x = x.T()
			} else {
				x, err = b.NewMatrix(r, c, Float32)
			}
			require.NoError(t, err)
			vals[i] = ints(r, c)
			if from != nil {
				vals[i] = from[i]
			}
			require.NoError(t, b.Upload(x, vals[i]))
			cs[i] = x
		}
		return cs, vals
	}
	download := func(x lowrank.Matrix) *mat.Dense {
		var d mat.Dense
		require.NoError(t, b.Download(&d, x))
		return &d
	}
	for _, c := range []struct {
		name     string
		a        []lowrank.Matrix
		ta       bool
		bm       []lowrank.Matrix
		tb       bool
		r, cc    int
		rowMajor bool
		beta     float64
	}{
		{"A·Ω", as, false, om, false, m, l, false, 0},
		{"A·Ω separate", as, false, sep, false, m, l, false, 0},
		{"Ωᵀ·Aᵀ row-major c, beta", om, true, as, true, l, m, true, 1},
		{"A·Ω row-major c", as, false, om, false, m, l, true, -2},
	} {
		got, vals := newC(c.r, c.cc, c.rowMajor, nil)
		want, _ := newC(c.r, c.cc, c.rowMajor, vals)
		require.NoError(t, b.MulBatch(got, 1, c.a, c.ta, c.bm, c.tb, c.beta), c.name)
		for i := range want {
			require.NoError(t, b.Mul(want[i], 1, c.a[i], c.ta, c.bm[i], c.tb, c.beta))
			assert.True(t, mat.Equal(download(want[i]), download(got[i])), "%s: item %d", c.name, i)
		}
	}
	// Mixed shapes: A of 96 and 160 rows interleaved (two groups of two,
	// one batched product each) and one product alike to no other.
	for _, rows := range [][]int{{96, 160, 96, 160}, {96, 96, 160, 40}} {
		am := make([]lowrank.Matrix, n)
		got := make([]lowrank.Matrix, n)
		want := make([]lowrank.Matrix, n)
		for i := range am {
			x, err := b.UploadDense32(testmat.To32(ints(rows[i], k)), BFloat16)
			require.NoError(t, err)
			am[i] = x
			g, err := b.NewMatrix(rows[i], l, Float32)
			require.NoError(t, err)
			w, err := b.NewMatrix(rows[i], l, Float32)
			require.NoError(t, err)
			got[i], want[i] = g, w
		}
		require.NoError(t, b.MulBatch(got, 1, am, false, om, false, 0))
		for i := range am {
			require.NoError(t, b.Mul(want[i], 1, am[i], false, om[i], false, 0))
			assert.True(t, mat.Equal(download(want[i]), download(got[i])), "mixed %v: item %d", rows, i)
			b.Free(am[i])
			b.Free(got[i])
			b.Free(want[i])
		}
	}
	// B = Qᵀ·op(A) as the Decomposer's batch forms it: op(A) = Aᵀ (k×m).
	qs := om
	bsGot, _ := newC(l, m, false, nil)
	bsWant, _ := newC(l, m, false, nil)
	require.NoError(t, b.MulBatch(bsGot, 1, qs, true, as, true, 0))
	for i := range qs {
		require.NoError(t, b.Mul(bsWant[i], 1, qs[i], true, as[i], true, 0))
		assert.True(t, mat.Equal(download(bsWant[i]), download(bsGot[i])), "Qᵀ·Aᵀ item %d", i)
	}
	// CopyBatch: column blocks into separate matrices, and bf16 row-major
	// sources (copied one by one: not equally spaced).
	dst, _ := newC(k, l, false, nil)
	require.NoError(t, b.CopyBatch(dst, om))
	for i := range dst {
		assert.True(t, mat.Equal(download(om[i]), download(dst[i])), "CopyBatch item %d", i)
	}
	dst2, _ := newC(m, k, false, nil)
	require.NoError(t, b.CopyBatch(dst2, as))
	for i := range dst2 {
		assert.True(t, mat.Equal(download(as[i]), download(dst2[i])), "CopyBatch bf16 item %d", i)
	}
}

// TestDrawUniform checks draw_uniform against the host's uniform draw
// (testmat.UniformDraw, as sampling.Uniform draws), index for index: row counts that are powers of
// two (IntN's mask) and not (Lemire's reduction), ℓ = p, one row, the
// largest p it serves, and more draws than one launch makes; with each
// thread jumping the generator to its draws (the default) and with the
// sequential loop the kernel takes after a rejected number (drawSeq).
func TestDrawUniform(t *testing.T) {
	b := open(t, nil)
	host := func(seed uint64, p, l int) []int64 {
		out := make([]int64, l)
		for i, v := range testmat.UniformDraw(seed, p, l) {
			out[i] = int64(v)
		}
		return out
	}
	for _, c := range []struct {
		l  int
		ps []int
	}{
		{1, []int{1, 2, 1 << 16}},
		{3, []int{3, 11008, 4096}},
		{17, []int{17, 40000, 1 << 12, 3 * 1024, 65535, 12345, 2048, 4097, 18, 1 << 16, 100}},
		{256, []int{4096, 4096, 4096, 11008}},
		{1024, []int{1 << 16, 11008}},
	} {
		ps, n := c.ps, len(c.ps)
		seeds := make([]uint64, n)
		for i := range seeds {
			seeds[i] = 0x9e3779b97f4a7c15*uint64(i+1) + uint64(c.l)
			require.True(t, b.canDraw(ps[i], c.l), "p = %d, l = %d", ps[i], c.l)
		}
		dev, err := b.alloc(8 * n * c.l)
		require.NoError(t, err)
		for _, seq := range []bool{false, true} {
			b.drawSeq = seq
			require.NoError(t, b.enter())
			err = b.drawUniform(dev, c.l, seeds, ps)
			b.leave()
			require.NoError(t, err)
			got := make([]int64, n*c.l)
			require.NoError(t, b.enter())
			err = b.download(unsafe.Pointer(&got[0]), dev, 8*len(got))
			b.leave()
			require.NoError(t, err)
			for i := range seeds {
				assert.Equal(t, host(seeds[i], ps[i], c.l), got[i*c.l:(i+1)*c.l], "l = %d, draw %d of %d rows, sequential %v", c.l, i, ps[i], seq)
			}
		}
		b.drawSeq = false
		require.NoError(t, b.free(dev))
	}
	assert.False(t, b.canDraw(1<<16+1, 1), "beyond uint16")
	assert.False(t, b.canDraw(0, 0))
	assert.False(t, b.canDraw(10, 11), "more draws than rows")
}
