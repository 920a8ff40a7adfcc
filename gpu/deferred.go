package gpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

var _ lowrank.Deferrer = (*Backend)(nil)

// deferState is the host side of the deferred reads (lowrank.Deferrer):
// page-locked staging that a batch's asynchronous downloads write (a
// download into pageable memory would wait for the stream), and what
// Collect does with each. Grow-only: a steady-state batch allocates
// nothing.
type deferState struct {
	chunks   []pinned
	cur, off int // the next free byte: chunk cur, offset off
	recs     []deferRec
	order    []int // the QR records' positions' input indices, concatenated
}

// pinned is one chunk of page-locked host memory (cuMemAllocHost).
type pinned struct {
	p    unsafe.Pointer
	size int
}

// deferRec is one deferred download of n results at host: (Σ, max)
// pairs into sumSq and maxAbs, or, where failed is not nil, the status
// words of a batched QR of n matrices, whose positions' input indices are
// deferState.order[order:order+n].
type deferRec struct {
	host          unsafe.Pointer
	n             int
	sumSq, maxAbs []float64
	failed        []bool
	order         int
}

// pinnedChunk is the size of a chunk of staging: a batch of 64 QBs
// defers about 4 KiB.
const pinnedChunk = 64 << 10

// SketchBatchDeferred is GatherNormBatch (with seeds not nil
// GatherNormBatchSeeded) of omega, whose sumSq and maxAbs are written by
// the next Collect, then the sketches y[i] = op(a[i])·omega[i] by
// MulBatch: nothing waits for the stream. It implements
// lowrank.Deferrer. Where the batch's activations are bf16 and alike,
// their sampled rows stored rows, and the Ω consecutive column blocks (the
// sampling Decomposer's batch), gather_norm_rows writes Ω in bf16 into
// scratch instead — the sampled elements as stored, so exactly what the
// bf16 product would read from a float32 Ω after converting it — and
// omega is left as it was; otherwise omega holds the float32 Ω.
func (b *Backend) SketchBatchDeferred(y, omega, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error {
	if seeds != nil && len(seeds) != len(omega) {
		panic(fmt.Errorf("%w: SketchBatchDeferred of %d Ω and %d seeds", lowrank.ErrShape, len(omega), len(seeds)))
	}
	if len(y) != len(omega) {
		panic(fmt.Errorf("%w: SketchBatchDeferred of %d sketches and %d Ω", lowrank.ErrShape, len(y), len(omega)))
	}
	om := omega
	if b.sketch16(omega, a, trans, idx) {
		var err error
		if om, err = b.gather16(omega, a, trans, idx, seeds, sumSq, maxAbs); err != nil {
			return err
		}
	} else if err := b.gatherNormBatch(omega, a, trans, idx, seeds, sumSq, maxAbs, true); err != nil {
		return err
	}
	return b.MulBatch(y, 1, a, trans, om, false, 0)
}

// sketch16 reports whether SketchBatchDeferred gathers the Ω of a batch in
// bf16 (see there). Shape and index errors panic as in Gather.
func (b *Backend) sketch16(omega, a []lowrank.Matrix, trans bool, idx [][]int) bool {
	n := len(omega)
	if len(a) != n || len(idx) != n {
		panic(fmt.Errorf("%w: SketchBatchDeferred of %d, %d and %d", lowrank.ErrShape, n, len(a), len(idx)))
	}
	for i := range omega {
		b.checkGather(omega[i], a[i], trans, idx[i])
	}
	if n < 2 || b.noFuse {
		return false
	}
	oms, ams := b.batchMats(0, omega), b.batchMats(1, a)
	l := len(idx[0])
	if l == 0 || !consecutive(oms, oms[0].ld, l) {
		return false
	}
	for i, am := range ams {
		if am.dtype != BFloat16 || trans != am.trans || len(idx[i]) != l || !gatherAlike(am, ams[0]) || !b.fusable(am, trans, idx[i]) {
			return false
		}
	}
	return true
}

// gather16 is SketchBatchDeferred's read for a batch that sketch16
// accepts: Ω in bf16, consecutive column blocks of the scratch slot
// omega16 shaped as omega, returned for the product.
func (b *Backend) gather16(omega, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) ([]lowrank.Matrix, error) {
	n, l := len(omega), len(idx[0])
	rows, _ := omega[0].Dims()
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.leave()
	p, err := b.buf(&b.sc.omega16, 2*rows*l*n)
	if err != nil {
		return nil, err
	}
	all := &Matrix{ptr: p, rows: rows, cols: l * n, ld: rows, dtype: BFloat16}
	st := &b.batch
	st.o16 = st.o16[:0]
	st.fused = st.fused[:0]
	for i := range n {
		st.o16 = append(st.o16, b.Slice(all, 0, rows, i*l, (i+1)*l))
		st.fused = append(st.fused, true)
	}
	ok, err := b.gatherNormUniform(st.o16, a, trans, idx, seeds, sumSq, maxAbs, true)
	if err == nil && !ok {
		panic("gpu: gather16 of a batch gatherNormUniform does not take")
	}
	return st.o16, err
}

// SquaredNormBatchDeferred is SquaredNormBatch whose sumSq and maxAbs are
// written by the next Collect. It implements lowrank.Deferrer.
func (b *Backend) SquaredNormBatchDeferred(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	return b.squaredNormBatch(m, scale, sumSq, maxAbs, true)
}

// QRBatchDeferred is QRBatch without its read of the status words: where
// QRBatch's batched fast path runs (2 ≤ ℓ ≤ 1024, more than one matrix,
// the default options), each matrix gets its result only where its fast
// path succeeded (kernel copy_ok) and keeps its input otherwise, and
// Collect sets failed[i] for those; the caller orthogonalises them by QR,
// as QRBatch would have. Elsewhere it is QRBatch, with its
// synchronisations, and failed stays false. It implements
// lowrank.Deferrer.
func (b *Backend) QRBatchDeferred(as []lowrank.Matrix, failed []bool) error {
	if len(failed) != len(as) {
		panic(fmt.Errorf("%w: QRBatchDeferred of %d matrices and %d flags", lowrank.ErrShape, len(as), len(failed)))
	}
	clear(failed)
	return b.qrBatch(as, failed)
}

// Collect waits for the stream once and writes the results of the
// deferred calls made since the last Collect. It implements
// lowrank.Deferrer. Without deferred calls it does nothing.
func (b *Backend) Collect() error {
	d := &b.def
	var err error
	if len(d.recs) > 0 {
		if err = b.Synchronize(); err == nil {
			for _, r := range d.recs {
				b.apply(r)
			}
		}
	}
	clear(d.recs) // drop the references to the caller's slices
	d.recs, d.order, d.cur, d.off = d.recs[:0], d.order[:0], 0, 0
	return err
}

// apply writes the results of one deferred download.
func (b *Backend) apply(r deferRec) {
	if r.failed == nil {
		v := unsafe.Slice((*uint64)(r.host), 2*r.n)
		for i := range r.n {
			r.sumSq[i], r.maxAbs[i] = math.Float64frombits(v[2*i]), math.Float64frombits(v[2*i+1])
		}
		return
	}
	st := unsafe.Slice((*int32)(r.host), (stSlots+1)*r.n)
	b.lastDev = 0
	for j, i := range b.def.order[r.order : r.order+r.n] {
		r.failed[i] = !fastOK(st, j, r.n)
		b.lastDev = max(b.lastDev, math.Sqrt(devOf(st[j*stSlots+stFroNS1])))
	}
}

// fastOK reports whether matrix j of a batched QR of n took the fast
// path, by its status words st (n·stSlots words, then n devInfo): no
// breakdown, no NaN, and ‖QᵀQ − I‖_F ≤ 0.02 after the first polynomial
// step. Kernel copy_ok makes the same test on the device.
func fastOK(st []int32, j, n int) bool {
	w := st[j*stSlots : (j+1)*stSlots]
	return w[stFlags] == 0 && st[stSlots*n+j] == 0 && math.Sqrt(devOf(w[stFroNS1])) <= 0.02
}

// readPairs writes n (Σ, max) pairs at the device address out into sumSq
// and maxAbs: at once, waiting for the stream, or, deferred, at Collect.
func (b *Backend) readPairs(out uintptr, n int, sumSq, maxAbs []float64, deferred bool) error {
	if !deferred {
		if err := b.downloadPairs(out, n); err != nil {
			return err
		}
		b.results(sumSq, maxAbs)
		return nil
	}
	h, err := b.deferRead(out, 16*n)
	if err != nil {
		return err
	}
	b.def.recs = append(b.def.recs, deferRec{host: h, n: n, sumSq: sumSq, maxAbs: maxAbs})
	return nil
}

// deferRead queues the download of n bytes at src into staging and
// returns where they will be after the next synchronisation.
func (b *Backend) deferRead(src uintptr, n int) (unsafe.Pointer, error) {
	h, err := b.stage(n)
	if err != nil {
		return nil, err
	}
	if err := b.api.check(b.api.cuMemcpyDtoHAsync(h, src, uintptr(n), b.stream), "cuMemcpyDtoHAsync_v2"); err != nil {
		return nil, err
	}
	b.device.toHost.Add(int64(n))
	return h, nil
}

// stage returns n bytes of page-locked staging, 8-byte aligned, for a
// download that Collect reads: from the chunks already held, else from a
// new one.
func (b *Backend) stage(n int) (unsafe.Pointer, error) {
	d := &b.def
	n = (n + 7) &^ 7
	for d.cur < len(d.chunks) && d.off+n > d.chunks[d.cur].size {
		d.cur, d.off = d.cur+1, 0
	}
	if d.cur == len(d.chunks) {
		size := max(pinnedChunk, n)
		var p unsafe.Pointer
		if err := b.api.check(b.api.cuMemAllocHost(&p, uintptr(size)), "cuMemAllocHost_v2"); err != nil {
			return nil, err
		}
		d.chunks = append(d.chunks, pinned{p, size})
	}
	h := unsafe.Add(d.chunks[d.cur].p, d.off)
	d.off += n
	return h, nil
}

// freeStaging returns the staging to the driver (Close).
func (b *Backend) freeStaging() error {
	var first error
	for _, c := range b.def.chunks {
		if err := b.api.check(b.api.cuMemFreeHost(c.p), "cuMemFreeHost"); err != nil && first == nil {
			first = err
		}
	}
	b.def = deferState{}
	return first
}
