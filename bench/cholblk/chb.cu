// Variants of gpu/kernels.cu's cholblk64 for bench/cholblk/chb.py (see
// there); not compiled by the library.
#ifndef CHB_THREADS
#define CHB_THREADS 512
#endif
#ifndef USE_REG
#define USE_REG 1
#endif
#define CHB 32
extern "C" __global__ void __launch_bounds__(CHB_THREADS)
chb(const double* G0, int ld0, double* R, int ldr, int l, double shift, double rel, int* info, int mode) {
    extern __shared__ __align__(16) unsigned char chbraw[];
    int lp = (l + 1) & ~1;
    double* Ri = (double*)chbraw;
    double* Rk = Ri + CHB * CHB;
    double* diag0 = Rk + CHB * CHB;
    double* P = diag0 + lp;
    __shared__ int bad;
    __shared__ double red[CHB_THREADS / 32];
    __shared__ double dinv[CHB];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    const unsigned full = 0xffffffffu;
    double tr = 0;
    for (int j = tid; j < l; j += blockDim.x) tr += G0[j + (long long)j * ld0];
    for (int o = 16; o > 0; o >>= 1) tr += __shfl_down_sync(full, tr, o);
    if (lane == 0) red[warp] = tr;
    __syncthreads();
    if (tid == 0) { double t = 0; for (int w = 0; w < nw; w++) t += red[w]; red[0] = t; }
    __syncthreads();
    double trace = red[0];
    for (int attempt = 0; attempt < 2; attempt++) {
        double s = attempt == 0 ? 0.0 : shift * trace;
        for (int c = warp; c < l; c += nw)
            for (int i = lane; i <= c; i += 32) {
                double v = G0[i + (long long)c * ld0];
                if (i == c) { v += s; diag0[i] = v; }
                R[i + (long long)c * ldr] = v;
            }
        if (tid == 0) bad = 0;
        __syncthreads();
        for (int kb = 0; kb < l; kb += CHB) {
            int nb = min(CHB, l - kb);
            int w = l - kb - nb;
            if (warp == 0 && !(mode & 4)) {
                int c = lane;
                int ok = 1;
#if USE_REG
                double a[CHB];
                #pragma unroll
                for (int i = 0; i < CHB; i++)
                    a[i] = (c < nb && i <= c) ? R[kb + i + (long long)(kb + c) * ldr] : (i == c ? 1.0 : 0.0);
                #pragma unroll
                for (int j = 0; j < CHB; j++) {
                    double d = __shfl_sync(full, a[j], j);
                    if (j < nb && (!(d > rel * diag0[kb + j]) || !(d > 0))) ok = 0;
                    double r = sqrt(fabs(d));
                    double ri = 1.0 / r;
                    if (c >= j) a[j] = (c == j) ? r : a[j] * ri;
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
                dinv[c] = 1.0 / a[c];
#else
                for (int i = 0; i < CHB; i++)
                    Rk[i * CHB + c] = (c < nb && i <= c) ? R[kb + i + (long long)(kb + c) * ldr] : (i == c ? 1.0 : 0.0);
                __syncwarp();
                for (int j = 0; j < CHB; j++) {
                    double d = Rk[j * CHB + j];
                    if (j < nb && (!(d > rel * diag0[kb + j]) || !(d > 0))) ok = 0;
                    double r = sqrt(fabs(d));
                    double ri = 1.0 / r;
                    double rjc = 0;
                    if (c > j) { rjc = Rk[j * CHB + c] * ri; Rk[j * CHB + c] = rjc; }
                    __syncwarp();
                    if (c == j) { Rk[j * CHB + j] = r; dinv[j] = ri; }
                    for (int i = j + 1; i <= c; i++) Rk[i * CHB + c] -= Rk[j * CHB + i] * rjc;
                    __syncwarp();
                }
                for (int i = 0; i <= c && i < nb; i++)
                    if (c < nb) R[kb + i + (long long)(kb + c) * ldr] = Rk[i * CHB + c];
                for (int i = c + 1; i < CHB; i++) Rk[i * CHB + c] = 0.0;
#endif
                __syncwarp();
                if (ok) {
#if USE_REG
                    double x[CHB];
                    #pragma unroll
                    for (int t = 0; t < CHB; t++) x[t] = (t == c) ? 1.0 : 0.0;
                    #pragma unroll
                    for (int m = 0; m < CHB; m++) {
                        const int sq = CHB - 1 - m;
                        x[sq] = x[sq] * dinv[sq];
                        #pragma unroll
                        for (int t = 0; t < CHB - 1 - m; t++) x[t] -= Rk[t * CHB + sq] * x[sq];
                    }
                    #pragma unroll
                    for (int t = 0; t < CHB; t++) Ri[t * CHB + c] = x[t];
#else
                    for (int t = 0; t < CHB; t++) Ri[t * CHB + c] = (t == c) ? 1.0 : 0.0;
                    for (int sq = CHB - 1; sq >= 0; sq--) {
                        double xs = Ri[sq * CHB + c] * dinv[sq];
                        Ri[sq * CHB + c] = xs;
                        for (int t = 0; t < sq; t++) Ri[t * CHB + c] -= Rk[t * CHB + sq] * xs;
                    }
#endif
                } else if (lane == 0) {
                    bad = 1;
                }
            }
            __syncthreads();
            if (bad) break;
            if (!(mode & 2))
            for (int cc = (tid + blockDim.x - 32) % blockDim.x; cc < w; cc += blockDim.x) {
                long long col = (long long)(kb + nb + cc) * ldr;
#if USE_REG
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
#else
                for (int t = 0; t < CHB; t++) P[t * lp + cc] = t < nb ? R[kb + t + col] : 0.0;
                for (int i = 0; i < CHB; i++) {
                    double xi = P[i * lp + cc] * dinv[i];
                    P[i * lp + cc] = xi;
                    if (i < nb) R[kb + i + col] = xi;
                    for (int t = i + 1; t < CHB; t++) P[t * lp + cc] -= Rk[i * CHB + t] * xi;
                }
#endif
            }
            __syncthreads();
            int nr = (w + 63) >> 6, nc = (w + 7) >> 3;
            int off = kb + nb;
            if (!(mode & 1))
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
                        pc[r] = v.x; pc[r + 1] = v.y;
                    }
                    #pragma unroll
                    for (int r = 0; r < 8; r++) { acc[0][r] += pi0 * pc[r]; acc[1][r] += pi1 * pc[r]; }
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
