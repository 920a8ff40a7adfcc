// Kernels of quantized device storage (quant.go): integer codes with
// float32 scales, in the layout of package activation's host storage, so
// that a test can compare the bytes. They are a module of their own,
// compiled by NVRTC on first use (a device that never quantizes never
// compiles them); each has one typed Go wrapper in quant.go, and
// TestQuantKernelList checks that the two lists agree.
//
// Layout of an r×c quantized matrix: row i at byte i*rowBytes, rowBytes =
// ceil(c*bits/8); 8 bits: element j is the signed byte at j; 4 bits:
// element j is in byte j/2, the low nibble for even j, two's complement.
// Scales: one per column (percol) or one per block of `block` consecutive
// elements of a row, at i*nb + j/block with nb = ceil(c/block). Every
// kernel is grid-stride, over groups, warps or tiles of elements (each
// says which); a thread writes only bytes of its own group or elements
// (blocks of 4-bit codes start on a byte: the Go side requires block
// even), so no two threads write one byte.
//
// Rounding, as on the host (activation/quant.go): the scale is
// max|x|/qmax rounded up to float32 (__double2float_ru), so |x/s| <= qmax;
// the code is round(x/s) in double, halfway cases away from zero as Go's
// math.Round, clamped to [-qmax, qmax]: |s*q - x| <= s/2 (1 + 2 qmax 2^-53).

typedef unsigned short bf16;

__device__ __forceinline__ float q_bf2f(bf16 h) { return __int_as_float(((unsigned)h) << 16); }

__device__ __forceinline__ bf16 q_f2bf(float x) {
    unsigned b = __float_as_uint(x);
    if (x != x) return (bf16)((b >> 16) | 0x40);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (bf16)(b >> 16);
}

// Element loads and stores by type code: 0 = float32, 1 = bf16.
__device__ __forceinline__ double q_ld(const void* p, int t, long long e) {
    if (t == 0) return ((const float*)p)[e];
    return q_bf2f(((const bf16*)p)[e]);
}

__device__ __forceinline__ void q_st(void* p, int t, long long e, double v) {
    if (t == 0) ((float*)p)[e] = (float)v;
    else ((bf16*)p)[e] = q_f2bf((float)v);
}

__device__ __forceinline__ float q_scale(double amax, double qmax) {
    if (amax == 0.0) return 0.0f;
    return __double2float_ru(amax / qmax);
}

__device__ __forceinline__ int q_round(double x, float s, double qmax) {
    if (s == 0.0f) return 0;
    double v = round(x / (double)s);
    if (v > qmax) v = qmax;
    if (v < -qmax) v = -qmax;
    return (int)v;
}

__device__ __forceinline__ void q_put(unsigned char* q, long long rowBytes, int bits, long long i, long long j, int v) {
    if (bits == 8) {
        q[i * rowBytes + j] = (unsigned char)v;
        return;
    }
    unsigned char* b = q + i * rowBytes + j / 2;
    if ((j & 1) == 0) *b = (unsigned char)((*b & 0xf0) | (v & 0x0f));
    else *b = (unsigned char)((*b & 0x0f) | ((v & 0x0f) << 4));
}

__device__ __forceinline__ int q_get(const unsigned char* q, long long rowBytes, int bits, long long i, long long j) {
    if (bits == 8) return (int)(signed char)q[i * rowBytes + j];
    int b = q[i * rowBytes + j / 2];
    int nib = (j & 1) == 0 ? (b & 0x0f) : (b >> 4);
    return nib >= 8 ? nib - 16 : nib;
}

// Per-column int8 (the factor P, L×k: few columns, many rows) in three
// steps, so that the rows are read in parallel rather than by one thread
// per column: quant_amax_cols collects max|x| of each column as float32
// bits into scale (zeroed first; the bits of non-negative floats order as
// their values, so an unsigned atomicMax is the maximum, exact and
// independent of the order; NaN is skipped, as fmax skips it),
// quant_scale_cols turns them into the scales, and quant_put_cols writes
// the codes. A block covers 32 columns and a range of rows: with unit row
// stride (column-major) its lanes run down the rows, otherwise along the
// row, so that a warp's loads are coalesced either way.
__device__ __forceinline__ void q_tile(long long si, long long sj, int& colMajor, int& tf, int& ts) {
    colMajor = si == 1 && sj != 1;
    int t = threadIdx.x;
    tf = t & 31; // fast lane
    ts = t >> 5; // slow lane, 0..7
}

