package gpu

import (
	"math"
	"unsafe"
)

// kernel names an entry point of kernels.cu. Every kernel has exactly one
// typed wrapper below, the only code that launches it; TestKernelList
// checks kernelNames against the extern "C" __global__ functions of
// kernels.cu.
type kernel int

const (
	kCopy2D kernel = iota
	kF32ToBF16
	kGather
	kGatherRows
	kNormal
	kSumsq
	kSumsqF32
	kSumsqBF16
	kSumPartials
	kRowNorms
	kColNorms
	kScale2D
	kNonFinite
	kLUFix
	kCholInv
	kCholInv64
	kSVDEig
	kScaleCols
	kSymmetrize
	kEigResid
	kTrInv
	kTrInv64
	kTrInv64D
	kNSCorr
	kCholBlk64
	kChol64
	kGatherNormRows
	kGatherNormRowsM1 // the variants of gather_norm_rows (Backend.gatherMode)
	kGatherNormRowsM2
	kGatherNormRowsM3
	kGatherNormRowsM4
	kGatherNormRowsM5
	kGatherNormRowsM6
	kGatherNormCols
	kGatherNormColsM1 // the variants of gather_norm_cols (Backend.gatherColsMode)
	kGatherNormColsM2
	kInvertIndex
	kDrawUniform
	kPtrGrid
	kCopyOK
	numKernels
)

// kernelNames are the C names of the kernels, indexed by kernel.
var kernelNames = [numKernels]string{
	kCopy2D: "copy2d", kF32ToBF16: "f32_to_bf16", kGather: "gather", kGatherRows: "gather_rows",
	kNormal: "normal", kSumsq: "sumsq", kSumsqF32: "sumsq_f32", kSumsqBF16: "sumsq_bf16",
	kSumPartials: "sum_partials", kRowNorms: "rownorms", kColNorms: "colnorms", kScale2D: "scale2d",
	kNonFinite: "nonfinite", kLUFix: "lufix", kCholInv: "cholinv", kCholInv64: "cholinv64",
	kSVDEig: "svdeig", kScaleCols: "scalecols", kSymmetrize: "symmetrize", kEigResid: "eigresid", kTrInv: "trinv", kTrInv64: "trinv64", kTrInv64D: "trinv64d",
	kNSCorr: "nscorr", kCholBlk64: "cholblk64", kChol64: "chol64",
	kGatherNormRows: "gather_norm_rows", kGatherNormRowsM1: "gather_norm_rows_m1", kGatherNormRowsM2: "gather_norm_rows_m2",
	kGatherNormRowsM3: "gather_norm_rows_m3", kGatherNormRowsM4: "gather_norm_rows_m4", kGatherNormRowsM5: "gather_norm_rows_m5",
	kGatherNormRowsM6: "gather_norm_rows_m6", kGatherNormCols: "gather_norm_cols",
	kGatherNormColsM1: "gather_norm_cols_m1", kGatherNormColsM2: "gather_norm_cols_m2", kInvertIndex: "invert_index",
	kDrawUniform: "draw_uniform", kPtrGrid: "ptr_grid", kCopyOK: "copy_ok",
}

// largeSmem are the kernels that may use more than 48 KiB of dynamic shared
// memory: Open raises their limit to the device's opt-in maximum.
var largeSmem = []kernel{kCholInv, kCholInv64, kCholBlk64, kChol64, kGatherNormRows, kGatherNormRowsM1, kGatherNormRowsM2,
	kGatherNormRowsM3, kGatherNormRowsM4, kGatherNormRowsM5, kGatherNormRowsM6, kDrawUniform}

// gatherModes is the number of variants of gather_norm_rows, the default
// (mode 0) included: the kernels from kGatherNormRows to kGatherNormCols.
const gatherModes = int(kGatherNormCols - kGatherNormRows)

// gatherColsModes is the number of variants of gather_norm_cols, the
// default (mode 0) included: the kernels from kGatherNormCols to
// kInvertIndex.
const gatherColsModes = int(kInvertIndex - kGatherNormCols)

