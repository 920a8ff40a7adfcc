"""Shared by cpu_peers.py and torch_peer.py (loract writes it beside them):
what BLAS the process loaded, and a check that its kernel computes correctly.

threadpools() is threadpoolctl.threadpool_info() cut to the keys loract
records: user_api, internal_api ("openblas", "mkl", ...), version,
architecture (OpenBLAS: the kernel it runs, e.g. "Haswell", "SkylakeX", or
"Prescott" when it did not recognise the CPU), num_threads, threading_layer
and filepath. It lists only the libraries loaded so far: call it after the
first product.

blas_check(matmul, qr) compares products and a thin QR computed by the
loaded BLAS/LAPACK with numpy.einsum (optimize=False: numpy's own loops, not
BLAS) in float64, in float32 and float64, on sizes that reach the blocked
kernels. It returns "ok" or a sentence naming what failed, so that a kernel
forced with OPENBLAS_CORETYPE is never trusted without a check.
"""
import numpy as np


def threadpools():
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed: BLAS kernel not recorded"
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
    return [{k: d.get(k) for k in keys} for d in threadpoolctl.threadpool_info()]


def numpy_qr(a):
    try:
        import scipy.linalg
        return scipy.linalg.qr(a, mode="economic", check_finite=False)
    except ImportError:
        q, r = np.linalg.qr(a)
        return q.astype(a.dtype, copy=False), r.astype(a.dtype, copy=False)


def ref_mul(a, b):
    return np.einsum("ij,jk->ik", a.astype(np.float64), b.astype(np.float64), optimize=False)


def blas_check(matmul=None, qr=None):
    """Returns "ok" if matmul(a, b), matmul(a.T, a) and qr(a) agree with
    einsum references to rounding bounds, else what failed.

    The bounds: |fl(AB) - AB| <= g_n |A||B| elementwise with g_n ~ n u for
    inner dimension n and unit roundoff u (Higham, Accuracy and Stability
    of Numerical Algorithms, Thm 3.5); 8 n u leaves margin for blocked
    summation orders. Householder QR: ||QR - A|| and ||Q^T Q - I|| of order
    m n u (Higham Thm 19.4); 64 n u against the largest entry of |A|
    relative is loose enough for every LAPACK kernel and still rejects a
    wrong product by orders of magnitude.
    """
    matmul = matmul or (lambda a, b: a @ b)
    qr = qr or numpy_qr
    rng = np.random.default_rng(12345)
    m, n, p = 211, 157, 173
    for dt in (np.float32, np.float64):
        u = float(np.finfo(dt).eps) / 2
        a = rng.standard_normal((m, n)).astype(dt)
        b = rng.standard_normal((n, p)).astype(dt)
        try:
            for name, x, y in (("A·B", a, b), ("Aᵀ·A", np.ascontiguousarray(a.T), a)):
                got = np.asarray(matmul(x, y), dtype=np.float64)
                want = ref_mul(x, y)
                bound = 8 * x.shape[1] * u * ref_mul(np.abs(x), np.abs(y))
                bad = np.abs(got - want) > bound
                if got.shape != want.shape or bad.any():
                    return "%s product %s wrong beyond %g·|A||B| at %d entries" % (
                        np.dtype(dt).name, name, 8 * x.shape[1] * u, int(bad.sum()))
            q, r = qr(a)
            q = np.asarray(q, dtype=np.float64)
            r = np.asarray(r, dtype=np.float64)
            tol = 64 * n * u
            orth = np.max(np.abs(np.einsum("ki,kj->ij", q, q, optimize=False) - np.eye(q.shape[1])))
            back = np.max(np.abs(np.einsum("ik,kj->ij", q, r, optimize=False) - a.astype(np.float64)))
            if not (orth <= tol and back <= tol * np.max(np.abs(a))):
                return "%s QR wrong: |QᵀQ - I| = %.2g, |QR - A| = %.2g, bound %.2g" % (np.dtype(dt).name, orth, back, tol)
        except Exception as e:  # a kernel that cannot run (an illegal instruction kills the process instead)
            return "%s check raised %s: %s" % (np.dtype(dt).name, type(e).__name__, str(e).splitlines()[0][:200])
    return "ok"