extern "C" __global__ void quant_amax_cols(unsigned* amax, const void* src, int tsrc, long long si, long long sj,
                                           int r, int c) {
    __shared__ unsigned smax[32];
    int colMajor, tf, ts;
    q_tile(si, sj, colMajor, tf, ts);
    if (threadIdx.x < 32) smax[threadIdx.x] = 0;
    __syncthreads();
    long long j0 = (long long)blockIdx.x * 32;
    if (!colMajor) {
        long long j = j0 + tf;
        unsigned m = 0;
        if (j < c)
            for (long long i = (long long)blockIdx.y * 8 + ts; i < r; i += (long long)gridDim.y * 8) {
                double x = q_ld(src, tsrc, i * si + j * sj);
                if (x == x) m = max(m, __float_as_uint((float)fabs(x)));
            }
        atomicMax(&smax[tf], m);
    } else {
        for (int jj = ts; jj < 32; jj += 8) {
            long long j = j0 + jj;
            if (j >= c) break;
            unsigned m = 0;
            for (long long i = (long long)blockIdx.y * 32 + tf; i < r; i += (long long)gridDim.y * 32) {
                double x = q_ld(src, tsrc, i * si + j * sj);
                if (x == x) m = max(m, __float_as_uint((float)fabs(x)));
            }
            atomicMax(&smax[jj], m);
        }
    }
    __syncthreads();
    if (threadIdx.x < 32 && j0 + threadIdx.x < c && smax[threadIdx.x] != 0) atomicMax(&amax[j0 + threadIdx.x], smax[threadIdx.x]);
}

// quant_scale_cols: scale[j] = the scale of the maximum quant_amax_cols left
// in its place (as bits); one thread per column.
extern "C" __global__ void quant_scale_cols(float* scale, int c) {
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < c; j += (long long)gridDim.x * blockDim.x)
        scale[j] = q_scale((double)scale[j], 127.0);
}

// quant_put_cols: the codes of the r×c src with the column scales; a
// block covers 32 columns and a range of rows, as quant_amax_cols.
extern "C" __global__ void quant_put_cols(unsigned char* q, const float* scale, const void* src, int tsrc, long long si,
                                          long long sj, int r, int c, long long rowBytes) {
    int colMajor, tf, ts;
    q_tile(si, sj, colMajor, tf, ts);
    long long j0 = (long long)blockIdx.x * 32;
    if (!colMajor) {
        long long j = j0 + tf;
        if (j >= c) return;
        float s = scale[j];
        for (long long i = (long long)blockIdx.y * 8 + ts; i < r; i += (long long)gridDim.y * 8)
            q_put(q, rowBytes, 8, i, j, q_round(q_ld(src, tsrc, i * si + j * sj), s, 127.0));
        return;
    }
    for (int jj = ts; jj < 32; jj += 8) {
        long long j = j0 + jj;
        if (j >= c) return;
        float s = scale[j];
        for (long long i = (long long)blockIdx.y * 32 + tf; i < r; i += (long long)gridDim.y * 32)
            q_put(q, rowBytes, 8, i, j, q_round(q_ld(src, tsrc, i * si + j * sj), s, 127.0));
    }
}

// quant_rows: rows [i0, i0+rows) of the quantized matrix (c columns, bits
// 4 or 8, one scale per block of a row) from the rows×c src; one thread
// per (row, block), consecutive threads on consecutive rows. If gerr is
// not null, gerr[i*nb + b] = sqrt(sum (s*q - x)^2) over the block.
extern "C" __global__ void quant_rows(unsigned char* q, float* scale, float* gerr, const void* src, int tsrc,
                                      long long si, long long sj, int i0, int rows, int c, long long rowBytes,
                                      int bits, int block) {
    long long nb = (c + block - 1) / block;
    double qmax = bits == 8 ? 127.0 : 7.0;
    long long n = (long long)rows * nb;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
        long long il = t % rows, b = t / rows, i = i0 + il;
        long long j0 = b * block, j1 = j0 + block < c ? j0 + block : c;
        double amax = 0.0;
        for (long long j = j0; j < j1; j++) amax = fmax(amax, fabs(q_ld(src, tsrc, il * si + j * sj)));
        float s = q_scale(amax, qmax);
        scale[i * nb + b] = s;
        double e2 = 0.0;
        for (long long j = j0; j < j1; j++) {
            double x = q_ld(src, tsrc, il * si + j * sj);
            int v = q_round(x, s, qmax);
            q_put(q, rowBytes, bits, i, j, v);
            double d = (double)s * (double)v - x;
            e2 += d * d;
        }
        if (gerr) gerr[i * nb + b] = (float)sqrt(e2);
    }
}

