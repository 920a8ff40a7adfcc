package gpu

import (
	"math"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

var _ lowrank.GatherNormer = (*Backend)(nil)

// GatherNorm sets column j of dst to row idx[j] of op(a) (Gather) and
// returns Σ a_ij² (float64) and max |a_ij| (SquaredNorm(a, 1)) from one
// read of a: the first read of a compression, the input check and the test
// matrix Ω = op(A)_Sᵀ together. It implements lowrank.GatherNormer.
//
// One kernel streams the stored matrix a column at a time (16-byte loads
// where the columns are aligned) and copies the sampled elements as they
// pass: when the samples are rows of the stored matrix (a row-major
// activation with op(A) = Aᵀ, or a column-major one with op(A) = A) they
// are staged in shared memory and written out in 128-byte rows, so the
// uncoalesced gather of strided elements costs nothing beyond the read;
// when they are stored columns they are copied directly. The partial sums
// are combined in a fixed order, so the result is deterministic for a
// shape (it may differ from SquaredNorm's in the last bits: the order of
// summation differs). Cost: one read of a, a write of Ω, 8·len(idx) bytes
// uploaded and one 16-byte download (one host synchronisation).
//
// Repeated indices, or a tile too large for shared memory (4·33·len(idx)
// + 2.1·rows bytes), fall back to Gather then SquaredNorm (two reads).
func (b *Backend) GatherNorm(dst, a lowrank.Matrix, trans bool, idx []int) (sumSq, maxAbs float64, err error) {
	return b.gatherNorm(dst, a, trans, idx, nil)
}

// GatherNormSeeded is GatherNorm for indices that are sampling.Uniform's
// draw from seed; it implements lowrank.SeededGatherNormer. Where op(a)
// has at most 65536 rows the kernel draw_uniform draws them on the device
// (bit for bit the host's, TestDrawUniform), so that the indices are not
// copied; otherwise it is GatherNorm. The results are GatherNorm's.
func (b *Backend) GatherNormSeeded(dst, a lowrank.Matrix, trans bool, idx []int, seed uint64) (sumSq, maxAbs float64, err error) {
	return b.gatherNorm(dst, a, trans, idx, []uint64{seed})
}

func (b *Backend) gatherNorm(dst, a lowrank.Matrix, trans bool, idx []int, seeds []uint64) (sumSq, maxAbs float64, err error) {
	dm, am, _, _ := b.checkGather(dst, a, trans, idx)
	// The rows of op(a) are rows of the stored matrix iff op(a) is the
	// stored matrix.
	if !b.fusable(am, trans, idx) {
		if err := b.Gather(dst, a, trans, idx); err != nil {
			return 0, 0, err
		}
		return b.SquaredNorm(a, 1)
	}
	if err := b.enter(); err != nil {
		return 0, 0, err
	}
	defer b.leave()
	var di uintptr
	if p, _ := opDims(am, trans); seeds != nil && b.canDraw(p, len(idx)) {
		di, err = b.drawIndices(len(idx), seeds, []int{p})
	} else {
		di, err = b.uploadIndices(idx)
	}
	if err != nil {
		return 0, 0, err
	}
	nb, nmap := b.gatherNormBlocks(am, trans)
	part, err := b.buf(&b.sc.normPart, 8*(2*nb+2))
	if err != nil {
		return 0, 0, err
	}
	var cmap uintptr
	if nmap > 0 {
		if cmap, err = b.buf(&b.sc.gatherMap, 4*nmap); err != nil {
			return 0, 0, err
		}
	}
	out := part + uintptr(8*2*nb)
	if err := b.gatherNormInto(out, part, cmap, dm, am, trans, di, len(idx)); err != nil {
		return 0, 0, err
	}
	if err := b.download(unsafe.Pointer(&b.tmp[0]), out, 16); err != nil {
		return 0, 0, err
	}
	return math.Float64frombits(b.tmp[0]), math.Float64frombits(b.tmp[1]), nil
}

// fusable reports whether GatherNorm's one-read kernels serve the gather
// of idx from am (distinct indices, the tile within shared memory).
func (b *Backend) fusable(am *Matrix, trans bool, idx []int) bool {
	p, _ := opDims(am, trans)
	sr, _ := am.stored()
	rows := trans == am.trans
	return len(idx) > 0 && b.distinct(idx, p) && !b.noFuse && (!rows || gatherNormSmem(len(idx), sr) <= b.smemMax)
}

// gatherNormBlocks returns the number of partial sums of the fused read
// of am, and the length of the column → sample map it needs (0 when the
// samples are stored rows).
func (b *Backend) gatherNormBlocks(am *Matrix, trans bool) (nb, nmap int) {
	_, sc := am.stored()
	if trans == am.trans {
		return min((sc+31)/32, b.sms*4), 0
	}
	return min((sc+gatherNormThreads/32-1)/(gatherNormThreads/32), b.sms*8), sc
}

// vec16 reports whether the fused read of m may use 16-byte loads: an
// aligned start and leading dimension, and whole vectors down a column.
func vec16(m *Matrix) bool {
	sr, _ := m.stored()
	es := m.dtype.Size()
	return m.ptr%16 == 0 && (m.ld*es)%16 == 0 && sr%(16/es) == 0
}

// gatherNormInto queues GatherNorm's fused read (fusable must hold) with
// the l indices at di: Ω into dm, Σ and max into out[0] and out[1]
// through the partials at part (gatherNormBlocks) and, for stored-column
// samples, the map at cmap. Nothing is read back.
func (b *Backend) gatherNormInto(out, part, cmap uintptr, dm, am *Matrix, trans bool, di uintptr, l int) error {
	sr, sc := am.stored()
	vec := vec16(am)
	nb, nmap := b.gatherNormBlocks(am, trans)
	var err error
	if nmap == 0 {
		err = b.gatherNormRows(part, nb, dm.ptr, dm.ld, am.ptr, am.dtype.code(), am.ld, sr, sc, di, l, vec)
	} else {
		if err := b.api.check(b.api.cuMemsetD8Async(cmap, 0xff, uintptr(4*nmap), b.stream), "cuMemsetD8Async"); err != nil {
			return err
		}
		if err := b.invertIndex(cmap, di, l); err != nil {
			return err
		}
		err = b.gatherNormCols(part, nb, dm.ptr, dm.ld, am.ptr, am.dtype.code(), am.ld, sr, sc, cmap, vec)
	}
	if err != nil {
		return err
	}
	return b.sumPartials(out, part, nb)
}

// distinct reports whether the indices (each in [0, p)) are distinct,
// with a grow-only bitmap of the backend (no allocation in steady state).
func (b *Backend) distinct(idx []int, p int) bool {
	words := (p + 63) / 64
	if cap(b.seen) < words {
		b.seen = make([]uint64, words)
	}
	seen := b.seen[:words]
	ok := true
	n := 0
	for _, i := range idx {
		w, bit := i>>6, uint64(1)<<(i&63)
		if seen[w]&bit != 0 {
			ok = false
			break
		}
		seen[w] |= bit
		n++
	}
	for _, i := range idx[:n] {
		seen[i>>6] = 0
	}
	return ok
}
