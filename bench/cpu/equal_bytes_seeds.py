#!/usr/bin/env python3
"""Paired comparison of the CPU equal-bytes sweep over seeds.

Usage: equal_bytes_seeds.py SEED.txt...

Each file is the output of `loract demo -mode ops -sweep bytes -markdown
-seed S ...` (the sweep's markdown table and its "Baseline" line). For each
storage, the byte-budget rows (without and with the floor) are paired with
the single-ratio row of the same seed, and the script prints, over the
seeds, the mean, standard deviation and standard error of the differences
budget − ratio in accuracy drop (points; negative: the budget lost less),
mean activation error and gradient cosine, and in how many seeds the
budget's drop was no worse. It then pairs every other row with plain
LoRAct's (bf16 factors at the single ratio) the same way: the issue's
"lower mean activation error than plain bf16 factors, and an accuracy drop
no worse" over the seeds. A file without the table is an error.
"""
import math
import re
import statistics as st
import sys


def rows(path):
    out = []
    with open(path) as f:
        for line in f:
            if not line.startswith("| ") or line.startswith("| setting") or line.startswith("|---"):
                continue
            c = [x.strip() for x in line.strip().strip("|").split("|")]
            if len(c) < 12:
                continue
            out.append({"setting": c[0], "policy": c[1], "err": float(c[5]), "drop": float(c[8]),
                        "cos": float(c[9])})
    if not out:
        sys.exit(f"{path}: no sweep table")
    return out


def summary(name, xs):
    m = st.mean(xs)
    sd = st.stdev(xs) if len(xs) > 1 else float("nan")
    se = sd / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
    return f"{name} {m:+.4f} (sd {sd:.4f}, se {se:.4f})"


def paired(runs, base, what):
    """The per-seed differences runs − base of drop, err and cos (lists
    over the seeds, in order); a different number of runs is an error."""
    if len(runs) != len(base):
        sys.exit(f"{what}: {len(runs)} runs against {len(base)}")
    return [[b[f] - r[f] for b, r in zip(runs, base)] for f in ("drop", "err", "cos")]


def main(paths):
    if not paths:
        sys.exit(__doc__)
    by = {}  # (setting, policy) -> list over seeds
    for p in paths:
        for r in rows(p):
            by.setdefault((r["setting"], r["policy"]), []).append(r)
    settings = sorted({s for s, _ in by})
    print(f"seeds: {len(paths)}")
    for s in settings:
        ratio = [(k, v) for k, v in by.items() if k[0] == s and k[1].startswith("ratio")]
        if len(ratio) != 1:
            continue
        base = ratio[0][1]
        for pol in ("budget", "budget, floor 0.8"):
            if (s, pol) not in by:
                continue
            bud = by[(s, pol)]
            dd, de, dc = paired(bud, base, f"{s} / {pol} against the single ratio")
            nw = sum(1 for d in dd if d <= 0)
            print(f"{s} | {pol} vs {ratio[0][0][1]}: " + "; ".join(
                [summary("drop", dd), summary("err", de), summary("cos", dc)]) +
                f"; drop no worse in {nw} of {len(dd)}; drops budget " +
                " ".join(f"{b['drop']:.2f}" for b in bud) + " / ratio " + " ".join(f"{r['drop']:.2f}" for r in base))
    plain = [v for k, v in by.items() if k[0] == "bf16 factors" and k[1].startswith("ratio")]
    if len(plain) != 1:
        sys.exit("no single row of plain bf16 factors at a ratio")
    plain = plain[0]
    print("against plain bf16 factors at the single ratio:")
    for (s, pol), runs in sorted(by.items()):
        if s == "bf16 factors" and pol.startswith("ratio"):
            continue
        dd, de, _ = paired(runs, plain, f"{s} / {pol} against plain bf16 factors")
        lower = sum(1 for d in de if d < 0)
        nw = sum(1 for d in dd if d <= 0)
        print(f"{s} | {pol}: " + "; ".join([summary("drop", dd), summary("err", de)]) +
              f"; error lower in {lower} of {len(de)}; drop no worse in {nw} of {len(dd)}")


if __name__ == "__main__":
    main(sys.argv[1:])
