package gpu

import (
	"fmt"
	"unsafe"

	"github.com/loract/loract/lowrank"
)

// Mul computes c = alpha·op(a)·op(b) + beta·c with cublasGemmEx. The
// arithmetic follows the backend's Math; a row-major operand is passed to
// cuBLAS as its stored column-major transpose with the operation flipped.
// c is a float32 column-major matrix, or a bf16 one (storage of a
// product: the operands are then multiplied in bf16 with float32
// accumulation); a row-major c (a transposed view, Matrix.T) is written as
// the transposed product. With beta = 0, c is not read. It panics with
// lowrank.ErrAlias if c shares memory with a or b.
func (b *Backend) Mul(c lowrank.Matrix, alpha float64, a lowrank.Matrix, ta bool, bm lowrank.Matrix, tb bool, beta float64) error {
	cm, am, bb := b.mat(c), b.mat(a), b.mat(bm)
	ar, ac := opDims(am, ta)
	br, bc := opDims(bb, tb)
	if ac != br || ar != cm.rows || bc != cm.cols {
		panic(lowrank.ErrShape)
	}
	if cm.trans {
		// cᵀ = op(b)ᵀ·op(a)ᵀ into the stored column-major cᵀ.
		cm, am, bb, ta, tb = cm.T(), bb, am, !tb, !ta
	}
	if cm.dtype != Float32 && cm.dtype != BFloat16 {
		panic(fmt.Errorf("%w: destination of type %v", lowrank.ErrShape, cm.dtype))
	}
	if overlaps(cm, am) || overlaps(cm, bb) {
		panic(lowrank.ErrAlias)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.gemm(cm, float32(alpha), am, ta, bb, tb, float32(beta), b.opts.Math)
}

// overlaps reports whether the device memory spans of x and y intersect
// (conservative for interleaved views: a product into a column block of a
// matrix whose other block is an operand is refused).
func overlaps(x, y *Matrix) bool {
	xs, ys := x.span()*x.dtype.Size(), y.span()*y.dtype.Size()
	return x.ptr < y.ptr+uintptr(ys) && y.ptr < x.ptr+uintptr(xs) && !disjointColumns(x, y)
}

// disjointColumns reports whether x and y are column blocks of one
// column-major matrix (same leading dimension and type, both stored
// column-major) whose columns do not intersect.
func disjointColumns(x, y *Matrix) bool {
	if x.trans || y.trans || x.ld != y.ld || x.dtype != y.dtype {
		return false
	}
	es := uintptr(x.dtype.Size())
	lo := min(x.ptr, y.ptr)
	pos := func(m *Matrix) (r, c int) {
		off := int((m.ptr - lo) / es)
		return off % m.ld, off / m.ld
	}
	xr, xc := pos(x)
	yr, yc := pos(y)
	if xr+x.rows > x.ld || yr+y.rows > y.ld {
		return false
	}
	return xc+x.cols <= yc || yc+y.cols <= xc || xr+x.rows <= yr || yr+y.rows <= xr
}

// gemm is Mul without the checks, with an explicit arithmetic.
//
// cuBLAS's fast kernels want pointers and leading dimensions that are
// multiples of 16 bytes (cuBLAS documentation, "Tensor Core Usage"), and
// its choice of kernel falls off for output dimensions off a multiple of
// 8: on the H200 the B = Qᵀ·A of a QB at ℓ = 257 (bf16, 257×16384,
// inner 4096) took 598 µs against 75 µs at ℓ = 256, with its output's
// leading dimension padded or not, while QBs at every ℓ that is a
// multiple of 8 ran at the speed of their neighbours (docs/gpu.md, "The
// ℓ sweep"). So in a product of at least padMin multiply-adds the
// smaller operand is padded with zeros to an output dimension (m or n)
// that is a multiple of padTo, with an aligned leading dimension, and
// the product goes to a padded copy of c whose m×n block is then copied
// into c. In a QB the padded operands are the small ones (Q, the
// gathered Ω); the bf16 copy of a float32 operand is made padded anyway.
// Below padMin, and with noPad, the product runs on the matrices as they
// are (a float32 operand of a bf16 product converted unpadded).
func (b *Backend) gemm(c *Matrix, alpha float32, a *Matrix, ta bool, bm *Matrix, tb bool, beta float32, mth Math) error {
	m, k := opDims(a, ta)
	_, n := opDims(bm, tb)
	opA, opB := ta != a.trans, tb != bm.trans
	ty := int32(cudaR32F)
	compute := int32(cublasCompute32F)
	if mth == TF32 {
		compute = cublasCompute32FFastTF
	}
	dt := Float32
	if a.dtype == BFloat16 || bm.dtype == BFloat16 || c.dtype == BFloat16 || mth == BF16 {
		ty, compute, dt = cudaR16BF, cublasCompute32F, BFloat16
	}
	pl := planPad(m, n, k, b.noPad)
	mp, np, kp := pl.mp, pl.np, pl.kp
	// The stored (column-major) shapes of op(a) and op(b) with m, n and k
	// padded: op(a) is stored m×k, or k×m when cuBLAS transposes it.
	ar, ac, br, bc := mp, kp, kp, np
	if opA {
		ar, ac = kp, mp
	}
	if opB {
		br, bc = np, kp
	}
	pa, lda, err := b.operand(&b.sc.mulA, a, dt, pl.a, ar, ac)
	if err != nil {
		return err
	}
	pb, ldb, err := b.operand(&b.sc.mulB, bm, dt, pl.b, br, bc)
	if err != nil {
		return err
	}
	b.sc32[0], b.sc32[1] = alpha, beta
	ct := int32(cudaR32F)
	if c.dtype == BFloat16 {
		ct = cudaR16BF
	}
	pc, ldc := c.ptr, c.ld
	padC := (pl.a || pl.b) && (mp != m || np != n || !aligned(c.ptr, c.ld, c.dtype))
	if padC {
		ldc = padLD(mp, c.dtype)
		if pc, err = b.buf(&b.sc.mulC, ldc*np*c.dtype.Size()); err != nil {
			return err
		}
		if beta != 0 {
			if err := b.copy2D(pc, c.dtype.code(), 1, ldc, c.ptr, c.dtype.code(), 1, c.ld, m, n, false); err != nil {
				return err
			}
		}
	}
	if err := checkBLAS(b.api.cublasGemmEx(b.blas, blasOp(opA), blasOp(opB), int32(mp), int32(np), int32(kp),
		unsafe.Pointer(&b.sc32[0]), pa, ty, int32(lda), pb, ty, int32(ldb),
		unsafe.Pointer(&b.sc32[1]), pc, ct, int32(ldc), compute, cublasGemmDefault), "cublasGemmEx"); err != nil {
		return err
	}
	if padC {
		return b.copy2D(c.ptr, c.dtype.code(), 1, c.ld, pc, c.dtype.code(), 1, ldc, m, n, false)
	}
	return nil
}

// padPlan is how gemm pads an m×n product of inner dimension k: the
// dimensions it runs at (mp, np, kp ≥ m, n, k) and whether op(a) and
// op(b) go to copies with an aligned leading dimension (a, b).
type padPlan struct {
	mp, np, kp int
	a, b       bool
}

// planPad returns gemm's padding of an m×n product of inner dimension k
// (none with noPad).
//
// Only the smaller operand is padded or copied for an output dimension,
// so that the copy costs less than half of what the product reads; none
// when both are of a size (a Gram matrix: two copies of its operand cost
// more than the misalignment, 58 against 31 µs at 138×138×8192), or for
// an output dimension below padTo (unpadded, a QB at ℓ = 1 took 0.40 ms,
// padded 0.50 ms).
//
// An inner dimension off a multiple of padTo falls off cuBLAS's fast
// kernels too, aligned leading dimensions or not: on the H100 the
// reconstruction P·R of the GPU demo's per-op factors (12544×1536, inner
// 231, bf16) took 98 µs against 28 µs at inner 232 (vitgpu
// TestProfileRebuilds; docs/results.md, "Twenty-second session"). Both
// operands then go to copies with k padded by zero rows or columns, which
// leave the product exact, at most 7/k more flops. A copied element costs
// 4 bytes moved (bf16, read and written) against the 2·min(m, n) flops the
// product does with each element of the larger operand; with
// min(m, n) ≥ padKMin that is ≥ 512 flops a byte, above the H100's and
// H200's bf16 rate over their bandwidth (≈ 300 and 200), so the copies
// cost less than the fast product itself.
func planPad(m, n, k int, noPad bool) padPlan {
	pad := !noPad && m*n*k >= padMin
	padA, padB := pad && m < n && m >= padTo, pad && n < m && n >= padTo
	padK := pad && k%padTo != 0 && k >= padTo && min(m, n) >= padKMin
	pl := padPlan{mp: m, np: n, kp: k, a: padA || padK, b: padB || padK}
	if padA {
		pl.mp = roundUp(m, padTo)
	}
	if padB {
		pl.np = roundUp(n, padTo)
	}
	if padK {
		pl.kp = roundUp(k, padTo)
	}
	return pl
}

// dgemm computes the float64 product c = op(a)·op(bm) (m×n, inner
// dimension k; column-major with leading dimensions lda, ldb and ldc) by
// cublasDgemm with α = 1 and β = 0. It does not wait for the stream.
func (b *Backend) dgemm(ta, tb bool, m, n, k int, a uintptr, lda int, bm uintptr, ldb int, c uintptr, ldc int) error {
	return b.dgemmBeta(ta, tb, m, n, k, a, lda, bm, ldb, 0, c, ldc)
}

// dgemmBeta is dgemm with c = op(a)·op(bm) + beta·c.
func (b *Backend) dgemmBeta(ta, tb bool, m, n, k int, a uintptr, lda int, bm uintptr, ldb int, beta float64, c uintptr, ldc int) error {
	return b.dgemmScaled(ta, tb, m, n, k, 1, a, lda, bm, ldb, beta, c, ldc)
}

// dgemmScaled is dgemm with c = alpha·op(a)·op(bm) + beta·c.
func (b *Backend) dgemmScaled(ta, tb bool, m, n, k int, alpha float64, a uintptr, lda int, bm uintptr, ldb int, beta float64, c uintptr, ldc int) error {
	b.sc64[0], b.sc64[1] = alpha, beta
	return checkBLAS(b.api.cublasDgemm(b.blas, blasOp(ta), blasOp(tb), int32(m), int32(n), int32(k),
		unsafe.Pointer(&b.sc64[0]), a, int32(lda), bm, int32(ldb), unsafe.Pointer(&b.sc64[1]), c, int32(ldc)), "cublasDgemm_v2")
}

// blasOp returns cuBLAS's operation for a transposed (t) operand or not.
func blasOp(t bool) int32 {
	if t {
		return cublasOpT
	}
	return cublasOpN
}

// padMin is the number of multiply-adds from which gemm pads a product
// (below it, the copies' launches cost more than a slower kernel loses),
// and padTo the multiple it pads the output dimensions to.
const (
	padMin = 1 << 24
	padTo  = 8
)

// padKMin is the smaller output dimension from which gemm pads an inner
// dimension off a multiple of padTo (see planPad).
const padKMin = 1024

// alignBytes is the alignment cuBLAS's fast kernels want of pointers and
// leading dimensions.
const alignBytes = 16

func roundUp(x, to int) int { return (x + to - 1) / to * to }

// aligned reports whether a matrix at p with leading dimension ld of
// type dt meets alignBytes.
func aligned(p uintptr, ld int, dt DType) bool {
	return p%alignBytes == 0 && ld*dt.Size()%alignBytes == 0
}

// padLD returns the smallest leading dimension ≥ r whose rows of type dt
// span a multiple of alignBytes.
func padLD(r int, dt DType) int {
	return roundUp(r, alignBytes/dt.Size())
}

// operand returns the stored matrix of m as a gemm operand of type dt
// whose stored shape is sr×sc (m's stored shape, or larger by the
// padding of the output dimensions): m itself when it has that type and
// shape and, with pad, is aligned; else a copy in s, zero outside m's
// stored block, with leading dimension sr (padded by padLD with pad).
func (b *Backend) operand(s *devBuf, m *Matrix, dt DType, pad bool, sr, sc int) (uintptr, int, error) {
	r, c := m.stored()
	same := sr == r && sc == c
	if m.dtype == dt && same && (!pad || aligned(m.ptr, m.ld, m.dtype)) {
		return m.ptr, m.ld, nil
	}
	ld := sr
	if pad {
		ld = padLD(sr, dt)
	}
	p, err := b.buf(s, ld*sc*dt.Size())
	if err != nil {
		return 0, 0, err
	}
	if same && ld == r && m.contiguous() && m.dtype == Float32 && dt == BFloat16 {
		return p, ld, b.f32ToBF16(p, m.ptr, r*c)
	}
	if !same {
		if err := b.api.check(b.api.cuMemsetD8Async(p, 0, uintptr(ld*sc*dt.Size()), b.stream), "cuMemsetD8Async"); err != nil {
			return 0, 0, err
		}
	}
	return p, ld, b.copyStored(p, dt, ld, m)
}

// copyStored copies the stored matrix of m into dst (type dt, leading
// dimension ldd), converting the element type.
func (b *Backend) copyStored(dst uintptr, dt DType, ldd int, m *Matrix) error {
	sr, sc := m.stored()
	return b.copy2D(dst, dt.code(), 1, ldd, m.ptr, m.dtype.code(), 1, m.ld, sr, sc, false)
}

// Scale multiplies the float32 column-major matrix m by alpha, the
// product formed in float64 (alpha may be outside float32's range).
func (b *Backend) Scale(m lowrank.Matrix, alpha float64) error {
	d := b.mat(m)
	work(d)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.scale2D(d.ptr, d.ld, d.rows, d.cols, alpha)
}

// checkGather panics unless dst is a float32 column-major q×len(idx)
// destination of a gather of rows idx of op(a) (p×q), every index in
// [0, p).
func (b *Backend) checkGather(dst, a lowrank.Matrix, trans bool, idx []int) (dm, am *Matrix, p, q int) {
	dm, am = b.mat(dst), b.mat(a)
	p, q = opDims(am, trans)
	if dm.rows != q || dm.cols != len(idx) {
		panic(lowrank.ErrShape)
	}
	work(dm)
	for _, i := range idx {
		if i < 0 || i >= p {
			panic(fmt.Sprintf("gpu: gather index %d out of range [0, %d)", i, p))
		}
	}
	return dm, am, p, q
}

// Gather sets column j of dst to row idx[j] of op(a).
func (b *Backend) Gather(dst lowrank.Matrix, a lowrank.Matrix, trans bool, idx []int) error {
	dm, am, _, q := b.checkGather(dst, a, trans, idx)
	if len(idx) == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	di, err := b.uploadIndices(idx)
	if err != nil {
		return err
	}
	return b.gatherWith(dm, am, trans, di, len(idx), q)
}

// gatherWith is Gather with the l indices already on the device at di.
func (b *Backend) gatherWith(dm, am *Matrix, trans bool, di uintptr, l, q int) error {
	// op(a)(i, r) = A(i, r), or A(r, i) if trans.
	si, sj := am.strides()
	if trans {
		si, sj = sj, si
	}
	if si == 1 && gatherRowsFits(l) {
		return b.gatherRows(dm.ptr, dm.ld, am.ptr, am.dtype.code(), sj, di, q, l)
	}
	return b.gather(dm.ptr, dm.ld, am.ptr, am.dtype.code(), si, sj, di, q, l)
}

// uploadIndices copies idx to the device as int64 (the scratch buffer
// gatherIdx; one host-to-device transfer) and returns its address.
// Called inside enter; drawIndices is its device-drawn twin.
func (b *Backend) uploadIndices(idx []int) (uintptr, error) {
	b.idx = b.idx[:0]
	for _, i := range idx {
		b.idx = append(b.idx, int64(i))
	}
	di, err := b.buf(&b.sc.gatherIdx, 8*len(idx))
	if err != nil {
		return 0, err
	}
	// Pageable source: the copy is staged before the call returns, so
	// b.idx may be reused at once.
	if err := b.api.check(b.api.cuMemcpyHtoDAsync(di, unsafe.Pointer(&b.idx[0]), uintptr(8*len(idx)), b.stream), "cuMemcpyHtoDAsync_v2"); err != nil {
		return 0, err
	}
	b.device.toDevice.Add(int64(8 * len(idx)))
	return di, nil
}

// Normal fills m with standard normal samples from a counter-based
// generator keyed by seed (SplitMix64 hash, Box–Muller): equal seeds give
// bit-identical matrices on any device.
func (b *Backend) Normal(m lowrank.Matrix, seed uint64) error {
	d := b.mat(m)
	work(d)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.normal(d.ptr, d.ld, d.rows, d.cols, seed)
}

// Copy copies src into dst of the same shape, converting the element type
// if dst is bf16 (bf16 storage of factors) and transposing the storage if
// src is row-major.
func (b *Backend) Copy(dst, src lowrank.Matrix) error {
	dm, sm := b.mat(dst), b.mat(src)
	if dm.rows != sm.rows || dm.cols != sm.cols {
		panic(lowrank.ErrShape)
	}
	if dm.trans {
		panic(fmt.Errorf("%w: Copy destination must be column-major", lowrank.ErrShape))
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.copyMat(dm, sm)
}

func (b *Backend) copyMat(dm, sm *Matrix) error {
	if dm.dtype == sm.dtype && !sm.trans && dm.contiguous() && sm.contiguous() {
		return b.api.check(b.api.cuMemcpyDtoDAsync(dm.ptr, sm.ptr, uintptr(dm.rows*dm.cols*dm.dtype.Size()), b.stream), "cuMemcpyDtoDAsync_v2")
	}
	si, sj := sm.strides()
	return b.copy2D(dm.ptr, dm.dtype.code(), 1, dm.ld, sm.ptr, sm.dtype.code(), si, sj, dm.rows, dm.cols, false)
}

// ToBF16 returns a new bf16 column-major copy of m (bf16 storage of a
// factor: half the bytes, relative rounding error ≤ 2⁻⁸ per element).
func (b *Backend) ToBF16(m lowrank.Matrix) (*Matrix, error) {
	d := b.mat(m)
	out, err := b.NewMatrix(d.rows, d.cols, BFloat16)
	if err != nil {
		return nil, err
	}
	if err := b.Copy(out, d); err != nil {
		b.Free(out)
		return nil, err
	}
	return out, nil
}
