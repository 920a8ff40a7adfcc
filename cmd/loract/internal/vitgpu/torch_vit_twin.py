#!/usr/bin/env python3
"""PyTorch twin of 'loract demo -device gpu's uncompressed baseline: the same
ViT (package cmd/loract/internal/vit: P x P patches embedded linearly plus a
learned position; pre-norm blocks of multi-head self-attention and a tanh-GELU
MLP with residuals; mean pooling, LayerNorm, linear head) with LoRA (rank
--lora-rank, scale --lora-scale) on q, k, v, o, fc1 and fc2 of every block, the
base frozen and the head trained, fine-tuned with Adam (0.9, 0.999, 1e-8) on
batches of --batch images, in PyTorch eager with fp32 master weights and
torch.autocast(bfloat16), the way a PyTorch user trains in mixed precision.

Modes (--modes): "eager" computes attention as loract does (scores, softmax,
probabilities times values); "sdpa" uses F.scaled_dot_product_attention
(fused kernels where PyTorch has them), for reference.

The inputs are random images in [0, 1) and random labels: the step's time and
memory do not depend on the values. Per mode one JSON line:
  {"peer": "torch", "mode", "batch", "ms", "ms_min", "repeats", "saved_bytes",
   "step_peak_bytes", "base_bytes", "device"}
ms: median of --repeats steps after --warmup (forward, loss, backward, Adam
step, zero_grad), CUDA events around each. saved_bytes:
torch.cuda.memory_allocated() after the forward and the loss minus before: what
autograd holds for backward (with autocast, the bf16 copies of the frozen
weights that the input gradients need are among it). step_peak_bytes:
torch.cuda.max_memory_allocated() during the step (reset at its start),
everything live. base_bytes: memory_allocated() at the step's start. A first
line {"env": ...} records the versions and the card; an error is a line
{"error": ...}.
"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    def __init__(self, din, dout, r, scale):
        super().__init__()
        self.base = nn.Linear(din, dout)
        self.a = nn.Parameter(torch.randn(r, din) / din ** 0.5)
        self.b = nn.Parameter(torch.zeros(dout, r))
        self.scale = scale

    def forward(self, x):
        return self.base(x) + self.scale * F.linear(F.linear(x, self.a), self.b)


class Block(nn.Module):
    def __init__(self, d, heads, mlp, r, s, sdpa):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        self.q, self.k, self.v, self.o = (LoRALinear(d, d, r, s) for _ in range(4))
        self.fc1, self.fc2 = LoRALinear(d, mlp, r, s), LoRALinear(mlp, d, r, s)

    def forward(self, x):
        B, T, d = x.shape
        H = self.heads
        dh = d // H
        y = self.ln1(x)
        q, k, v = (f(y).view(B, T, H, dh).transpose(1, 2) for f in (self.q, self.k, self.v))
        if self.sdpa:
            a = F.scaled_dot_product_attention(q, k, v)
        else:
            p = torch.softmax((q @ k.transpose(-2, -1)) * dh ** -0.5, dim=-1)
            a = p @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class ViT(nn.Module):
    def __init__(self, side, patch, d, heads, mlp, depth, classes, r, s, sdpa):
        super().__init__()
        self.side, self.patch = side, patch
        g = side // patch
        self.embed = nn.Linear(patch * patch, d)
        self.pos = nn.Parameter(0.02 * torch.randn(g * g, d))
        self.blocks = nn.ModuleList(Block(d, heads, mlp, r, s, sdpa) for _ in range(depth))
        self.norm = nn.LayerNorm(d, eps=1e-5)
        self.head = nn.Linear(d, classes)

    def forward(self, img):
        B, P = img.shape[0], self.patch
        g = self.side // P
        # Token pr*g + pc holds pixels (pr*P + i, pc*P + j), row by row: vit.Model.Patches.
        x = img.reshape(B, g, P, g, P).permute(0, 1, 3, 2, 4).reshape(B, g * g, P * P)
        x = self.embed(x) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x.mean(dim=1)))


def run(args, mode, dev):
    torch.manual_seed(args.seed)
    model = ViT(args.side, args.patch, args.dim, args.heads, args.mlp, args.depth, args.classes,
                args.lora_rank, args.lora_scale, mode == "sdpa").to(dev)
    trainable = []
    for name, p in model.named_parameters():
        train = name.endswith((".a", ".b")) or name.startswith("head.")  # LoRA A, B and the head
        p.requires_grad_(train)
        if train:
            trainable.append(p)
    opt = torch.optim.Adam(trainable, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    g = torch.Generator(device=dev)
    g.manual_seed(args.seed)
    x = torch.rand(args.batch, args.side, args.side, generator=g, device=dev)
    y = torch.randint(0, args.classes, (args.batch,), generator=g, device=dev)
    times, saved, peak, base = [], 0, 0, 0
    for i in range(args.warmup + args.repeats):
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        b0 = torch.cuda.memory_allocated(dev)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        after = torch.cuda.memory_allocated(dev)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        end.record()
        torch.cuda.synchronize(dev)
        del logits, loss
        if i >= args.warmup:
            times.append(start.elapsed_time(end))
            saved = max(saved, after - b0)
            peak = max(peak, torch.cuda.max_memory_allocated(dev))
            base = b0
    return {"peer": "torch", "mode": mode, "batch": args.batch, "ms": statistics.median(times), "ms_min": min(times),
            "repeats": args.repeats, "saved_bytes": saved, "step_peak_bytes": peak, "base_bytes": base,
            "device": torch.cuda.get_device_name(dev)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", type=int, default=28)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--mlp", type=int, default=1536)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--lora-scale", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="eager,sdpa")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is False"}), flush=True)
        return 1
    dev = torch.device("cuda")
    print(json.dumps({"env": {"torch": torch.__version__, "cuda": torch.version.cuda,
                              "device": torch.cuda.get_device_name(dev), "python": sys.version.split()[0]}}), flush=True)
    for mode in [m for m in args.modes.split(",") if m]:
        if mode not in ("eager", "sdpa"):
            print(json.dumps({"error": "unknown mode " + mode}), flush=True)
            continue
        print(json.dumps(run(args, mode, dev)), flush=True)
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
