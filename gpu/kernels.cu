// Kernels of package gpu, compiled at run time by NVRTC (module.go); each
// has one typed Go wrapper in kernels.go, and a test checks that the two
// lists agree.
// No header is included: bf16 values are handled as their bit patterns
// (unsigned short), converted with round-to-nearest-even as in
// lowrank.ToBF16. Matrices are column-major with a leading dimension;
// element (i, j) of a matrix described by (ptr, si, sj) is ptr[i*si + j*sj],
// which covers transposed views without a copy.

typedef unsigned short bf16;

__device__ __forceinline__ float bf2f(bf16 h) { return __int_as_float(((unsigned)h) << 16); }

__device__ __forceinline__ bf16 f2bf(float x) {
    unsigned b = __float_as_uint(x);
    if (x != x) return (bf16)((b >> 16) | 0x40);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (bf16)(b >> 16);
}

// Element loads and stores by type code: 0 = float32, 1 = bf16, 2 = float64.
__device__ __forceinline__ double ld(const void* p, int t, long long e) {
    if (t == 0) return ((const float*)p)[e];
    if (t == 1) return bf2f(((const bf16*)p)[e]);
    return ((const double*)p)[e];
}

__device__ __forceinline__ void st(void* p, int t, long long e, double v) {
    if (t == 0) ((float*)p)[e] = (float)v;
    else if (t == 1) ((bf16*)p)[e] = f2bf((float)v);
    else ((double*)p)[e] = v;
}

// esize returns the bytes of an element of type code t.
__device__ __forceinline__ long long esize(int t) { return t == 0 ? 4 : (t == 1 ? 2 : 8); }

// copy2d: dst(i, j) = src(i, j) for an r×c matrix, converting types. If
// tri is 1, elements below the diagonal are written as 0 (upper triangle).
//
// A batch (gridDim.y matrices) writes dsts[blockIdx.y] (dsts not null) or
// dst + blockIdx.y·sdst, from src + blockIdx.y·ssrc (elements).
extern "C" __global__ void copy2d(void* dst, int tdst, long long dsi, long long dsj,
                                  const void* src, int tsrc, long long ssi, long long ssj,
                                  int r, int c, int tri, const unsigned long long* dsts, long long sdst, long long ssrc) {
    dst = dsts ? (void*)dsts[blockIdx.y] : (void*)((char*)dst + blockIdx.y * sdst * esize(tdst));
    src = (const void*)((const char*)src + blockIdx.y * ssrc * esize(tsrc));
    // One block per column (grid-stride over columns), threads down it:
    // coalesced for column-major operands, and no 64-bit division.
    for (long long j = blockIdx.x; j < c; j += gridDim.x) {
        for (long long i = threadIdx.x; i < r; i += blockDim.x) {
            double v = (tri && i > j) ? 0.0 : ld(src, tsrc, i * ssi + j * ssj);
            st(dst, tdst, i * dsi + j * dsj, v);
        }
    }
}

// copy_ok: dst(i, j) = src(i, j) for the float32 r×c column-major
// matrices (leading dimensions ldd, lds) whose columns are blocks of l,
// block t the matrix j0 + t of a batched QR, copied only where that
// matrix's fast path succeeded (QRBatchDeferred): its flags (a stride of
// ss ints) and devInfo zero and √‖G − I‖_F² ≤ 0.02, the host's fastOK in
// double precision (a NaN fails).
extern "C" __global__ void copy_ok(float* dst, long long ldd, const float* src, long long lds, int r, int c, int l,
                                   const int* flags, const float* fro, int ss, const int* info, int j0) {
    for (long long j = blockIdx.x; j < c; j += gridDim.x) {
        int m = j0 + (int)(j / l);
        if (flags[(long long)m * ss] != 0 || info[m] != 0 || !(sqrt((double)fro[(long long)m * ss]) <= 0.02)) continue;
        for (long long i = threadIdx.x; i < r; i += blockDim.x) dst[i + j * ldd] = src[i + j * lds];
    }
}

// Fast contiguous casts for the products: n elements.
extern "C" __global__ void f32_to_bf16(bf16* dst, const float* src, long long n) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x)
        dst[e] = f2bf(src[e]);
}

// gather: dst(r, j) = src(idx[j], r) for r < q, j < l, where src(i, r) is
// src[i*si + r*sj]. dst is float32 with leading dimension ldd.
extern "C" __global__ void gather(float* dst, long long ldd, const void* src, int tsrc, long long si, long long sj,
                                  const long long* idx, int q, int l) {
    // One block per column j of dst, threads down it.
    for (long long j = blockIdx.x; j < l; j += gridDim.x) {
        long long base = idx[j] * si;
        for (long long r = threadIdx.x; r < q; r += blockDim.x)
            dst[r + j * ldd] = (float)ld(src, tsrc, base + r * sj);
    }
}

// gather_rows: the same for si = 1 (rows of a column-major stored matrix,
// the row-major activation's columns): a block stages a 32-row tile
// (r0..r0+31 of dst) for all l samples in shared memory, reading with one
// thread per sample and writing 128-byte coalesced rows of dst.
extern "C" __global__ void gather_rows(float* dst, long long ldd, const void* src, int tsrc, long long sj,
                                       const long long* idx, int q, int l) {
    extern __shared__ float tile[]; // [l][33]
    for (long long r0 = (long long)blockIdx.x * 32; r0 < q; r0 += (long long)gridDim.x * 32) {
        for (int j = threadIdx.x; j < l; j += blockDim.x) {
            long long base = idx[j];
            #pragma unroll 8
            for (int rr = 0; rr < 32; rr++) {
                long long r = r0 + rr;
                tile[j * 33 + rr] = r < q ? (float)ld(src, tsrc, base + r * sj) : 0.0f;
            }
        }
        __syncthreads();
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
        for (int j = warp; j < l; j += nw) {
            long long r = r0 + lane;
            if (r < q) dst[r + j * ldd] = tile[j * 33 + lane];
        }
        __syncthreads();
    }
}

// Counter-based normal generator: a SplitMix64 hash of (seed, element)
// gives two uniforms, Box–Muller gives one normal. Deterministic in seed.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

extern "C" __global__ void normal(float* dst, long long ldd, int r, int c, unsigned long long seed) {
    long long n = (long long)r * c;
    unsigned long long s = mix64(seed);
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % r, j = e / r;
        unsigned long long h = mix64(s ^ mix64((unsigned long long)e));
        // 53-bit uniforms in (0, 1] and [0, 1).
        double u1 = ((double)(h >> 11) + 1.0) * 0x1p-53;
        double u2 = (double)(mix64(h) >> 11) * 0x1p-53;
        dst[i + j * ldd] = (float)(sqrt(-2.0 * log(u1)) * cospi(2.0 * u2));
    }
}

// Block reductions of a per-thread sum and maximum into partial[blockIdx.x]
// and partial[gridDim.x + blockIdx.x]; fmax ignores NaN, which the sum
// carries (NaN² = NaN).
__device__ __forceinline__ void block_sum_max(double* partial, double acc, double mx) {
    __shared__ double sh[32], shm[32];
    for (int o = 16; o > 0; o >>= 1) {
        acc += __shfl_down_sync(0xffffffffu, acc, o);
        mx = fmax(mx, __shfl_down_sync(0xffffffffu, mx, o));
    }
    if ((threadIdx.x & 31) == 0) { sh[threadIdx.x >> 5] = acc; shm[threadIdx.x >> 5] = mx; }
    __syncthreads();
    if (threadIdx.x < 32) {
        bool in = threadIdx.x < (blockDim.x >> 5);
        acc = in ? sh[threadIdx.x] : 0.0;
        mx = in ? shm[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            acc += __shfl_down_sync(0xffffffffu, acc, o);
            mx = fmax(mx, __shfl_down_sync(0xffffffffu, mx, o));
        }
        if (threadIdx.x == 0) {
            // A batch (gridDim.y matrices) keeps each matrix's 2·gridDim.x
            // partials apart.
            partial += 2LL * gridDim.x * blockIdx.y;
            partial[blockIdx.x] = acc;
            partial[gridDim.x + blockIdx.x] = mx;
        }
    }
}

// sumsq: per-block partial sums of (scale·x)² and maxima of |x| over the
// r×c stored matrix (src[i + j*ld]), in float64; sum_partials combines them
// in a fixed order, so the result is deterministic. scale is a power of
// two applied in float64 (an input of float32 range never overflows there).
//
// In a batch (gridDim.y matrices) srcs[blockIdx.y] replaces src (srcs is
// null for one matrix), here and in sumsq_f32 and sumsq_bf16.
extern "C" __global__ void sumsq(double* partial, const void* src, int tsrc, long long ldm, int r, int c, double scale,
                                 const unsigned long long* srcs) {
    if (srcs) src = (const void*)srcs[blockIdx.y];
    long long n = (long long)r * c;
    double acc = 0, mx = 0;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % r, j = e / r;
        double v = ld(src, tsrc, i + j * ldm);
        mx = fmax(mx, fabs(v));
        v *= scale;
        acc += v * v;
    }
    block_sum_max(partial, acc, mx);
}

