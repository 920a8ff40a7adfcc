package gpu

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// traced wraps a Backend and records, for every operation the algorithms
// call, a CUDA event before and after it and the host time it took, to
// show where a compression spends its time (TestTrace, behind -gpu.prof).
type traced struct {
	*Backend
	t    *testing.T
	recs []traceRec
	// ahead, if set, is queued before each operation's first event, as
	// timer.ahead: the events then see the operation's GPU time without
	// the host's launch latency.
	ahead func() error
	// start is the event before the operation being recorded.
	start uintptr
}

type traceRec struct {
	name       string
	before     uintptr
	after      uintptr
	hostMicros float64
}

func (tr *traced) rec(name string, f func() error) error {
	if tr.ahead != nil {
		require.NoError(tr.t, tr.ahead())
	}
	e0 := tr.mark()
	tr.start = e0
	t0 := time.Now()
	err := f()
	h := time.Since(t0)
	e1 := tr.mark()
	tr.recs = append(tr.recs, traceRec{name, e0, e1, float64(h.Nanoseconds()) / 1e3})
	return err
}

// mark returns a new timing event recorded on the backend's stream.
func (tr *traced) mark() uintptr {
	b := tr.Backend
	var e uintptr
	require.NoError(tr.t, b.enter())
	defer b.leave()
	require.NoError(tr.t, b.api.check(b.api.cuEventCreate(&e, 0), "cuEventCreate"))
	require.NoError(tr.t, b.api.check(b.api.cuEventRecord(e, b.stream), "cuEventRecord"))
	return e
}

func (tr *traced) Mul(c lowrank.Matrix, alpha float64, a lowrank.Matrix, ta bool, bm lowrank.Matrix, tb bool, beta float64) error {
	r, cc := c.Dims()
	return tr.rec(fmt.Sprintf("Mul %dx%d", r, cc), func() error { return tr.Backend.Mul(c, alpha, a, ta, bm, tb, beta) })
}
func (tr *traced) QR(a, r lowrank.Matrix) error {
	return tr.rec("QR", func() error { return tr.Backend.QR(a, r) })
}
func (tr *traced) Gather(dst, a lowrank.Matrix, t bool, idx []int) error {
	return tr.rec("Gather", func() error { return tr.Backend.Gather(dst, a, t, idx) })
}
func (tr *traced) SquaredNorm(m lowrank.Matrix, scale float64) (v, mx float64, err error) {
	r, c := m.Dims()
	err = tr.rec(fmt.Sprintf("SquaredNorm %dx%d", r, c), func() error { v, mx, err = tr.Backend.SquaredNorm(m, scale); return err })
	return v, mx, err
}
func (tr *traced) GatherNorm(dst, a lowrank.Matrix, t bool, idx []int) (v, mx float64, err error) {
	err = tr.rec("GatherNorm", func() error { v, mx, err = tr.Backend.GatherNorm(dst, a, t, idx); return err })
	return v, mx, err
}
func (tr *traced) SVD(u lowrank.Matrix, s []float64, v lowrank.Matrix, a lowrank.Matrix) error {
	return tr.rec("SVD", func() error { return tr.Backend.SVD(u, s, v, a) })
}
func (tr *traced) SymEig(w lowrank.Matrix, lam []float64, g lowrank.Matrix) error {
	return tr.rec("SymEig", func() error { return tr.Backend.SymEig(w, lam, g) })
}
func (tr *traced) Copy(dst, src lowrank.Matrix) error {
	return tr.rec("Copy", func() error { return tr.Backend.Copy(dst, src) })
}

