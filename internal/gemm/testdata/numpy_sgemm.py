# Times numpy.dot on float32 arrays (OpenBLAS sgemm) on the shapes of
# BenchmarkSgemm, after checking each result against a float64 product;
# prints the BLAS library and kernel (threadpoolctl), then GFLOP/s per
# shape over the mean of argv[1] consecutive calls after one warm-up call,
# as BenchmarkSgemm -test.benchtime 3x measures ours. See docs/gemm.md.
import sys, time
import numpy as np
import threadpoolctl

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for lib in threadpoolctl.threadpool_info():
    print(f"# {lib['internal_api']} {lib['version']} architecture={lib.get('architecture')} threads={lib['num_threads']}")
r = np.random.default_rng(1)
shapes = [(8192,128,4096,0,0),(4096,128,8192,1,0),(128,4096,8192,1,0),(4096,64,1024,0,0),(1024,1024,1024,0,0),(1024,1024,4096,1,0),(128,8192,4096,1,1)]
only = sys.argv[2] if len(sys.argv) > 2 else None
for (m,n,k,ta,tb) in shapes:
    name = f"m={m}/n={n}/k={k}/ta={str(bool(ta)).lower()}/tb={str(bool(tb)).lower()}"
    if only and only != name:
        continue
    A = r.standard_normal((k,m) if ta else (m,k), dtype=np.float32)
    B = r.standard_normal((n,k) if tb else (k,n), dtype=np.float32)
    op = lambda X, t: X.T if t else X
    C = np.dot(op(A,ta), op(B,tb))
    # float32 inner-product bound, gamma_{k+2}(2^-24)·|A|·|B|, against a float64 product.
    exact = np.dot(op(A,ta).astype(np.float64), op(B,tb).astype(np.float64))
    bound = np.dot(np.abs(op(A,ta)).astype(np.float64), np.abs(op(B,tb)).astype(np.float64))
    u = 2.0**-24; g = (k+2)*u/(1-(k+2)*u)
    ok = bool(np.all(np.abs(C - exact) <= 1.0001*g*bound))
    t, c = time.perf_counter(), time.process_time()
    for _ in range(reps):
        np.dot(op(A,ta), op(B,tb))
    mean, cpu = (time.perf_counter()-t)/reps, (time.process_time()-c)/reps
    f = 2*m*n*k/1e9
    # GFLOP per CPU-second of the process, as BenchmarkSgemm's GFLOP/cpu-s
    # (with several threads it also counts OpenBLAS's threads spinning).
    print(f"numpy-sgemm {name} {f/mean:.1f} GFLOP/s {f/cpu:.1f} GFLOP/cpu-s correct={ok}")
