#!/usr/bin/env python3
"""CPU peers for loract's benchmarks: NumPy/OpenBLAS implementations of the
LoRAct QB and of Gaussian QB, scikit-learn's randomized_svd and SciPy's exact
SVD, timed on one matrix read from a .npy file.

Methods (--methods, comma separated):
  rows            LoRAct QB in NumPy: op(A) = A if m <= n else A^T (orthonormal
                  factor in the smaller dimension), idx = k+over distinct rows
                  drawn uniformly, Y = op(A) op(A)[idx]^T, q power iterations
                  Y = op(A)(op(A)^T qr(Y)), thin QR of Y, B = Q^T op(A);
                  truncated to k by an SVD of B when over > 0.
  gaussian        the same with a Gaussian test matrix.
  randomized_svd  sklearn.utils.extmath.randomized_svd with its defaults
                  (n_oversamples=10, n_iter='auto': 7 if k < 0.1 min(m, n)
                  else 4, power_iteration_normalizer='auto').
  randomized_svd_p0q0  the same with n_oversamples=0, n_iter=0.
  randomized_svd_grid  the same for every (p, q) of --oversample x --power-iters.
  exact           scipy.linalg.svd(A, full_matrices=False, lapack_driver='gesdd'),
                  truncated to k (skipped with --skip-exact).

The element type of the input is kept (float32 stays float32: QR through
scipy.linalg.qr, i.e. LAPACK sgeqrf/sorgqr; numpy.linalg.qr would compute in
float64). Timing: --warmup untimed calls, then the median of --repeats calls
(perf_counter). rel_error = ||A - approx||_F / ||A||_F of the warm-up call
(seed --seed), accumulated in float64; rel_error_mean is the mean over the
warm-up call and the timed calls of the same error from the projection
identity ||A - PA||_F^2 = ||A||_F^2 - ||PA||_F^2.

Output: one JSON line per method and setting:
  {"peer", "method", "device": "cpu", "dtype", "m", "n", "k", "p", "q",
   "ms", "ms_min", "repeats", "rel_error", "rel_error_mean"}
preceded by {"env": {...}} with the versions and, if threadpoolctl is
installed, the BLAS libraries actually loaded ("threadpools":
threadpoolctl.threadpool_info: internal_api, version, architecture = the
OpenBLAS kernel, num_threads), and "blas_check": "ok" or what failed when
the loaded kernel's products and QR were compared with numpy.einsum
(peer_env.py, written beside this script). --probe prints only that line.
OpenBLAS reads OPENBLAS_CORETYPE when it loads: 'loract bench' unsets it (and
OPENBLAS_L2_SIZE) and sets it again only where OpenBLAS fell back to a kernel
below the CPU's vector ISA (see the Go side, kernel.go).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

import peer_env

try:
    import scipy
    import scipy.linalg
except ImportError:  # pragma: no cover
    scipy = None
sklearn = None  # imported on first use: it takes seconds


def load_sklearn():
    global sklearn, randomized_svd
    if sklearn is None:
        try:
            import sklearn as sk
            from sklearn.utils.extmath import randomized_svd as rs
        except ImportError:
            return False
        sklearn, randomized_svd = sk, rs
    return True


def parse_ints(s):
    return [int(v) for v in s.split(",") if v.strip() != ""]


def qr_q(y):
    if scipy is not None:
        q, _ = scipy.linalg.qr(y, mode="economic", overwrite_a=True, check_finite=False)
        return q
    return np.linalg.qr(y)[0].astype(y.dtype, copy=False)


def small_svd(b):
    if scipy is not None:
        return scipy.linalg.svd(b, full_matrices=False, check_finite=False)
    return np.linalg.svd(b, full_matrices=False)


def qb(a, k, over, q, gaussian, rng):
    """Returns (L, R) with A ~ L @ R."""
    m, n = a.shape
    t = m > n
    x = a.T if t else a
    p, s = x.shape
    l = min(k + over, p)
    if gaussian:
        omega = rng.standard_normal((s, l)).astype(a.dtype, copy=False)
    else:
        idx = rng.choice(p, size=l, replace=False)
        omega = x[idx].T
    y = x @ omega
    for _ in range(q):
        qm = qr_q(y)
        y = x @ (x.T @ qm)
    qm = qr_q(y)
    b = qm.T @ x
    if l > k:
        u, sv, vh = small_svd(b)
        qm = qm @ u[:, :k]
        b = sv[:k, None] * vh[:k]
    if t:
        return b.T, qm.T
    return qm, b


def sk_rsvd(a, k, p, q, seed):
    kw = {}
    if p is not None:
        kw["n_oversamples"] = p
    if q is not None:
        kw["n_iter"] = q
    u, s, vt = randomized_svd(a, k, random_state=seed, **kw)
    return u * s, vt


def exact(a, k):
    u, s, vt = scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    return u[:, :k] * s[:k], vt[:k]


def rel_error(a, l, r, chunk=2048):
    num = 0.0
    den = 0.0
    for i0 in range(0, a.shape[0], chunk):
        ab = a[i0:i0 + chunk]
        d = (ab - l[i0:i0 + chunk] @ r).astype(np.float64)
        num += float(np.einsum("ij,ij->", d, d))
        ab64 = ab.astype(np.float64)
        den += float(np.einsum("ij,ij->", ab64, ab64))
    return float(np.sqrt(num / den))


def identity_error(norm2a, l, r):
    """sqrt(1 - ||L R||_F^2 / ||A||_F^2): the error of an orthogonal
    projection L R = P A (every method here computes one), from
    ||L R||_F^2 = sum((L^T L) * (R R^T)), in float64 at O((m+n) k^2) cost."""
    l = l.astype(np.float64)
    r = r.astype(np.float64)
    p2 = float(np.sum((l.T @ l) * (r @ r.T)))
    return float(np.sqrt(max(0.0, norm2a - p2) / norm2a))


def cpu_time():
    """CPU time (user + system, all threads) of this process in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed(fn, warmup, repeats, seed, norm2a):
    """Returns (first result, sorted times in ms, mean identity error over
    the first warm-up call and the timed calls)."""
    first = None
    for _ in range(warmup):
        out = fn(seed)
        if first is None:
            first = out
    errs = [identity_error(norm2a, *first)] if first is not None else []
    times = []
    cpus = []
    for r in range(repeats):
        c0 = cpu_time()
        t0 = time.perf_counter()
        out = fn(seed + 1 + r)
        times.append((time.perf_counter() - t0) * 1e3)
        cpus.append((cpu_time() - c0) * 1e3)
        if first is None:
            first = out  # no warm-up: the first timed call gives rel_error
        errs.append(identity_error(norm2a, *out))
    return first, sorted(times), sum(errs) / len(errs), statistics.median(cpus)