func (tr *traced) GatherNormBatch(dst, a []lowrank.Matrix, t bool, idx [][]int, sumSq, maxAbs []float64) error {
	return tr.rec(fmt.Sprintf("GatherNormBatch of %d", len(a)), func() error {
		return tr.Backend.GatherNormBatch(dst, a, t, idx, sumSq, maxAbs)
	})
}
func (tr *traced) SquaredNormBatch(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	return tr.rec(fmt.Sprintf("SquaredNormBatch of %d", len(m)), func() error {
		return tr.Backend.SquaredNormBatch(m, scale, sumSq, maxAbs)
	})
}
func (tr *traced) MulBatch(c []lowrank.Matrix, alpha float64, a []lowrank.Matrix, ta bool, bm []lowrank.Matrix, tb bool, beta float64) error {
	return tr.rec(fmt.Sprintf("MulBatch of %d", len(c)), func() error { return tr.Backend.MulBatch(c, alpha, a, ta, bm, tb, beta) })
}
func (tr *traced) CopyBatch(dst, src []lowrank.Matrix) error {
	return tr.rec(fmt.Sprintf("CopyBatch of %d", len(dst)), func() error { return tr.Backend.CopyBatch(dst, src) })
}

// QRBatch records the batched QR and, after it, each of its pieces
// (onPiece) from the end of the previous one.
func (tr *traced) QRBatch(as []lowrank.Matrix) error {
	return tr.qrBatch(fmt.Sprintf("QRBatch of %d", len(as)), func() error { return tr.Backend.QRBatch(as) })
}

func (tr *traced) qrBatch(name string, f func() error) error {
	b := tr.Backend
	var pieces []traceRec
	var prev uintptr
	b.onPiece = func(name string) {
		e := tr.mark()
		pieces = append(pieces, traceRec{name: "  QRBatch: " + name, before: prev, after: e})
		prev = e
	}
	defer func() { b.onPiece = nil }()
	err := tr.rec(name, func() error {
		prev = tr.start
		return f()
	})
	tr.recs = append(tr.recs, pieces...)
	return err
}