// dcode is the element-type code of kernels.cu's ld and st.
type dcode uint64

const (
	codeF32  dcode = 0
	codeBF16 dcode = 1
	codeF64  dcode = 2
)

// code returns the kernel type code of t.
func (t DType) code() dcode {
	if t == BFloat16 {
		return codeBF16
	}
	return codeF32
}

// Launch shapes.
const (
	// threads is the block size of the grid-stride kernels.
	threads = 256
	// blockThreads is the block size of the one-block factorisation
	// kernels (cholinv, cholinv64, cholblk64).
	blockThreads = 1024
	// gatherTile is the row tile of gather_rows: a block stages 32 rows of
	// every sample, padded to 33 floats against bank conflicts.
	gatherTile = 33
)

// launch runs kernel k on the stream. Every argument is passed as an
// 8-byte slot: the driver reads sizeof(parameter) bytes from each, which
// for a 4-byte int or float is the low half of the little-endian slot.
func (b *Backend) launch(k kernel, grid, block, shmem int, args ...uint64) error {
	return b.launchY(k, grid, 1, block, shmem, args...)
}

// launchY is launch with a grid of gridY rows (a batch of matrices, each
// kernel documenting its use of blockIdx.y).
func (b *Backend) launchY(k kernel, grid, gridY, block, shmem int, args ...uint64) error {
	copy(b.argv[:], args)
	code := b.api.cuLaunchKernel(b.fn[k], uint32(grid), uint32(gridY), 1, uint32(block), 1, 1, uint32(shmem), b.stream, unsafe.Pointer(&b.argp[0]), 0)
	if code != 0 {
		err := b.api.check(code, "cuLaunchKernel")
		err.(*CUDAError).Detail = "kernel " + kernelNames[k]
		return err
	}
	return nil
}

// grid returns a grid-stride launch size for n elements.
func (b *Backend) grid(n int) int { return max(1, min((n+threads-1)/threads, b.sms*16)) }