// sumsq_f32 / sumsq_bf16: the same for n contiguous elements with 16-byte
// loads (the tail, n mod 4 or 8, by block 0); four loads in flight per
// thread.
__device__ __forceinline__ void acc4(double& acc, double& mx, float4 x, double scale) {
    double a = x.x, b = x.y, c = x.z, d = x.w;
    mx = fmax(mx, fmax(fmax(fabs(a), fabs(b)), fmax(fabs(c), fabs(d))));
    a *= scale; b *= scale; c *= scale; d *= scale;
    acc += (a * a + b * b) + (c * c + d * d);
}

extern "C" __global__ void sumsq_f32(double* partial, const float* src, long long n, double scale, const unsigned long long* srcs) {
    if (srcs) src = (const float*)srcs[blockIdx.y];
    const float4* v = (const float4*)src;
    long long nv = n / 4;
    long long stride = (long long)gridDim.x * blockDim.x;
    double acc = 0, mx = 0;
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    for (; e + 3 * stride < nv; e += 4 * stride) {
        float4 x0 = v[e], x1 = v[e + stride], x2 = v[e + 2 * stride], x3 = v[e + 3 * stride];
        acc4(acc, mx, x0, scale);
        acc4(acc, mx, x1, scale);
        acc4(acc, mx, x2, scale);
        acc4(acc, mx, x3, scale);
    }
    for (; e < nv; e += stride) acc4(acc, mx, v[e], scale);
    if (blockIdx.x == 0)
        for (long long t = nv * 4 + threadIdx.x; t < n; t += blockDim.x) {
            double x = src[t];
            mx = fmax(mx, fabs(x));
            x *= scale;
            acc += x * x;
        }
    block_sum_max(partial, acc, mx);
}

__device__ __forceinline__ void acc8(double& acc, double& mx, uint4 x, double scale) {
    unsigned w[4] = {x.x, x.y, x.z, x.w};
    #pragma unroll
    for (int k = 0; k < 4; k++) {
        double lo = __uint_as_float(w[k] << 16), hi = __uint_as_float(w[k] & 0xffff0000u);
        mx = fmax(mx, fmax(fabs(lo), fabs(hi)));
        lo *= scale; hi *= scale;
        acc += lo * lo + hi * hi;
    }
}

extern "C" __global__ void sumsq_bf16(double* partial, const bf16* src, long long n, double scale, const unsigned long long* srcs) {
    if (srcs) src = (const bf16*)srcs[blockIdx.y];
    const uint4* v = (const uint4*)src;
    long long nv = n / 8;
    long long stride = (long long)gridDim.x * blockDim.x;
    double acc = 0, mx = 0;
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    for (; e + 3 * stride < nv; e += 4 * stride) {
        uint4 x0 = v[e], x1 = v[e + stride], x2 = v[e + 2 * stride], x3 = v[e + 3 * stride];
        acc8(acc, mx, x0, scale);
        acc8(acc, mx, x1, scale);
        acc8(acc, mx, x2, scale);
        acc8(acc, mx, x3, scale);
    }
    for (; e < nv; e += stride) acc8(acc, mx, v[e], scale);
    if (blockIdx.x == 0)
        for (long long t = nv * 8 + threadIdx.x; t < n; t += blockDim.x) {
            double x = bf2f(src[t]);
            mx = fmax(mx, fabs(x));
            x *= scale;
            acc += x * x;
        }
    block_sum_max(partial, acc, mx);
}

// sum_partials: out[0] = Σ partial[0..n), out[1] = max partial[n..2n), in
// one block, in a fixed order.
//
// A batch runs one block per matrix (gridDim.y), matrix blockIdx.y's
// partials 2n and its result two elements after the previous one's.
extern "C" __global__ void sum_partials(double* out, const double* partial, int n) {
    __shared__ double sh[32], shm[32];
    out += 2 * blockIdx.y;
    partial += 2LL * n * blockIdx.y;
    double acc = 0, mx = 0;
    for (int e = threadIdx.x; e < n; e += blockDim.x) { acc += partial[e]; mx = fmax(mx, partial[n + e]); }
    for (int o = 16; o > 0; o >>= 1) {
        acc += __shfl_down_sync(0xffffffffu, acc, o);
        mx = fmax(mx, __shfl_down_sync(0xffffffffu, mx, o));
    }
    if ((threadIdx.x & 31) == 0) { sh[threadIdx.x >> 5] = acc; shm[threadIdx.x >> 5] = mx; }
    __syncthreads();
    if (threadIdx.x < 32) {
        bool in = threadIdx.x < (blockDim.x >> 5);
        acc = in ? sh[threadIdx.x] : 0.0;
        mx = in ? shm[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            acc += __shfl_down_sync(0xffffffffu, acc, o);
            mx = fmax(mx, __shfl_down_sync(0xffffffffu, mx, o));
        }
        if (threadIdx.x == 0) { out[0] = acc; out[1] = mx; }
    }
}

// rownorms: out[i] = Σ_j (scale·src(i, j))² for the r×c stored matrix, one
// thread per row (coalesced across a warp).
extern "C" __global__ void rownorms(double* out, const void* src, int tsrc, long long ldm, int r, int c, double scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r; i += (long long)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int j = 0; j < c; j++) {
            double v = ld(src, tsrc, i + j * ldm) * scale;
            acc += v * v;
        }
        out[i] = acc;
    }
}

// block_sum_to writes the sum of acc over the block to *dst (thread 0),
// by warp shuffles and sh (32 doubles of shared memory); every thread of
// the block must call it, and sh is free again when it returns.
__device__ __forceinline__ void block_sum_to(double acc, double* sh, double* dst) {
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x < 32) {
        acc = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
        if (threadIdx.x == 0) *dst = acc;
    }
    __syncthreads();
}

// colnorms: out[j] = Σ_i (scale·src(i, j))², one block per column.
extern "C" __global__ void colnorms(double* out, const void* src, int tsrc, long long ldm, int r, int c, double scale) {
    __shared__ double sh[32];
    for (int j = blockIdx.x; j < c; j += gridDim.x) {
        double acc = 0;
        for (int i = threadIdx.x; i < r; i += blockDim.x) {
            double v = ld(src, tsrc, i + (long long)j * ldm) * scale;
            acc += v * v;
        }
        block_sum_to(acc, sh, out + j);
    }
}

// scale2d: a(i, j) *= alpha for the r×c float32 column-major a, the
// product formed in float64 (alpha, a power of two, may be outside
// float32's range while the result is not).
extern "C" __global__ void scale2d(float* a, long long lda, int r, int c, double alpha) {
    for (long long j = blockIdx.x; j < c; j += gridDim.x)
        for (long long i = threadIdx.x; i < r; i += blockDim.x)
            a[i + j * lda] = (float)((double)a[i + j * lda] * alpha);
}

// nonfinite: *first = min over non-finite elements of their row-major
// index in the logical matrix. Stored element (i, j) of the r×c stored
// matrix is logical (i, j), or (j, i) if trans; lc is the logical number of
// columns. *first must be preset to ~0.
extern "C" __global__ void nonfinite(unsigned long long* first, const void* src, int tsrc, long long ldm, int r, int c,
                                     int trans, long long lc) {
    long long n = (long long)r * c;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % r, j = e / r;
        double v = ld(src, tsrc, i + j * ldm);
        if (v - v != 0) {
            long long li = trans ? j : i, lj = trans ? i : j;
            atomicMin(first, (unsigned long long)(li * lc + lj));
        }
    }
}

// lufix: turns the output of getrf (p×l, leading dimension lda, 1-based
// pivots ipiv) into the unit lower trapezoidal L with the row interchanges
// undone, as lowrank.CPU.LU does. One thread per column.
extern "C" __global__ void lufix(float* a, long long lda, int p, int l, const int* ipiv) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= l) return;
    float* col = a + (long long)j * lda;
    for (int i = 0; i <= j && i < p; i++) col[i] = (i == j) ? 1.0f : 0.0f;
    for (int i = l - 1; i >= 0; i--) {
        int q = ipiv[i] - 1;
        if (q != i) { float t = col[i]; col[i] = col[q]; col[q] = t; }
    }
}

