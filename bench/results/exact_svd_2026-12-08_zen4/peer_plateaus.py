import time, json
import numpy as np, scipy.linalg
from threadpoolctl import threadpool_info
print("threadpoolctl:", json.dumps([{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")} for d in threadpool_info()]))
m, n = 4096, 1024
rng = np.random.default_rng(1)
q1, _ = np.linalg.qr(rng.standard_normal((m, n)))
q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
j = np.arange(n)
s = 10.0 ** (-2.0 * (j // 128)) * (1 + 1e-9 * (127 - j % 128))
a = (q1 * s) @ q2.T
ts = []
for _ in range(3):
    t = time.perf_counter()
    scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesdd")
    ts.append(time.perf_counter() - t)
print("scipy gesdd plateaus: min %.3f s" % min(ts))
