// Kernels of the device ViT (package vitgpu), compiled at run time by NVRTC
// through gpu.Backend.Compile; each has one typed Go wrapper in kernels.go,
// and TestKernelList checks that the two lists agree.
//
// Tensors are row-major and contiguous: element (i, j) of a rows×n tensor
// is p[i*n + j]. Activations are float32 or bf16, chosen per call by a type
// code t (0 = float32, 1 = bf16, as the bit pattern unsigned short rounded
// to nearest even like lowrank.ToBF16); every computation is in float32.
// Parameters (biases, LayerNorm gains, positions, Adam state) are float32.
// No header is included.

typedef unsigned short bf16;

__device__ __forceinline__ float bf2f(bf16 h) { return __int_as_float(((unsigned)h) << 16); }

__device__ __forceinline__ bf16 f2bf(float x) {
    unsigned b = __float_as_uint(x);
    if (x != x) return (bf16)((b >> 16) | 0x40);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (bf16)(b >> 16);
}

__device__ __forceinline__ float ld(const void* p, int t, long long i) {
    return t ? bf2f(((const bf16*)p)[i]) : ((const float*)p)[i];
}

__device__ __forceinline__ void st(void* p, int t, long long i, float v) {
    if (t) ((bf16*)p)[i] = f2bf(v);
    else ((float*)p)[i] = v;
}

// Eight bf16 values in one 16-byte load or store: the elementwise kernels'
// bf16 path when every tensor they touch is 16-byte aligned (a scalar
// 2-byte access per thread left a GELU over the per-op rebuild's
// 12544×1536 tensor at 1.46 TB/s on the H100; docs/results.md,
// "Twenty-second session"). The arithmetic is the scalar path's, element
// by element, so both should give the same bits; TestGELU and TestLayerNorm
// check each path against its bound.
struct alignas(16) bf16x8 { bf16 h[8]; };

__device__ __forceinline__ bool al16(const void* p) { return ((unsigned long long)p & 15) == 0; }

__device__ __forceinline__ void ld8(const void* p, long long v, float* x) {
    bf16x8 q = ((const bf16x8*)p)[v];
    for (int i = 0; i < 8; i++) x[i] = bf2f(q.h[i]);
}

__device__ __forceinline__ void st8(void* p, long long v, const float* x) {
    bf16x8 q;
    for (int i = 0; i < 8; i++) q.h[i] = f2bf(x[i]);
    ((bf16x8*)p)[v] = q;
}

#define GRID_STRIDE(e, n) \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < (n); e += (long long)gridDim.x * blockDim.x)

// GRID_STRIDE32(e, n): GRID_STRIDE in 32-bit unsigned arithmetic, for
// n < 2³¹ (so that e plus the grid's stride cannot wrap): a kernel that
// needs an element's row and column then divides in 32 bits, where a
// 64-bit division and modulo per element cost more than the element's
// memory traffic (bias_rows at about 0.7 TB/s on an H100: docs/results.md,
// "Twenty-fifth session").
#define GRID_STRIDE32(e, n) \
    for (unsigned e = blockIdx.x * blockDim.x + threadIdx.x; e < (unsigned)(n); e += gridDim.x * blockDim.x)

// VEC8_TAIL(e, n, vec): the scalar loop of an elementwise kernel whose
// bf16x8 loop (GRID_STRIDE over the n/8 whole vectors) ran when vec: e
// runs (grid-stride) over the last n mod 8 elements if vec, else over all n.
#define VEC8_TAIL(e, n, vec) \
    for (long long e = (vec) ? ((n) & ~7LL) + blockIdx.x * (long long)blockDim.x + threadIdx.x \
                              : blockIdx.x * (long long)blockDim.x + threadIdx.x; \
         e < (n); e += (long long)gridDim.x * blockDim.x)

// Warp-per-row loops: warp w of the grid handles rows w, w + (warps), ….
#define WARP_ROWS(r, rows) \
    for (long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5; r < (rows); \
         r += ((long long)gridDim.x * blockDim.x) >> 5)

// Butterfly reductions: every lane ends with the same value (each step adds
// a pair in both orders, and float addition is commutative).
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// fill: p[0:n] = v.
extern "C" __global__ void fill(float* p, long long n, float v) {
    GRID_STRIDE(e, n) p[e] = v;
}