// cholinv: the small work of one Cholesky-QR pass in one block. G (l×l,
// leading dimension ldg) holds YᵀY in its upper triangle. The kernel
// factors G + s·I = RᵀR (unscaled right-looking elimination, pivots d_j)
// and, on the same elimination, L⁻¹ of G = L·D·Lᵀ, so that
// R = D^{1/2}·Lᵀ and R⁻¹ = L⁻ᵀ·D^{−1/2}. It writes R⁻¹ into rinv and R into
// r (both l×l upper, zeros below). The first attempt is unshifted; if a
// pivot falls to rel·G_jj or below, it retries with s = shift·trace(G).
// If that fails too (rank deficiency, NaN), it writes R = R⁻¹ = I and sets
// status[0] |= 1 so the host falls back to Householder QR. status[1]
// (as float bits) receives max_ab |G_ab − δ_ab|, the orthogonality defect
// of the pass's input. Shared memory: l(l+1) + 3l elements (packed G and
// Xt, two row buffers, the diagonal), or l(l+1)/2 + 3l if inv is 0: then
// only R is written and trinv forms R⁻¹.
__device__ __forceinline__ float tsqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double tsqrt(double x) { return sqrt(x); }

template <typename T>
__device__ void cholinv_impl(const T* G, int ldg, int l, float* rinv, int ldr, float* r, int ldrr,
                             T shift, T rel, int* status, int inv) {
    extern __shared__ __align__(16) unsigned char smraw[];
    T* sm = (T*)smraw;
    int np = l * (l + 1) / 2;
    T* g = sm;        // packed upper G: (a, b), a ≤ b, at b(b+1)/2 + a
    T* x = sm + np;   // packed upper Xt = L⁻ᵀ (unit diagonal)
    __shared__ T red[32];
    __shared__ T sd[2];
    __shared__ int bad;
    // trace and defect.
    T tr = 0, dev = 0;
    for (int t = threadIdx.x; t < np; t += blockDim.x) {
        int b = (int)((sqrtf(8.0f * t + 1.0f) - 1.0f) * 0.5f);
        while (b * (b + 1) / 2 > t) b--;
        while ((b + 1) * (b + 2) / 2 <= t) b++;
        int a = t - b * (b + 1) / 2;
        T v = G[a + (long long)b * ldg];
        if (a == b) tr += v;
        T d = v - (a == b ? T(1) : T(0));
        if (d < 0) d = -d;
        if (!(d <= dev)) dev = d; // NaN propagates
    }
    for (int o = 16; o > 0; o >>= 1) {
        tr += __shfl_down_sync(0xffffffffu, tr, o);
        T od = __shfl_down_sync(0xffffffffu, dev, o);
        if (!(od <= dev)) dev = od;
    }
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = tr;
    __syncthreads();
    if (threadIdx.x == 0) {
        T s = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += red[w];
        sd[0] = s;
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = dev;
    __syncthreads();
    if (threadIdx.x == 0) {
        T s = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) if (!(red[w] <= s)) s = red[w];
        sd[1] = s;
        status[1] = __float_as_int((float)s);
    }
    __syncthreads();
    T trace = sd[0];
    // Shared memory after g and x: two row buffers (row j of the
    // eliminated G, double-buffered so that one barrier per step
    // suffices) and the diagonal of G + s·I.
    T* rowb = x + (inv ? np : 0);
    T* diag0 = rowb + 2 * l;
    for (int attempt = 0; attempt < 2; attempt++) {
        T s = attempt == 0 ? T(0) : shift * trace;
        for (int t = threadIdx.x; t < np; t += blockDim.x) {
            int b = (int)((sqrtf(8.0f * t + 1.0f) - 1.0f) * 0.5f);
            while (b * (b + 1) / 2 > t) b--;
            while ((b + 1) * (b + 2) / 2 <= t) b++;
            int a = t - b * (b + 1) / 2;
            T v = G[a + (long long)b * ldg];
            if (a == b) {
                v += s;
                diag0[a] = v;
            }
            if (a == 0) rowb[b] = v;
            g[t] = v;
            if (inv) x[t] = (a == b) ? T(1) : T(0);
        }
        if (threadIdx.x == 0) bad = 0;
        __syncthreads();
        int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
        for (int j = 0; j < l; j++) {
            int oj = j * (j + 1) / 2;
            const T* rj = rowb + (j & 1) * l;
            T* rn = rowb + ((j + 1) & 1) * l;
            T d = rj[j];
            if (!(d > rel * diag0[j]) || !(d > 0)) {
                if (threadIdx.x == 0) bad = 1;
                break; // uniform: every thread reads the same d
            }
            T rd = T(1) / d;
            // Element (a, b) with b > j: if a > j, G(a,b) -= G(j,a)G(j,b)/d;
            // if a ≤ j, Xt(a,b) -= (G(j,b)/d)·Xt(a,j). Row j of G is in rj
            // (written in the previous step); column j of Xt is x[oj + a]
            // (b = j: not written in this step). Row j+1 of G is final
            // after this step and goes to the other buffer.
            // Warps take columns b > j round robin, lanes take rows a ≤ b.
            for (int b = j + 1 + warp; b < l; b += nw) {
                int ob = b * (b + 1) / 2;
                T gjb = rj[b] * rd;
                for (int a = inv ? lane : j + 1 + lane; a <= b; a += 32) {
                    if (a > j) {
                        T nv = g[ob + a] - rj[a] * gjb;
                        g[ob + a] = nv;
                        if (a == j + 1) rn[b] = nv;
                    } else {
                        x[ob + a] -= gjb * x[oj + a];
                    }
                }
            }
            __syncthreads();
        }
        __syncthreads();
        if (!bad) break;
        __syncthreads();
    }
    int fail = bad;
    if (fail && threadIdx.x == 0) atomicOr(status, 1);
    // R(a,b) = G(a,b)/sqrt(d_a); R⁻¹(a,b) = Xt(a,b)/sqrt(d_b).
    for (long long e = threadIdx.x; e < (long long)l * l; e += blockDim.x) {
        int a = (int)(e % l), b = (int)(e / l);
        float rv = 0, iv = 0;
        if (fail) {
            rv = iv = (a == b) ? 1.0f : 0.0f;
        } else if (a <= b) {
            int t = b * (b + 1) / 2 + a;
            rv = (float)(g[t] / tsqrt(g[a * (a + 1) / 2 + a]));
            if (inv) iv = (float)(x[t] / tsqrt(g[b * (b + 1) / 2 + b]));
        }
        if (inv) rinv[a + (long long)b * ldr] = iv;
        if (r) r[a + (long long)b * ldrr] = rv;
    }
}

extern "C" __global__ void cholinv(const float* G, int ldg, int l, float* rinv, int ldr, float* r, int ldrr,
                                   float shift, float rel, int* status, int inv) {
    cholinv_impl<float>(G, ldg, l, rinv, ldr, r, ldrr, shift, rel, status, inv);
}

// cholinv64 is cholinv on a float64 Gram matrix (the first pass of the
// mixed-precision Cholesky QR): elimination in float64, outputs float32.
extern "C" __global__ void cholinv64(const double* G, int ldg, int l, float* rinv, int ldr, float* r, int ldrr,
                                     double shift, double rel, int* status, int inv) {
    cholinv_impl<double>(G, ldg, l, rinv, ldr, r, ldrr, shift, rel, status, inv);
}

// svdeig: from the c ascending eigenpairs (w, V: n×c float64, leading
// dimension ldv; c = n for all of them, c = k for the k largest) of AᵀA,
// writes the k largest singular values s (float64, descending) and Vk (n×k
// float64, column j = eigenvector c−1−j).
extern "C" __global__ void svdeig(double* s, double* vk, long long ldk, const double* w, const double* v, long long ldv,
                                  int n, int k, int c) {
    long long tot = (long long)n * k;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < tot; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % n, j = e / n;
        long long src = c - 1 - j;
        vk[i + j * ldk] = v[i + src * ldv];
        if (i == 0) s[j] = sqrt(fmax(w[src], 0.0));
    }
}

// scalecols: u(i, j) = x(i, j)/s[j] (0 if s[j] = 0), u float32, x float64.
extern "C" __global__ void scalecols(float* u, long long ldu, const double* x, long long ldx, const double* s, int m, int k) {
    long long tot = (long long)m * k;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < tot; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % m, j = e / m;
        u[i + j * ldu] = s[j] > 0 ? (float)(x[i + j * ldx] / s[j]) : 0.0f;
    }
}

// symmetrize: g(i, j) = g(j, i) for i > j, the n×n float64 g (leading
// dimension n) whose upper triangle dsyrk wrote: the full matrix for dgemm.
extern "C" __global__ void symmetrize(double* g, int n) {
    long long tot = (long long)n * n;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < tot; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % n, j = e / n;
        if (i > j) g[e] = g[j + i * n];
    }
}

