"""NumPy's pieces of the float32 rows QB of a 4096×1024 matrix at k = 64,
as cmd/loract/internal/bench/cpu_peers.py's qb computes it (x = aᵀ): the
gather x[idx].T, Y = x·Ω, the QR of Y (qr_q) and B = Qᵀ·x, then the whole
qb; min and median ms of 40 calls each. The Go side is
`go test -run '^$' -bench BenchmarkRowsQBPieces ./cpu` (docs/gemm.md).
Run with /usr/bin/python3 and OPENBLAS_CORETYPE set to the CPU's family
(loract bench prints the kernel it gives each peer)."""
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "cmd", "loract", "internal", "bench"))
import cpu_peers as cp  # noqa: E402


def timed(f, n=40):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return "min %.3f median %.3f ms" % (ts[0] * 1e3, ts[len(ts) // 2] * 1e3)


rng = np.random.default_rng(0)
a = rng.standard_normal((4096, 1024)).astype(np.float32)
x = a.T
idx = rng.choice(1024, size=64, replace=False)
om = x[idx].T
y = x @ om
q = cp.qr_q(y)
print("blas:", [(d["internal_api"], d.get("architecture"), d["num_threads"]) for d in threadpool_info()])
print("gather", timed(lambda: x[idx].T.copy()))
print("Y", timed(lambda: x @ om))
print("QR", timed(lambda: cp.qr_q(y)))
print("B", timed(lambda: q.T @ x))
print("qb", timed(lambda: cp.qb(a, 64, 0, 0, False, rng)))
