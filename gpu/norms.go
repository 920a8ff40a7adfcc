package gpu

import (
	"math"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// SquaredRowNorms writes the squared norms of the rows of scale·op(a) into
// dst, accumulated in float64 on the device.
func (b *Backend) SquaredRowNorms(dst []float64, a lowrank.Matrix, trans bool, scale float64) error {
	am := b.mat(a)
	p, _ := opDims(am, trans)
	if len(dst) != p {
		panic(lowrank.ErrShape)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	out, err := b.buf(&b.sc.rowNorms, 8*p)
	if err != nil {
		return err
	}
	sr, sc := am.stored()
	// Rows of op(a) are rows of the stored matrix iff trans == am.trans.
	if trans == am.trans {
		err = b.rowNorms(out, am.ptr, am.dtype.code(), am.ld, sr, sc, scale)
	} else {
		err = b.colNorms(out, am.ptr, am.dtype.code(), am.ld, sr, sc, scale)
	}
	if err != nil {
		return err
	}
	return b.download(unsafe.Pointer(&dst[0]), out, 8*p)
}

// download copies n bytes from the device to host memory and waits.
func (b *Backend) download(dst unsafe.Pointer, src uintptr, n int) error {
	if err := b.api.check(b.api.cuMemcpyDtoHAsync(dst, src, uintptr(n), b.stream), "cuMemcpyDtoHAsync_v2"); err != nil {
		return err
	}
	b.device.toHost.Add(int64(n))
	return b.sync()
}

// SquaredNorm returns Σ (scale·m_ij)² and max |m_ij| in one read of m,
// summed in float64 in a fixed order (per-block partial sums, then one
// block): the result is deterministic.
func (b *Backend) SquaredNorm(m lowrank.Matrix, scale float64) (sumSq, maxAbs float64, err error) {
	d := b.mat(m)
	if err := b.enter(); err != nil {
		return 0, 0, err
	}
	defer b.leave()
	nb := b.sqNormBlocks(d)
	part, err := b.buf(&b.sc.normPart, 8*(2*nb+2))
	if err != nil {
		return 0, 0, err
	}
	out := part + uintptr(8*2*nb)
	if err := b.sqNormInto(out, part, d, scale); err != nil {
		return 0, 0, err
	}
	if err := b.download(unsafe.Pointer(&b.tmp[0]), out, 16); err != nil {
		return 0, 0, err
	}
	return math.Float64frombits(b.tmp[0]), math.Float64frombits(b.tmp[1]), nil
}

// FindNonFinite returns the first NaN or ±Inf element of m in row-major
// order of the logical matrix.
func (b *Backend) FindNonFinite(m lowrank.Matrix) (i, j int, v float64, found bool, err error) {
	d := b.mat(m)
	if err := b.enter(); err != nil {
		return 0, 0, 0, false, err
	}
	defer b.leave()
	p, err := b.buf(&b.sc.nonFinite, 8)
	if err != nil {
		return 0, 0, 0, false, err
	}
	if err := b.api.check(b.api.cuMemsetD8Async(p, 0xff, 8, b.stream), "cuMemsetD8Async"); err != nil {
		return 0, 0, 0, false, err
	}
	sr, sc := d.stored()
	if err := b.nonFinite(p, d.ptr, d.dtype.code(), d.ld, sr, sc, d.trans, d.cols); err != nil {
		return 0, 0, 0, false, err
	}
	if err := b.download(unsafe.Pointer(&b.tmp[0]), p, 8); err != nil {
		return 0, 0, 0, false, err
	}
	if b.tmp[0] == ^uint64(0) {
		return 0, 0, math.NaN(), false, nil
	}
	i, j = int(b.tmp[0]/uint64(d.cols)), int(b.tmp[0]%uint64(d.cols))
	si, sj := d.strides()
	src := d.ptr + uintptr((i*si+j*sj)*d.dtype.Size())
	if err := b.download(unsafe.Pointer(&b.tmp[1]), src, d.dtype.Size()); err != nil {
		return 0, 0, 0, false, err
	}
	if d.dtype == BFloat16 {
		v = float64(lowrank.FromBF16(uint16(b.tmp[1])))
	} else {
		v = float64(math.Float32frombits(uint32(b.tmp[1])))
	}
	return i, j, v, true, nil
}

// sqNormBlocks returns the number of partial sums SquaredNorm's kernels
// use for d.
func (b *Backend) sqNormBlocks(d *Matrix) int {
	sr, sc := d.stored()
	return b.sumsqBlocks(sr * sc)
}

// sqNormInto queues SquaredNorm's reduction of scale·d: Σ and max into
// out[0] and out[1] (float64), through 2·sqNormBlocks(d) float64 partials
// at part. Nothing is read back.
func (b *Backend) sqNormInto(out, part uintptr, d *Matrix, scale float64) error {
	return b.sqNormBatchInto(out, part, d, 0, scale, 1)
}

// sqNormBatchInto is sqNormInto for n matrices like d (type, stored shape,
// leading dimension, alignment) at the addresses srcs[i] (a device array;
// 0: the one matrix d): their results two float64 apart from out, their
// partials 2·sqNormBlocks(d) apart from part.
func (b *Backend) sqNormBatchInto(out, part uintptr, d *Matrix, srcs uintptr, scale float64, n int) error {
	sr, sc := d.stored()
	nb := b.sqNormBlocks(d)
	var err error
	switch {
	case d.contiguous() && d.ptr%16 == 0 && d.dtype == Float32:
		err = b.sumsqContig(kSumsqF32, part, nb, d.ptr, srcs, sr*sc, scale, n)
	case d.contiguous() && d.ptr%16 == 0 && d.dtype == BFloat16:
		err = b.sumsqContig(kSumsqBF16, part, nb, d.ptr, srcs, sr*sc, scale, n)
	default:
		err = b.sumsqBatch(part, nb, d.ptr, srcs, d.dtype.code(), d.ld, sr, sc, scale, n)
	}
	if err != nil {
		return err
	}
	return b.sumPartialsBatch(out, part, nb, n)
}
