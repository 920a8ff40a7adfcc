package sampling

import (
	"fmt"
	"slices"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// batch is the Decomposer's reused state of QBBatchTo.
type batch struct {
	errs   []error
	single []int // items decomposed one by one
	// The batched items: index, problem, sampled rows, Ω and Y views.
	at     []int
	prs    []skeleton.Problem
	idx    [][]int
	flat   []int // the sampled rows of all batched items, at off
	off    []int
	omega  []lowrank.Matrix
	y      []lowrank.Matrix
	a      []lowrank.Matrix
	dst    []*lowrank.Factors
	sq, mx []float64
	errsAt []error
	// deferredQB's: each item's fast-QR failure, ‖B‖² and max|B| of the
	// items QueuePlainQBs did (sqB), every position, and each position's
	// place in sqB (−1: not done).
	failed    []bool
	sqB       []float64
	pos, slot []int
	// The batched items' seeds, when every one of them was drawn (no
	// Options.Indices): a lowrank.SeededBatcher then draws on its own.
	seeds []uint64
	drawn bool
	// byShape's second lists and marks.
	sat, soff []int
	sprs      []skeleton.Problem
	done      []bool
}

// QBBatchTo computes QBTo(dst[i], a[i], k, opts[i]) for every i (opts nil,
// or a nil entry, is the zero Options) with the same draws and, on a
// backend without lowrank.Batcher, the same results bit for bit. On a
// backend with it (the GPU's) the items drawn by the uniform sampler with
// one orientation (op(A) = A or Aᵀ), sketch width ℓ and number of
// PowerIters are decomposed together, whatever their shapes (the four
// distinct inputs of a transformer layer: three L×4096, one L×11008): one
// fused first read and input check for all of them, their sketches as
// consecutive column blocks of one scratch matrix (grouped by shape), one
// batched QR, and one read of the ‖B‖² of those whose QB needs no
// truncation (ℓ = k, no Tolerance or Spectrum) — three host
// synchronisations for the batch where QBTo makes three per matrix. On a
// lowrank.Deferrer (the GPU backend) a batch without PowerIters whose
// items all need no truncation makes one: its reads are deferred to one
// Collect, on the speculation that every input passes its check and
// every fast QR succeeds, and the items for which either fails are then
// mended as the synchronous batch would (deferredQB).
// An item of the other orientation joins the batch through a view of its
// transpose on a lowrank.Transposer (the GPU backend: an L×4096 and an
// L×11008 input with 4096 < L ≤ 11008, oriented differently by
// OrientAuto, are then one batch), with the factors, draw and errors QBTo
// would give it. Items of other options, of the other
// orientation on a backend without views, and inputs of extreme magnitude
// (which QBTo scales) are decomposed by QBTo after the batch. On a
// lowrank.SeededBatcher whose items were all drawn (no Options.Indices),
// the backend is given their seeds beside the indices and draws the same
// indices itself (the GPU: none of them copied to the device).
//
// The result is nil, or a *lowrank.BatchError whose Errs[i] is item i's
// error as QBTo would return it (dst[i] then holds no valid result, except
// beside lowrank.ErrTolerance). Every dst[i] must be non-nil, as for
// QBTo. It panics with lowrank.ErrShape if dst, a and a non-nil opts
// differ in length.
func (d *Decomposer) QBBatchTo(dst []*lowrank.Factors, a []lowrank.Matrix, k int, opts []*Options) error {
	n := len(a)
	if len(dst) != n || (opts != nil && len(opts) != n) {
		panic(fmt.Errorf("%w: QBBatchTo of %d destinations, %d inputs and %d options", lowrank.ErrShape, len(dst), n, len(opts)))
	}
	var zero Options
	opt := func(i int) *Options {
		if opts == nil || opts[i] == nil {
			return &zero
		}
		return opts[i]
	}
	bt := &d.bt
	bt.errs = grow(bt.errs, n)
	bt.single, bt.at, bt.prs, bt.idx, bt.flat, bt.off = bt.single[:0], bt.at[:0], bt.prs[:0], bt.idx[:0], bt.flat[:0], bt.off[:0]
	lead := -1 // the first batched item: the others must match it
	for i := range a {
		o := opt(i)
		if o.check() != nil || o.Sampler != Uniform || a[i] == nil {
			bt.single = append(bt.single, i)
			continue
		}
		pr, err := skeleton.Shape(a[i], k, params(o), o.Orientation)
		if err != nil {
			bt.errs[i] = err
			continue
		}
		idx, err := d.rows(&pr, o)
		if err == nil && lead >= 0 && pr.Trans != bt.prs[0].Trans {
			// The other orientation: through its transpose's view, where
			// the backend has one, the same op(A) in the batch's.
			if tr, ok := d.be.(lowrank.Transposer); ok {
				if at, ok := tr.Transpose(a[i]); ok {
					pr = pr.FlipTo(at)
				}
			}
		}
		if err != nil || (lead >= 0 && !sameBatch(bt.prs[0], pr, opt(lead), o)) {
			bt.single = append(bt.single, i) // QBTo reports an Indices error after the input's
			continue
		}
		if lead < 0 {
			lead = i
		}
		bt.at = append(bt.at, i)
		bt.prs = append(bt.prs, pr)
		bt.off = append(bt.off, len(bt.flat))
		bt.flat = append(bt.flat, idx...)
	}
	bt.byShape()
	bt.seeds, bt.drawn = bt.seeds[:0], true
	for j, i := range bt.at {
		bt.idx = append(bt.idx, bt.flat[bt.off[j]:bt.off[j]+bt.prs[j].L])
		o := opt(i)
		bt.seeds = append(bt.seeds, o.Seed)
		bt.drawn = bt.drawn && o.Indices == nil
	}
	if len(bt.at) == 1 {
		bt.single = append(bt.single, bt.at[0])
		bt.at = bt.at[:0]
	}
	if len(bt.at) > 0 {
		d.batchQB(dst, opt(lead).PowerIters)
	}
	for _, i := range bt.single {
		bt.errs[i] = d.QBTo(dst[i], a[i], k, opt(i))
	}
	for _, err := range bt.errs {
		if err != nil {
			return &lowrank.BatchError{Errs: append([]error(nil), bt.errs...)}
		}
	}
	return nil
}

// grow returns s resized to n zero elements, reusing its storage.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// params returns the skeleton's parameters of o.
func params(o *Options) skeleton.Params {
	return skeleton.Params{Oversample: o.Oversample, PowerIters: o.PowerIters, Tolerance: o.Tolerance,
		Spectrum: o.Spectrum, Err: o.check()}
}

// sameBatch reports whether a problem can join a batch led by another:
// one orientation, rank, sketch width and number of power iterations.
func sameBatch(lead, pr skeleton.Problem, lo, o *Options) bool {
	return lead.Trans == pr.Trans && lead.K == pr.K && lead.L == pr.L && lo.PowerIters == o.PowerIters
}

// byShape orders the batched items (at, prs, off) so that those of one
// shape are adjacent, shapes in order of first appearance and items of a
// shape in their order: each shape's sketches are then consecutive column
// blocks, which the backend's batched calls read as one.
func (bt *batch) byShape() {
	n := len(bt.at)
	sorted := true
	for j := 1; j < n && sorted; j++ {
		sorted = sameShape(bt.prs[j], bt.prs[j-1])
	}
	if sorted {
		return // one shape: the common case
	}
	at, prs, off := bt.sat[:0], bt.sprs[:0], bt.soff[:0]
	done := grow(bt.done, n)
	for j := range n {
		if done[j] {
			continue
		}
		for i := j; i < n; i++ {
			if !done[i] && sameShape(bt.prs[i], bt.prs[j]) {
				done[i] = true
				at, prs, off = append(at, bt.at[i]), append(prs, bt.prs[i]), append(off, bt.off[i])
			}
		}
	}
	// Swap the storage: the sorted lists become the batch's.
	bt.at, bt.sat = at, bt.at
	bt.prs, bt.sprs = prs, bt.prs
	bt.off, bt.soff = off, bt.off
	bt.done = done
}

// sameShape reports whether two problems have one shape.
func sameShape(a, b skeleton.Problem) bool { return a.M == b.M && a.N == b.N }

// batchQB decomposes the items d.bt.at together (see QBBatchTo).
func (d *Decomposer) batchQB(dst []*lowrank.Factors, powerIters int) {
	bt, be := &d.bt, d.be
	batcher := skeleton.Batch(be)
	m := len(bt.at)
	l, trans := bt.prs[0].L, bt.prs[0].Trans
	p, s := 0, 0 // the tallest sketch and Ω
	for _, pr := range bt.prs {
		p, s = max(p, pr.P), max(s, pr.S)
	}
	fail := func(err error) {
		for _, i := range bt.at {
			bt.errs[i] = err
		}
	}
	omegaAll, err := d.sc.Omega.Get(be, s, l*m)
	if err != nil {
		fail(err)
		return
	}
	yAll, err := d.sc.Y.Get(be, p, l*m)
	if err != nil {
		fail(err)
		return
	}
	bt.omega, bt.y, bt.a = bt.omega[:0], bt.y[:0], bt.a[:0]
	for j := range bt.at {
		bt.omega = append(bt.omega, be.Slice(omegaAll, 0, bt.prs[j].S, j*l, (j+1)*l))
		bt.y = append(bt.y, be.Slice(yAll, 0, bt.prs[j].P, j*l, (j+1)*l))
		bt.a = append(bt.a, bt.prs[j].A) // a[i], or the view of its transpose
	}
	bt.sq, bt.mx = grow(bt.sq, m), grow(bt.mx, m)
	if dfr, ok := batcher.(lowrank.Deferrer); ok && powerIters == 0 && plainShapes(bt.prs, l) {
		d.deferredQB(dst, dfr, trans)
		return
	}
	if sb, ok := batcher.(lowrank.SeededBatcher); ok && bt.drawn {
		err = sb.GatherNormBatchSeeded(bt.omega, bt.a, trans, bt.idx, bt.seeds, bt.sq, bt.mx)
	} else {
		err = batcher.GatherNormBatch(bt.omega, bt.a, trans, bt.idx, bt.sq, bt.mx)
	}
	if err != nil {
		fail(err)
		return
	}
	// The input checks; an input that needs scaling leaves the batch for
	// QBTo, which scales it.
	keep := 0
	for j, i := range bt.at {
		pr := bt.prs[j]
		if err := skeleton.Accept(&d.sc, be, &pr, bt.sq[j], bt.mx[j]); err != nil {
			if pr.Flipped {
				// Its error names an element of the transpose: QBTo
				// reports the caller's (row, column).
				bt.single = append(bt.single, i)
				continue
			}
			bt.errs[i] = err
			continue
		}
		if pr.Scale != 1 || pr.Copied != 1 {
			bt.single = append(bt.single, i)
			continue
		}
		bt.at[keep], bt.prs[keep], bt.idx[keep] = i, pr, bt.idx[j]
		bt.omega[keep], bt.y[keep], bt.a[keep] = bt.omega[j], bt.y[j], bt.a[j]
		keep++
	}
	bt.at, bt.prs, bt.idx = bt.at[:keep], bt.prs[:keep], bt.idx[:keep]
	bt.omega, bt.y, bt.a = bt.omega[:keep], bt.y[:keep], bt.a[:keep]
	if keep == 0 {
		return
	}
	// The products of skeleton.MulScaled, unscaled (Scale is 1 here).
	mul := func(dst, src []lowrank.Matrix, t bool) error {
		return batcher.MulBatch(dst, 1, bt.a, trans != t, src, false, 0)
	}
	if err := mul(bt.y, bt.omega, false); err != nil {
		fail(err)
		return
	}
	for range powerIters {
		// Ω ← op(A)ᵀ·Q, Y ← op(A)·Ω.
		if err := skeleton.SketchQRBatch(be, bt.prs, bt.y); err != nil {
			fail(err)
			return
		}
		if err := mul(bt.omega, bt.y, true); err != nil {
			fail(err)
			return
		}
		if err := mul(bt.y, bt.omega, false); err != nil {
			fail(err)
			return
		}
	}
	if err := skeleton.SketchQRBatch(be, bt.prs, bt.y); err != nil {
		fail(err)
		return
	}
	bt.dst = bt.dst[:0]
	for _, i := range bt.at {
		bt.dst = append(bt.dst, dst[i])
	}
	bt.errsAt = grow(bt.errsAt, keep)
	skeleton.FinishQBBatch(&d.sc, be, bt.dst, bt.prs, bt.y, bt.errsAt)
	last := -1 // the draw of the last item (by index) that succeeded
	for j, i := range bt.at {
		bt.errs[i] = bt.errsAt[j]
		if bt.errsAt[j] == nil && (last < 0 || i > bt.at[last]) {
			last = j
		}
	}
	if last >= 0 {
		d.draw.Trans = bt.prs[last].FactorTrans()
		d.draw.Indices = append(d.draw.Indices[:0], bt.idx[last]...)
	}
}

// plainShapes reports whether every problem of prs, with sketches of
// width l, has skeleton.Plain's shape.
func plainShapes(prs []skeleton.Problem, l int) bool {
	for _, pr := range prs {
		if !skeleton.PlainShape(pr, l) {
			return false
		}
	}
	return true
}

// deferredQB is batchQB on a lowrank.Deferrer, for a batch without power
// iterations whose items all have skeleton.Plain's shape. The whole QB is
// queued on the speculation that every input passes its check at scale 1
// and that every fast QR succeeds — the fused read and the sketches
// (SketchBatchDeferred: Ω is not read after them), the batched QR, Q, B
// and ‖B‖² — and its results are read by one Collect:
// one host synchronisation for the batch instead of three. Then each
// item is checked as batchQB checks it: an input that fails its check
// gets QBTo's error, one that needs scaling goes to QBTo, and one whose
// fast QR failed (its sketch left as it was) is orthogonalised by QR
// alone and finished anew, as batchQB's QRBatch would have done: the
// factors are batchQB's.
func (d *Decomposer) deferredQB(dst []*lowrank.Factors, dfr lowrank.Deferrer, trans bool) {
	bt, be := &d.bt, d.be
	m := len(bt.at)
	var seeds []uint64
	if _, ok := dfr.(lowrank.SeededBatcher); ok && bt.drawn {
		seeds = bt.seeds
	}
	bt.failed, bt.sqB, bt.errsAt = grow(bt.failed, m), grow(bt.sqB, 2*m), grow(bt.errsAt, m)
	bt.pos, bt.slot = grow(bt.pos, m), grow(bt.slot, m)
	bt.dst = bt.dst[:0]
	for j, i := range bt.at {
		bt.dst = append(bt.dst, dst[i])
		bt.pos[j], bt.slot[j] = j, -1
	}
	err := dfr.SketchBatchDeferred(bt.y, bt.omega, bt.a, trans, bt.idx, seeds, bt.sq, bt.mx)
	if err == nil {
		err = dfr.QRBatchDeferred(bt.y, bt.failed)
	}
	var done []int
	if err == nil {
		done, err = skeleton.QueuePlainQBs(be, bt.dst, bt.prs, bt.y, bt.pos, bt.errsAt, bt.sqB, dfr)
	}
	if e := dfr.Collect(); err == nil {
		err = e
	}
	if err != nil {
		for _, i := range bt.at {
			bt.errs[i] = err
		}
		return
	}
	for k, j := range done {
		bt.slot[j] = k
	}
	// The checks, in batchQB's order: the input's, then the QR's.
	redo := bt.pos[:0] // the positions to orthogonalise anew (bt.pos is spent)
	for j, i := range bt.at {
		pr := bt.prs[j]
		if err := skeleton.Accept(&d.sc, be, &pr, bt.sq[j], bt.mx[j]); err != nil {
			if pr.Flipped {
				bt.single = append(bt.single, i) // QBTo names the caller's (row, column)
				continue
			}
			bt.errs[i] = err
			continue
		}
		bt.prs[j] = pr
		switch {
		case pr.Scale != 1 || pr.Copied != 1:
			bt.single = append(bt.single, i)
		case bt.errsAt[j] != nil:
			bt.errs[i] = bt.errsAt[j]
		case bt.failed[j]:
			redo = append(redo, j)
		default:
			skeleton.SetPlainNorms(dst[i], pr, bt.sqB[bt.slot[j]])
			bt.errs[i] = nil
		}
	}
	if len(redo) > 0 {
		d.redoQB(redo)
	}
	last := -1 // the draw of the last item (by index) finished here
	for j, i := range bt.at {
		if bt.slot[j] >= 0 && bt.errs[i] == nil && !slices.Contains(bt.single, i) && (last < 0 || i > bt.at[last]) {
			last = j
		}
	}
	if last >= 0 {
		d.draw.Trans = bt.prs[last].FactorTrans()
		d.draw.Indices = append(d.draw.Indices[:0], bt.idx[last]...)
	}
}

// redoQB finishes the deferred batch's items at positions redo, whose fast
// QR failed and left their sketches unchanged: each is orthogonalised by
// QR alone, as QRBatch does, and then they are finished together.
func (d *Decomposer) redoQB(redo []int) {
	bt := &d.bt
	var fs []*lowrank.Factors
	var prs []skeleton.Problem
	var ys []lowrank.Matrix
	var at []int
	for _, j := range redo {
		i := bt.at[j]
		if err := d.be.QR(bt.y[j], nil); err != nil {
			bt.errs[i] = err
			continue
		}
		fs, prs, ys, at = append(fs, bt.dst[j]), append(prs, bt.prs[j]), append(ys, bt.y[j]), append(at, i)
	}
	errs := make([]error, len(at))
	skeleton.FinishQBBatch(&d.sc, d.be, fs, prs, ys, errs)
	for k, i := range at {
		bt.errs[i] = errs[k]
	}
}