// cast_bf16: dst[0:n] = bf16(src[0:n]).
extern "C" __global__ void cast_bf16(bf16* dst, const float* src, long long n) {
    GRID_STRIDE(e, n) dst[e] = f2bf(src[e]);
}

// patches: the (B·T)×(P·P) patch matrix of B images of side×side pixels,
// image b being images[idx[b]·side² …] (idx holds image indices as float32,
// exact below 2²⁴). Row b·T + tok is the patch at grid position
// (tok / g, tok mod g), g = side/P, read row by row: vit.Model.Patches.
extern "C" __global__ void patches(void* out, int t, const float* images, const float* idx, int B, int side, int P) {
    int g = side / P, T = g * g, PP = P * P;
    long long n = (long long)B * T * PP;
    GRID_STRIDE(e, n) {
        long long row = e / PP;
        int c = (int)(e % PP);
        int b = (int)(row / T), tok = (int)(row % T);
        int pr = tok / g, pc = tok % g, i = c / P, j = c % P;
        long long img = (long long)idx[b];
        st(out, t, e, images[img * side * side + (long long)(pr * P + i) * side + pc * P + j]);
    }
}

// bias_rows: out(i, j) = bias[j] + pos[(i mod T)·n + j] + add(i, j) for a
// rows×n out of type t and add of type tadd; bias, pos and add may each be
// null (0). out may be add. It prefills a product's destination with its
// bias, the position embedding and the residual, which the product then
// accumulates into (beta = 1). bf16 tensors whose rows are whole 16-byte
// vectors go eight elements a thread; below 2³¹ elements the row and
// column come from 32-bit arithmetic (GRID_STRIDE32). Without pos, and
// when the grid has at least a row's vectors of threads, each thread keeps
// one column vector and its eight biases in registers and strides down the
// rows (biasGrid launches a few blocks per multiprocessor for this: about
// one vector a thread at the elementwise grid left the copy at about
// 1.3 TB/s on an H100, docs/results.md, "Twenty-eighth session"). Every
// path adds in the same order, so all give the same bits.
__device__ __forceinline__ float bias_elem(const float* bias, const float* pos, int T, int n, long long i, int j) {
    float v = bias ? bias[j] : 0.0f;
    if (pos) v += pos[(i % T) * n + j];
    return v;
}
extern "C" __global__ void bias_rows(void* out, int t, const float* bias, const float* pos, int T,
                                     const void* add, int tadd, long long rows, int n) {
    long long total = rows * n;
    bool small = total < (1LL << 31);
    if (small && t && n % 8 == 0 && al16(out) && (!add || (tadd && al16(add)))) {
        unsigned nv = (unsigned)n >> 3, nth = gridDim.x * blockDim.x;
        if (!pos && nth >= nv) {
            unsigned per = nth / nv; // rows a sweep of the grid
            unsigned tid = blockIdx.x * blockDim.x + threadIdx.x;
            if (tid >= per * nv) return;
            unsigned jv = tid % nv;
            float w[8];
            for (int k = 0; k < 8; k++) w[k] = bias ? bias[(jv << 3) + k] : 0.0f;
            for (unsigned i = tid / nv; i < (unsigned)rows; i += per) {
                unsigned v = i * nv + jv;
                float x[8];
                if (add) {
                    ld8(add, v, x);
                    for (int k = 0; k < 8; k++) x[k] = w[k] + x[k];
                } else {
                    for (int k = 0; k < 8; k++) x[k] = w[k];
                }
                st8(out, v, x);
            }
            return;
        }
        GRID_STRIDE32(v, total >> 3) {
            unsigned i = v / nv;
            int j = (int)(v - i * nv) << 3;
            float x[8];
            if (add) ld8(add, v, x);
            for (int k = 0; k < 8; k++) {
                float w = bias_elem(bias, pos, T, n, i, j + k);
                x[k] = add ? w + x[k] : w;
            }
            st8(out, v, x);
        }
    } else if (small) {
        GRID_STRIDE32(e, total) {
            unsigned i = e / (unsigned)n;
            float v = bias_elem(bias, pos, T, n, i, (int)(e - i * (unsigned)n));
            if (add) v += ld(add, tadd, e);
            st(out, t, e, v);
        }
    } else {
        GRID_STRIDE(e, total) {
            float v = bias_elem(bias, pos, T, n, e / n, (int)(e % n));
            if (add) v += ld(add, tadd, e);
            st(out, t, e, v);
        }
    }
}

