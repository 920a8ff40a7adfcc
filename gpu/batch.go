package gpu

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

var _ lowrank.Batcher = (*Backend)(nil)

// cublasCompute64F is CUBLAS_COMPUTE_64F.
const cublasCompute64F = 70

// batchState is the host side of the batched operations: grow-only
// slices, so that a steady-state batch allocates nothing, and the last
// pointer array uploaded for the batched Cholesky factorisation.
type batchState struct {
	mats    [3][]*Matrix // the backend matrices of up to three lists
	fused   []bool       // GatherNormBatch: whether the fused kernels serve each matrix
	out     []uint64     // downloaded sums and maxima, two per matrix
	status  []int32      // downloaded QR status words
	offsets []int        // each matrix's first index in the uploaded indices
	all     []int        // the concatenated indices
	table   []uint64     // addresses and indices of one batched call
	drawP   []int        // GatherNormBatchSeeded: the rows each draw is from
	// uploadTable's ring: each slot's last uploaded contents and where.
	tableHost [tableRing][]uint64
	tablePtr  [tableRing]uintptr
	tableNext int
	ptrs      []uint64         // the pointer array of potrfBatched
	ptrsDev   uintptr          // where ptrs was uploaded last (0: never)
	ptrsCap   int              // the size of the scratch slot there, then
	runs      []qrRun          // QRBatch: the batch's heights
	order     []int            // QRBatch: the input index of each position of its order
	o16       []lowrank.Matrix // SketchBatchDeferred: the bf16 Ω
	group     []int            // MulBatch: the first product alike to each
	gmats     [3][]*Matrix     // MulBatch: one group's lists
}

// batchMats returns the backend matrices of ms in reused slice number
// slot (0–2: a call's lists are held side by side).
func (b *Backend) batchMats(slot int, ms []lowrank.Matrix) []*Matrix {
	l := b.batch.mats[slot][:0]
	for _, m := range ms {
		l = append(l, b.mat(m))
	}
	b.batch.mats[slot] = l
	return l
}

// results converts the downloaded pairs into sumSq and maxAbs.
func (b *Backend) results(sumSq, maxAbs []float64) {
	for i := range sumSq {
		sumSq[i] = math.Float64frombits(b.batch.out[2*i])
		maxAbs[i] = math.Float64frombits(b.batch.out[2*i+1])
	}
}

// downloadPairs reads n (Σ, max) pairs from out in one transfer.
func (b *Backend) downloadPairs(out uintptr, n int) error {
	if cap(b.batch.out) < 2*n {
		b.batch.out = make([]uint64, 2*n)
	}
	b.batch.out = b.batch.out[:2*n]
	return b.download(unsafe.Pointer(&b.batch.out[0]), out, 16*n)
}

// GatherNormBatch is GatherNorm(dst[i], a[i], trans, idx[i]) for every i
// with one upload of all the indices and one 16·n-byte download: one host
// synchronisation for the batch. It implements lowrank.Batcher. A matrix
// whose gather the fused kernels do not serve (see GatherNorm) is
// gathered and then read for its norm, still without a synchronisation of
// its own. Shape and index errors panic as in Gather.
func (b *Backend) GatherNormBatch(dst, a []lowrank.Matrix, trans bool, idx [][]int, sumSq, maxAbs []float64) error {
	return b.gatherNormBatch(dst, a, trans, idx, nil, sumSq, maxAbs, false)
}

