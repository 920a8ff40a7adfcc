# Time cusolverDnXsyevBatched (batch 1 and more) against cupy.linalg.eigh (syevd) on small
# symmetric matrices, float64 and float32, on this card. ctypes into libcusolver.
import ctypes, time, json, sys
import numpy as np, cupy as cp
lib = ctypes.CDLL("libcusolver.so.12") if len(sys.argv) < 2 else ctypes.CDLL(sys.argv[1])
h = ctypes.c_void_p(); assert lib.cusolverDnCreate(ctypes.byref(h)) == 0
p = ctypes.c_void_p(); assert lib.cusolverDnCreateParams(ctypes.byref(p)) == 0
CUDA_R_32F, CUDA_R_64F = 0, 1
JOBZ_V, LOWER = 1, 0
f = lib.cusolverDnXsyevBatched_bufferSize
f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t), ctypes.c_int64]
g = lib.cusolverDnXsyevBatched
g.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int64]
assert lib.cusolverDnSetStream(h, ctypes.c_void_p(cp.cuda.get_current_stream().ptr)) == 0
out = []
def timeit(fn, reps=20):
    fn(); cp.cuda.Device().synchronize()
    ts = []
    for _ in range(reps):
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        e0.record(); fn(); e1.record(); e1.synchronize()
        ts.append(cp.cuda.get_elapsed_time(e0, e1))
    return float(np.median(ts))
for dt, code in [(np.float64, CUDA_R_64F), (np.float32, CUDA_R_32F)]:
    for n in [32, 64, 128, 138, 256, 266, 512]:
        for batch in [1, 4]:
            rng = np.random.default_rng(n)
            b = rng.standard_normal((batch, n, 3 * n))
            a0 = cp.asarray((b @ b.transpose(0, 2, 1)).astype(dt))
            a = a0.copy(); w = cp.zeros((batch, n), dt)
            info = cp.zeros(batch, cp.int32)
            dsz, hsz = ctypes.c_size_t(), ctypes.c_size_t()
            st = f(h, p, JOBZ_V, LOWER, n, code, a.data.ptr, n, code, w.data.ptr, code, ctypes.byref(dsz), ctypes.byref(hsz), batch)
            if st != 0:
                out.append(dict(dtype=str(np.dtype(dt)), n=n, batch=batch, error="bufferSize status %d" % st)); continue
            dbuf = cp.empty(max(1, dsz.value), cp.uint8); hbuf = (ctypes.c_char * max(1, hsz.value))()
            def run():
                a[...] = a0
                s = g(h, p, JOBZ_V, LOWER, n, code, a.data.ptr, n, code, w.data.ptr, code, dbuf.data.ptr, dsz.value, hbuf, hsz.value, info.data.ptr, batch)
                assert s == 0, s
            t = timeit(run)
            # check: residual of the first matrix (column-major: A is symmetric, V in columns)
            A = cp.asnumpy(a0[0]).astype(np.float64); V = cp.asnumpy(a[0]).astype(np.float64).T; W = cp.asnumpy(w[0]).astype(np.float64)
            res = np.abs(A @ V - V * W).max() / np.abs(A).max(); orth = np.abs(V.T @ V - np.eye(n)).max()
            def eigh():
                for i in range(batch):
                    cp.linalg.eigh(a0[i])
            te = timeit(eigh)
            def copy():
                a[...] = a0
            tc = timeit(copy)
            out.append(dict(dtype=str(np.dtype(dt)), n=n, batch=batch, xsyevBatched_ms=t, copy_ms=tc, eigh_syevd_ms=te, residual=res, orth=orth, info=int(cp.asnumpy(info).max()), dbytes=dsz.value, hbytes=hsz.value))
            print(json.dumps(out[-1]), flush=True)