// eigresid: out[j] = Σ_i (x(i, j) − s_j²·v(i, j))² for n×k float64 x and v
// (leading dimension ld): the squared residual ‖G·v_j − λ_j·v_j‖² of the
// Ritz pairs (λ_j = s_j², x = G·V), one block per column.
extern "C" __global__ void eigresid(double* out, const double* x, const double* v, long long ld, const double* s, int n, int k) {
    __shared__ double sh[32];
    for (int j = blockIdx.x; j < k; j += gridDim.x) {
        double lam = s[j] * s[j], acc = 0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            double r = x[i + (long long)j * ld] - lam * v[i + (long long)j * ld];
            acc += r * r;
        }
        block_sum_to(acc, sh, out + j);
    }
}

// trinv: rinv = R⁻¹ for an upper triangular l×l R, one block per column c:
// back substitution R·x = e_c with one barrier per step. Every thread
// reads the finished x_t and scales it itself.
extern "C" __global__ void trinv(float* rinv, int ldr, const float* r, int ldrr, int l) {
    extern __shared__ __align__(16) unsigned char xsraw32[];
    float* xs = (float*)xsraw32;
    int c = blockIdx.x;
    for (int i = threadIdx.x; i < l; i += blockDim.x) xs[i] = (i == c) ? 1.0f : 0.0f;
    __syncthreads();
    for (int t = c; t >= 0; t--) {
        float xt = xs[t] / r[t + (long long)t * ldrr];
        for (int i = threadIdx.x; i < t; i += blockDim.x) xs[i] -= r[i + (long long)t * ldrr] * xt;
        if (threadIdx.x == 0) rinv[t + (long long)c * ldr] = xt;
        __syncthreads();
    }
    for (int i = c + 1 + threadIdx.x; i < l; i += blockDim.x) rinv[i + (long long)c * ldr] = 0.0f;
}

// trinv64: rinv = R⁻¹ (float32) for an upper triangular l×l float64 R (as
// left by potrf: only the upper triangle is read), one block of l ≤ 1024
// threads per column c, thread i owning x_i; the reciprocals of R's
// diagonal are staged in shared memory and the next column of R is loaded
// one step ahead, so neither a division nor global-memory latency sits
// between two barriers (the division's 20 µs of a 3 × 231 batch's 63 on
// an H100: docs/gpu.md, "chol64").
//
// A batch of triangles runs with gridDim.y matrices, matrix blockIdx.y at
// rinv + blockIdx.y·srinv and r + blockIdx.y·sr (QRBatch; strides 0 and
// one matrix otherwise). trinv64d is the same with a float64 R⁻¹ (the
// subspace route's Cholesky QR steps, gpu/subspace.go).
template <typename T>
__device__ void trinv64_impl(T* rinv, int ldr, const double* r, int ldrr, int l, long long srinv, long long sr) {
    extern __shared__ __align__(16) unsigned char xsraw[];
    double* xs = (double*)xsraw;
    double* dg = xs + l;
    rinv += blockIdx.y * srinv;
    r += blockIdx.y * sr;
    int c = blockIdx.x, i = threadIdx.x;
    if (i < l) {
        xs[i] = (i == c) ? 1.0 : 0.0;
        dg[i] = 1.0 / r[i + (long long)i * ldrr]; // the reciprocal: no division on the chain
    }
    double cur = (i < c) ? r[i + (long long)c * ldrr] : 0.0;
    __syncthreads();
    for (int t = c; t >= 0; t--) {
        double next = (t > 0 && i < t - 1) ? r[i + (long long)(t - 1) * ldrr] : 0.0;
        double xt = xs[t] * dg[t];
        if (i < t) xs[i] -= cur * xt;
        if (i == t) rinv[t + (long long)c * ldr] = (T)xt;
        cur = next;
        __syncthreads();
    }
    if (i > c && i < l) rinv[i + (long long)c * ldr] = (T)0;
}
extern "C" __global__ void trinv64(float* rinv, int ldr, const double* r, int ldrr, int l, long long srinv, long long sr) {
    trinv64_impl<float>(rinv, ldr, r, ldrr, l, srinv, sr);
}
extern "C" __global__ void trinv64d(double* rinv, int ldr, const double* r, int ldrr, int l, long long srinv, long long sr) {
    trinv64_impl<double>(rinv, ldr, r, ldrr, l, srinv, sr);
}

// nscorr: one step of the polynomial orthogonalisation Q ← Q·X with
// X = (I + E)^{-1/2} to second order, E = G − I, G = QᵀQ, H = G²:
// X = I − E/2 + 3E²/8 = 15/8·I − 5/4·G + 3/8·H. Then QᵀQ ← I + O(‖E‖³).
// dev receives max|G − I| as float bits (atomicMax on the bits orders
// non-negative floats) and fro (a float) accumulates ‖G − I‖_F²; a NaN
// sets flags |= 2. A batch runs with gridDim.y matrices: matrix
// blockIdx.y's X, G and H are sm elements and its dev, fro and flags
// ss ints further on (QRBatch; strides 0 and one matrix otherwise).
extern "C" __global__ void nscorr(float* X, const float* G, const float* H, int l, int* dev, float* fro, int* flags,
                                  long long sm, long long ss) {
    X += blockIdx.y * sm;
    G += blockIdx.y * sm;
    H += blockIdx.y * sm;
    dev += blockIdx.y * ss;
    fro += blockIdx.y * ss;
    flags += blockIdx.y * ss;
    int n = l * l;
    float f = 0;
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n; e += gridDim.x * blockDim.x) {
        int a = e % l, b = e / l;
        float id = (a == b) ? 1.0f : 0.0f;
        float gv = G[e], hv = H[e];
        X[e] = 1.875f * id - 1.25f * gv + 0.375f * hv;
        float d = fabsf(gv - id);
        if (d != d) atomicOr(flags, 2);
        else atomicMax(dev, __float_as_int(d));
        f += d * d;
    }
    for (int o = 16; o > 0; o >>= 1) f += __shfl_down_sync(0xffffffffu, f, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(fro, f);
}

