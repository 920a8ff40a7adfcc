#!/usr/bin/env python3
"""PyTorch peer of 'loract bench -step': one Llama-7B decoder layer's seven
linear projections (q, k, v, o: 4096->4096; gate, up: 4096->11008; down:
11008->4096) in bf16 with frozen base weights and LoRA (rank --lora-rank,
alpha 32) on each, forward and backward, as loract's step benchmark runs
them (package cmd/loract/internal/step):

  bf16   autograd as it is: every saved tensor kept.
  rows   torch.autograd.graph.saved_tensors_hooks compressing each saved
         activation of the token dimension (L x d, d >= 1024) with the LoRAct
         reference's rows QB (q = 0, l = k: idx = randperm(d)[:k],
         Y = A^T A[:, idx] in the orientation of the smaller dimension, thin
         QR in fp32, B = Q^T A^T; factors stored in bf16); unpack
         reconstructs L x d. A tensor saved by several projections (the
         input of q, k and v; of gate and up) is compressed once, keyed by
         its storage and version, as loract shares it.

Each projection's input is produced afresh in each step from a fixed source
(x = src.clone() of a leaf that requires grad, so dX flows and x is freed
when nothing saves it); the output gradients are fixed. The synthetic
activations have the spectrum of loract's: Z1 diag(1/(j+1)) Z2 / sqrt(d)
over 1024 directions.

Per (mode, L, k) one JSON line:
  {"peer": "torch", "mode", "tokens", "k", "lora_rank", "ms", "ms_min",
   "repeats", "compress_ms", "saved_bytes", "dense_bytes", "step_peak_bytes",
   "base_bytes", "cos_a": {proj: cos}, "device"}
ms: median of --repeats steps after --warmup, CUDA events around the step.
compress_ms: median per step of the pack hooks' summed time (events).
saved_bytes: torch.cuda.memory_allocated() after forward minus before, minus
the bytes of the seven outputs (alive for backward): the allocator's count
of what autograd saved. step_peak_bytes: torch.cuda.max_memory_allocated()
during the step (reset at its start), everything live. cos_a: cosine of each
projection's LoRA A gradient with the bf16 run's. A first line {"env": ...}
records the versions and the card.
"""
import argparse
import json
import statistics
import sys

import torch

INPUTS = [("attn_norm", 4096), ("attn_out", 4096), ("mlp_norm", 4096), ("mlp_act", 11008)]
PROJS = [("q", 0, 4096), ("k", 0, 4096), ("v", 0, 4096), ("o", 1, 4096),
         ("gate", 2, 11008), ("up", 2, 11008), ("down", 3, 4096)]
ALPHA = 32


def parse_ints(s):
    return [int(v) for v in s.split(",") if v.strip()]


def source(L, d, gen, dev):
    rk = min(1024, d, L)
    z1 = torch.randn(L, rk, generator=gen, device=dev)
    z2 = torch.randn(rk, d, generator=gen, device=dev)
    sv = 1.0 / torch.arange(1, rk + 1, device=dev, dtype=torch.float32) / d ** 0.5
    return ((z1 * sv) @ z2).to(torch.bfloat16)


def rows_qb(a, k, gen):
    """The LoRAct reference's rows QB of a (L x d, L >= d): returns (P, R),
    a ~ P @ R, both bf16."""
    x = a.t()  # op(A): the orientation with the orthonormal factor in the smaller dimension
    p = x.shape[0]
    idx = torch.randperm(p, generator=gen, device=a.device)[:k]
    y = x @ x[idx].t()
    q = torch.linalg.qr(y.float()).Q.to(a.dtype)
    b = q.t() @ x
    return b.t().contiguous(), q.t().contiguous()


class Layer:
    def __init__(self, L, r, seed, dev):
        g = torch.Generator(device=dev)
        g.manual_seed(seed)
        self.L, self.r, self.s = L, r, ALPHA / r
        self.src = [source(L, d, g, dev) for _, d in INPUTS]
        self.leaf = [torch.zeros(1, device=dev, requires_grad=True) for _ in INPUTS]
        self.w, self.a, self.b, self.dy = [], [], [], []
        for _, i, o in PROJS:
            d = INPUTS[i][1]
            self.w.append((torch.randn(o, d, generator=g, device=dev) / d ** 0.5).to(torch.bfloat16))
            self.a.append((torch.randn(r, d, generator=g, device=dev) / d ** 0.5).to(torch.bfloat16).requires_grad_())
            self.b.append((torch.randn(o, r, generator=g, device=dev) / r ** 0.5).to(torch.bfloat16).requires_grad_())
            self.dy.append((torch.randn(L, o, generator=g, device=dev) / L ** 0.5).to(torch.bfloat16))

    def inputs(self):
        # x = src + 0·leaf: a non-leaf tensor produced in the step, so that dX
        # is computed and x is freed once nothing saves it.
        return [s + self.leaf[i].to(s.dtype) * 0 for i, s in enumerate(self.src)]

    def forward(self, xs):
        ys = []
        for j, (_, i, _) in enumerate(PROJS):
            x = xs[i]
            h = torch.nn.functional.linear(x, self.a[j])
            ys.append(torch.nn.functional.linear(x, self.w[j]) + self.s * torch.nn.functional.linear(h, self.b[j]))
        return ys


