#!/usr/bin/env python3
"""Probe: can the QR's float32 and float64 products run faster on the tensor
cores at the accuracy the Cholesky QR needs?

The GPU Cholesky QR (gpu/batch.go, cholQRBatch) spends most of its time in
three float32 products of a tall p×ℓ matrix (Y·R⁻¹, Q₁ᵀQ₁, Q₁·X) and one
float64 Gram matrix, on the SIMT cores. This script times each of those
shapes in cuBLAS's native arithmetic and in its alternatives on the card it
runs on, and measures the accuracy that matters to the QR:

  * float32: native (CUBLAS_COMPUTE_32F), cuBLAS's BF16x9 emulation
    (CUBLAS_COMPUTE_32F_EMULATED_16BFX9, with the EAGER emulation strategy
    where the library has it), plain TF32 (for reference: too coarse), and
    3xTF32 (x = hi + lo with hi exact in TF32; one TF32 product with the inner
    dimension tripled: [hi lo hi]·[hi; hi; lo]);
  * float64: native (CUBLAS_COMPUTE_64F) against the fixed-point (Ozaki)
    emulation (CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT).

Accuracy: on a sketch-like Y (singular values 10^(-4·j/ℓ), κ = 10⁴) with R
the float64 Cholesky factor of YᵀY, Q₁ = Y·R⁻¹ in each arithmetic and
‖Q₁ᵀQ₁ − I‖_F in float64; for Q₁ᵀQ₁ itself, the largest element error
against the float64 product of the same float32 Q₁; for the Gram matrix the
largest element error relative to max|G|. Timing: CUDA events around 50
calls after 5 warm-up calls, median of 5 such groups, µs per call.

Usage: python3 qr_emulation_probe.py [--out FILE.jsonl]
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import statistics

import torch

R32F, R64F = 0, 1
C32F, C32F_TF32, C32F_BF16X9, C64F, C64F_FIXED = 68, 77, 78, 70, 79
OP_N, OP_T = 0, 1


def load_cublas():
    for name in ("/usr/local/cuda/lib64/libcublas.so.13", "libcublas.so.13", "libcublas.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    path = ctypes.util.find_library("cublas")
    if path is None:
        raise SystemExit("libcublas not found")
    return ctypes.CDLL(path)


lib = load_cublas()
handle = ctypes.c_void_p()
assert lib.cublasCreate_v2(ctypes.byref(handle)) == 0
torch.cuda.init()
stream = torch.cuda.current_stream()
assert lib.cublasSetStream_v2(handle, ctypes.c_void_p(stream.cuda_stream)) == 0
ver = ctypes.c_int()
lib.cublasGetVersion_v2(handle, ctypes.byref(ver))
strategy = None
if hasattr(lib, "cublasSetEmulationStrategy"):
    strategy = lib.cublasSetEmulationStrategy(handle, ctypes.c_int(2))  # EAGER

one32, zero32 = ctypes.c_float(1), ctypes.c_float(0)
one64, zero64 = ctypes.c_double(1), ctypes.c_double(0)


def gemm(c, a, ta, b, m, n, k, dtype, compute):
    """C (m×n, column-major, ld m) = op(A)·B by cublasGemmEx; tensors are
    column-major views: a torch tensor of shape (cols, rows) row-major."""
    lda = k if ta else m
    al, be = (one64, zero64) if dtype == R64F else (one32, zero32)
    return lib.cublasGemmEx(handle, OP_T if ta else OP_N, OP_N, m, n, k, ctypes.byref(al),
                            ctypes.c_void_p(a.data_ptr()), dtype, lda,
                            ctypes.c_void_p(b.data_ptr()), dtype, k,
                            ctypes.byref(be), ctypes.c_void_p(c.data_ptr()), dtype, m,
                            compute, -1)


def colmajor(x):
    """The column-major (ld = rows) storage of x, as a row-major tensor."""
    return x.t().contiguous()


def from_colmajor(s, rows, cols):
    return s.reshape(cols, rows).t()


def timeit(fn, reps=50, groups=5):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(groups):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(reps):
            fn()
        e1.record()
        e1.synchronize()
        out.append(e0.elapsed_time(e1) * 1000 / reps)
    return statistics.median(out)


def tf32_split(x):
    hi = (x.view(torch.int32) & -8192).view(torch.float32)  # 10 mantissa bits kept
    return hi, x - hi


def sketch(p, l, gen):
    u, _ = torch.linalg.qr(torch.randn(p, l, dtype=torch.float64, device="cuda", generator=gen))
    v, _ = torch.linalg.qr(torch.randn(l, l, dtype=torch.float64, device="cuda", generator=gen))
    s = 10.0 ** (-4.0 * torch.arange(l, dtype=torch.float64, device="cuda") / l)
    return ((u * s) @ v.t()).float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    gen = torch.Generator(device="cuda")
    gen.manual_seed(1)
    rows = []
    head = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cublas": ver.value,
            "set_emulation_strategy": strategy}
    print(json.dumps(head))
    rows.append(head)
    for p, l in ((4096, 256), (11008, 256), (4096, 128), (1536, 231), (384, 115)):
        y = sketch(p, l, gen)
        y64 = y.double()
        g64 = y64.t() @ y64
        r = torch.linalg.cholesky(g64, upper=True)
        rinv = torch.linalg.inv(r).float()
        ys, rs = colmajor(y), colmajor(rinv)
        # The stacked 3xTF32 operands: [hi lo hi] (p×3ℓ) and [hi; hi; lo] (3ℓ×ℓ).
        yh, yl = tf32_split(y)
        rh, rl = tf32_split(rinv)
        y3 = colmajor(torch.cat([yh, yl, yh], dim=1))
        r3 = colmajor(torch.cat([rh, rh, rl], dim=0))
        q = torch.empty(p * l, dtype=torch.float32, device="cuda")
        res = {"p": p, "l": l}
        ref_q = y64 @ rinv.double()
        for name, fn in (
            ("fp32", lambda: gemm(q, ys, False, rs, p, l, l, R32F, C32F)),
            ("bf16x9", lambda: gemm(q, ys, False, rs, p, l, l, R32F, C32F_BF16X9)),
            ("tf32", lambda: gemm(q, ys, False, rs, p, l, l, R32F, C32F_TF32)),
            ("3xtf32", lambda: gemm(q, y3, False, r3, p, l, 3 * l, R32F, C32F_TF32)),
        ):
            st = fn()
            torch.cuda.synchronize()
            if st != 0:
                res["YRinv_" + name] = {"status": st}
                continue
            qm = from_colmajor(q, p, l).double()
            orth = torch.linalg.norm(qm.t() @ qm - torch.eye(l, dtype=torch.float64, device="cuda")).item()
            err = ((qm - ref_q).abs().max() / ref_q.abs().max()).item()
            res["YRinv_" + name] = {"us": round(timeit(fn), 2), "orth_F": orth, "max_rel_err": err}
        # Q₁ᵀQ₁ on the float32 Q₁ from the native product.
        gemm(q, ys, False, rs, p, l, l, R32F, C32F)
        torch.cuda.synchronize()
        q1 = from_colmajor(q, p, l)
        qs = colmajor(q1)
        qh, ql = tf32_split(q1)
        # As op(A)ᵀ·B with A = [hi; lo; hi] stacked along the rows (3p×ℓ) and B = [hi; hi; lo].
        qa = colmajor(torch.cat([qh, ql, qh], dim=0))
        qb = colmajor(torch.cat([qh, qh, ql], dim=0))
        g = torch.empty(l * l, dtype=torch.float32, device="cuda")
        ref_g = q1.double().t() @ q1.double()
        for name, fn in (
            ("fp32", lambda: gemm(g, qs, True, qs, l, l, p, R32F, C32F)),
            ("bf16x9", lambda: gemm(g, qs, True, qs, l, l, p, R32F, C32F_BF16X9)),
            ("tf32", lambda: gemm(g, qs, True, qs, l, l, p, R32F, C32F_TF32)),
            ("3xtf32", lambda: gemm(g, qa, True, qb, l, l, 3 * p, R32F, C32F_TF32)),
        ):
            st = fn()
            torch.cuda.synchronize()
            if st != 0:
                res["QtQ_" + name] = {"status": st}
                continue
            gm = from_colmajor(g, l, l).double()
            res["QtQ_" + name] = {"us": round(timeit(fn), 2), "max_abs_err": (gm - ref_g).abs().max().item()}
        # The float64 Gram matrix of the float64 copy of Y.
        y64s = colmajor(y64)
        g64o = torch.empty(l * l, dtype=torch.float64, device="cuda")
        for name, comp in (("fp64", C64F), ("fp64_fixedpoint", C64F_FIXED)):
            fn = lambda comp=comp: gemm(g64o, y64s, True, y64s, l, l, p, R64F, comp)
            st = fn()
            torch.cuda.synchronize()
            if st != 0:
                res["Gram_" + name] = {"status": st}
                continue
            gm = from_colmajor(g64o, l, l)
            res["Gram_" + name] = {"us": round(timeit(fn), 2),
                                   "max_rel_err": ((gm - g64).abs().max() / g64.abs().max()).item()}
        print(json.dumps(res))
        rows.append(res)
    if args.out:
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    main()