// cholblk64: the upper Cholesky factor R (RᵀR = G + s·I) of an l×l
// float64 Gram matrix, G's upper triangle read from G0 and R written into
// the upper triangle of R (a different buffer: a retry restarts from G0),
// in one block of CHB_THREADS threads, right-looking in panels of 32 rows.
// Per panel, four barriers:
//   1. warp 0 factors the 32×32 diagonal block in registers (lane c holds
//      column c; row j of the factor is broadcast with shuffles) and
//      inverts it (column sweep, lane c solving R_kk·x = e_c);
//   2. each thread forms one column of the panel's rows,
//      R(kb:kb+32, c) = R_kk⁻ᵀ·G(kb:kb+32, c), into R and shared memory;
//   3. the warps update the trailing matrix (L2-resident global memory) in
//      register tiles of 2×8 elements: G(i, c) −= Σ_t R(kb+t, i)·R(kb+t, c),
//      the tile's old values loaded before the sums so that the load
//      latency overlaps the products.
// One launch for all ℓ/32 steps, where cuSOLVER's dpotrf makes several per
// step; measured slower all the same (0.39 against 0.18 ms at ℓ = 256 on
// an H200: each diagonal block's 32 dependent pivots are latency-bound on
// one multiprocessor, docs/gpu.md), so it runs only behind the test switch
// useBlk. A pivot at or
// below rel·(G + s·I)_jj (or not finite) makes it retry with
// s = shift·trace(G); if that fails too, info = 1.
#define CHB 32
#define CHB_THREADS 512
extern "C" __global__ void __launch_bounds__(CHB_THREADS) cholblk64(const double* G0, int ld0, double* R, int ldr, int l, double shift, double rel, int* info) {
    extern __shared__ __align__(16) unsigned char chbraw[];
    int lp = (l + 1) & ~1;                // panel row stride (even: 16-byte rows)
    double* Ri = (double*)chbraw;         // CHB×CHB, Ri[t*CHB + i] = (R_kk⁻¹)(t, i)
    double* Rk = Ri + CHB * CHB;          // CHB×CHB, Rk[t*CHB + i] = R_kk(t, i)
    double* diag0 = Rk + CHB * CHB;       // lp: the diagonal of G + s·I
    double* P = diag0 + lp;               // CHB rows of lp (+ 64 of slack): the panel's rows of R
    __shared__ int bad;
    __shared__ double red[CHB_THREADS / 32];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    const unsigned full = 0xffffffffu;
    double tr = 0;
    for (int j = tid; j < l; j += blockDim.x) tr += G0[j + (long long)j * ld0];
    for (int o = 16; o > 0; o >>= 1) tr += __shfl_down_sync(full, tr, o);
    if (lane == 0) red[warp] = tr;
    __syncthreads();
    if (tid == 0) {
        double t = 0;
        for (int w = 0; w < nw; w++) t += red[w];
        red[0] = t;
    }
    __syncthreads();
    double trace = red[0];
    for (int attempt = 0; attempt < 2; attempt++) {
        double s = attempt == 0 ? 0.0 : shift * trace;
        for (int c = warp; c < l; c += nw)
            for (int i = lane; i <= c; i += 32) {
                double v = G0[i + (long long)c * ld0];
                if (i == c) {
                    v += s;
                    diag0[i] = v;
                }
                R[i + (long long)c * ldr] = v;
            }
        if (tid == 0) bad = 0;
        __syncthreads();
        for (int kb = 0; kb < l; kb += CHB) {
            int nb = min(CHB, l - kb);
            int w = l - kb - nb; // trailing width
            if (warp == 0) {
                int c = lane;
                double a[CHB];
                #pragma unroll
                for (int i = 0; i < CHB; i++)
                    a[i] = (c < nb && i <= c) ? R[kb + i + (long long)(kb + c) * ldr] : (i == c ? 1.0 : 0.0);
                int ok = 1;
                #pragma unroll
                for (int j = 0; j < CHB; j++) {
                    double d = __shfl_sync(full, a[j], j);
                    if (j < nb && (!(d > rel * diag0[kb + j]) || !(d > 0))) ok = 0; // uniform
                    double r = sqrt(fabs(d));
                    if (c >= j) a[j] = (c == j) ? r : a[j] / r;
                    double rj = a[j];
                    #pragma unroll
                    for (int i = j + 1; i < CHB; i++) {
                        double rji = __shfl_sync(full, rj, i);
                        if (c >= i) a[i] -= rji * rj;
                    }
                }
                #pragma unroll
                for (int i = 0; i < CHB; i++) {
                    if (c < nb && i <= c) R[kb + i + (long long)(kb + c) * ldr] = a[i];
                    Rk[i * CHB + c] = (i <= c) ? a[i] : 0.0;
                }
                __syncwarp();
                if (ok) {
                    double x[CHB];
                    #pragma unroll
                    for (int t = 0; t < CHB; t++) x[t] = (t == c) ? 1.0 : 0.0;
                    #pragma unroll
                    for (int m = 0; m < CHB; m++) {
                        const int sq = CHB - 1 - m;
                        x[sq] = x[sq] / Rk[sq * CHB + sq];
                        #pragma unroll
                        for (int t = 0; t < CHB - 1 - m; t++) x[t] -= Rk[t * CHB + sq] * x[sq];
                    }
                    #pragma unroll
                    for (int t = 0; t < CHB; t++) Ri[t * CHB + c] = x[t];
                } else if (lane == 0) {
                    bad = 1;
                }
            }
            __syncthreads();
            if (bad) break;
            // 2. The panel's rows: thread tid takes column c' = tid − 32
            // first, so that warp 0's lanes come last.
            for (int cc = (tid + blockDim.x - 32) % blockDim.x; cc < w; cc += blockDim.x) {
                long long col = (long long)(kb + nb + cc) * ldr;
                double p[CHB];
                #pragma unroll
                for (int t = 0; t < CHB; t++) p[t] = t < nb ? R[kb + t + col] : 0.0;
                #pragma unroll
                for (int i = 0; i < CHB; i++) {
                    double x = 0;
                    #pragma unroll
                    for (int t = 0; t <= i; t++) x += Ri[t * CHB + i] * p[t];
                    if (i < nb) R[kb + i + col] = x;
                    P[i * lp + cc] = i < nb ? x : 0.0;
                }
            }
            __syncthreads();
            // 3. Trailing update in units of 64 rows (two per lane, 32
            // apart) × 8 columns, upper triangle only.
            int nr = (w + 63) >> 6, nc = (w + 7) >> 3;
            int off = kb + nb;
            for (int u = warp; u < nr * nc; u += nw) {
                int rg = u % nr, cg = u / nr;
                int c0 = cg * 8;
                if (rg * 64 > c0 + 7) continue;
                int i0 = rg * 64 + lane;
                double g[2][8], acc[2][8];
                #pragma unroll
                for (int q = 0; q < 2; q++)
                    #pragma unroll
                    for (int r = 0; r < 8; r++) {
                        int i = i0 + 32 * q, c = c0 + r;
                        g[q][r] = (i <= c && c < w) ? R[off + i + (long long)(off + c) * ldr] : 0.0;
                        acc[q][r] = 0;
                    }
                for (int t = 0; t < nb; t++) {
                    const double* pr = P + t * lp;
                    double pi0 = pr[i0], pi1 = pr[i0 + 32];
                    double pc[8];
                    #pragma unroll
                    for (int r = 0; r < 8; r += 2) {
                        double2 v = *(const double2*)(pr + c0 + r);
                        pc[r] = v.x;
                        pc[r + 1] = v.y;
                    }
                    #pragma unroll
                    for (int r = 0; r < 8; r++) {
                        acc[0][r] += pi0 * pc[r];
                        acc[1][r] += pi1 * pc[r];
                    }
                }
                #pragma unroll
                for (int q = 0; q < 2; q++)
                    #pragma unroll
                    for (int r = 0; r < 8; r++) {
                        int i = i0 + 32 * q, c = c0 + r;
                        if (i <= c && c < w) R[off + i + (long long)(off + c) * ldr] = g[q][r] - acc[q][r];
                    }
            }
            __syncthreads();
        }
        __syncthreads();
        if (!bad) break;
        __syncthreads();
    }
    if (tid == 0 && bad) *info = 1;
}

// rsqrt_nr: 1/√d for a normal positive double d, branch-free: the
// hardware's approximation (rsqrt.approx.f64) and two third-order Newton
// steps, y ← y + y·r·(1/2 + 3r/8) with r = 1 − d·y².
__device__ __forceinline__ double rsqrt_nr(double d) {
    double y;
    asm("rsqrt.approx.f64 %0, %1;" : "=d"(y) : "d"(d));
    #pragma unroll
    for (int k = 0; k < 2; k++) {
        double r = fma(-d * y, y, 1.0);
        y = fma(y * r, fma(0.375, r, 0.5), y);
    }
    return y;
}

