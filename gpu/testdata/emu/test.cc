#include "emu.h"
#include "kernels_emu.cc"
#include <random>
float tile[1 << 16]; alignas(16) unsigned char smraw[1 << 18], xsraw32[1 << 18], xsraw[1 << 18], sraw[1 << 18], gnraw[1 << 18];
static unsigned short tobf(float x) { unsigned b; memcpy(&b, &x, 4); b += 0x7fffu + ((b >> 16) & 1u); return b >> 16; }
static float frombf(unsigned short h) { unsigned b = (unsigned)h << 16; float f; memcpy(&f, &b, 4); return f; }
int fails = 0;
// One case: stored sr×sc (ld), type t (0 f32, 1 bf16), rows mode or cols mode, l samples, grid nb.
void run(int sr, int sc, int ld, int t, bool rows, int l, int nb, unsigned seed, bool nan = false) {
  std::mt19937 rng(seed); std::normal_distribution<float> nd;
  size_t n = (size_t)ld * sc; std::vector<float> f(n); std::vector<unsigned short> h(n);
  for (size_t e = 0; e < n; e++) { f[e] = nd(rng); h[e] = tobf(f[e]); if (t == 1) f[e] = frombf(h[e]); }
  if (nan) f[3 + 2 * ld] = NAN, h[3 + 2 * ld] = 0x7fc0;
  int p = rows ? sr : sc, q = rows ? sc : sr;
  std::vector<long long> idx(p); for (int i = 0; i < p; i++) idx[i] = i; std::shuffle(idx.begin(), idx.end(), rng); idx.resize(l);
  int ldd = q + 3; std::vector<float> dst((size_t)ldd * l, -7.f); std::vector<double> part(2 * nb + 2);
  std::vector<int> cmap(sc, -1);
  const void* src = t == 1 ? (const void*)h.data() : (const void*)f.data();
  int es = t == 1 ? 2 : 4; int vec = ((uintptr_t)src % 16 == 0) && (ld * es) % 16 == 0 && sr % (16 / es) == 0;
  if (rows) launch(nb, 256, [&] { gather_norm_rows(part.data(), dst.data(), ldd, src, t, ld, sr, sc, idx.data(), l, vec); });
  else {
    launch(1, 256, [&] { invert_index(cmap.data(), idx.data(), l); });
    launch(nb, 256, [&] { gather_norm_cols(part.data(), dst.data(), ldd, src, t, ld, sr, sc, cmap.data(), vec); });
  }
  double out[2]; launch(1, 256, [&] { sum_partials(out, part.data(), nb); });
  double sq = 0, mx = 0; for (int c = 0; c < sc; c++) for (int i = 0; i < sr; i++) { double v = f[i + (size_t)c * ld]; sq += v * v; if (!(fabs(v) <= mx)) mx = std::isnan(v) ? mx : fabs(v); }
  int bad = 0;
  for (int j = 0; j < l; j++) for (int r = 0; r < q; r++) {
    float want = rows ? f[idx[j] + (size_t)r * ld] : f[r + (size_t)idx[j] * ld];
    float got = dst[r + (size_t)j * ldd];
    if (!(want == got) && !(std::isnan(want) && std::isnan(got))) { if (bad < 3) printf("  Ω(%d,%d) %g want %g\n", r, j, got, want); bad++; }
  }
  for (int j = 0; j < l; j++) for (int r = q; r < ldd; r++) if (dst[r + (size_t)j * ldd] != -7.f) bad++;
  bool okn = nan ? std::isnan(out[0]) : fabs(out[0] - sq) <= 1e-12 * sq;
  bool okm = out[1] == mx;
  printf("%s sr=%d sc=%d ld=%d t=%d l=%d nb=%d vec=%d: Ω bad=%d sq %.17g/%.17g max %g/%g %s\n", rows ? "rows" : "cols", sr, sc, ld, t, l, nb, vec, bad, out[0], sq, out[1], mx, (bad == 0 && okn && okm) ? "ok" : "FAIL");
  if (bad || !okn || !okm) fails++;
}
int main() {
  run(64, 40, 64, 1, true, 5, 1, 1);     // vec bf16, partial tile, one block
  run(64, 100, 64, 1, true, 64, 2, 2);   // all rows sampled, grid-stride over tiles
  run(96, 70, 100, 0, true, 17, 3, 3);   // f32 vec (ld 100: 400 B %16 = 0), partial tile
  run(33, 50, 35, 0, true, 7, 2, 4);     // scalar (odd rows)
  run(2048, 33, 2048, 1, true, 300, 2, 5); // long columns, many samples (U loop over sr)
  run(40, 37, 40, 1, false, 9, 2, 6);    // cols mode bf16 vec
  run(37, 45, 37, 0, false, 45, 1, 7);   // cols mode scalar, all columns
  run(1000, 20, 1000, 0, false, 3, 2, 8);  // long columns cols mode f32 vec
  run(64, 40, 64, 1, true, 5, 1, 9, true); // NaN
  run(64, 40, 64, 0, false, 5, 2, 10, true);
  printf("%d failures\n", fails);
  return fails != 0;
}