class Hooks:
    """Pack/unpack hooks compressing L x d activations, shared per tensor."""

    def __init__(self, L, k, gen, timers):
        self.L, self.k, self.gen, self.timers = L, k, gen, timers
        self.cache = {}

    def pack(self, t):
        if t.dim() != 2 or t.shape[0] != self.L or t.shape[1] < 1024 or t.dtype != torch.bfloat16:
            return t
        key = (t.untyped_storage().data_ptr(), t._version, tuple(t.shape))
        if key in self.cache:
            return self.cache[key]
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        packed = ("qb",) + rows_qb(t, self.k, self.gen)
        e1.record()
        self.timers.append((e0, e1))
        self.cache[key] = packed
        return packed

    @staticmethod
    def unpack(p):
        if isinstance(p, tuple) and p and p[0] == "qb":
            return p[1] @ p[2]
        return p


def step(layer, mode, k, gen):
    """One forward and backward; returns (ms, compress_ms, saved_bytes, peak)."""
    dev = layer.src[0].device
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    timers = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    xs = layer.inputs()
    if mode == "rows":
        hooks = Hooks(layer.L, k, gen, timers)
        with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
            ys = layer.forward(xs)
    else:
        ys = layer.forward(xs)
    del xs
    after_fwd = torch.cuda.memory_allocated(dev)
    out_bytes = sum(y.untyped_storage().nbytes() for y in ys)
    for p in layer.a + layer.b + layer.leaf:
        p.grad = None
    torch.autograd.backward(ys, layer.dy)
    del ys
    end.record()
    torch.cuda.synchronize(dev)
    ms = start.elapsed_time(end)
    cms = sum(e0.elapsed_time(e1) for e0, e1 in timers)
    peak = torch.cuda.max_memory_allocated(dev)
    return ms, cms, after_fwd - base - out_bytes, peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", default="8192,16384,32768")
    ap.add_argument("--ranks", default="128,256")
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--modes", default="bf16,rows")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is False"}))
        return 1
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    print(json.dumps({"env": {"torch": torch.__version__, "cuda": torch.version.cuda, "device": name,
                              "python": sys.version.split()[0]}}), flush=True)
    for L in parse_ints(args.tokens):
        layer = Layer(L, args.lora_rank, args.seed, dev)
        gen = torch.Generator(device=dev)
        dense = sum(2 * L * d for _, d in INPUTS)
        ref = None
        runs = [("bf16", 0)] + [("rows", k) for k in parse_ints(args.ranks)] if "rows" in args.modes else [("bf16", 0)]
        for mode, k in runs:
            gen.manual_seed(args.seed)
            times, cts, saved, peak = [], [], 0, 0
            for i in range(args.warmup + args.repeats):
                base = torch.cuda.memory_allocated(dev)
                ms, cms, sb, pk = step(layer, mode, k, gen)
                if i >= args.warmup:
                    times.append(ms)
                    cts.append(cms)
                    saved, peak = max(saved, sb), max(peak, pk)
            grads = [a.grad.float().flatten() for a in layer.a]
            if mode == "bf16":
                ref = grads
            cos = {PROJS[j][0]: float(torch.dot(g, ref[j]) / (g.norm() * ref[j].norm())) for j, g in enumerate(grads)}
            rec = {"peer": "torch", "mode": mode, "tokens": L, "k": k, "lora_rank": args.lora_rank,
                   "ms": statistics.median(times), "ms_min": min(times), "repeats": args.repeats,
                   "compress_ms": statistics.median(cts) if mode == "rows" else 0.0,
                   "saved_bytes": saved, "dense_bytes": dense, "step_peak_bytes": peak, "base_bytes": base,
                   "cos_a": cos, "device": name}
            print(json.dumps(rec), flush=True)
        del layer
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