// chol64: in place, the upper Cholesky factor R (RᵀR = G) of n float64
// l×l matrices, one block of CH64_THREADS threads each (blockIdx.x = i:
// the matrix at G + i·s, column-major with leading dimension ld, only its
// upper triangle read and written), as cuSOLVER's potrf computes it:
// info[i] = j + 1 for the first pivot j that is not a positive, finite,
// normal number (the factorisation of that matrix then stops, its upper
// triangle left partly factored), else 0. Right-looking in panels of
// CH64_NB rows, two barriers a panel:
//   1. warp 0 factors the diagonal block in registers (lane c holds
//      column c; the pivot is broadcast by a shuffle, row j of the factor
//      through shared memory, two buffers by the parity of j so that one
//      __syncwarp a pivot orders them), each pivot d by y = rsqrt_nr(d):
//      R_jj = d·y and R(j, c) = G(j, c)·y, so that the chain from one
//      pivot to the next has no square root, division or branch (about
//      0.3 µs a pivot on an H100: 13 µs for a lone 32×32 matrix, where
//      shuffles of row j and the library's rsqrt with its branches took
//      21 µs; docs/gpu.md, "chol64");
//   2. each thread forms one column of the panel's rows by forward
//      substitution, R(kb+t, c) = (G(kb+t, c) − Σ_{u<t} R_kk(u, t)·R(kb+u, c))·y_t,
//      into G and into shared memory P;
//   3. each thread updates 8×8 tiles of the trailing upper triangle,
//      G(i, c) −= Σ_t P(t, i)·P(t, c), the tile held in registers over the
//      panel's rows.
// The factor is the one potrf's ordering gives up to rounding: the same
// backward-error bound |RᵀR − G| ≤ γ|R|ᵀ|R| holds (each division replaced
// by a product with a reciprocal of a few ulps of error). It is
// latency-bound on its one multiprocessor (ncu: an issue on 10 % of
// cycles, half the stalls at the barriers, where the other warps wait for
// warp 0's diagonal block), and beats cuSOLVER only for batches, to
// ℓ = 256 (useChol64).
#define CH64_NB 32
#define CH64_THREADS 256
extern "C" __global__ void __launch_bounds__(CH64_THREADS) chol64(double* G, int ld, long long s, int l, int* info) {
    extern __shared__ __align__(16) unsigned char ch64raw[];
    const int NB = CH64_NB;
    const unsigned full = 0xffffffffu;
    int lp = (l + 7) & ~7;             // P's row stride: whole 8-element tiles
    double* Rk = (double*)ch64raw;     // NB×NB, Rk[t*NB + i] = R_kk(t, i), zero elsewhere
    double* yk = Rk + NB * NB;         // NB: 1/R_kk(t, t), zero past the block
    double* P = yk + NB;               // NB rows of lp: P[t*lp + c] = R(kb+t, kb+nb+c)
    __shared__ int bad;
    __shared__ double rowj[2][CH64_NB]; // row j of the diagonal block, by the parity of j
    G += (long long)blockIdx.x * s;
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid == 0) bad = 0;
    for (int kb = 0; kb < l; kb += NB) {
        int nb = min(NB, l - kb);
        int w = l - kb - nb; // trailing width
        if (warp == 0) {
            int c = lane;
            double a[CH64_NB];
            #pragma unroll
            for (int i = 0; i < NB; i++) a[i] = (c < nb && i <= c) ? G[kb + i + (long long)(kb + c) * ld] : 0.0;
            // Branch-free: one basic block for the compiler to schedule
            // across pivots. The entries below the diagonal take garbage,
            // which never reaches the upper triangle (an upper target
            // a[i], i ≤ c, reads R(j, i) and R(j, c) with j < i ≤ c) and
            // is never stored. A dead pivot (j ≥ nb) multiplies by 1.
            int fail = 0;
            double y = 0;
            #pragma unroll
            for (int j = 0; j < NB; j++) {
                double d = __shfl_sync(full, a[j], j);
                bool live = j < nb;
                fail = (fail == 0 && live && !(d >= 2.2250738585072014e-308 && d <= 1.7976931348623157e308)) ? kb + j + 1 : fail;
                double yj = rsqrt_nr(live ? d : 1.0);
                y = c == j ? yj : y;
                double rj = a[j] * yj; // R(j, c) for c ≥ j
                a[j] = rj;
                rowj[j & 1][c] = rj;
                __syncwarp();
                #pragma unroll
                for (int i = j + 1; i < NB; i++) a[i] = fma(-rowj[j & 1][i], rj, a[i]); // R(j, i)
            }
            #pragma unroll
            for (int i = 0; i < NB; i++) {
                bool in = c < nb && i <= c;
                if (in) G[kb + i + (long long)(kb + c) * ld] = a[i];
                Rk[i * NB + c] = in ? a[i] : 0.0;
            }
            yk[c] = c < nb ? y : 0.0;
            if (lane == 0 && fail) bad = fail;
        }
        __syncthreads();
        if (bad) break;
        // 2. The panel's rows, one column of them a thread.
        for (int cc = tid; cc < w; cc += blockDim.x) {
            double* gc = G + kb + (long long)(kb + nb + cc) * ld;
            double x[CH64_NB];
            #pragma unroll
            for (int t = 0; t < NB; t++) x[t] = t < nb ? gc[t] : 0.0;
            #pragma unroll
            for (int t = 0; t < NB; t++) {
                x[t] *= yk[t];
                #pragma unroll
                for (int i = t + 1; i < NB; i++) x[i] -= Rk[t * NB + i] * x[t];
            }
            #pragma unroll
            for (int t = 0; t < NB; t++) {
                if (t < nb) gc[t] = x[t];
                P[t * lp + cc] = x[t];
            }
        }
        __syncthreads();
        // 3. The trailing update, tile u of the nt(nt+1)/2 upper tiles:
        // tile column tc, tile row ti ≤ tc, u = tc(tc+1)/2 + ti.
        int off = kb + nb, nt = (w + 7) >> 3;
        for (int u = tid; u < nt * (nt + 1) / 2; u += blockDim.x) {
            int tc = (int)((sqrtf(8.0f * u + 1.0f) - 1.0f) * 0.5f);
            while (tc * (tc + 1) / 2 > u) tc--;
            while ((tc + 1) * (tc + 2) / 2 <= u) tc++;
            int i0 = 8 * (u - tc * (tc + 1) / 2), c0 = 8 * tc;
            double acc[8][8];
            #pragma unroll
            for (int r = 0; r < 8; r++)
                #pragma unroll
                for (int q = 0; q < 8; q++) {
                    int i = i0 + q, c = c0 + r;
                    acc[q][r] = (i <= c && c < w) ? G[off + i + (long long)(off + c) * ld] : 0.0;
                }
            for (int t = 0; t < nb; t++) {
                const double2* pi = (const double2*)(P + t * lp + i0);
                const double2* pc = (const double2*)(P + t * lp + c0);
                double vi[8], vc[8];
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    double2 a = pi[e], b = pc[e];
                    vi[2 * e] = a.x;
                    vi[2 * e + 1] = a.y;
                    vc[2 * e] = b.x;
                    vc[2 * e + 1] = b.y;
                }
                #pragma unroll
                for (int q = 0; q < 8; q++)
                    #pragma unroll
                    for (int r = 0; r < 8; r++) acc[q][r] -= vi[q] * vc[r];
            }
            #pragma unroll
            for (int r = 0; r < 8; r++)
                #pragma unroll
                for (int q = 0; q < 8; q++) {
                    int i = i0 + q, c = c0 + r;
                    if (i <= c && c < w) G[off + i + (long long)(off + c) * ld] = acc[q][r];
                }
        }
        __syncthreads();
    }
    if (tid == 0) info[blockIdx.x] = bad;
}

// The fused first read of a compression (Backend.GatherNorm): one pass over
// the stored sr×sc matrix (column-major, leading dimension ld, float32 or
// bf16) that both gathers the sampled rows of op(A) into the float32 Ω
// (dst, leading dimension ldd) and accumulates per-block partial sums of
// x² and maxima of |x| over every element (block_sum_max, combined by
// sum_partials in a fixed order: deterministic). One warp reads one stored
// column at a time, 16-byte loads (vec: aligned columns and sr a multiple
// of the vector width) with eight in flight per lane (gather_norm_rows;
// four in gather_norm_cols); NaN is carried by the sum, ±Inf by the
// maximum, as in sumsq.
template <typename T> struct vec16;
template <> struct vec16<float> {
    static const int n = 4;
    __device__ static void unpack(uint4 x, float* v) {
        v[0] = __uint_as_float(x.x); v[1] = __uint_as_float(x.y); v[2] = __uint_as_float(x.z); v[3] = __uint_as_float(x.w);
    }
    __device__ static void load(const float* p, float* v) { unpack(*(const uint4*)p, v); }
};
template <> struct vec16<bf16> {
    static const int n = 8;
    __device__ static void unpack(uint4 x, float* v) {
        unsigned w[4] = {x.x, x.y, x.z, x.w};
        #pragma unroll
        for (int k = 0; k < 4; k++) {
            v[2 * k] = __uint_as_float(w[k] << 16);
            v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
        }
    }
    __device__ static void load(const bf16* p, float* v) { unpack(*(const uint4*)p, v); }
};
__device__ __forceinline__ double ldT(const float* p, long long e) { return p[e]; }
__device__ __forceinline__ double ldT(const bf16* p, long long e) { return bf2f(p[e]); }

// acc_elem adds element v of a fused read (element e of its vector) to
// the sum of squares acc and the maximum magnitude mx; FAST: the square
// to acc or acc1 by the parity of e, the magnitude to the float32 mxf
// (exact: |v| of a float32 value is one).
template <bool FAST>
__device__ __forceinline__ void acc_elem(float v, int e, double& acc, double& acc1, double& mx, float& mxf) {
    double x = v;
    if (FAST) {
        if (e & 1) acc1 += x * x;
        else acc += x * x;
        mxf = fmaxf(mxf, fabsf(v));
    } else {
        acc += x * x;
        mx = fmax(mx, fabs(x));
    }
}

