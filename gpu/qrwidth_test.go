package gpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// qrWidths are the sketch widths of the ℓ sweep: around every multiple of
// 32 and 64 that a kernel tile could make special, the p = 10
// oversampling of k = 128, the old limit of the float32 passes (334), and
// the ends of the range.
var qrWidths = []int{1, 2, 3, 31, 32, 33, 63, 65, 127, 129, 138, 255, 257, 335, 511, 1000, 1024}

// orthTol returns the bound on ‖QᵀQ − I‖_max used for a float32 QR of a
// p×ℓ matrix: every column of Q is a float32 product of length ℓ (Y·R⁻¹,
// then Q·X), an error ≤ γ_ℓ ≈ ℓ·u relative to the column, whose norm was
// fixed by length-p dot products (their rounding grows like √p·u); the
// factor 10 covers the constants of the two products and of the
// polynomial step (|15/8| + |5/4| + |3/8| = 3.5) and Householder's c·√p.
func orthTol(p, l int) float64 { return 10 * (float64(l) + math.Sqrt(float64(p))) * u32 }

// TestQRWidths checks the QR over the ℓ sweep, with and without R, on a
// sketch-like input (κ = 10⁴, the squared conditioning of an activation's
// leading part; TestQRConditioning goes to 10⁹ at three widths): Q orthonormal within orthTol, A = QR backward stable,
// and no Householder fallback up to ℓ = 1024 when R is not asked for. The
// factorisation variants (batched potrf, triangular solve) are checked on
// part of the sweep.
func TestQRWidths(t *testing.T) {
	b := open(t, nil)
	rng := rand.New(rand.NewPCG(7, 7))
	const p = 4096
	check := func(name string, l int, wantR bool) {
		s := make([]float64, l)
		for i := range s {
			s[i] = 1
			if l > 1 {
				s[i] = math.Pow(1e4, -float64(i)/float64(l-1))
			}
		}
		y := testmat.Incoherent(p, l, s, rng.Uint64())
		dy, err := b.NewMatrix(p, l, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Upload(dy, y))
		var dr *Matrix
		if wantR {
			dr, err = b.NewMatrix(l, l, Float32)
			require.NoError(t, err)
		}
		fb := b.fallbacks
		if wantR {
			require.NoError(t, b.QR(dy, dr))
		} else {
			require.NoError(t, b.QR(dy, nil))
			assert.Equal(t, fb, b.fallbacks, "%s ℓ=%d: the fast path fell back", name, l)
		}
		var q mat.Dense
		require.NoError(t, b.Download(&q, dy))
		assert.LessOrEqual(t, testmat.OrthError(&q), orthTol(p, l), "%s ℓ=%d R=%v: ‖QᵀQ − I‖_max", name, l, wantR)
		if wantR {
			var r, qr mat.Dense
			require.NoError(t, b.Download(&r, dr))
			qr.Mul(&q, &r)
			qr.Sub(&qr, y)
			// As TestQRConditioning: c·ℓ·√p·u·‖Y‖_F, c = 10.
			assert.LessOrEqual(t, mat.Norm(&qr, 2), 10*float64(l)*u32*math.Sqrt(p)*mat.Norm(y, 2), "%s ℓ=%d: Y = QR", name, l)
			b.Free(dr)
		}
		b.Free(dy)
	}
	for _, l := range qrWidths {
		check("default", l, false)
		if l <= 257 {
			check("default", l, true)
		}
	}
	// The default factors the float64 Gram matrix by chol64 up to
	// chol64OneMax and by dpotrf above; libPotrf takes dpotrf throughout.
	for _, v := range []struct {
		name                    string
		blk, batched, trsm, lib bool
	}{{"cholblk64", true, false, false, false}, {"trsm", false, false, true, false}, {"potrfBatched", false, true, false, false},
		{"potrfBatched+trsm", false, true, true, false}, {"dpotrf", false, false, false, true}} {
		b.useBlk, b.potrfBatched, b.useTrsm, b.libPotrf = v.blk, v.batched, v.trsm, v.lib
		for _, l := range []int{33, 128, 138, 256, 511} {
			check(v.name, l, false)
			check(v.name, l, true)
		}
	}
	b.useBlk, b.potrfBatched, b.useTrsm, b.libPotrf = false, false, false, false
}