def env_info(path, dtype):
    env = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__ if scipy else None,
        "sklearn": sklearn.__version__ if sklearn else None,
        "cpu_count": os.cpu_count(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "input": path,
        "input_dtype": str(dtype) if dtype is not None else None,
    }
    # The check loads BLAS and LAPACK, so that threadpools lists them.
    env["blas_check"] = peer_env.blas_check()
    env["threadpools"] = peer_env.threadpools()
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", action="store_true", help="print only the env line (BLAS kernel and its check) and exit")
    ap.add_argument("--input", help=".npy file with the matrix (float32 or float64, C order)")
    ap.add_argument("--k", type=int)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="rows,gaussian,randomized_svd,randomized_svd_p0q0,exact")
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--exact-once", action="store_true", help="time the exact SVD once, without a warm-up")
    ap.add_argument("--power-iters", default="0", help="comma-separated q values (rows, gaussian, randomized_svd_grid)")
    ap.add_argument("--oversample", default="0", help="comma-separated p values (rows, gaussian, randomized_svd_grid)")
    args = ap.parse_args()
    if args.probe:
        print(json.dumps({"env": env_info(None, None)}), flush=True)
        return
    if args.input is None or args.k is None:
        ap.error("--input and --k are required")

    a = np.load(args.input)
    if a.ndim != 2:
        sys.exit("cpu_peers: %s is not a matrix" % args.input)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    a = np.ascontiguousarray(a)
    m, n = a.shape
    k = args.k
    dtype = {np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64"}[a.dtype]

    if "randomized_svd" in args.methods:
        load_sklearn()
    print(json.dumps({"env": env_info(args.input, a.dtype)}), flush=True)

    a64 = a.astype(np.float64)
    norm2a = float(np.einsum("ij,ij->", a64, a64))
    del a64
    base = {"device": "cpu", "dtype": dtype, "m": m, "n": n, "k": k}
    auto_q = 7 if k < 0.1 * min(m, n) else 4
    runs = []
    for meth in [s.strip() for s in args.methods.split(",") if s.strip()]:
        if meth in ("rows", "gaussian"):
            for q in parse_ints(args.power_iters):
                for p in parse_ints(args.oversample):
                    runs.append(("numpy", meth, p, q, lambda sd, meth=meth, p=p, q=q:
                                 qb(a, k, p, q, meth == "gaussian", np.random.default_rng(sd))))
        elif meth == "randomized_svd":
            runs.append(("sklearn", meth, 10, auto_q, lambda sd: sk_rsvd(a, k, None, None, sd)))
        elif meth == "randomized_svd_p0q0":
            runs.append(("sklearn", "randomized_svd", 0, 0, lambda sd: sk_rsvd(a, k, 0, 0, sd)))
        elif meth == "randomized_svd_grid":
            for q in parse_ints(args.power_iters):
                for p in parse_ints(args.oversample):
                    runs.append(("sklearn", "randomized_svd", p, q, lambda sd, p=p, q=q: sk_rsvd(a, k, p, q, sd)))
        elif meth == "exact":
            if not args.skip_exact:
                runs.append(("scipy", meth, 0, 0, lambda sd: exact(a, k)))
        else:
            sys.exit("cpu_peers: unknown method %r" % meth)

    for peer, meth, p, q, fn in runs:
        rec = dict(base, peer=peer, method=meth, p=p, q=q)
        if (peer == "sklearn" and not load_sklearn()) or (peer == "scipy" and scipy is None):
            rec["error"] = "%s is not installed (apt-get install python3-%s)" % (peer, peer)
        else:
            try:
                warm, reps = args.warmup, args.repeats
                if meth == "exact" and args.exact_once:
                    warm, reps = 0, 1
                (l, r), times, mean_err, cpu_ms = timed(fn, warm, reps, args.seed, norm2a)
                rec.update(ms=statistics.median(times), cpu_ms=cpu_ms, ms_min=times[0], repeats=len(times),
                           rel_error=rel_error(a, l, r), rel_error_mean=mean_err)
            except (np.linalg.LinAlgError, ValueError, MemoryError) as e:
                rec["error"] = str(e).splitlines()[0][:300]
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