// gather_norm_rows: the sampled rows of op(A) are stored rows (Gather's
// si = 1, the row-major activation's columns when op(A) = Aᵀ):
// dst(c, j) = src(idx[j], c). A block takes tiles of 32 stored columns
// (grid-stride); an element whose row is sampled (a bit of the shared
// bitmap of the sr rows) is put into the shared tile [l][33] at its
// sample's slot (the shared map row → j, int16), and the block then writes
// the tile out in 128-byte rows of dst. The indices must be distinct.
// Shared memory (gatherNormSmem): 4·33·l + 4·⌈sr/32⌉ + 2·sr bytes.
// The variants (the kernels below, Backend.gatherMode; docs/gpu.md):
// U vectors in flight per lane; FAST: the maximum taken in float32
// (exact: |x| of a float32 or bf16 value is a float32 value) and the
// squares summed into two float64 accumulators, even and odd elements, to
// halve the chain of dependent additions; RAW: the loads held as loaded
// and widened one vector at a time (fewer live registers).
template <typename T, int U, bool FAST, bool RAW>
__device__ void gather_norm_rows_impl(double* partial, void* dst, int tdst, long long ldd, const T* src, long long ld, int sr, int sc,
                                      const long long* idx, int l, int vec) {
    extern __shared__ __align__(16) unsigned char gnraw[];
    float* tile = (float*)gnraw;                      // [l][33]
    unsigned* bits = (unsigned*)(tile + (long long)l * 33); // ⌈sr/32⌉ words
    int nwords = (sr + 31) >> 5;
    short* map = (short*)(bits + nwords);             // sr entries, valid where a bit is set
    for (int w = threadIdx.x; w < nwords; w += blockDim.x) bits[w] = 0u;
    __syncthreads();
    for (int j = threadIdx.x; j < l; j += blockDim.x) {
        int r = (int)idx[j];
        atomicOr(&bits[r >> 5], 1u << (r & 31));
        map[r] = (short)j;
    }
    __syncthreads();
    const int E = vec16<T>::n;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    double acc = 0, acc1 = 0, mx = 0;
    float mxf = 0;
    for (long long c0 = (long long)blockIdx.x * 32; c0 < sc; c0 += (long long)gridDim.x * 32) {
        int nc = (int)min(32LL, (long long)sc - c0);
        for (int cc = warp; cc < nc; cc += nw) {
            const T* col = src + (c0 + cc) * ld;
            if (vec) {
                for (int i0 = lane * E; i0 < sr; i0 += 32 * E * U) {
                    // RAW keeps the U loads as loaded (four registers
                    // each) and widens one at a time; otherwise all U·E
                    // values are widened to float as they arrive.
                    float v[RAW ? 1 : U][E];
                    uint4 raw[RAW ? U : 1];
                    #pragma unroll
                    for (int u = 0; u < U; u++) {
                        int i = i0 + u * 32 * E;
                        if (i < sr) {
                            if (RAW) raw[u] = *(const uint4*)(col + i);
                            else vec16<T>::load(col + i, v[RAW ? 0 : u]);
                        }
                    }
                    #pragma unroll
                    for (int u = 0; u < U; u++) {
                        int i = i0 + u * 32 * E;
                        if (i >= sr) break;
                        const int vu = RAW ? 0 : u;
                        if (RAW) vec16<T>::unpack(raw[u], v[0]);
                        #pragma unroll
                        for (int e = 0; e < E; e++) acc_elem<FAST>(v[vu][e], e, acc, acc1, mx, mxf);
                        // E divides 32 and i is a multiple of E: the E
                        // bits of rows i..i+E-1 lie in one word.
                        unsigned m = (bits[i >> 5] >> (i & 31)) & ((1u << E) - 1u);
                        if (m) {
                            #pragma unroll
                            for (int e = 0; e < E; e++)
                                if ((m >> e) & 1u) tile[map[i + e] * 33 + cc] = v[vu][e];
                        }
                    }
                }
            } else {
                for (int i = lane; i < sr; i += 32) {
                    double x = ldT(col, i);
                    acc += x * x;
                    mx = fmax(mx, fabs(x));
                    if ((bits[i >> 5] >> (i & 31)) & 1u) tile[map[i] * 33 + cc] = (float)x;
                }
            }
        }
        __syncthreads();
        for (int j = warp; j < l; j += nw)
            if (lane < nc) {
                long long e = (c0 + lane) + (long long)j * ldd;
                if (tdst) ((bf16*)dst)[e] = f2bf(tile[j * 33 + lane]);
                else ((float*)dst)[e] = tile[j * 33 + lane];
            }
        __syncthreads();
    }
    if (FAST) {
        acc += acc1;
        mx = fmax(mx, (double)mxf);
    }
    block_sum_max(partial, acc, mx);
}

// gather_norm_rows and its variants (Backend.gatherMode; docs/gpu.md,
// "The fused read's kernel"), one kernel each so that each has its own
// register allocation (a kernel's is the largest of all its paths).
//
// In a batch (gridDim.y matrices, srcs not null) matrix blockIdx.y is
// srcs[blockIdx.y], its Ω sdst elements after the previous one's and its
// indices (gather_norm_rows) or column map (gather_norm_cols) sidx after.
// gather_norm_rows writes Ω in float32, or with tdst = 1 in bf16 (exact
// for a bf16 src: SketchBatchDeferred).
#define GATHER_NORM_ROWS(name, U, FAST, RAW)                                                                            \
    extern "C" __global__ void name(double* partial, void* dst, long long ldd, const void* src, int tsrc, long long ld,  \
                                    int sr, int sc, const long long* idx, int l, int vec,                                \
                                    const unsigned long long* srcs, long long sdst, long long sidx, int tdst) {         \
        if (srcs) src = (const void*)srcs[blockIdx.y];                                                                  \
        dst = (char*)dst + blockIdx.y * sdst * (tdst ? 2 : 4);                                                          \
        idx += blockIdx.y * sidx;                                                                                       \
        if (tsrc == 1) gather_norm_rows_impl<bf16, U, FAST, RAW>(partial, dst, tdst, ldd, (const bf16*)src, ld, sr, sc, idx, l, vec); \
        else gather_norm_rows_impl<float, U, FAST, RAW>(partial, dst, tdst, ldd, (const float*)src, ld, sr, sc, idx, l, vec);    \
    }
GATHER_NORM_ROWS(gather_norm_rows, 8, true, true)      // the default (packed loads)
GATHER_NORM_ROWS(gather_norm_rows_m1, 4, false, false) // the first version
GATHER_NORM_ROWS(gather_norm_rows_m2, 4, true, false)
GATHER_NORM_ROWS(gather_norm_rows_m3, 16, true, false)
GATHER_NORM_ROWS(gather_norm_rows_m4, 8, false, false)
GATHER_NORM_ROWS(gather_norm_rows_m5, 8, true, false)  // the default until the twelfth session
GATHER_NORM_ROWS(gather_norm_rows_m6, 16, true, true)

// gather_norm_cols: the sampled rows of op(A) are stored columns (Gather's
// sj = 1): dst(i, j) = src(i, c) for the column c with cmap[c] = j ≥ 0
// (invert_index), read and written by one warp per column (grid-stride
// over columns). U, FAST and RAW as for gather_norm_rows (its variants:
// Backend.gatherColsMode).
template <typename T, int U, bool FAST, bool RAW>
__device__ void gather_norm_cols_impl(double* partial, float* dst, long long ldd, const T* src, long long ld, int sr, int sc,
                                      const int* cmap, int vec) {
    const int E = vec16<T>::n;
    int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    long long gw = (long long)blockIdx.x * nw + (threadIdx.x >> 5);
    double acc = 0, acc1 = 0, mx = 0;
    float mxf = 0;
    for (long long c = gw; c < sc; c += (long long)gridDim.x * nw) {
        const T* col = src + c * ld;
        int j = cmap[c];
        float* out = j >= 0 ? dst + (long long)j * ldd : (float*)0;
        if (vec) {
            for (int i0 = lane * E; i0 < sr; i0 += 32 * E * U) {
                float v[RAW ? 1 : U][E];
                uint4 raw[RAW ? U : 1];
                #pragma unroll
                for (int u = 0; u < U; u++) {
                    int i = i0 + u * 32 * E;
                    if (i < sr) {
                        if (RAW) raw[u] = *(const uint4*)(col + i);
                        else vec16<T>::load(col + i, v[RAW ? 0 : u]);
                    }
                }
                #pragma unroll
                for (int u = 0; u < U; u++) {
                    int i = i0 + u * 32 * E;
                    if (i >= sr) break;
                    const int vu = RAW ? 0 : u;
                    if (RAW) vec16<T>::unpack(raw[u], v[0]);
                    #pragma unroll
                    for (int e = 0; e < E; e++) {
                        acc_elem<FAST>(v[vu][e], e, acc, acc1, mx, mxf);
                        if (out) out[i + e] = v[vu][e];
                    }
                }
            }
        } else {
            for (int i = lane; i < sr; i += 32) {
                double x = ldT(col, i);
                acc += x * x;
                mx = fmax(mx, fabs(x));
                if (out) out[i] = (float)x;
            }
        }
    }
    if (FAST) {
        acc += acc1;
        mx = fmax(mx, (double)mxf);
    }
    block_sum_max(partial, acc, mx);
}

#define GATHER_NORM_COLS(name, U, FAST, RAW)                                                                            \
    extern "C" __global__ void name(double* partial, float* dst, long long ldd, const void* src, int tsrc, long long ld, \
                                    int sr, int sc, const int* cmap, int vec,                                            \
                                    const unsigned long long* srcs, long long sdst, long long sidx) {                   \
        if (srcs) src = (const void*)srcs[blockIdx.y];                                                                  \
        dst += blockIdx.y * sdst;                                                                                       \
        cmap += blockIdx.y * sidx;                                                                                      \
        if (tsrc == 1) gather_norm_cols_impl<bf16, U, FAST, RAW>(partial, dst, ldd, (const bf16*)src, ld, sr, sc, cmap, vec); \
        else gather_norm_cols_impl<float, U, FAST, RAW>(partial, dst, ldd, (const float*)src, ld, sr, sc, cmap, vec);    \
    }