// GatherNormBatchSeeded is GatherNormBatch for indices that are, item by
// item, sampling.Uniform's draw from seeds[i]; it implements
// lowrank.SeededBatcher. Where every item draws one number of indices
// from at most 65536 rows of op(a[i]), the kernel draw_uniform draws them
// on the device from the seeds (bit for bit the host's draw,
// TestDrawUniform), so that nothing but kernel parameters goes up;
// otherwise the indices are copied as by GatherNormBatch. The host's idx
// are checked as there. The results are GatherNormBatch's.
func (b *Backend) GatherNormBatchSeeded(dst, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error {
	if len(seeds) != len(dst) {
		panic(fmt.Errorf("%w: GatherNormBatchSeeded of %d destinations and %d seeds", lowrank.ErrShape, len(dst), len(seeds)))
	}
	return b.gatherNormBatch(dst, a, trans, idx, seeds, sumSq, maxAbs, false)
}

// drawable reports whether the indices of a batch can be drawn on the
// device from seeds (GatherNormBatchSeeded): seeds given, one number l ≥ 1
// of indices an item, and every op(a[i]) of rows draw_uniform serves.
// Where they can, it leaves each item's number of rows in b.batch.drawP,
// for drawUniform.
func (b *Backend) drawable(a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64) (l int, ok bool) {
	if seeds == nil || len(idx) == 0 || len(idx[0]) == 0 {
		return 0, false
	}
	l = len(idx[0])
	st := &b.batch
	st.drawP = st.drawP[:0]
	for i := range a {
		p, _ := opDims(b.mat(a[i]), trans)
		if len(idx[i]) != l || !b.canDraw(p, l) {
			return 0, false
		}
		st.drawP = append(st.drawP, p)
	}
	return l, true
}

// gatherNormBatch is GatherNormBatchSeeded (seeds nil: GatherNormBatch),
// its results read at once or, deferred, by Collect.
func (b *Backend) gatherNormBatch(dst, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64, deferred bool) error {
	n := len(dst)
	if len(a) != n || len(idx) != n || len(sumSq) != n || len(maxAbs) != n {
		panic(fmt.Errorf("%w: GatherNormBatch of %d, %d, %d, %d and %d", lowrank.ErrShape, n, len(a), len(idx), len(sumSq), len(maxAbs)))
	}
	if n == 0 {
		return nil
	}
	st := &b.batch
	st.offsets, st.all, st.fused = st.offsets[:0], st.all[:0], st.fused[:0]
	nb, nmap := 0, 0
	for i := range dst {
		_, am, _, _ := b.checkGather(dst[i], a[i], trans, idx[i])
		st.offsets = append(st.offsets, len(st.all))
		st.all = append(st.all, idx[i]...)
		st.fused = append(st.fused, b.fusable(am, trans, idx[i]))
		if st.fused[i] {
			pb, pm := b.gatherNormBlocks(am, trans)
			nb, nmap = max(nb, pb), max(nmap, pm)
		} else {
			nb = max(nb, b.sqNormBlocks(am))
		}
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if ok, err := b.gatherNormUniform(dst, a, trans, idx, seeds, sumSq, maxAbs, deferred); ok || err != nil {
		return err
	}
	var di uintptr
	if len(st.all) > 0 {
		var err error
		if l, drawn := b.drawable(a, trans, idx, seeds); drawn {
			di, err = b.drawIndices(l, seeds, st.drawP)
		} else {
			di, err = b.uploadIndices(st.all)
		}
		if err != nil {
			return err
		}
	}
	// Every buffer is sized before the first launch: growing one would
	// free memory that a queued kernel still reads.
	part, err := b.buf(&b.sc.normPart, 8*(2*nb+2*n))
	if err != nil {
		return err
	}
	var cmap uintptr
	if nmap > 0 {
		if cmap, err = b.buf(&b.sc.gatherMap, 4*nmap); err != nil {
			return err
		}
	}
	out := part + uintptr(8*2*nb)
	for i := range dst {
		dm, am := b.mat(dst[i]), b.mat(a[i])
		_, q := opDims(am, trans)
		oi, li := out+uintptr(16*i), len(idx[i])
		dii := di + uintptr(8*st.offsets[i])
		if st.fused[i] {
			err = b.gatherNormInto(oi, part, cmap, dm, am, trans, dii, li)
		} else {
			if li > 0 {
				if err := b.gatherWith(dm, am, trans, dii, li, q); err != nil {
					return err
				}
			}
			err = b.sqNormInto(oi, part, am, 1)
		}
		if err != nil {
			return err
		}
	}
	return b.readPairs(out, n, sumSq, maxAbs, deferred)
}

// gatherNormUniform is GatherNormBatch by one launch of the fused kernel
// for all the matrices, when they are alike: fusable (b.batch.fused), of
// one type, stored
// shape, leading dimension and layout, with as many indices each, and the
// Ω consecutive column blocks of one matrix (the Decomposer's batch). It
// reports false, having done nothing, otherwise. The addresses of the a[i]
// and all the indices go up in one transfer.
func (b *Backend) gatherNormUniform(dst, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64, deferred bool) (bool, error) {
	n := len(dst)
	dms, ams := b.batchMats(0, dst), b.batchMats(1, a)
	d0, a0 := dms[0], ams[0]
	sr, sc := a0.stored()
	l := len(idx[0])
	v0 := vec16(a0)
	if n < 2 || l == 0 || !consecutive(dms, d0.ld, l) {
		return false, nil
	}
	for i, am := range ams {
		if len(idx[i]) != l || am.dtype != a0.dtype || !gatherAlike(am, a0) || !b.batch.fused[i] {
			return false, nil
		}
	}
	st := &b.batch
	st.table = st.table[:0]
	for _, am := range ams {
		st.table = append(st.table, uint64(am.ptr))
	}
	_, drawn := b.drawable(a, trans, idx, seeds) // l is len(idx[0]) here
	if !drawn {
		for _, ix := range idx {
			for _, v := range ix {
				st.table = append(st.table, uint64(v))
			}
		}
	}
	nb, nmap := b.gatherNormBlocks(a0, trans)
	if d0.dtype != Float32 && nmap != 0 {
		panic("gpu: a bf16 Ω from stored columns") // sketch16 takes stored rows only
	}
	part, err := b.buf(&b.sc.normPart, 8*(2*nb*n+2*n))
	if err != nil {
		return true, err
	}
	var cmap uintptr
	if nmap > 0 {
		if cmap, err = b.buf(&b.sc.gatherMap, 4*nmap*n); err != nil {
			return true, err
		}
	}
	tab, err := b.uploadTable()
	if err != nil {
		return true, err
	}
	srcs, di := tab, tab+uintptr(8*n)
	if drawn {
		if di, err = b.drawIndices(l, seeds, st.drawP); err != nil {
			return true, err
		}
	}
	out := part + uintptr(8*2*nb*n)
	if nmap == 0 {
		err = b.gatherNormRowsBatch(part, nb, d0.ptr, d0.dtype.code(), d0.ld, d0.ld*l, a0.ptr, srcs, a0.dtype.code(), a0.ld, sr, sc, di, l, v0, n)
	} else {
		if err := b.api.check(b.api.cuMemsetD8Async(cmap, 0xff, uintptr(4*nmap*n), b.stream), "cuMemsetD8Async"); err != nil {
			return true, err
		}
		if err := b.invertIndexBatch(cmap, nmap, di, l, n); err != nil {
			return true, err
		}
		err = b.gatherNormColsBatch(part, nb, d0.ptr, d0.ld, d0.ld*l, a0.ptr, srcs, a0.dtype.code(), a0.ld, sr, sc, cmap, v0, n)
	}
	if err != nil {
		return true, err
	}
	if err := b.sumPartialsBatch(out, part, nb, n); err != nil {
		return true, err
	}
	return true, b.readPairs(out, n, sumSq, maxAbs, deferred)
}

// gatherAlike reports whether the fused read of am can share one launch
// with that of a0: the same layout, leading dimension, stored shape and
// vector loads.
func gatherAlike(am, a0 *Matrix) bool {
	r, c := am.stored()
	sr, sc := a0.stored()
	return am.trans == a0.trans && am.ld == a0.ld && r == sr && c == sc && vec16(am) == vec16(a0)
}

// tableRing is the number of address tables uploadTable keeps on the
// device: a batch's calls (its fused read, products and copies) each have
// one, and a steady-state step repeats them.
const tableRing = 8

// uploadTable returns a device copy of b.batch.table (the addresses, and
// indices, of one batched call). One of the last tableRing tables with the
// same contents, still where it was uploaded, is reused without a
// transfer — the steady state of a training step, whose activations and
// factors come back at the same addresses; otherwise the table goes up
// (one host-to-device transfer) into the least recently uploaded slot.
// Queued calls that read a slot precede, in stream order, its next
// upload.
func (b *Backend) uploadTable() (uintptr, error) {
	st := &b.batch
	for i := range b.sc.batchTable {
		s := &b.sc.batchTable[i]
		if s.ptr != 0 && st.tablePtr[i] == s.ptr && slices.Equal(st.tableHost[i], st.table) {
			return s.ptr, nil
		}
	}
	i := st.tableNext
	st.tableNext = (i + 1) % tableRing
	dev, err := b.buf(&b.sc.batchTable[i], 8*len(st.table))
	if err != nil {
		return 0, err
	}
	// Pageable source: staged before the call returns, so the table may
	// be rebuilt at once.
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(dev, unsafe.Pointer(&st.table[0]), uintptr(8*len(st.table)), b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		st.tablePtr[i] = 0
		return 0, err
	}
	b.device.toDevice.Add(int64(8 * len(st.table)))
	st.tableHost[i] = append(st.tableHost[i][:0], st.table...)
	st.tablePtr[i] = dev
	return dev, nil
}

// SquaredNormBatch is SquaredNorm(m[i], scale) for every i with one
// 16·n-byte download. It implements lowrank.Batcher. Matrices of one type,
// stored shape and leading dimension (the B factors of a batch) are read
// by one launch, their addresses uploaded in one transfer.
func (b *Backend) SquaredNormBatch(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	return b.squaredNormBatch(m, scale, sumSq, maxAbs, false)
}

// squaredNormBatch is SquaredNormBatch, its results read at once or,
// deferred, by Collect.
func (b *Backend) squaredNormBatch(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64, deferred bool) error {
	n := len(m)
	if len(sumSq) != n || len(maxAbs) != n {
		panic(fmt.Errorf("%w: SquaredNormBatch of %d, %d and %d", lowrank.ErrShape, n, len(sumSq), len(maxAbs)))
	}
	if n == 0 {
		return nil
	}
	ms := b.batchMats(0, m)
	nb := 0
	for _, d := range ms {
		nb = max(nb, b.sqNormBlocks(d))
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	d0 := ms[0]
	sr, sc := d0.stored()
	uniform := n > 1
	for _, d := range ms {
		r, c := d.stored()
		uniform = uniform && d.dtype == d0.dtype && d.ld == d0.ld && r == sr && c == sc && d.contiguous() == d0.contiguous() && d.ptr%16 == d0.ptr%16
	}
	if !uniform {
		part, err := b.buf(&b.sc.normPart, 8*(2*nb+2*n))
		if err != nil {
			return err
		}
		out := part + uintptr(8*2*nb)
		for i, d := range ms {
			if err := b.sqNormInto(out+uintptr(16*i), part, d, scale); err != nil {
				return err
			}
		}
		return b.readPairs(out, n, sumSq, maxAbs, deferred)
	}
	part, err := b.buf(&b.sc.normPart, 8*(2*nb*n+2*n))
	if err != nil {
		return err
	}
	out := part + uintptr(8*2*nb*n)
	st := &b.batch
	st.table = st.table[:0]
	for _, d := range ms {
		st.table = append(st.table, uint64(d.ptr))
	}
	srcs, err := b.uploadTable()
	if err != nil {
		return err
	}
	if err := b.sqNormBatchInto(out, part, d0, srcs, scale, n); err != nil {
		return err
	}
	return b.readPairs(out, n, sumSq, maxAbs, deferred)
}

// QRBatch replaces every a[i] (float32 column-major working matrices of
// one width ℓ, each p_i×ℓ with p_i ≥ ℓ; the heights may differ) by the
// orthonormal factor of its thin QR, as QR(a[i], nil) does. It implements
// lowrank.Batcher.
//
// For 2 ≤ ℓ ≤ 1024 the fast path of QR's Cholesky QR runs once for the
// whole batch: the float64 Gram matrices by one strided-batched product
// per height, their Cholesky factors by one call of cuSOLVER's batched
// potrf, the inverses by one launch of trinv64, and the polynomial step
// by batched products per height and one launch; then one download of
// every matrix's status. A matrix whose factorisation broke down, or
// whose first step left ‖QᵀQ − I‖_F above the fast path's 0.02, is then
// orthogonalised by QR alone (the triangular passes, or Householder), from
// its own unchanged input; so the result is QR's for any input. The
// matrices of one height that are consecutive column blocks of one matrix
// (the sampling Decomposer's batch, whatever its leading dimension) are
// read and written in place; the others are copied into the scratch
// first. Cost: QR's flops, about ten launches plus five per height and one
// host synchronisation for the batch, where n calls of QR make n·12
// launches and n synchronisations.
func (b *Backend) QRBatch(as []lowrank.Matrix) error { return b.qrBatch(as, nil) }

// qrBatch is QRBatch, or with failed not nil QRBatchDeferred.
func (b *Backend) qrBatch(as []lowrank.Matrix, failed []bool) error {
	n := len(as)
	if n == 0 {
		return nil
	}
	ms := b.batchMats(0, as)
	_, l := ms[0].Dims()
	for _, m := range ms {
		work(m)
		if r, c := m.Dims(); c != l || r < l {
			panic(fmt.Errorf("%w: QRBatch of %d×%d beside width %d", lowrank.ErrShape, r, c, l))
		}
	}
	loop := func() error {
		for _, m := range ms {
			if err := b.QR(m, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if n == 1 || l == 1 || l > 1024 || b.opts.QR == Householder || b.useBlk || b.useTrsm || b.potrfBatched {
		// One column (a normalisation), Householder, and the test
		// switches of the single QR: one QR each.
		return loop()
	}
	if err := b.enter(); err != nil {
		return err
	}
	err := b.cholQRBatch(ms, l, failed)
	b.leave()
	if errors.Is(err, errNotSupported) {
		return loop() // a width cuBLAS's batched float64 product refuses
	}
	return err
}

// errNotSupported marks CUBLAS_STATUS_NOT_SUPPORTED from the batched Gram
// product, before anything else of the batch has run.
var errNotSupported = errors.New("gpu: not supported")

// batchQR is the scratch of QRBatch: QR's buffers, n of each.
type batchQR struct {
	t, s, y64, g64, g, h, rinv uintptr
	status, info, ptrs         uintptr
}

// qrBatchScratch returns the scratch of a batch of n QRs of width l whose
// tall matrices have tall elements together.
func (b *Backend) qrBatchScratch(tall, l, n int) (*batchQR, error) {
	var q batchQR
	var err error
	if q.t, err = b.buf(&b.sc.qrT, 4*tall); err != nil {
		return nil, err
	}
	if q.s, err = b.buf(&b.sc.qrS, 4*tall); err != nil {
		return nil, err
	}
	if q.y64, err = b.buf(&b.sc.qrY64, 8*tall); err != nil {
		return nil, err
	}
	sq := l * l * n
	small, err := b.buf(&b.sc.qrSmall, 8*sq+3*4*sq)
	if err != nil {
		return nil, err
	}
	q.g64 = small
	q.g = small + uintptr(8*sq)
	q.h = q.g + uintptr(4*sq)
	q.rinv = q.h + uintptr(4*sq)
	// The status words, then the factorisations' devInfo: downloaded
	// together.
	if q.status, err = b.buf(&b.sc.qrStatus, 4*(stSlots+1)*n); err != nil {
		return nil, err
	}
	q.info = q.status + uintptr(4*stSlots*n)
	if q.ptrs, err = b.buf(&b.sc.qrPtrs, 8*n); err != nil {
		return nil, err
	}
	return &q, nil
}

// consecutive reports whether ms are consecutive blocks of l columns of
// one column-major matrix with leading dimension ld (the sketches of a
// batch, and their Ω), spaced in their own element type.
func consecutive(ms []*Matrix, ld, l int) bool {
	for i, m := range ms {
		if m.ld != ld || m.dtype != ms[0].dtype || m.ptr != ms[0].ptr+uintptr(m.dtype.Size()*ld*l*i) {
			return false
		}
	}
	return true
}

// qrRun is one height's matrices in a batch of QRs: positions at … at+n
// of the batch's order (the small l×l blocks), their tall scratch from
// element tall on, and their input, in place (ld, a column block of l·ld
// elements each) or copied (ld = p).
type qrRun struct {
	p, at, n, tall int
	src            uintptr
	ld             int
	inPlace        bool
}

// qrRuns groups ms by height into b.batch.runs, in order of first
// appearance, and the matrices themselves into b.batch.mats[1] in that
// order, their indices in ms into b.batch.order. It returns the tall
// scratch's elements.
func (b *Backend) qrRuns(ms []*Matrix, l int) int {
	st := &b.batch
	st.runs, st.mats[1], st.order = st.runs[:0], st.mats[1][:0], st.order[:0]
	tall := 0
	for i, m := range ms {
		seen := false
		for _, r := range st.runs {
			seen = seen || r.p == m.rows
		}
		if seen {
			continue
		}
		r := qrRun{p: m.rows, at: len(st.mats[1]), tall: tall}
		for i2, m2 := range ms[i:] {
			if m2.rows == m.rows {
				st.mats[1] = append(st.mats[1], m2)
				st.order = append(st.order, i+i2)
				r.n++
			}
		}
		tall += r.p * l * r.n
		st.runs = append(st.runs, r)
	}
	return tall
}

// cholQRBatch is QRBatch's fast path for ms; with failed not nil, its
// end is QRBatchDeferred's (deferQRBatch).
func (b *Backend) cholQRBatch(ms []*Matrix, l int, failed []bool) error {
	n := len(ms)
	tall := b.qrRuns(ms, l)
	st := &b.batch
	order, runs := st.mats[1], st.runs
	q, err := b.qrBatchScratch(tall, l, n)
	if err != nil {
		return err
	}
	sq := l * l
	small := func(base uintptr, size int, r *qrRun) uintptr { return base + uintptr(size*sq*r.at) }
	for ri := range runs {
		r := &runs[ri]
		rm := order[r.at : r.at+r.n]
		r.inPlace = consecutive(rm, rm[0].ld, l)
		r.src, r.ld = rm[0].ptr, rm[0].ld
		if !r.inPlace {
			r.src, r.ld = q.s+uintptr(4*r.tall), r.p
			for i, m := range rm {
				if err := b.copyMat(&Matrix{ptr: r.src + uintptr(4*r.p*l*i), rows: r.p, cols: l, ld: r.p, dtype: Float32}, m); err != nil {
					return err
				}
			}
		}
	}
	if err := b.api.check(b.api.cuMemsetD8Async(q.status, 0, uintptr(4*(stSlots+1)*n), b.stream), "cuMemsetD8Async"); err != nil {
		return err
	}
	b.piece("copies in")
	// The float64 pass: Y in float64, G = YᵀY, RᵀR = G, Q₁ = Y·R⁻¹.
	for ri := range runs {
		r := &runs[ri]
		y64 := q.y64 + uintptr(8*r.tall)
		if err := b.copy2D(y64, codeF64, 1, r.p, r.src, codeF32, 1, r.ld, r.p, l*r.n, false); err != nil {
			return err
		}
		b.sc64[0], b.sc64[1] = 1, 0
		code := b.api.cublasGemmStridedBatchedEx(b.blas, cublasOpT, cublasOpN, int32(l), int32(l), int32(r.p),
			unsafe.Pointer(&b.sc64[0]), y64, cudaR64F, int32(r.p), int64(r.p*l), y64, cudaR64F, int32(r.p), int64(r.p*l),
			unsafe.Pointer(&b.sc64[1]), small(q.g64, 8, r), cudaR64F, int32(l), int64(sq), int32(r.n), cublasCompute64F, cublasGemmDefault)
		if code == 15 && ri == 0 { // CUBLAS_STATUS_NOT_SUPPORTED
			return errNotSupported
		}
		if err := checkBLAS(code, "cublasGemmStridedBatchedEx"); err != nil {
			return err
		}
	}
	b.piece("float64 copies and Gram matrices")
	if err := b.potrfMany(q, l, n); err != nil {
		return err
	}
	b.piece("potrf")
	if err := b.trInv64Batch(q.rinv, l, sq, q.g64, l, sq, l, n); err != nil {
		return err
	}
	b.piece("trinv64")
	for ri := range runs {
		r := &runs[ri]
		t := q.t + uintptr(4*r.tall)
		if err := b.mulBatched32(t, r.p, r.p*l, r.src, r.ld, r.ld*l, false, small(q.rinv, 4, r), l, sq, r.p, l, l, r.n); err != nil {
			return err
		}
		// One polynomial step: G = Q₁ᵀQ₁, H = G², X = (I + E)^{-1/2} to
		// second order, Q = Q₁·X into s.
		if err := b.mulBatched32(small(q.g, 4, r), l, sq, t, r.p, r.p*l, true, t, r.p, r.p*l, l, l, r.p, r.n); err != nil {
			return err
		}
	}
	b.piece("Y·R⁻¹ and Q₁ᵀQ₁")
	if err := b.mulBatched32(q.h, l, sq, q.g, l, sq, false, q.g, l, sq, l, l, l, n); err != nil {
		return err
	}
	if err := b.nsCorrBatch(q.rinv, q.g, q.h, l, q.status+4*stDevNS1, q.status+4*stFroNS1, q.status, sq, stSlots, n); err != nil {
		return err
	}
	b.piece("G², nscorr")
	for ri := range runs {
		r := &runs[ri]
		if err := b.mulBatched32(q.s+uintptr(4*r.tall), r.p, r.p*l, q.t+uintptr(4*r.tall), r.p, r.p*l, false, small(q.rinv, 4, r), l, sq, r.p, l, l, r.n); err != nil {
			return err
		}
	}
	b.piece("Q₁·X")
	if failed != nil {
		return b.deferQRBatch(q, l, failed)
	}
	if cap(st.status) < (stSlots+1)*n {
		st.status = make([]int32, (stSlots+1)*n)
	}
	st.status = st.status[:(stSlots+1)*n]
	if err := b.download(unsafe.Pointer(&st.status[0]), q.status, 4*(stSlots+1)*n); err != nil {
		return err
	}
	b.piece("status read")
	// ok reports whether position j of the order took the fast path.
	ok := func(j int) bool { return fastOK(st.status, j, n) }
	b.lastDev = 0
	for j := range order {
		b.lastDev = max(b.lastDev, math.Sqrt(devOf(st.status[j*stSlots+stFroNS1])))
	}
	for ri := range runs {
		r := &runs[ri]
		all := true
		for j := r.at; j < r.at+r.n; j++ {
			all = all && ok(j)
		}
		s := q.s + uintptr(4*r.tall)
		if all && r.inPlace {
			if err := b.copyMat(&Matrix{ptr: r.src, rows: r.p, cols: l * r.n, ld: r.ld, dtype: Float32},
				&Matrix{ptr: s, rows: r.p, cols: l * r.n, ld: r.p, dtype: Float32}); err != nil {
				return err
			}
			continue
		}
		for j := r.at; j < r.at+r.n; j++ {
			if ok(j) {
				if err := b.copyMat(order[j], &Matrix{ptr: s + uintptr(4*r.p*l*(j-r.at)), rows: r.p, cols: l, ld: r.p, dtype: Float32}); err != nil {
					return err
				}
			}
		}
	}
	b.piece("copies out")
	// The rest through QR alone, from their unchanged inputs (the scratch
	// is QR's own and free again).
	for j, m := range order {
		if !ok(j) {
			if err := b.cholQR(m, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// deferQRBatch ends cholQRBatch for QRBatchDeferred: each matrix's result
// is copied out only where its fast path succeeded (kernel copy_ok, the
// test of fastOK), and the status words go down to the staging, for
// Collect to set failed.
func (b *Backend) deferQRBatch(q *batchQR, l int, failed []bool) error {
	st := &b.batch
	order, n := st.mats[1], len(st.mats[1])
	for ri := range st.runs {
		r := &st.runs[ri]
		s := q.s + uintptr(4*r.tall)
		if r.inPlace {
			if err := b.copyOK(r.src, r.ld, s, r.p, r.p, l*r.n, l, q.status, q.info, r.at); err != nil {
				return err
			}
			continue
		}
		for j := r.at; j < r.at+r.n; j++ {
			if err := b.copyOK(order[j].ptr, order[j].ld, s+uintptr(4*r.p*l*(j-r.at)), r.p, r.p, l, l, q.status, q.info, j); err != nil {
				return err
			}
		}
	}
	b.piece("copies out")
	h, err := b.deferRead(q.status, 4*(stSlots+1)*n)
	if err != nil {
		return err
	}
	d := &b.def
	d.recs = append(d.recs, deferRec{host: h, n: n, failed: failed, order: len(d.order)})
	d.order = append(d.order, st.order...)
	return nil
}

// piece calls the onPiece hook, if set, with name.
func (b *Backend) piece(name string) {
	if b.onPiece != nil {
		b.onPiece(name)
	}
}

// potrfMany factors the n float64 Gram matrices of q: by one launch of
// chol64 where useChol64; else by cuSOLVER's batched potrf (one call) for
// ℓ ≤ b.batchPotrfMax, else by one dpotrf each (a workspace shared in
// stream order). The batched routine serves many small matrices and is
// slower than dpotrf on one large one (docs/gpu.md, "Batched
// compression").
func (b *Backend) potrfMany(q *batchQR, l, n int) error {
	if b.useChol64(l, n) && !b.potrfLoop {
		return b.chol64(q.g64, l, l*l, q.info, n)
	}
	if l <= b.batchPotrfMax() {
		if err := b.uploadPtrs(q.ptrs, q.g64, 8*l*l, n); err != nil {
			return err
		}
		return checkSolver(b.api.cusolverDnDpotrfBatched(b.solver, cublasFillUpper, int32(l), q.ptrs, int32(l), q.info, int32(n)), "cusolverDnDpotrfBatched")
	}
	w, lw, err := b.potrfWork(q.g64, l)
	if err != nil {
		return err
	}
	for i := range n {
		g := q.g64 + uintptr(8*l*l*i)
		if err := checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), g, int32(l), w, lw, q.info+uintptr(4*i)), "cusolverDnDpotrf"); err != nil {
			return err
		}
	}
	return nil
}

// batchPotrfMax returns the largest ℓ QRBatch factors by the batched
// potrf (the test switch potrfLoop: none).
func (b *Backend) batchPotrfMax() int {
	if b.potrfLoop {
		return 0
	}
	return batchPotrfMax
}

// batchPotrfMax is the default of (*Backend).batchPotrfMax.
const batchPotrfMax = 1024

// mulBatched32 computes n float32 products c_i = op(a_i)·b_i (m×k times
// k×nn, op(a) = aᵀ if ta), each operand i·stride elements after the
// first, by one cublasGemmStridedBatchedEx.
func (b *Backend) mulBatched32(c uintptr, ldc, sc int, a uintptr, lda, sa int, ta bool, bm uintptr, ldb, sb int, m, nn, k, n int) error {
	b.sc32[0], b.sc32[1] = 1, 0
	return checkBLAS(b.api.cublasGemmStridedBatchedEx(b.blas, blasOp(ta), cublasOpN, int32(m), int32(nn), int32(k),
		unsafe.Pointer(&b.sc32[0]), a, cudaR32F, int32(lda), int64(sa), bm, cudaR32F, int32(ldb), int64(sb),
		unsafe.Pointer(&b.sc32[1]), c, cudaR32F, int32(ldc), int64(sc), int32(n), cublasCompute32F, cublasGemmDefault), "cublasGemmStridedBatchedEx")
}

// uploadPtrs writes the n addresses base + i·stride (bytes) to dev for a
// batched cuSOLVER call, unless the same array was the last uploaded
// there (the steady state: no transfer).
func (b *Backend) uploadPtrs(dev, base uintptr, stride, n int) error {
	st := &b.batch
	// The slot only grows, so a slot reallocated at the same address
	// has another size.
	same := st.ptrsDev == dev && st.ptrsCap == b.sc.qrPtrs.bytes && len(st.ptrs) == n
	for i := 0; same && i < n; i++ {
		same = st.ptrs[i] == uint64(base)+uint64(i*stride)
	}
	if same {
		return nil
	}
	st.ptrs = st.ptrs[:0]
	for i := range n {
		st.ptrs = append(st.ptrs, uint64(base)+uint64(i*stride))
	}
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(dev, unsafe.Pointer(&st.ptrs[0]), uintptr(8*n), b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		return err
	}
	b.device.toDevice.Add(int64(8 * n))
	st.ptrsDev, st.ptrsCap = dev, b.sc.qrPtrs.bytes
	return nil
}

// alike reports whether x and y have one shape, layout, leading dimension
// and type.
func alike(x, y *Matrix) bool {
	return x.rows == y.rows && x.cols == y.cols && x.ld == y.ld && x.dtype == y.dtype && x.trans == y.trans
}

// stride returns the distance in elements between consecutive matrices of
// ms, which are alike, and whether there is one (ms[i] at ms[0] + i·s).
func stride(ms []*Matrix) (int, bool) {
	if len(ms) < 2 {
		return 0, true
	}
	es := uintptr(ms[0].dtype.Size())
	if ms[1].ptr < ms[0].ptr || (ms[1].ptr-ms[0].ptr)%es != 0 {
		return 0, false
	}
	s := ms[1].ptr - ms[0].ptr
	for i, m := range ms {
		if m.ptr != ms[0].ptr+uintptr(i)*s {
			return 0, false
		}
	}
	return int(s / es), true
}

// CopyBatch is Copy(dst[i], src[i]) for every i. It implements
// lowrank.Batcher. When the destinations are alike and the sources alike
// and equally spaced in memory (the orthonormal bases of a batch, column
// blocks of one matrix) one launch copies them all, the destinations'
// addresses uploaded in one transfer; otherwise it copies one by one.
func (b *Backend) CopyBatch(dst, src []lowrank.Matrix) error {
	n := len(dst)
	if len(src) != n {
		panic(fmt.Errorf("%w: CopyBatch of %d and %d", lowrank.ErrShape, n, len(src)))
	}
	if n == 0 {
		return nil
	}
	dms, sms := b.batchMats(0, dst), b.batchMats(1, src)
	uniform := n > 1
	for i := range dms {
		if dms[i].rows != sms[i].rows || dms[i].cols != sms[i].cols {
			panic(lowrank.ErrShape)
		}
		if dms[i].trans {
			panic(fmt.Errorf("%w: Copy destination must be column-major", lowrank.ErrShape))
		}
		uniform = uniform && alike(dms[i], dms[0]) && alike(sms[i], sms[0])
	}
	ss, spaced := stride(sms)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if !uniform || !spaced {
		for i := range dms {
			if err := b.copyMat(dms[i], sms[i]); err != nil {
				return err
			}
		}
		return nil
	}
	st := &b.batch
	st.table = st.table[:0]
	for _, d := range dms {
		st.table = append(st.table, uint64(d.ptr))
	}
	tab, err := b.uploadTable()
	if err != nil {
		return err
	}
	d0, s0 := dms[0], sms[0]
	si, sj := s0.strides()
	return b.copy2DBatch(tab, d0.dtype.code(), 1, d0.ld, s0.ptr, s0.dtype.code(), si, sj, ss, d0.rows, d0.cols, n)
}

// MulBatch is Mul(c[i], alpha, a[i], ta, bm[i], tb, beta) for every i. It
// implements lowrank.Batcher. The products whose matrices are alike, list
// by list (the products of a batch of compressions of one shape), are
// computed by one cublasGemmBatchedEx for each such group, with the types,
// layouts and arithmetic of Mul; an operand list of the other type is
// converted first, by one launch when its matrices are equally spaced in
// memory. A group's three address arrays go up in one transfer. A product
// alike to no other is computed by Mul. Unlike Mul it does not pad
// misaligned products: a batch of compressions has the shapes its caller
// chooses.
func (b *Backend) MulBatch(c []lowrank.Matrix, alpha float64, a []lowrank.Matrix, ta bool, bm []lowrank.Matrix, tb bool, beta float64) error {
	n := len(c)
	if len(a) != n || len(bm) != n {
		panic(fmt.Errorf("%w: MulBatch of %d, %d and %d", lowrank.ErrShape, n, len(a), len(bm)))
	}
	if n == 0 {
		return nil
	}
	cs, as, bs := b.batchMats(0, c), b.batchMats(1, a), b.batchMats(2, bm)
	st := &b.batch
	if cap(st.group) < n {
		st.group = make([]int, n)
	}
	st.group = st.group[:n]
	for i := range st.group {
		st.group[i] = -1
	}
	for i := range cs {
		if st.group[i] >= 0 {
			continue
		}
		st.group[i] = i
		for j := i + 1; j < n; j++ {
			if st.group[j] < 0 && alike(cs[j], cs[i]) && alike(as[j], as[i]) && alike(bs[j], bs[i]) {
				st.group[j] = i
			}
		}
	}
	for i := range cs {
		if st.group[i] != i {
			continue
		}
		gc, ga, gb := st.gmats[0][:0], st.gmats[1][:0], st.gmats[2][:0]
		for j := i; j < n; j++ {
			if st.group[j] == i {
				gc, ga, gb = append(gc, cs[j]), append(ga, as[j]), append(gb, bs[j])
			}
		}
		st.gmats[0], st.gmats[1], st.gmats[2] = gc, ga, gb
		var err error
		if len(gc) == 1 {
			err = b.Mul(gc[0], alpha, ga[0], ta, gb[0], tb, beta)
		} else {
			err = b.mulUniform(gc, alpha, ga, ta, gb, tb, beta)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mulUniform is MulBatch of products whose matrices are alike, list by
// list, by one cublasGemmBatchedEx.
//
// A product whose stored destination has the fewer rows (m < n: the
// B = Qᵀ·op(A) of a batch, ℓ×S) is padded as gemm pads it (see there):
// from padMin multiply-adds, m off a multiple of padTo, or a destination
// off alignBytes, makes the smaller operands padded copies (zero beyond
// their stored blocks, aligned), the products go to padded scratch copies
// of the destinations (m rounded up to the multiple), and one launch
// copies their m×n blocks out. Measured on the H200 (docs/gpu.md,
// "Batched compression"): the GPU demo's per-op B, three 231×12544
// products of inner dimension 1536 in bf16, 431 µs unpadded and 120 µs
// padded; but padding n (the sketch Y = op(A)·Ω, 1536×231 and 384×115,
// whose leading dimension is aligned) slowed it from 85 to 146 and from 60
// to 125 µs, so the other orientation runs as it is.
func (b *Backend) mulUniform(cs []*Matrix, alpha float64, as []*Matrix, ta bool, bs []*Matrix, tb bool, beta float64) error {
	n := len(cs)
	ar, ac := opDims(as[0], ta)
	br, bc := opDims(bs[0], tb)
	if ac != br || ar != cs[0].rows || bc != cs[0].cols {
		panic(lowrank.ErrShape)
	}
	if cs[0].trans {
		// cᵀ = op(b)ᵀ·op(a)ᵀ into the stored column-major cᵀ.
		for i := range cs {
			cs[i] = cs[i].T()
		}
		as, bs, ta, tb = bs, as, !tb, !ta
	}
	if cs[0].dtype != Float32 && cs[0].dtype != BFloat16 {
		panic(fmt.Errorf("%w: destination of type %v", lowrank.ErrShape, cs[0].dtype))
	}
	for i := range cs {
		if overlaps(cs[i], as[i]) || overlaps(cs[i], bs[i]) {
			panic(lowrank.ErrAlias)
		}
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	m, k := opDims(as[0], ta)
	_, nn := opDims(bs[0], tb)
	opA, opB := ta != as[0].trans, tb != bs[0].trans
	ty, compute, dt := int32(cudaR32F), int32(cublasCompute32F), Float32
	if b.opts.Math == TF32 {
		compute = cublasCompute32FFastTF
	}
	if as[0].dtype == BFloat16 || bs[0].dtype == BFloat16 || cs[0].dtype == BFloat16 || b.opts.Math == BF16 {
		ty, compute, dt = cudaR16BF, cublasCompute32F, BFloat16
	}
	padA := !b.noPad && m*nn*k >= padMin && m < nn && m >= padTo
	mp := m
	if padA {
		mp = roundUp(m, padTo)
	}
	padC := padA && mp != m
	for _, c := range cs {
		padC = padC || (padA && !aligned(c.ptr, c.ld, c.dtype))
	}
	if !padC {
		padA, mp = false, m
	}
	// The stored (column-major) shapes of op(a) and op(b) with m padded,
	// as in gemm.
	sar, sac, sbr, sbc := mp, k, k, nn
	if opA {
		sar, sac = k, mp
	}
	if opB {
		sbr, sbc = nn, k
	}
	st := &b.batch
	st.table = st.table[:0]
	lda, err := b.batchOperand(&b.sc.mulA, as, dt, padA, sar, sac)
	if err != nil {
		return err
	}
	ldb, err := b.batchOperand(&b.sc.mulB, bs, dt, false, sbr, sbc)
	if err != nil {
		return err
	}
	ct, es := int32(cudaR32F), cs[0].dtype.Size()
	if cs[0].dtype == BFloat16 {
		ct = cudaR16BF
	}
	ldc, each, pc := cs[0].ld, 0, uintptr(0)
	if padC {
		ldc = padLD(mp, cs[0].dtype)
		each = ldc * nn
		if pc, err = b.buf(&b.sc.mulC, each*n*es); err != nil {
			return err
		}
		for i, c := range cs {
			st.table = append(st.table, uint64(pc)+uint64(i*each*es))
			if beta != 0 {
				if err := b.copy2D(pc+uintptr(i*each*es), c.dtype.code(), 1, ldc, c.ptr, c.dtype.code(), 1, c.ld, m, nn, false); err != nil {
					return err
				}
			}
		}
	}
	// The destinations: the product's own, or after the scratch's the
	// addresses the blocks are copied out to.
	for _, x := range cs {
		st.table = append(st.table, uint64(x.ptr))
	}
	tab, err := b.uploadTable()
	if err != nil {
		return err
	}
	b.sc32[0], b.sc32[1] = float32(alpha), float32(beta)
	if err := checkBLAS(b.api.cublasGemmBatchedEx(b.blas, blasOp(opA), blasOp(opB), int32(mp), int32(nn), int32(k),
		unsafe.Pointer(&b.sc32[0]), tab, ty, int32(lda), tab+uintptr(8*n), ty, int32(ldb),
		unsafe.Pointer(&b.sc32[1]), tab+uintptr(16*n), ct, int32(ldc), int32(n), compute, cublasGemmDefault), "cublasGemmBatchedEx"); err != nil {
		return err
	}
	if !padC {
		return nil
	}
	code := cs[0].dtype.code()
	return b.copy2DBatch(tab+uintptr(24*n), code, 1, cs[0].ld, pc, code, 1, ldc, each, m, nn, n)
}

// batchOperand appends to b.batch.table the addresses of the stored
// matrices of ms (alike) as operands of type dt, and returns their
// leading dimension: the matrices themselves, or copies in s converted to
// dt (one launch when they are equally spaced). With pad the operands'
// stored shape is sr×sc (theirs, or larger by mulUniform's padding of the
// output dimensions), and the copies, zero beyond the matrices' stored
// blocks, have an aligned leading dimension, as gemm's operand makes them.
func (b *Backend) batchOperand(s *devBuf, ms []*Matrix, dt DType, pad bool, sr, sc int) (int, error) {
	st := &b.batch
	m0 := ms[0]
	r, c := m0.stored()
	same := sr == r && sc == c
	direct := m0.dtype == dt && same
	for _, m := range ms {
		direct = direct && (!pad || aligned(m.ptr, m.ld, m.dtype))
	}
	if direct {
		for _, m := range ms {
			st.table = append(st.table, uint64(m.ptr))
		}
		return m0.ld, nil
	}
	if pad {
		ld := padLD(sr, dt)
		each := ld * sc * dt.Size()
		p, err := b.buf(s, each*len(ms))
		if err != nil {
			return 0, err
		}
		if !same {
			if err := b.api.check(b.api.cuMemsetD8Async(p, 0, uintptr(each*len(ms)), b.stream), "cuMemsetD8Async"); err != nil {
				return 0, err
			}
		}
		for i, m := range ms {
			if err := b.copyStored(p+uintptr(i*each), dt, ld, m); err != nil {
				return 0, err
			}
			st.table = append(st.table, uint64(p+uintptr(i*each)))
		}
		return ld, nil
	}
	each := r * c * dt.Size()
	p, err := b.buf(s, each*len(ms))
	if err != nil {
		return 0, err
	}
	if ss, ok := stride(ms); ok && ss == m0.ld*c {
		// Column blocks of one stored r×(c·n) matrix (leading dimension ld).
		if err := b.copy2D(p, dt.code(), 1, r, m0.ptr, m0.dtype.code(), 1, m0.ld, r, c*len(ms), false); err != nil {
			return 0, err
		}
	} else {
		for i, m := range ms {
			if err := b.copy2D(p+uintptr(i*each), dt.code(), 1, r, m.ptr, m.dtype.code(), 1, m.ld, r, c, false); err != nil {
				return 0, err
			}
		}
	}
	for i := range ms {
		st.table = append(st.table, uint64(p+uintptr(i*each)))
	}
	return r, nil
}
