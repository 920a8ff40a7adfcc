# SciPy gesdd on the graded 4096×1024 matrix only, built as peer.py builds it
# (docs/exact-svd.md, "Commands"): min of three calls. /usr/bin/python3 peer_graded.py
import time
import numpy as np, scipy.linalg
m, n = 4096, 1024
rng = np.random.default_rng(1)
q1, _ = np.linalg.qr(rng.standard_normal((m, n)))
q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
j = np.arange(n)
a = (q1 * 10.0 ** (-14.0 * j / (n - 1))) @ q2.T
scipy.linalg.svd(rng.standard_normal((64, 64)))  # warm up
ts = []
for _ in range(3):
    t = time.perf_counter()
    scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesdd")
    ts.append(time.perf_counter() - t)
print("scipy gesdd graded: min %.3f s" % min(ts))