GATHER_NORM_COLS(gather_norm_cols, 4, true, true)     // the default (packed loads)
GATHER_NORM_COLS(gather_norm_cols_m1, 8, true, true)
GATHER_NORM_COLS(gather_norm_cols_m2, 4, false, false) // the default until the twelfth session

// invert_index: map[idx[j]] = j for j < l (map preset to −1; the indices
// distinct). A batch (gridDim.y) has its maps smap and its index lists l
// elements apart.
extern "C" __global__ void invert_index(int* map, const long long* idx, int l, long long smap) {
    map += blockIdx.y * smap;
    idx += (long long)blockIdx.y * l;
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < l; j += gridDim.x * blockDim.x) map[idx[j]] = j;
}

// The DXSM output of a PCG state (PCG.Uint64 after its step).
__device__ __forceinline__ unsigned long long pcg_out(unsigned long long hi, unsigned long long lo) {
    unsigned long long x = hi;
    x ^= x >> 32;
    x *= 0xda942042e4dd58b5ULL;
    x ^= x >> 48;
    x *= (lo | 1ULL);
    return x;
}

// draw_uniform: the sampled indices of sampling.Uniform's draw — Go's
// math/rand/v2 generator rand.New(rand.NewPCG(seed, seed)) (PCG-DXSM,
// 128-bit state) and a partial Fisher–Yates shuffle, for i < l:
// j = i + IntN(p − i), swap(perm[i], perm[j]) — for up to eight items,
// one block each (blockIdx.x = item), written as int64 to out + item·l:
// bit for bit the host's indices, so that a batch's sampled rows need not
// be copied to the device (Backend.GatherNormBatchSeeded; TestDrawUniform
// compares them). The permutation lives in shared memory as uint16
// (p ≤ 65536) and every thread initialises it; the generator's outputs
// are independent of the shuffle, so each thread jumps the generator to
// its own draws (pcg_jump) and computes their j in parallel, and thread
// 0 then only swaps — l dependent steps of a few shared-memory accesses.
__device__ __forceinline__ unsigned long long pcg_dxsm(unsigned long long& hi, unsigned long long& lo) {
    const unsigned long long mulHi = 2549297995355413924ULL, mulLo = 4865540595714422341ULL;
    const unsigned long long incHi = 6364136223846793005ULL, incLo = 1442695040888963407ULL;
    unsigned long long h = __umul64hi(lo, mulLo), l2 = lo * mulLo;
    h += hi * mulLo + lo * mulHi;
    unsigned long long l3 = l2 + incLo;
    h += incHi + (l3 < l2 ? 1ULL : 0ULL);
    hi = h;
    lo = l3;
    return pcg_out(h, l3);
}

// Rand.uint64n of math/rand/v2 (64-bit platforms): a mask for a power of
// two, else Lemire's multiply-high with rejection.
__device__ __forceinline__ unsigned long long pcg_below(unsigned long long& hi, unsigned long long& lo, unsigned long long n) {
    if ((n & (n - 1)) == 0) return pcg_dxsm(hi, lo) & (n - 1);
    unsigned long long x = pcg_dxsm(hi, lo);
    unsigned long long mh = __umul64hi(x, n), ml = x * n;
    if (ml < n) {
        unsigned long long thresh = (0ULL - n) % n;
        while (ml < thresh) {
            x = pcg_dxsm(hi, lo);
            mh = __umul64hi(x, n);
            ml = x * n;
        }
    }
    return mh;
}

// pcg_jump returns the PCG state (hi, lo) advanced by delta steps
// (Brown, "Random number generation with arbitrary strides", 1994: the
// LCG's multiplier and increment raised to delta by squaring, mod 2^128).
__device__ void pcg_jump(unsigned long long& hi, unsigned long long& lo, unsigned long long delta) {
    unsigned long long mh = 2549297995355413924ULL, ml = 4865540595714422341ULL; // cur_mult
    unsigned long long ph = 6364136223846793005ULL, pl = 1442695040888963407ULL; // cur_plus
    unsigned long long ah = 0, al = 1, bh = 0, bl = 0;                           // acc_mult, acc_plus
    while (delta > 0) {
        if (delta & 1) {
            // acc_mult *= cur_mult; acc_plus = acc_plus·cur_mult + cur_plus.
            unsigned long long nh = __umul64hi(al, ml) + al * mh + ah * ml, nl = al * ml;
            ah = nh; al = nl;
            nh = __umul64hi(bl, ml) + bl * mh + bh * ml; nl = bl * ml;
            unsigned long long sl = nl + pl;
            bh = nh + ph + (sl < nl ? 1ULL : 0ULL); bl = sl;
        }
        // cur_plus = (cur_mult + 1)·cur_plus; cur_mult = cur_mult².
        unsigned long long m1l = ml + 1, m1h = mh + (m1l == 0 ? 1ULL : 0ULL);
        unsigned long long nh = __umul64hi(m1l, pl) + m1l * ph + m1h * pl, nl = m1l * pl;
        ph = nh; pl = nl;
        nh = __umul64hi(ml, ml) + 2 * (ml * mh); nl = ml * ml;
        mh = nh; ml = nl;
        delta >>= 1;
    }
    // state = acc_mult·state + acc_plus.
    unsigned long long nh = __umul64hi(al, lo) + al * hi + ah * lo, nl = al * lo;
    unsigned long long sl = nl + bl;
    hi = nh + bh + (sl < nl ? 1ULL : 0ULL);
    lo = sl;
}

extern "C" __global__ void draw_uniform(long long* out, long long l, long long n,
                                        unsigned long long s0, unsigned long long s1, unsigned long long s2, unsigned long long s3,
                                        unsigned long long s4, unsigned long long s5, unsigned long long s6, unsigned long long s7,
                                        long long p0, long long p1, long long p2, long long p3,
                                        long long p4, long long p5, long long p6, long long p7, int sequential) {
    extern __shared__ __align__(16) unsigned char drawraw[];
    int* js = (int*)drawraw;                               // l: the shuffle's j, drawn in parallel
    unsigned short* perm = (unsigned short*)(js + l);      // p
    __shared__ int reject;
    int item = blockIdx.x;
    if (item >= n) return;
    const unsigned long long seeds[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
    const long long ps[8] = {p0, p1, p2, p3, p4, p5, p6, p7};
    unsigned long long seed = seeds[item];
    long long p = ps[item];
    if (threadIdx.x == 0) reject = sequential; // 1: the loop below only (Backend.drawSeq, tests)
    for (long long i = threadIdx.x; i < p; i += blockDim.x) perm[i] = (unsigned short)i;
    __syncthreads();
    // Draw i uses the generator's (i+1)-th output, unless an earlier draw
    // was rejected (Lemire's reduction asks for another number with
    // probability below (p − i)/2^64): then the sequential loop below.
    for (long long i = threadIdx.x; i < l; i += blockDim.x) {
        unsigned long long hi = seed, lo = seed;
        pcg_jump(hi, lo, (unsigned long long)(i + 1));
        unsigned long long x = pcg_out(hi, lo), nn = (unsigned long long)(p - i), r;
        if ((nn & (nn - 1)) == 0) {
            r = x & (nn - 1);
        } else {
            r = __umul64hi(x, nn);
            unsigned long long ml = x * nn;
            if (ml < nn && ml < (0ULL - nn) % nn) reject = 1;
        }
        js[i] = (int)(i + (long long)r);
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    long long* o = out + item * l;
    if (reject) {
        unsigned long long hi = seed, lo = seed;
        for (long long i = 0; i < l; i++) js[i] = (int)(i + (long long)pcg_below(hi, lo, (unsigned long long)(p - i)));
    }
    for (long long i = 0; i < l; i++) {
        int j = js[i];
        unsigned short t = perm[j];
        perm[j] = perm[i];
        perm[i] = t;
        o[i] = t;
    }
}

// ptr_grid: the address arrays of a two-level batch of products
// (Backend.MulBatchedGrid), entry e = i·n2 + j for i < n and j < n2:
// out[e] = a + (i·sa + j·ta)·esa, out[m + e] = b + (i·sb + j·tb)·esa and
// out[2m + e] = c + (i·sc + j·tc)·esc, m = n·n2 (byte addresses, strides
// in elements of esa bytes for the operands and esc for the destination).
extern "C" __global__ void ptr_grid(unsigned long long* out, unsigned long long a, long long sa, long long ta,
                                    unsigned long long b, long long sb, long long tb, unsigned long long c, long long sc,
                                    long long tc, int n, int n2, int esa, int esc) {
    long long m = (long long)n * n2;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < m; e += (long long)gridDim.x * blockDim.x) {
        long long i = e / n2, j = e % n2;
        out[e] = a + (i * sa + j * ta) * esa;
        out[m + e] = b + (i * sb + j * tb) * esa;
        out[2 * m + e] = c + (i * sc + j * tc) * esc;
    }
}