// quant_rows_warp: quant_rows with one warp per (row, block), for blocks
// of 32 elements or more: the lanes share a block's elements (with 4 bits,
// pairs of them, so that each byte has one writer), the maximum and the
// squared error are combined across the warp by shuffles. The maximum, so
// the scale and every code, is that of quant_rows; the error sums its
// terms in another order.
extern "C" __global__ void quant_rows_warp(unsigned char* q, float* scale, float* gerr, const void* src, int tsrc,
                                           long long si, long long sj, int i0, int rows, int c, long long rowBytes,
                                           int bits, int block) {
    long long nb = (c + block - 1) / block;
    double qmax = bits == 8 ? 127.0 : 7.0;
    long long n = (long long)rows * nb;
    int lane = threadIdx.x & 31;
    long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long t = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5); t < n; t += warps) {
        long long il = t % rows, b = t / rows, i = i0 + il;
        long long j0 = b * block, j1 = j0 + block < c ? j0 + block : c;
        double amax = 0.0;
        for (long long j = j0 + lane; j < j1; j += 32) amax = fmax(amax, fabs(q_ld(src, tsrc, il * si + j * sj)));
        for (int o = 16; o > 0; o >>= 1) amax = fmax(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        float s = q_scale(amax, qmax);
        if (lane == 0) scale[i * nb + b] = s;
        double e2 = 0.0;
        if (bits == 8) {
            for (long long j = j0 + lane; j < j1; j += 32) {
                double x = q_ld(src, tsrc, il * si + j * sj);
                int v = q_round(x, s, qmax);
                q[i * rowBytes + j] = (unsigned char)v;
                double d = (double)s * (double)v - x;
                e2 += d * d;
            }
        } else {
            for (long long j = j0 + 2 * lane; j < j1; j += 64) {
                double x = q_ld(src, tsrc, il * si + j * sj);
                int v0 = q_round(x, s, qmax), v1 = 0;
                double d = (double)s * (double)v0 - x;
                e2 += d * d;
                if (j + 1 < j1) {
                    x = q_ld(src, tsrc, il * si + (j + 1) * sj);
                    v1 = q_round(x, s, qmax);
                    d = (double)s * (double)v1 - x;
                    e2 += d * d;
                }
                q[i * rowBytes + j / 2] = (unsigned char)((v0 & 0x0f) | ((v1 & 0x0f) << 4));
            }
        }
        for (int o = 16; o > 0; o >>= 1) e2 += __shfl_xor_sync(0xffffffffu, e2, o);
        if (gerr && lane == 0) gerr[i * nb + b] = (float)sqrt(e2);
    }
}

// dequant: dst(il, j) = s*q(i0+il, j) for il < rows, j < c, or with add
// dst += s*q, dst(il, j) at dst[il*dsi + j*dsj] (type tdst); percol
// selects the scale layout. One thread per element, consecutive threads
// down a column.
extern "C" __global__ void dequant(void* dst, int tdst, long long dsi, long long dsj, const unsigned char* q,
                                   const float* scale, int i0, int rows, int c, long long rowBytes, int bits,
                                   int block, int percol, int add) {
    long long nb = (c + block - 1) / block;
    long long n = (long long)rows * c;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long il = e % rows, j = e / rows, i = i0 + il;
        float s = percol ? scale[j] : scale[i * nb + j / block];
        double v = (double)s * (double)q_get(q, rowBytes, bits, i, j);
        long long o = il * dsi + j * dsj;
        if (add) v += q_ld(dst, tdst, o);
        q_st(dst, tdst, o, v);
    }
}