func (tr *traced) SketchBatchDeferred(y, omega, a []lowrank.Matrix, t bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error {
	return tr.rec(fmt.Sprintf("SketchBatchDeferred of %d", len(a)), func() error {
		return tr.Backend.SketchBatchDeferred(y, omega, a, t, idx, seeds, sumSq, maxAbs)
	})
}
func (tr *traced) SquaredNormBatchDeferred(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	return tr.rec(fmt.Sprintf("SquaredNormBatchDeferred of %d", len(m)), func() error {
		return tr.Backend.SquaredNormBatchDeferred(m, scale, sumSq, maxAbs)
	})
}
func (tr *traced) Collect() error { return tr.rec("Collect", tr.Backend.Collect) }

// QRBatchDeferred is QRBatch's record for the deferred form.
func (tr *traced) QRBatchDeferred(as []lowrank.Matrix, failed []bool) error {
	return tr.qrBatch(fmt.Sprintf("QRBatchDeferred of %d", len(as)), func() error { return tr.Backend.QRBatchDeferred(as, failed) })
}

// report prints each operation's GPU start (relative to the first),
// GPU span and host time.
func (tr *traced) report(label string) {
	b := tr.Backend
	require.NoError(tr.t, b.Synchronize())
	require.NoError(tr.t, b.enter())
	defer b.leave()
	first := tr.recs[0].before
	for _, r := range tr.recs {
		var s, d float32
		require.NoError(tr.t, b.api.check(b.api.cuEventElapsedTime(&s, first, r.before), "cuEventElapsedTime"))
		require.NoError(tr.t, b.api.check(b.api.cuEventElapsedTime(&d, r.before, r.after), "cuEventElapsedTime"))
		emit(map[string]any{"trace": label, "op": r.name, "gpu_start_us": s * 1e3, "gpu_us": d * 1e3, "host_us": r.hostMicros})
	}
	last := tr.recs[len(tr.recs)-1].after
	var tot float32
	require.NoError(tr.t, b.api.check(b.api.cuEventElapsedTime(&tot, first, last), "cuEventElapsedTime"))
	emit(map[string]any{"trace": label, "total_us": tot * 1e3})
	tr.recs = tr.recs[:0]
}

// openTraced skips without -gpu.prof, and otherwise returns the backend,
// its tracing wrapper and the long product that keeps the host ahead.
func openTraced(t *testing.T) (*Backend, *traced, func() error) {
	t.Helper()
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	return b, &traced{Backend: b, t: t}, aheadDelay(t, b)
}

func TestTrace(t *testing.T) {
	b, tr, delay := openTraced(t)
	for _, c := range []struct {
		m, n, k, p int
		dt         DType
	}{{8192, 4096, 128, 0, Float32}, {8192, 4096, 128, 0, BFloat16}, {32768, 4096, 256, 0, BFloat16},
		{16384, 4096, 256, 0, BFloat16}, {16384, 11008, 256, 0, BFloat16}, // the step benchmark's inputs at L = 16384
		// Widths off a multiple of 32, and oversampling (docs/gpu.md, "The ℓ sweep").
		{16384, 4096, 255, 0, BFloat16}, {16384, 4096, 257, 0, BFloat16}, {8192, 4096, 128, 10, Float32}} {
		da := traceInput(t, b, c.m, c.n, c.dt)
		// The fused first read and the two-read path it replaced
		// (Gather, SquaredNorm), in the same run; then the fused read
		// again with every operation queued behind a long product
		// ("ahead"): the GPU's own time of each piece.
		for run := range 3 {
			noFuse := run == 1
			b.noFuse = noFuse
			if run == 2 {
				tr.ahead = delay
			}
			d := sampling.NewDecomposer(tr)
			var f lowrank.Factors
			for i := 0; i < 3; i++ {
				require.NoError(t, d.QBTo(&f, da, c.k, &sampling.Options{Seed: uint64(i), Oversample: c.p}))
			}
			require.NoError(t, b.Synchronize())
			tr.recs = tr.recs[:0]
			s0 := b.Syncs()
			require.NoError(t, d.QBTo(&f, da, c.k, &sampling.Options{Seed: 9, Oversample: c.p}))
			syncs := b.Syncs() - s0
			label := fmt.Sprintf("rows %dx%d k=%d p=%d %v fused=%v", c.m, c.n, c.k, c.p, c.dt, !noFuse)
			if run == 2 {
				label += " ahead"
				tr.ahead = nil
			}
			tr.report(label)
			emit(map[string]any{"trace": label, "syncs": syncs})
			f.Free(b)
			d.Close()
		}
		b.noFuse = false
		b.Free(da)
	}
}

// TestTraceBatch traces the step benchmark's four inputs at L = 16384
// (three 16384×4096 and one 16384×11008, bf16, row-major) compressed by
// one QBBatchTo at k = 256, and the GPU demo's checkpointed and per-op
// batches: each batched operation and each piece of the batched QR, as called and
// queued behind a long product (ahead). Behind -gpu.prof.
func TestTraceBatch(t *testing.T) {
	b, tr, delay := openTraced(t)
	// A Llama layer's four inputs at L = 16384 (the step benchmark), and
	// the GPU demo's checkpointed batch: four 12544×384 block inputs
	// (batch 256 of 49 tokens, d = 384) at k = 115, the earlier
	// sessions' case (the demo's rank ratio 0.3 gives ⌈0.3·384⌉ = 116;
	// both are off a multiple of 8 and padded alike);
	// and its per-op group of three GELU inputs (MLP width 1536) at the
	// per-op ratio 0.15, k = ⌈0.15·1536⌉ = 231.
	traceBatch(t, b, tr, delay, 16384, []int{4096, 4096, 4096, 11008}, 256)
	traceBatch(t, b, tr, delay, 12544, []int{384, 384, 384, 384}, 115)
	traceBatch(t, b, tr, delay, 12544, []int{1536, 1536, 1536}, 231)
	// The two demo batches again with the products unpadded (noPad, as
	// before mulUniform padded the B product): before and after in one
	// run on one card.
	b.noPad = true
	defer func() { b.noPad = false }()
	traceBatch(t, b, tr, delay, 12544, []int{384, 384, 384, 384}, 115)
	traceBatch(t, b, tr, delay, 12544, []int{1536, 1536, 1536}, 231)
}

// traceBatch traces one QBBatchTo of L×ds[i] bf16 inputs at rank k, as
// called and with the host ahead, then times it back to back.
func traceBatch(t *testing.T, b *Backend, tr *traced, delay func() error, L int, ds []int, k int) {
	var as []lowrank.Matrix
	for _, d := range ds {
		as = append(as, traceInput(t, b, L, d, BFloat16))
	}
	fs := make([]lowrank.Factors, len(as))
	dst := make([]*lowrank.Factors, len(as))
	opts := make([]*sampling.Options, len(as))
	for i := range fs {
		dst[i] = &fs[i]
	}
	d := sampling.NewDecomposer(tr)
	defer d.Close()
	// Runs: as called, and ahead.
	for run := range 2 {
		for rep := range 4 {
			for i := range opts {
				opts[i] = &sampling.Options{Seed: uint64(10*rep + i)}
			}
			if rep == 3 {
				require.NoError(t, b.Synchronize())
				tr.recs = tr.recs[:0]
				if run == 1 {
					tr.ahead = delay
				}
			}
			s0 := b.Syncs()
			require.NoError(t, d.QBBatchTo(dst, as, k, opts))
			if rep == 3 {
				syncs := b.Syncs() - s0
				tr.ahead = nil
				label := fmt.Sprintf("batch of %d: %d×%v k=%d bf16%s", len(as), L, ds, k, unpadded(b))
				if run == 1 {
					label += " ahead"
				}
				tr.report(label)
				emit(map[string]any{"trace": label, "syncs": syncs})
			}
		}
	}
	// Back to back without the trace, as the step calls it: the wall
	// time per batch (run with -test.cpuprofile for the host's share).
	plain := sampling.NewDecomposer(b)
	defer plain.Close()
	const reps = 100
	require.NoError(t, plain.QBBatchTo(dst, as, k, opts))
	require.NoError(t, b.Synchronize())
	t0 := time.Now()
	for range reps {
		require.NoError(t, plain.QBBatchTo(dst, as, k, opts))
	}
	require.NoError(t, b.Synchronize())
	emit(map[string]any{"trace": fmt.Sprintf("batch of %d: %d×%v k=%d bf16%s, back to back", len(as), L, ds, k, unpadded(b)), "reps": reps,
		"wall_ms_per_batch": float64(time.Since(t0).Microseconds()) / 1e3 / reps})
	for i := range fs {
		fs[i].Free(b)
		b.Free(as[i].(*Matrix))
	}
}

// unpadded labels a trace run with the products' padding off.
func unpadded(b *Backend) string {
	if b.noPad {
		return " unpadded"
	}
	return ""
}

// traceInput returns an m×n row-major activation of type dt: the
// activation-like test matrix up to 8192 rows and no more columns than
// rows, a Gaussian one made on the device otherwise (the host generator
// takes minutes there; the times of the pieces do not depend on the
// spectrum).
func traceInput(t *testing.T, b *Backend, m, n int, dt DType) *Matrix {
	if m <= 8192 && n <= m {
		da, err := b.UploadDense32(testmat.To32(testmat.Incoherent(m, n, testmat.ActivationLike(n), 1)), dt)
		require.NoError(t, err)
		return da
	}
	g, err := b.NewMatrix(n, m, Float32)
	require.NoError(t, err)
	defer b.Free(g)
	require.NoError(t, b.Normal(g, 1))
	st, err := b.NewMatrix(n, m, dt)
	require.NoError(t, err)
	require.NoError(t, b.Copy(st, g))
	return st.T()
}
