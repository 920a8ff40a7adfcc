// Minimal cooperative emulation of CUDA blocks for logic tests: one fiber
// per thread (ucontext), barriers for __syncthreads and warp shuffles.
#pragma once
#include <ucontext.h>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <vector>
#include <functional>
#include <cstdio>
#include <cstdlib>
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
struct Fiber { ucontext_t ctx; std::vector<char> stack; int tid; bool done = false; int waiting = 0; long long gen = 0; };
extern std::vector<Fiber> fibers; extern int cur; extern ucontext_t sched;
extern dim3 gridDim, blockIdx, blockDim;
struct TI { unsigned x; };
#define threadIdx (TI{(unsigned)fibers[cur].tid})
inline void yield_() { swapcontext(&fibers[cur].ctx, &sched); }
// barrier kinds: 1 = block, 2 = warp
inline void wait_(int kind) { fibers[cur].waiting = kind; yield_(); }
inline void __syncthreads() { wait_(1); }
inline void __syncwarp(unsigned = 0xffffffffu) { wait_(2); }
extern double shfl_slot[1024];
template <class T> inline T __shfl_down_sync(unsigned, T v, int o) {
  int t = fibers[cur].tid; std::memcpy(&shfl_slot[t], &v, sizeof(T)); wait_(2);
  int lane = t & 31; T r = v; if (lane + o < 32) std::memcpy(&r, &shfl_slot[t + o], sizeof(T)); wait_(2); return r;
}
inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
inline float __uint_as_float(unsigned x) { float f; std::memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned x; std::memcpy(&x, &f, 4); return x; }
inline int __float_as_int(float f) { int x; std::memcpy(&x, &f, 4); return x; }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
template <class T> inline T atomicOr(T* p, T v) { T o = *p; *p |= v; return o; }
template <class T> inline T atomicMin(T* p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <class T> inline T atomicMax(T* p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <class T> inline T atomicAdd(T* p, T v) { T o = *p; *p += v; return o; }
template <class T> inline T min(T a, T b) { return a < b ? a : b; }
template <class T> inline T max(T a, T b) { return a > b ? a : b; }
inline double cospi(double x) { return std::cos(M_PI * x); }
using std::sqrt; using std::fabs; using std::fmax; using std::log;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n)
void launch(unsigned grid, unsigned block, std::function<void()> body);