// TestQRSweep records the ℓ curve (behind -gpu.prof): the QR of a
// 4096×ℓ sketch-like matrix, and a whole rows QB of a 16384×4096 bf16
// row-major activation at k = ℓ (p = 0) and at k = ℓ − 10 with p = 10, one
// JSON line per width, for docs/gpu.md's table and figure.
func TestQRSweep(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	name, _ := b.Device()
	const p, m, n = 4096, 16384, 4096
	da := traceInput(t, b, m, n, BFloat16)
	defer b.Free(da)
	widths := []int{1, 2, 4, 8, 16, 24, 31, 32, 33, 48, 63, 64, 65, 96, 127, 128, 129, 138, 160, 192, 224, 255, 256, 257,
		288, 320, 335, 384, 448, 511, 512, 513, 640, 768, 896, 1000, 1024}
	for _, l := range widths {
		y, err := b.NewMatrix(p, l, Float32)
		require.NoError(t, err)
		src, err := b.NewMatrix(p, l, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Normal(src, uint64(l)))
		cp, _ := tm.median(t, 10, func(int) error { return b.Copy(y, src) })
		fb := b.fallbacks
		qr, qrMin := tm.median(t, 10, func(int) error {
			if err := b.Copy(y, src); err != nil {
				return err
			}
			return b.QR(y, nil)
		})
		b.useBlk = true
		qrBlk, _ := tm.median(t, 10, func(int) error {
			if err := b.Copy(y, src); err != nil {
				return err
			}
			return b.QR(y, nil)
		})
		b.useBlk = false
		rec := map[string]any{"sweep": "qr", "device": name, "p": p, "l": l, "qr_ms": qr - cp, "qr_ms_min": qrMin - cp, "qr_fallbacks": b.fallbacks - fb,
			"qr_ms_blk": qrBlk - cp}
		b.Free(y)
		b.Free(src)
		d := sampling.NewDecomposer(b)
		var f lowrank.Factors
		// Each QB with the padded products and dsyevd, and (suffix
		// _before) without them, as before this change.
		for _, before := range []bool{false, true} {
			b.noPad, b.noSymEig = before, before
			suf := ""
			if before {
				suf = "_before"
			}
			s0 := b.Syncs()
			qb, _ := tm.median(t, 10, func(i int) error { return d.QBTo(&f, da, l, &sampling.Options{Seed: uint64(100 + i)}) })
			rec["qb_ms"+suf], rec["qb_syncs"+suf] = qb, float64(b.Syncs()-s0)/13
			if l > 10 {
				qb10, _ := tm.median(t, 5, func(i int) error {
					return d.QBTo(&f, da, l-10, &sampling.Options{Seed: uint64(100 + i), Oversample: 10})
				})
				rec["qb_p10_ms"+suf] = qb10
			}
		}
		b.noPad, b.noSymEig = false, false
		emit(rec)
		f.Free(b)
		d.Close()
	}
}

// TestQRVariants times the whole fast QR (no R) with each factorisation
// variant at the step's sketch shapes (behind -gpu.prof).
func TestQRVariants(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	for _, c := range []struct{ p, l int }{{4096, 128}, {4096, 256}, {11008, 256}, {4096, 512}} {
		y, err := b.NewMatrix(c.p, c.l, Float32)
		require.NoError(t, err)
		src, err := b.NewMatrix(c.p, c.l, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Normal(src, 1))
		cp, _ := tm.median(t, 10, func(int) error { return b.Copy(y, src) })
		for _, v := range []struct {
			name               string
			blk, batched, trsm bool
		}{{"dpotrf+trinv64", false, false, false}, {"dpotrf+dtrsm", false, false, true}, {"cholblk64+trinv64", true, false, false},
			{"cholblk64+dtrsm", true, false, true}, {"potrfBatched+trinv64", false, true, false}} {
			b.useBlk, b.potrfBatched, b.useTrsm = v.blk, v.batched, v.trsm
			require.NoError(t, b.Copy(y, src))
			if err := b.QR(y, nil); err != nil { // a variant the library refuses: recorded, not fatal
				emit(map[string]any{"qr_variant": v.name, "p": c.p, "l": c.l, "error": err.Error()})
				continue
			}
			med, lo := tm.median(t, 20, func(int) error {
				if err := b.Copy(y, src); err != nil {
					return err
				}
				return b.QR(y, nil)
			})
			var q mat.Dense
			require.NoError(t, b.Download(&q, y))
			emit(map[string]any{"qr_variant": v.name, "p": c.p, "l": c.l, "ms": med - cp, "ms_min": lo - cp, "orth": testmat.OrthError(&q)})
		}
		b.Free(y)
		b.Free(src)
	}
	b.useBlk, b.potrfBatched, b.useTrsm = false, false, false
}