// ln_fwd: LayerNorm of each row of the rows×d x: xhat = (x − μ)·rstd,
// rstd = 1/√(σ² + eps) (two passes: mean, then the centred variance),
// y = xhat·gamma + beta. xhat (type t) and rstd (float32, one per row) are
// written if not null. y may be x.
extern "C" __global__ void ln_fwd(void* y, void* xhat, float* rstd, const void* x, int t,
                                  const float* gamma, const float* beta, long long rows, int d, float eps) {
    int lane = threadIdx.x & 31;
    WARP_ROWS(r, rows) {
        long long base = r * d;
        float s = 0.0f;
        for (int j = lane; j < d; j += 32) s += ld(x, t, base + j);
        float mean = warp_sum(s) / d;
        float v = 0.0f;
        for (int j = lane; j < d; j += 32) {
            float c = ld(x, t, base + j) - mean;
            v += c * c;
        }
        float rs = 1.0f / sqrtf(warp_sum(v) / d + eps);
        for (int j = lane; j < d; j += 32) {
            float h = (ld(x, t, base + j) - mean) * rs;
            if (xhat) st(xhat, t, base + j, h);
            st(y, t, base + j, h * gamma[j] + beta[j]);
        }
        if (rstd && lane == 0) rstd[r] = rs;
    }
}

// ln_affine: y = xhat·gamma + beta, LayerNorm's output rebuilt from its
// saved normalised input (per-op training's q/k/v and fc1 inputs,
// Model.SetRecomputeLN); y may be xhat. bf16 rows of whole 16-byte vectors
// go eight elements a thread, their column by 32-bit arithmetic below 2³¹
// elements (GRID_STRIDE32).
__device__ __forceinline__ void affine8(void* y, const void* xhat, const float* gamma, const float* beta, long long v, int j) {
    float x[8];
    ld8(xhat, v, x);
    for (int i = 0; i < 8; i++) x[i] = x[i] * gamma[j + i] + beta[j + i];
    st8(y, v, x);
}
extern "C" __global__ void ln_affine(void* y, const void* xhat, int t, const float* gamma, const float* beta,
                                     long long rows, int d) {
    long long n = rows * d;
    bool vec = t && d % 8 == 0 && al16(y) && al16(xhat);
    if (vec && n < (1LL << 31)) {
        GRID_STRIDE32(v, n >> 3) affine8(y, xhat, gamma, beta, v, (int)((v << 3) % (unsigned)d));
        return; // n is a multiple of 8: no tail
    }
    if (vec) {
        GRID_STRIDE(v, n >> 3) affine8(y, xhat, gamma, beta, v, (int)((v << 3) % d));
    }
    VEC8_TAIL(e, n, vec) {
        int j = (int)(e % d);
        st(y, t, e, ld(xhat, t, e) * gamma[j] + beta[j]);
    }
}

// ln_bwd: the input gradient of LayerNorm, dx = rstd·(g − mean(g) −
// xhat·mean(g·xhat)) with g = dy·gamma, plus add(i, j) if add is not null
// (a residual branch's gradient). dx may be dy or add.
extern "C" __global__ void ln_bwd(void* dx, const void* dy, const void* xhat, const float* rstd, const float* gamma,
                                  const void* add, int t, long long rows, int d) {
    int lane = threadIdx.x & 31;
    WARP_ROWS(r, rows) {
        long long base = r * d;
        float m1 = 0.0f, m2 = 0.0f;
        for (int j = lane; j < d; j += 32) {
            float g = ld(dy, t, base + j) * gamma[j];
            m1 += g;
            m2 += g * ld(xhat, t, base + j);
        }
        m1 = warp_sum(m1) / d;
        m2 = warp_sum(m2) / d;
        float rs = rstd[r];
        for (int j = lane; j < d; j += 32) {
            float g = ld(dy, t, base + j) * gamma[j];
            float v = rs * (g - m1 - ld(xhat, t, base + j) * m2);
            if (add) v += ld(add, t, base + j);
            st(dx, t, base + j, v);
        }
    }
}

