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
// kernel is grid-stride with one thread per group or element and no
// shared memory; a thread writes only the bytes of its own group (blocks
// of 4-bit codes start on a byte: the Go side requires block even), so
// no two threads write one byte.
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

// quant_cols: the r×c matrix src(i, j) = src[i*si + j*sj] (type tsrc) in
// 8 bits with one scale per column; one thread per column.
extern "C" __global__ void quant_cols(unsigned char* q, float* scale, const void* src, int tsrc, long long si, long long sj,
                                      int r, int c, long long rowBytes) {
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < c; j += (long long)gridDim.x * blockDim.x) {
        double amax = 0.0;
        for (long long i = 0; i < r; i++) amax = fmax(amax, fabs(q_ld(src, tsrc, i * si + j * sj)));
        float s = q_scale(amax, 127.0);
        scale[j] = s;
        for (long long i = 0; i < r; i++) q_put(q, rowBytes, 8, i, j, q_round(q_ld(src, tsrc, i * si + j * sj), s, 127.0));
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