func ptr(p uintptr) uint64     { return uint64(p) }
func i64(v int) uint64         { return uint64(int64(v)) }
func f32bits(x float32) uint64 { return uint64(math.Float32bits(x)) }
func f64bits(x float64) uint64 { return math.Float64bits(x) }
func boolArg(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// copy2D sets dst(i, j) = src(i, j) for an r×c matrix, elements at
// p[i·si + j·sj] of their types, converting; with upper, elements below
// the diagonal are written as 0.
func (b *Backend) copy2D(dst uintptr, tdst dcode, dsi, dsj int, src uintptr, tsrc dcode, ssi, ssj, r, c int, upper bool) error {
	return b.launch(kCopy2D, b.grid(r*c), threads, 0, ptr(dst), uint64(tdst), i64(dsi), i64(dsj),
		ptr(src), uint64(tsrc), i64(ssi), i64(ssj), i64(r), i64(c), boolArg(upper), 0, 0, 0)
}

// copy2DBatch is copy2D for n matrices: the i-th written to the address
// at dsts[i] (a device array), read from src + i·ssrc elements.
func (b *Backend) copy2DBatch(dsts uintptr, tdst dcode, dsi, dsj int, src uintptr, tsrc dcode, ssi, ssj, ssrc, r, c, n int) error {
	return b.launchY(kCopy2D, b.grid(r*c), n, threads, 0, 0, uint64(tdst), i64(dsi), i64(dsj),
		ptr(src), uint64(tsrc), i64(ssi), i64(ssj), i64(r), i64(c), 0, ptr(dsts), 0, i64(ssrc))
}

// copyOK copies the float32 r×c column-major src (leading dimension lds)
// to dst (ldd), column block t of l columns only where matrix j0 + t of a
// batched QR took its fast path, by its status words at status (stSlots
// a matrix) and its devInfo at info (kernel copy_ok).
func (b *Backend) copyOK(dst uintptr, ldd int, src uintptr, lds, r, c, l int, status, info uintptr, j0 int) error {
	return b.launch(kCopyOK, min(c, 65535), threads, 0, ptr(dst), i64(ldd), ptr(src), i64(lds), i64(r), i64(c), i64(l),
		ptr(status+4*stFlags), ptr(status+4*stFroNS1), i64(stSlots), ptr(info), i64(j0))
}

// f32ToBF16 rounds n contiguous float32 elements to bf16.
func (b *Backend) f32ToBF16(dst, src uintptr, n int) error {
	return b.launch(kF32ToBF16, b.grid(n), threads, 0, ptr(dst), ptr(src), i64(n))
}

// gather sets dst(r, j) = src[idx[j]·si + r·sj] for r < q, j < l (dst
// float32 with leading dimension ldd; idx a device array of int64).
func (b *Backend) gather(dst uintptr, ldd int, src uintptr, tsrc dcode, si, sj int, idx uintptr, q, l int) error {
	return b.launch(kGather, min(l, 65535), threads, 0, ptr(dst), i64(ldd), ptr(src), uint64(tsrc), i64(si), i64(sj), ptr(idx), i64(q), i64(l))
}

// gatherRowsFits reports whether gather_rows' tile for l samples fits the
// default 48 KiB of shared memory.
func gatherRowsFits(l int) bool { return l*gatherTile*4 <= 48<<10 }

// gatherRows is gather for si = 1, staged through shared memory.
func (b *Backend) gatherRows(dst uintptr, ldd int, src uintptr, tsrc dcode, sj int, idx uintptr, q, l int) error {
	return b.launch(kGatherRows, min((q+31)/32, b.sms*8), threads, l*gatherTile*4, ptr(dst), i64(ldd), ptr(src), uint64(tsrc),
		i64(sj), ptr(idx), i64(q), i64(l))
}

// normal fills the r×c float32 matrix at dst (leading dimension ldd) with
// standard normals keyed by seed.
func (b *Backend) normal(dst uintptr, ldd, r, c int, seed uint64) error {
	return b.launch(kNormal, b.grid(r*c), threads, 0, ptr(dst), i64(ldd), i64(r), i64(c), seed)
}

// sumsqBlocks returns the number of partial sums of the squared-norm
// kernels for n elements.
func (b *Backend) sumsqBlocks(n int) int { return min(b.grid(n), 1024) }

// sumsqBatch writes, for each of n r×c stored matrices (leading dimension
// ld) at the addresses srcs[i] (a device array; 0: one matrix at src), nb
// partial sums of (scale·x)² and nb partial maxima of |x| into partial,
// each matrix's 2·nb after the previous one's (kernel sumsq).
func (b *Backend) sumsqBatch(partial uintptr, nb int, src, srcs uintptr, tsrc dcode, ld, r, c int, scale float64, n int) error {
	return b.launchY(kSumsq, nb, n, threads, 0, ptr(partial), ptr(src), uint64(tsrc), i64(ld), i64(r), i64(c), f64bits(scale), ptr(srcs))
}

// sumsqContig is sumsqBatch for cnt contiguous, 16-byte aligned matrices
// of n elements, with 16-byte loads: kernel k is sumsq_f32 or sumsq_bf16.
func (b *Backend) sumsqContig(k kernel, partial uintptr, nb int, src, srcs uintptr, n int, scale float64, cnt int) error {
	return b.launchY(k, nb, cnt, threads, 0, ptr(partial), ptr(src), i64(n), f64bits(scale), ptr(srcs))
}

// sumPartials writes out[0] = Σ partial[0:n] and out[1] = max partial[n:2n].
func (b *Backend) sumPartials(out, partial uintptr, n int) error {
	return b.sumPartialsBatch(out, partial, n, 1)
}

// sumPartialsBatch is sumPartials for cnt matrices (outputs two elements
// apart, partials 2n apart).
func (b *Backend) sumPartialsBatch(out, partial uintptr, n, cnt int) error {
	return b.launchY(kSumPartials, 1, cnt, threads, 0, ptr(out), ptr(partial), i64(n))
}

// rowNorms writes out[i] = Σ_j (scale·src(i, j))² for the r×c stored
// matrix.
func (b *Backend) rowNorms(out, src uintptr, tsrc dcode, ld, r, c int, scale float64) error {
	return b.launch(kRowNorms, b.grid(r), threads, 0, ptr(out), ptr(src), uint64(tsrc), i64(ld), i64(r), i64(c), f64bits(scale))
}

// colNorms writes out[j] = Σ_i (scale·src(i, j))².
func (b *Backend) colNorms(out, src uintptr, tsrc dcode, ld, r, c int, scale float64) error {
	return b.launch(kColNorms, min(c, b.sms*8), threads, 0, ptr(out), ptr(src), uint64(tsrc), i64(ld), i64(r), i64(c), f64bits(scale))
}

// scale2D multiplies the r×c float32 column-major matrix at a by alpha.
func (b *Backend) scale2D(a uintptr, lda, r, c int, alpha float64) error {
	return b.launch(kScale2D, b.grid(r*c), threads, 0, ptr(a), i64(lda), i64(r), i64(c), f64bits(alpha))
}

// nonFinite sets *first to the smallest row-major index (logical, lc
// columns) of a non-finite element of the r×c stored matrix; *first must
// be preset to ^0.
func (b *Backend) nonFinite(first, src uintptr, tsrc dcode, ld, r, c int, trans bool, lc int) error {
	return b.launch(kNonFinite, b.grid(r*c), threads, 0, ptr(first), ptr(src), uint64(tsrc), i64(ld), i64(r), i64(c), boolArg(trans), i64(lc))
}

// luFix turns getrf's output (p×l, 1-based pivots ipiv) into the unit
// lower trapezoidal L with the interchanges undone.
func (b *Backend) luFix(a uintptr, lda, p, l int, ipiv uintptr) error {
	return b.launch(kLUFix, (l+127)/128, 128, 0, ptr(a), i64(lda), i64(p), i64(l), ptr(ipiv))
}

// cholInv is the one-block Cholesky (and inverse, if inv) of the float32
// Gram matrix g; see kernels.cu.
func (b *Backend) cholInv(g uintptr, ldg, l int, rinv uintptr, ldr int, r uintptr, ldrr int, shift, rel float32, status uintptr, inv bool) error {
	return b.launch(kCholInv, 1, blockThreads, cholSmem(l, 4, inv), ptr(g), i64(ldg), i64(l), ptr(rinv), i64(ldr), ptr(r), i64(ldrr),
		f32bits(shift), f32bits(rel), ptr(status), boolArg(inv))
}

// cholInv64 is cholInv on a float64 Gram matrix, always with the inverse.
func (b *Backend) cholInv64(g uintptr, ldg, l int, rinv uintptr, ldr int, r uintptr, ldrr int, shift, rel float64, status uintptr) error {
	return b.launch(kCholInv64, 1, blockThreads, cholSmem(l, 8, true), ptr(g), i64(ldg), i64(l), ptr(rinv), i64(ldr), ptr(r), i64(ldrr),
		f64bits(shift), f64bits(rel), ptr(status), 1)
}

// svdEig writes the k largest singular values and their right singular
// vectors from the c ascending eigenpairs (w, v: n×c) of an n×n Gram
// matrix, c = n (all of them) or k (the k largest).
func (b *Backend) svdEig(s, vk uintptr, ldk int, w, v uintptr, ldv, n, k, c int) error {
	return b.launch(kSVDEig, b.grid(n*k), threads, 0, ptr(s), ptr(vk), i64(ldk), ptr(w), ptr(v), i64(ldv), i64(n), i64(k), i64(c))
}

// scaleCols sets u(i, j) = x(i, j)/s[j] (0 where s[j] = 0), u float32 and
// x float64, m×k.
func (b *Backend) scaleCols(u uintptr, ldu int, x uintptr, ldx int, s uintptr, m, k int) error {
	return b.launch(kScaleCols, b.grid(m*k), threads, 0, ptr(u), i64(ldu), ptr(x), i64(ldx), ptr(s), i64(m), i64(k))
}

// symmetrize copies the upper triangle of the n×n float64 g (leading
// dimension n) into its lower triangle.
func (b *Backend) symmetrize(g uintptr, n int) error {
	return b.launch(kSymmetrize, b.grid(n*n), threads, 0, ptr(g), i64(n))
}

// eigResid writes out[j] = ‖x_j − s_j²·v_j‖² for the columns of the n×k
// float64 x and v (leading dimension ld).
func (b *Backend) eigResid(out, x, v uintptr, ld int, s uintptr, n, k int) error {
	return b.launch(kEigResid, min(k, 65535), threads, 0, ptr(out), ptr(x), ptr(v), i64(ld), ptr(s), i64(n), i64(k))
}

// trInv writes R⁻¹ of the float32 upper triangular l×l r into rinv.
func (b *Backend) trInv(rinv uintptr, ldr int, r uintptr, ldrr, l int) error {
	return b.launch(kTrInv, l, 128, l*4, ptr(rinv), i64(ldr), ptr(r), i64(ldrr), i64(l))
}

// trInv64 writes R⁻¹ (float32) of the float64 upper triangular l×l r.
func (b *Backend) trInv64(rinv uintptr, ldr int, r uintptr, ldrr, l int) error {
	return b.trInv64Batch(rinv, ldr, 0, r, ldrr, 0, l, 1)
}

// trInv64Batch is trInv64 for n triangles, the i-th at r + i·sr elements,
// its inverse at rinv + i·srinv.
func (b *Backend) trInv64Batch(rinv uintptr, ldr, srinv int, r uintptr, ldrr, sr, l, n int) error {
	return b.launchY(kTrInv64, l, n, l, 2*l*8, ptr(rinv), i64(ldr), ptr(r), i64(ldrr), i64(l), i64(srinv), i64(sr))
}

// trInv64D writes R⁻¹ (float64, zeros below the diagonal) of the float64
// upper triangular l×l r, l ≤ 1024 (one thread per row).
func (b *Backend) trInv64D(rinv uintptr, ldr int, r uintptr, ldrr, l int) error {
	return b.launchY(kTrInv64D, l, 1, l, 2*l*8, ptr(rinv), i64(ldr), ptr(r), i64(ldrr), i64(l), i64(0), i64(0))
}

// ptrGrid writes MulBatchedGrid's three address arrays of count·count2
// entries each into out: a's, b's, then c's (kernel ptr_grid).
func (b *Backend) ptrGrid(out uintptr, count, count2 int, a *Matrix, sa, ta int, bm *Matrix, sb, tb int, c *Matrix, sc, tc int) error {
	return b.launch(kPtrGrid, b.grid(count*count2), threads, 0, ptr(out), ptr(a.ptr), i64(sa), i64(ta), ptr(bm.ptr), i64(sb), i64(tb),
		ptr(c.ptr), i64(sc), i64(tc), i64(count), i64(count2), i64(a.dtype.Size()), i64(c.dtype.Size()))
}

// nsCorr forms the polynomial correction X from G = QᵀQ and H = G²; see
// kernels.cu.
func (b *Backend) nsCorr(x, g, h uintptr, l int, dev, fro, flags uintptr) error {
	return b.nsCorrBatch(x, g, h, l, dev, fro, flags, 0, 0, 1)
}

// nsCorrBatch is nsCorr for n matrices, the i-th's X, G and H sm elements
// and its status words ss ints after the (i−1)-th's.
func (b *Backend) nsCorrBatch(x, g, h uintptr, l int, dev, fro, flags uintptr, sm, ss, n int) error {
	return b.launchY(kNSCorr, b.grid(l*l), n, threads, 0, ptr(x), ptr(g), ptr(h), i64(l), ptr(dev), ptr(fro), ptr(flags), i64(sm), i64(ss))
}

// cholBlk64 writes into the upper triangle of r the upper Cholesky factor
// of the l×l float64 Gram matrix whose upper triangle is in g0 (a separate
// buffer: a retry with the shift restarts from it), in one block
// (kernel cholblk64); info is set to 1 if even the shifted matrix breaks
// down.
func (b *Backend) cholBlk64(g0 uintptr, ld0 int, r uintptr, ldr, l int, shift, rel float64, info uintptr) error {
	return b.launch(kCholBlk64, 1, cholBlkThreads, cholBlkSmem(l), ptr(g0), i64(ld0), ptr(r), i64(ldr), i64(l), f64bits(shift), f64bits(rel), ptr(info))
}

// cholBlkThreads is cholblk64's block size (CHB_THREADS in kernels.cu):
// 512 threads leave each 128 registers for the 32-element columns of
// warp 0's register-resident diagonal block.
const cholBlkThreads = 512

// cholBlkMax is the largest ℓ cholblk64 serves: its panel rows take
// 32·ℓ float64 elements of shared memory.
const cholBlkMax = 512

// cholBlkSmem returns cholblk64's dynamic shared memory for ℓ: the 32×32
// diagonal block and its inverse, the diagonal, and 32 panel rows of
// stride ℓ rounded up to even, with 64 elements of slack for the tiles
// that reach past the trailing matrix's edge.
func cholBlkSmem(l int) int {
	lp := (l + 1) &^ 1
	return (2*32*32 + lp + 32*lp + 64) * 8
}

// chol64 factors in place the n float64 l×l matrices at g (leading
// dimension l, s elements apart) into their upper Cholesky factors, as
// cuSOLVER's potrf does, with info[i] (n int32) its devInfo: one block a
// matrix (kernel chol64).
func (b *Backend) chol64(g uintptr, l, s int, info uintptr, n int) error {
	return b.launch(kChol64, n, chol64Threads, chol64Smem(l), ptr(g), i64(l), i64(s), i64(l), ptr(info))
}

// chol64Threads is chol64's block size (CH64_THREADS in kernels.cu): 256
// threads leave each the registers of its 8×8 float64 tile.
const chol64Threads = 256

// chol64Smem returns chol64's dynamic shared memory for ℓ: the 32×32
// diagonal block and its pivots' reciprocals, and 32 panel rows of stride
// ℓ rounded up to 8.
func chol64Smem(l int) int { return (32*32 + 32 + 32*((l+7)&^7)) * 8 }

// chol64Max is the largest ℓ whose float64 Gram matrices chol64 factors
// in a batch of several (one block each); above it cuSOLVER's batched
// potrf does. On an H100 (TestProfileChol64, device time with a product
// queued ahead; docs/gpu.md, "chol64") four matrices took 62 against the
// batched potrf's 127 µs at ℓ = 115, 199 against 279 at 231 and 246
// against 296 at 256 (and, before the twenty-fifth session's diagonal
// block, 670 against 500 at 384).
const chol64Max = 256

// chol64OneMax is the largest ℓ whose one float64 Gram matrix chol64
// factors (the single QR's float64 pass, orth64); above it cuSOLVER's
// dpotrf does. On the same H100 one matrix took 13 against dpotrf's 21 µs
// at ℓ = 32, 31 against 45 at 64, 62 against 104 at 115, 197 against 216
// at 231, and 245 against 192 at 256, where dpotrf's blocked steps on the
// whole device win over chol64's one multiprocessor.
const chol64OneMax = 231

// useChol64 reports whether n float64 Gram matrices of width l are
// factored by chol64 rather than cuSOLVER (the test switch libPotrf:
// never).
func (b *Backend) useChol64(l, n int) bool {
	lmax := chol64Max
	if n == 1 {
		lmax = chol64OneMax
	}
	return !b.libPotrf && n >= 1 && l <= lmax && chol64Smem(l) <= b.smemMax
}

// potrfOne factors the one l×l float64 Gram matrix g (leading dimension
// l, upper triangle) in place, potrf's devInfo into info: by chol64 where
// useChol64, else by dpotrf with the workspace w of lw elements from
// potrfWork (unused by chol64).
func (b *Backend) potrfOne(g uintptr, l int, w uintptr, lw int32, info uintptr) error {
	if b.useChol64(l, 1) {
		return b.chol64(g, l, l*l, info, 1)
	}
	return checkSolver(b.api.cusolverDnDpotrf(b.solver, cublasFillUpper, int32(l), g, int32(l), w, lw, info), "cusolverDnDpotrf")
}

// gatherNormThreads is the block size of the fused first read (eight
// warps, each reading one stored column at a time).
const gatherNormThreads = 256

// gatherNormSmem returns the dynamic shared memory of gather_norm_rows for
// l samples of sr stored rows: the tile (33 floats per sample), the bitmap
// of sampled rows and the row → sample map (int16).
func gatherNormSmem(l, sr int) int { return 4*gatherTile*l + 4*((sr+31)/32) + 2*sr }

// gatherNormRows is the fused read when the samples are stored rows:
// dst(c, j) = src(idx[j], c) and nb partial sums and maxima into partial.
func (b *Backend) gatherNormRows(partial uintptr, nb int, dst uintptr, ldd int, src uintptr, tsrc dcode, ld, sr, sc int, idx uintptr, l int, vec bool) error {
	return b.gatherNormRowsBatch(partial, nb, dst, codeF32, ldd, 0, src, 0, tsrc, ld, sr, sc, idx, l, vec, 1)
}

// gatherNormRowsBatch is gatherNormRows for n matrices at the addresses
// srcs[i] (a device array; 0: one matrix at src), the i-th Ω at dst +
// i·sdst elements of type tdst (codeF32, or codeBF16), its indices at
// idx + i·l.
func (b *Backend) gatherNormRowsBatch(partial uintptr, nb int, dst uintptr, tdst dcode, ldd, sdst int, src, srcs uintptr, tsrc dcode, ld, sr, sc int, idx uintptr, l int, vec bool, n int) error {
	return b.launchY(kGatherNormRows+kernel(b.gatherMode), nb, n, gatherNormThreads, gatherNormSmem(l, sr), ptr(partial), ptr(dst), i64(ldd), ptr(src), uint64(tsrc),
		i64(ld), i64(sr), i64(sc), ptr(idx), i64(l), boolArg(vec), ptr(srcs), i64(sdst), i64(l), uint64(tdst))
}

// gatherNormCols is the fused read when the samples are stored columns:
// dst(i, j) = src(i, c) for cmap[c] = j ≥ 0.
func (b *Backend) gatherNormCols(partial uintptr, nb int, dst uintptr, ldd int, src uintptr, tsrc dcode, ld, sr, sc int, cmap uintptr, vec bool) error {
	return b.gatherNormColsBatch(partial, nb, dst, ldd, 0, src, 0, tsrc, ld, sr, sc, cmap, vec, 1)
}

// gatherNormColsBatch is gatherNormCols for n matrices as
// gatherNormRowsBatch, the i-th column map at cmap + i·sc.
func (b *Backend) gatherNormColsBatch(partial uintptr, nb int, dst uintptr, ldd, sdst int, src, srcs uintptr, tsrc dcode, ld, sr, sc int, cmap uintptr, vec bool, n int) error {
	return b.launchY(kGatherNormCols+kernel(b.gatherColsMode), nb, n, gatherNormThreads, 0, ptr(partial), ptr(dst), i64(ldd), ptr(src), uint64(tsrc),
		i64(ld), i64(sr), i64(sc), ptr(cmap), boolArg(vec), ptr(srcs), i64(sdst), i64(sc))
}

// invertIndex sets cmap[idx[j]] = j for j < l (cmap preset to −1).
func (b *Backend) invertIndex(cmap, idx uintptr, l int) error {
	return b.invertIndexBatch(cmap, 0, idx, l, 1)
}

// invertIndexBatch is invertIndex for n index lists (l apart) into n maps
// (smap apart).
func (b *Backend) invertIndexBatch(cmap uintptr, smap int, idx uintptr, l, n int) error {
	return b.launchY(kInvertIndex, max(1, min((l+threads-1)/threads, 64)), n, threads, 0, ptr(cmap), ptr(idx), i64(l), i64(smap))
}