// mul_elem: out = a ⊙ b, n elements of type t (LayerNorm's gain gradient
// is the column sums of dy ⊙ xhat).
extern "C" __global__ void mul_elem(void* out, const void* a, const void* b, int t, long long n) {
    bool vec = t && al16(out) && al16(a) && al16(b);
    if (vec) {
        GRID_STRIDE(v, n >> 3) {
            float x[8], y[8];
            ld8(a, v, x);
            ld8(b, v, y);
            for (int i = 0; i < 8; i++) x[i] *= y[i];
            st8(out, v, x);
        }
    }
    VEC8_TAIL(e, n, vec) st(out, t, e, ld(a, t, e) * ld(b, t, e));
}

// The tanh approximation of GELU and its derivative (vit's gelu).
__device__ __forceinline__ void gelu_tanh(float u, float* y, float* dy) {
    const float c = 0.7978845608028654f, a = 0.044715f;
    float th = tanhf(c * (u + a * u * u * u));
    *y = 0.5f * u * (1.0f + th);
    *dy = 0.5f * (1.0f + th) + 0.5f * u * (1.0f - th * th) * c * (1.0f + 3.0f * a * u * u);
}

__device__ __forceinline__ float gelu_y(float u) {
    float y, dy;
    gelu_tanh(u, &y, &dy);
    return y;
}

__device__ __forceinline__ float gelu_dy(float u) {
    float y, dy;
    gelu_tanh(u, &y, &dy);
    return dy;
}

// gelu_fwd: out = gelu(u), n elements; out may be u.
extern "C" __global__ void gelu_fwd(void* out, const void* u, int t, long long n) {
    bool vec = t && al16(out) && al16(u);
    if (vec) {
        GRID_STRIDE(v, n >> 3) {
            float x[8];
            ld8(u, v, x);
            for (int i = 0; i < 8; i++) x[i] = gelu_y(x[i]);
            st8(out, v, x);
        }
    }
    VEC8_TAIL(e, n, vec) st(out, t, e, gelu_y(ld(u, t, e)));
}

// gelu_bwd: du = dout ⊙ gelu'(u); du may be dout.
extern "C" __global__ void gelu_bwd(void* du, const void* dout, const void* u, int t, long long n) {
    bool vec = t && al16(du) && al16(dout) && al16(u);
    if (vec) {
        GRID_STRIDE(v, n >> 3) {
            float x[8], g[8];
            ld8(u, v, x);
            ld8(dout, v, g);
            for (int i = 0; i < 8; i++) g[i] *= gelu_dy(x[i]);
            st8(du, v, g);
        }
    }
    VEC8_TAIL(e, n, vec) st(du, t, e, ld(dout, t, e) * gelu_dy(ld(u, t, e)));
}

// softmax_fwd: p = softmax of each row of the rows×n float32 scores s,
// shifted by the row maximum; p of type t.
extern "C" __global__ void softmax_fwd(void* p, int t, const float* s, long long rows, int n) {
    int lane = threadIdx.x & 31;
    WARP_ROWS(r, rows) {
        long long base = r * n;
        float mx = -__int_as_float(0x7f800000); // −∞
        for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s[base + j]);
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int j = lane; j < n; j += 32) sum += expf(s[base + j] - mx);
        sum = warp_sum(sum);
        for (int j = lane; j < n; j += 32) st(p, t, base + j, expf(s[base + j] - mx) / sum);
    }
}

// softmax_bwd: ds = p ⊙ (dp − Σ_j dp_j·p_j)·scale per row (the gradient
// with respect to the scores before their scaling by scale); dp float32,
// p and ds of type t.
extern "C" __global__ void softmax_bwd(void* ds, int t, const float* dp, const void* p, long long rows, int n, float scale) {
    int lane = threadIdx.x & 31;
    WARP_ROWS(r, rows) {
        long long base = r * n;
        float dot = 0.0f;
        for (int j = lane; j < n; j += 32) dot += dp[base + j] * ld(p, t, base + j);
        dot = warp_sum(dot);
        for (int j = lane; j < n; j += 32) {
            float pj = ld(p, t, base + j);
            st(ds, t, base + j, pj * (dp[base + j] - dot) * scale);
        }
    }
}

