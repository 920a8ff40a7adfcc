#!/usr/bin/env python3
"""PyTorch peer for loract's benchmarks: times the LoRAct reference algorithm
and PyTorch's own low-rank methods on one matrix read from a .npy file.

Methods (--methods, comma separated):
  rows         the LoRAct reference QB (rows-of-A test matrix): with op(A) = A
               if m <= n else A^T (orthonormal factor in the smaller dimension),
               idx = randperm(p)[:k+over], Y = op(A) op(A)[idx]^T, q power
               iterations Y = op(A)(op(A)^T qr(Y)), thin QR of Y in fp32,
               B = Q^T op(A); truncated to k by an SVD of B if over > 0.
  gaussian     the same with a Gaussian test matrix Omega (s x (k+over)).
  svd_lowrank  torch.svd_lowrank(A, q=k+over, niter=niter).
  exact        torch.linalg.svd(A, full_matrices=False), truncated to k
               (skipped with --skip-exact).

Each timed call is preceded by --warmup untimed calls; the time is the median
of --repeats calls (seeds seed, seed+1, ...). On CUDA every call is timed with
CUDA events after a device synchronisation; on the CPU with perf_counter.
rel_error = ||A - approx||_F / ||A||_F of the warm-up call (seed --seed)
against the input as read (fp32 or fp64), accumulated in fp64 on the device;
rel_error_mean (not for bf16) is the mean over the first and the timed calls
of the same error from the projection identity ||A - PA||^2 = ||A||^2 - ||PA||^2.

Output: one JSON line per method and setting:
  {"peer": "torch", "method", "device", "dtype", "m", "n", "k", "p", "q",
   "ms", "ms_min", "repeats", "rel_error", "rel_error_mean"}
or, when a method cannot run (e.g. bf16 QR unsupported), the same keys with
"error" instead of "ms"/"rel_error". A first line {"env": {...}} records the
versions, thread counts, the BLAS libraries loaded ("threadpools", from
threadpoolctl) and "blas_check": "ok" or what failed when torch's CPU
products and QR were compared with numpy.einsum (peer_env.py, written beside
this script). --probe prints only that line.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

import peer_env


def parse_ints(s):
    return [int(v) for v in s.split(",") if v.strip() != ""]


def op(a):
    """Returns (op(A), transposed): the orientation with the orthonormal
    factor in the smaller dimension."""
    m, n = a.shape
    if m <= n:
        return a, False
    return a.t(), True


def qr_fp32(y, dtype):
    """Thin QR of y computed in fp32 (as the reference does), Q cast back."""
    return torch.linalg.qr(y.float()).Q.to(dtype)


def qb(a, k, over, q, gaussian, gen):
    """LoRAct (rows) or Gaussian QB of a (already in the compute dtype).
    Returns (L, R) with A ~ L @ R in the caller's orientation."""
    x, t = op(a)
    p, s = x.shape
    l = min(k + over, p)
    if gaussian:
        omega = torch.randn(s, l, generator=gen, device=a.device, dtype=torch.float32).to(a.dtype)
    else:
        idx = torch.randperm(p, generator=gen, device=a.device)[:l]
        omega = x[idx].t()
    y = x @ omega
    for _ in range(q):
        qm = qr_fp32(y, a.dtype)
        y = x @ (x.t() @ qm)
    qm = qr_fp32(y, a.dtype)
    b = qm.t() @ x
    if l > k:
        # Truncate to rank k: B = U S V^T, keep Q U_k and S_k V_k^T.
        u, sv, vh = torch.linalg.svd(b.float(), full_matrices=False)
        qm = (qm.float() @ u[:, :k]).to(a.dtype)
        b = (sv[:k, None] * vh[:k]).to(a.dtype)
    if t:
        return b.t(), qm.t()
    return qm, b


def svd_lowrank(a, k, over, niter, gen):
    torch.manual_seed(int(gen.initial_seed()))
    u, s, v = torch.svd_lowrank(a, q=min(k + over, min(a.shape)), niter=niter)
    return u[:, :k] * s[:k], v[:, :k].t()


def exact(a, k):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return u[:, :k] * s[:k], vh[:k]


def rel_error(a_ref, l, r, chunk=4096):
    """||A - L R||_F / ||A||_F, differences in fp32 (fp64 input: fp64),
    sums of squares in fp64, in blocks of rows to bound memory."""
    num = torch.zeros((), dtype=torch.float64, device=a_ref.device)
    den = torch.zeros((), dtype=torch.float64, device=a_ref.device)
    wt = a_ref.dtype
    l = l.to(wt)
    r = r.to(wt)
    for i0 in range(0, a_ref.shape[0], chunk):
        ab = a_ref[i0:i0 + chunk]
        d = ab - l[i0:i0 + chunk] @ r
        num += d.double().pow(2).sum()
        den += ab.double().pow(2).sum()
    return float(torch.sqrt(num / den))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def identity_error(norm2a, l, r):
    """sqrt(1 - ||L R||_F^2 / ||A||_F^2): the error of an orthogonal
    projection L R = P A, from ||L R||_F^2 = sum((L^T L) * (R R^T)) in fp64.
    Not valid for bf16 factors (Q is no longer orthonormal): None then."""
    if l.dtype == torch.bfloat16 or r.dtype == torch.bfloat16:
        return None
    l = l.double()
    r = r.double()
    p2 = float(((l.t() @ l) * (r @ r.t())).sum())
    return max(0.0, norm2a - p2) ** 0.5 / norm2a ** 0.5


