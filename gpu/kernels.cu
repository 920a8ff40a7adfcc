// Kernels of package gpu, compiled at run time by NVRTC (see device.go).
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

// copy2d: dst(i, j) = src(i, j) for an r×c matrix, converting types. If
// tri is 1, elements below the diagonal are written as 0 (upper triangle).
extern "C" __global__ void copy2d(void* dst, int tdst, long long dsi, long long dsj,
                                  const void* src, int tsrc, long long ssi, long long ssj,
                                  int r, int c, int tri) {
    long long n = (long long)r * c;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % r, j = e / r;
        double v = (tri && i > j) ? 0.0 : ld(src, tsrc, i * ssi + j * ssj);
        st(dst, tdst, i * dsi + j * dsj, v);
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
    long long n = (long long)q * l;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long r = e % q, j = e / q;
        dst[r + j * ldd] = (float)ld(src, tsrc, idx[j] * si + r * sj);
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

// sumsq: per-block partial sums of squares of the r×c stored matrix
// (src[i + j*ld]), in float64; sum_partials adds them in a fixed order, so
// the result is deterministic.
extern "C" __global__ void sumsq(double* partial, const void* src, int tsrc, long long ldm, int r, int c) {
    __shared__ double sh[32];
    long long n = (long long)r * c;
    double acc = 0;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % r, j = e / r;
        double v = ld(src, tsrc, i + j * ldm);
        acc += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x < 32) {
        acc = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
        if (threadIdx.x == 0) partial[blockIdx.x] = acc;
    }
}

extern "C" __global__ void sum_partials(double* out, const double* partial, int n) {
    __shared__ double sh[32];
    double acc = 0;
    for (int e = threadIdx.x; e < n; e += blockDim.x) acc += partial[e];
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x < 32) {
        acc = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
        if (threadIdx.x == 0) out[0] = acc;
    }
}

// rownorms: out[i] = Σ_j src(i, j)² for the r×c stored matrix, one thread
// per row (coalesced across a warp).
extern "C" __global__ void rownorms(double* out, const void* src, int tsrc, long long ldm, int r, int c) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r; i += (long long)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int j = 0; j < c; j++) {
            double v = ld(src, tsrc, i + j * ldm);
            acc += v * v;
        }
        out[i] = acc;
    }
}

// colnorms: out[j] = Σ_i src(i, j)², one block per column.
extern "C" __global__ void colnorms(double* out, const void* src, int tsrc, long long ldm, int r, int c) {
    __shared__ double sh[32];
    for (int j = blockIdx.x; j < c; j += gridDim.x) {
        double acc = 0;
        for (int i = threadIdx.x; i < r; i += blockDim.x) {
            double v = ld(src, tsrc, i + (long long)j * ldm);
            acc += v * v;
        }
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
        if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
        __syncthreads();
        if (threadIdx.x < 32) {
            acc = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : 0.0;
            for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
            if (threadIdx.x == 0) out[j] = acc;
        }
        __syncthreads();
    }
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
// of the pass's input. Shared memory: l(l+1) elements (packed G and Xt),
// or l(l+1)/2 if inv is 0: then only R is written and trinv forms R⁻¹.
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
    for (int attempt = 0; attempt < 2; attempt++) {
        T s = attempt == 0 ? T(0) : shift * trace;
        for (int t = threadIdx.x; t < np; t += blockDim.x) {
            int b = (int)((sqrtf(8.0f * t + 1.0f) - 1.0f) * 0.5f);
            while (b * (b + 1) / 2 > t) b--;
            while ((b + 1) * (b + 2) / 2 <= t) b++;
            int a = t - b * (b + 1) / 2;
            T v = G[a + (long long)b * ldg];
            if (a == b) v += s;
            g[t] = v;
            if (inv) x[t] = (a == b) ? T(1) : T(0);
        }
        if (threadIdx.x == 0) bad = 0;
        __syncthreads();
        for (int j = 0; j < l; j++) {
            int oj = j * (j + 1) / 2;
            T d = g[oj + j];
            T gjj = G[j + (long long)j * ldg] + s;
            if (!(d > rel * gjj) || !(d > 0)) {
                if (threadIdx.x == 0) bad = 1;
                break; // uniform: every thread reads the same d
            }
            T rd = T(1) / d;
            // Element (a, b) with b > j: if a > j, G(a,b) -= G(j,a)G(j,b)/d;
            // if a ≤ j, Xt(a,b) -= (G(j,b)/d)·Xt(a,j). Row j of G is
            // g[ob + j]; column j of Xt is x[oj + a]. Those are not written
            // in this step (they have b = j or a = j), so one barrier per
            // step suffices.
            // Warps take columns b > j round robin, lanes take rows a ≤ b.
            int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
            for (int b = j + 1 + warp; b < l; b += nw) {
                int ob = b * (b + 1) / 2;
                T gjb = g[ob + j] * rd;
                for (int a = inv ? lane : j + 1 + lane; a <= b; a += 32) {
                    if (a > j) {
                        g[ob + a] -= g[a * (a + 1) / 2 + j] * gjb;
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

// svdeig: from the ascending eigenpairs (w, V, n×n float64, leading
// dimension ldv) of AᵀA, writes the k largest singular values s (float64,
// descending) and Vk (n×k float64, column j = eigenvector n−1−j).
extern "C" __global__ void svdeig(double* s, double* vk, long long ldk, const double* w, const double* v, long long ldv,
                                  int n, int k) {
    long long tot = (long long)n * k;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < tot; e += (long long)gridDim.x * blockDim.x) {
        long long i = e % n, j = e / n;
        long long src = n - 1 - j;
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
// left by potrf: only the upper triangle is read), one block per column.
extern "C" __global__ void trinv64(float* rinv, int ldr, const double* r, int ldrr, int l) {
    extern __shared__ __align__(16) unsigned char xsraw[];
    double* xs = (double*)xsraw;
    int c = blockIdx.x;
    for (int i = threadIdx.x; i < l; i += blockDim.x) xs[i] = (i == c) ? 1.0 : 0.0;
    __syncthreads();
    for (int t = c; t >= 0; t--) {
        double xt = xs[t] / r[t + (long long)t * ldrr];
        for (int i = threadIdx.x; i < t; i += blockDim.x) xs[i] -= r[i + (long long)t * ldrr] * xt;
        if (threadIdx.x == 0) rinv[t + (long long)c * ldr] = (float)xt;
        __syncthreads();
    }
    for (int i = c + 1 + threadIdx.x; i < l; i += blockDim.x) rinv[i + (long long)c * ldr] = 0.0f;
}