// mean_pool: out(b, j) = (Σ_k x(b·T + k, j))/T for B images of T tokens
// of width d.
extern "C" __global__ void mean_pool(void* out, const void* x, int t, int B, int T, int d) {
    long long n = (long long)B * d;
    GRID_STRIDE(e, n) {
        long long b = e / d;
        int j = (int)(e % d);
        float s = 0.0f;
        for (int k = 0; k < T; k++) s += ld(x, t, (b * T + k) * d + j);
        st(out, t, e, s / T);
    }
}

// mean_pool_bwd: dx(b·T + k, j) = dp(b, j)/T.
extern "C" __global__ void mean_pool_bwd(void* dx, const void* dp, int t, int B, int T, int d) {
    long long n = (long long)B * T * d;
    GRID_STRIDE(e, n) {
        long long row = e / d;
        int j = (int)(e % d);
        st(dx, t, e, ld(dp, t, (row / T) * d + j) / T);
    }
}

// xent: softmax cross-entropy of the B×C float32 logits against the labels
// labels[idx[i]] (both float32 arrays of exact integers). If dlogits is not
// null it gets the gradient of the mean loss, (softmax − onehot)/B; if loss
// is not null, loss[0] = the mean loss; if correct is not null, the number
// of rows whose first maximal logit is the label is added to correct[0].
// One block of 256 threads; the sums are reduced in a fixed order.
extern "C" __global__ void xent(float* dlogits, const float* logits, const float* labels, const float* idx,
                                int B, int C, float* loss, float* correct) {
    __shared__ float sl[256], sc[256];
    float l = 0.0f, c = 0.0f;
    for (int i = threadIdx.x; i < B; i += blockDim.x) {
        const float* row = logits + (long long)i * C;
        int y = (int)labels[(long long)idx[i]];
        float mx = row[0];
        int arg = 0;
        for (int j = 1; j < C; j++)
            if (row[j] > mx) {
                mx = row[j];
                arg = j;
            }
        float sum = 0.0f;
        for (int j = 0; j < C; j++) sum += expf(row[j] - mx);
        l += logf(sum) + mx - row[y];
        if (arg == y) c += 1.0f;
        if (dlogits)
            for (int j = 0; j < C; j++)
                dlogits[(long long)i * C + j] = (expf(row[j] - mx) / sum - (j == y ? 1.0f : 0.0f)) / B;
    }
    sl[threadIdx.x] = l;
    sc[threadIdx.x] = c;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            sl[threadIdx.x] += sl[threadIdx.x + s];
            sc[threadIdx.x] += sc[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (loss) loss[0] = sl[0] / B;
        if (correct) correct[0] += sc[0];
    }
}

// adam: one Adam step on n parameters, as vit.Adam.Step: m = b1·m +
// omb1·g, v = b2·v + omb2·g², w −= lr·(m/c1)/(√(v/c2) + eps), with
// omb1 = 1 − b1, omb2 = 1 − b2 and the bias corrections c1 = 1 − b1^t,
// c2 = 1 − b2^t formed by the caller in float64 (1 − b2 from a rounded b2
// would carry b2's rounding error magnified 1000 times); wb, if not null,
// gets bf16(w) (the copy the products read).
extern "C" __global__ void adam(float* w, bf16* wb, const float* g, float* m, float* v, long long n,
                                float lr, float b1, float omb1, float b2, float omb2, float eps, float c1, float c2) {
    GRID_STRIDE(e, n) {
        float gi = g[e];
        float mi = b1 * m[e] + omb1 * gi;
        float vi = b2 * v[e] + omb2 * gi * gi;
        m[e] = mi;
        v[e] = vi;
        float wi = w[e] - lr * (mi / c1) / (sqrtf(vi / c2) + eps);
        w[e] = wi;
        if (wb) wb[e] = f2bf(wi);
    }
}