def cpu_time():
    """CPU time (user + system, all threads) of this process in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed(fn, device, warmup, repeats, seed, norm2a):
    """Runs fn(gen) warmup times (seed) then repeats times (seed+1+r) and
    returns (result of the first call, sorted times in ms, mean identity
    error over the first and the timed calls or None)."""
    def gen_for(s):
        g = torch.Generator(device=device)
        g.manual_seed(s)
        return g

    first = None
    for w in range(warmup):
        out = fn(gen_for(seed))
        if first is None:
            first = out
    sync(device)
    errs = [identity_error(norm2a, *first)] if first is not None else []
    times = []
    cpus = []
    for r in range(repeats):
        g = gen_for(seed + 1 + r)
        c0 = cpu_time()
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            sync(device)
            start.record()
            out = fn(g)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            out = fn(g)
            times.append((time.perf_counter() - t0) * 1e3)
        cpus.append((cpu_time() - c0) * 1e3)
        if first is None:
            first = out  # no warm-up: the first timed call gives rel_error
        errs.append(identity_error(norm2a, *out))
    mean = None if None in errs else sum(errs) / len(errs)
    return first, sorted(times), mean, statistics.median(cpus)


def torch_qr(a):
    q, r = torch.linalg.qr(torch.from_numpy(a))
    return q.numpy(), r.numpy()


def env_info(args, device, dtype):
    cuda = device is not None and device.type == "cuda"
    env = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "blas": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0] if "BLAS_INFO=" in torch.__config__.show() else "?",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "input": args.input,
        "input_dtype": str(dtype) if dtype is not None else None,
    }
    # torch's CPU kernels: products and QR through torch, checked against
    # numpy.einsum; the check also loads the libraries threadpools lists.
    env["blas_check"] = peer_env.blas_check(
        matmul=lambda a, b: (torch.from_numpy(a) @ torch.from_numpy(b)).numpy(), qr=torch_qr)
    env["threadpools"] = peer_env.threadpools()
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", action="store_true", help="print only the env line (BLAS kernel and its check) and exit")
    ap.add_argument("--input", help=".npy file with the matrix (float32 or float64, C order)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp64"])
    ap.add_argument("--k", type=int)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="rows,gaussian,svd_lowrank,exact")
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--exact-once", action="store_true", help="time the exact SVD once, without a warm-up")
    ap.add_argument("--power-iters", default="0", help="comma-separated q values for rows and gaussian")
    ap.add_argument("--oversample", default="0", help="comma-separated p values (rows, gaussian, svd_lowrank)")
    ap.add_argument("--niter", default="2", help="comma-separated niter values for svd_lowrank")
    ap.add_argument("--torch-oversample", default=None,
                    help="comma-separated p values for rows and gaussian only (default: --oversample)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads on the CPU (0: all cores, os.cpu_count(); Debian's torch starts with 1)")
    args = ap.parse_args()

    if args.device == "cpu" or args.probe:
        torch.set_num_threads(args.threads if args.threads > 0 else (os.cpu_count() or 1))
    if args.probe:
        print(json.dumps({"env": env_info(args, None, None)}), flush=True)
        return
    if args.input is None or args.k is None:
        ap.error("--input and --k are required")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_peer: CUDA requested but torch.cuda.is_available() is False")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp64": torch.float64}[args.dtype]

    host = np.load(args.input)
    if host.ndim != 2:
        sys.exit("torch_peer: %s is not a matrix" % args.input)
    a_ref = torch.from_numpy(np.ascontiguousarray(host)).to(device)
    del host
    if a_ref.dtype not in (torch.float32, torch.float64):
        a_ref = a_ref.float()
    a = a_ref.to(dtype)
    norm2a = float(a_ref.double().pow(2).sum())
    m, n = a.shape
    k = args.k

    print(json.dumps({"env": env_info(args, device, a_ref.dtype)}), flush=True)

    base = {"peer": "torch", "device": args.device, "dtype": args.dtype, "m": m, "n": n, "k": k}
    methods = [s.strip() for s in args.methods.split(",") if s.strip()]
    runs = []
    for meth in methods:
        if meth in ("rows", "gaussian"):
            for q in parse_ints(args.power_iters):
                for p in parse_ints(args.torch_oversample if args.torch_oversample is not None else args.oversample):
                    runs.append((meth, p, q, lambda g, meth=meth, p=p, q=q: qb(a, k, p, q, meth == "gaussian", g)))
        elif meth == "svd_lowrank":
            for q in parse_ints(args.niter):
                for p in parse_ints(args.oversample):
                    runs.append((meth, p, q, lambda g, p=p, q=q: svd_lowrank(a, k, p, q, g)))
        elif meth == "exact":
            if not args.skip_exact:
                runs.append((meth, 0, 0, lambda g: exact(a, k)))
        else:
            sys.exit("torch_peer: unknown method %r" % meth)

    for meth, p, q, fn in runs:
        rec = dict(base, method=meth, p=p, q=q)
        try:
            warm, reps = args.warmup, args.repeats
            if meth == "exact" and args.exact_once:
                warm, reps = 0, 1
            (l, r), times, mean_err, cpu_ms = timed(fn, device, warm, reps, args.seed, norm2a)
            rec.update(ms=statistics.median(times), cpu_ms=cpu_ms, ms_min=times[0], repeats=len(times),
                       rel_error=rel_error(a_ref, l, r))
            if mean_err is not None:
                rec["rel_error_mean"] = mean_err
        except (RuntimeError, NotImplementedError) as e:
            rec["error"] = str(e).splitlines()[0][:300]
        print(json.dumps(rec), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
