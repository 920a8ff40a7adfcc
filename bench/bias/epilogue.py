#!/usr/bin/env python3
"""How much a bias epilogue would save the GPU demo's linear layers.

The demo's linear layers (cmd/loract/internal/vitgpu) prefill each
product's destination with its bias (and the residual, for o and fc2) by
bias_rows, then accumulate the product into it (beta = 1). PyTorch's
addmm with a 1-D bias runs cuBLASLt's bias epilogue instead, one pass.
This times, at the demo's shapes (L = 12544 rows, d = 384, MLP 1536, bf16,
float32 accumulation), CUDA events, median of 50 after 10:

  prefill+beta1  y = bias (broadcast copy), then y.addmm_(x, W)   (ours)
  epilogue       torch.addmm(bias, x, W)                          (cuBLASLt)
  no bias        torch.mm(x, W)
  prefill        the broadcast copy alone

and, for the two residual layers (o, fc2: y = res + bias + x·W), ours is
the sum res + bias prefilled, "epilogue" is addmm with the bias epilogue
and then the residual added (two passes), and "addmm(res) beta 1" the one
pass a cuBLASLt call with C = res and a bias epilogue would make, less
the bias (PyTorch has no call for it): its time bounds that call's from
below. One JSON line per case; the epilogue's largest difference from
ours relative to the output's largest magnitude (bf16 roundings).
"""
import json
import sys

import torch


def timed(f, reps=50, warm=10):
    for _ in range(warm):
        f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        ts.append(1e3 * a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2], ts[0]


def main():
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    dev = torch.device("cuda")
    L, d, f = 12544, 384, 1536
    g = torch.Generator(device=dev).manual_seed(1)
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__}))
    for name, k, n, resid in [("q/k/v", d, d, False), ("o", d, d, True), ("fc1", d, f, False), ("fc2", f, d, True)]:
        x = torch.randn(L, k, device=dev, dtype=torch.bfloat16, generator=g)
        w = torch.randn(k, n, device=dev, dtype=torch.bfloat16, generator=g)
        b = torch.randn(n, device=dev, dtype=torch.bfloat16, generator=g)
        res = torch.randn(L, n, device=dev, dtype=torch.bfloat16, generator=g)
        y = torch.empty(L, n, device=dev, dtype=torch.bfloat16)

        def ours():
            if resid:
                torch.add(res, b, out=y)
            else:
                y.copy_(b.expand(L, n))
            y.addmm_(x, w)

        def prefill():
            if resid:
                torch.add(res, b, out=y)
            else:
                y.copy_(b.expand(L, n))

        def epilogue():
            if resid:
                torch.addmm(b, x, w, out=y)
                y.add_(res)
            else:
                torch.addmm(b, x, w, out=y)

        def resid_beta():
            torch.addmm(res, x, w, out=y)

        cases = [("prefill+beta1 (ours)", ours), ("prefill alone", prefill), ("epilogue", epilogue),
                 ("no bias", lambda: torch.mm(x, w, out=y))]
        if resid:
            cases.append(("addmm(res) beta 1, no bias", resid_beta))
        ref = None
        for cname, fn in cases:
            med, mn = timed(fn)
            line = {"layer": name, "shape": [L, k, n], "case": cname, "us_median": round(med, 1), "us_min": round(mn, 1)}
            if cname.startswith("prefill+beta1"):
                fn()
                ref = y.float().clone()
            if cname == "epilogue":
                fn()
                line["max_rel_diff_vs_ours"] = float(((y.float() - ref).abs().max() / ref.abs().max()).item())
            print(json.dumps(line))


if __name__ == "__main__":
    main()
