# Times numpy.dot (float64) and float32-A-converted-then-dot on the shapes of
# BenchmarkDgemm; prints GFLOP/s, best of argv[1] repetitions. See docs/gemm.md.
import numpy as np, time, sys
r = np.random.default_rng(1)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for (m,n,k,ta,tb) in [(8192,128,4096,0,0),(4096,128,8192,1,0),(128,4096,8192,1,0),(4096,64,1024,0,0),(1024,1024,1024,0,0),(1024,1024,4096,1,0),(128,8192,4096,1,1)]:
    A = r.standard_normal((k,m) if ta else (m,k)); B = r.standard_normal((n,k) if tb else (k,n))
    A32 = A.astype(np.float32)
    op = lambda X, t: X.T if t else X
    np.dot(op(A,ta), op(B,tb))
    best = best32 = 1e9
    for _ in range(reps):
        t = time.perf_counter(); np.dot(op(A,ta), op(B,tb)); best = min(best, time.perf_counter()-t)
        t = time.perf_counter(); np.dot(op(A32,ta).astype(np.float64), op(B,tb)); best32 = min(best32, time.perf_counter()-t)
    f = 2*m*n*k/1e9
    print(f"numpy m={m}/n={n}/k={k}/ta={str(bool(ta)).lower()}/tb={str(bool(tb)).lower()} {f/best:.1f} GFLOP/s  float32-A(astype+dot) {f/best32:.1f} GFLOP/s")
