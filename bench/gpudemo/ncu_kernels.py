#!/usr/bin/env python3
"""Every kernel's device time in one training step of the GPU demo, per
phase, from Nsight Compute captures.

Usage: ncu_kernels.py [--top N] [--json FILE] LABEL=CAPTURE.csv[.gz] ...

Each capture is one fine-tuning phase of `loract demo -device gpu
-profile-phase PHASE` run under `ncu --profile-from-start off --metrics
gpu__time_duration.sum --cache-control none --clock-control none`,
exported with `ncu --import REP --csv --page raw --print-units base`
(bench/results/gpu/…/run.sh). ncu runs the kernels one at a time, so the
sums are the device's busy time with no overlap and no idle gaps; memory
copies and memsets are not kernels and are not in them.

A step is the stretch from one cross-entropy kernel (xent, once a step)
to the next; the last whole stretch of each capture is reported (the
first step of a phase warms its pools). Prints one JSON line per phase
(kernels and µs in the step, by group), then a table of the kernels by
name with µs per step in each phase and each phase's difference from the
first one's, largest differences first. --json FILE also writes the
phases' lines as one object {"phases": [...]} (the gpukernels figure of
`loract plot` reads it).
"""
import csv
import gzip
import json
import sys
from collections import OrderedDict, defaultdict


def rows(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt", newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]
    r = csv.reader(lines)
    head = next(r, [])
    for col in ("Kernel Name", "gpu__time_duration.sum"):
        if col not in head:
            sys.exit(f"{path}: no column {col!r}: not `ncu --import REP --csv --page raw` of a capture "
                     "with --metrics gpu__time_duration.sum")
    name, dur = head.index("Kernel Name"), head.index("gpu__time_duration.sum")
    for rec in r:
        if not rec[0].isdigit():
            continue  # the units row
        yield rec[name], float(rec[dur].replace(",", "")) / 1000.0  # ns → µs


def group(k):
    low = k.lower()
    if any(s in low for s in ("gemm", "xmma", "cutlass", "cublas", "sm90_", "sm80_", "splitk", "gemv")):
        return "cuBLAS"
    if any(s in low for s in ("potrf", "trsm", "syrk", "cusolver", "lapack")):
        return "cuSOLVER"
    return "own"


def short(k):
    k = k.split("(")[0]
    return k if len(k) <= 70 else k[:67] + "..."


def main(argv):
    top, out = 40, None
    while argv[:1] in (["--top"], ["--json"]):
        if argv[0] == "--top":
            top = int(argv[1])
        else:
            out = argv[1]
        argv = argv[2:]
    phases = OrderedDict()
    summary = []
    if not argv:
        sys.exit(__doc__)
    for a in argv:
        if "=" not in a:
            sys.exit(f"{a!r}: want LABEL=CAPTURE.csv[.gz]")
        label, path = a.split("=", 1)
        seq = list(rows(path))
        marks = [i for i, (k, _) in enumerate(seq) if short(k) == "xent"]
        if len(marks) < 2:
            sys.exit(f"{path}: {len(marks)} xent kernels, need two for a whole step")
        step = seq[marks[-2]:marks[-1]]
        by = defaultdict(lambda: [0, 0.0])
        grp = defaultdict(float)
        for k, us in step:
            by[short(k)][0] += 1
            by[short(k)][1] += us
            grp[group(k)] += us
        phases[label] = by
        line = {"phase": label, "steps_in_capture": len(marks) - 1, "kernels": len(step),
                "us": round(sum(us for _, us in step), 1),
                "by_group_us": {g: round(v, 1) for g, v in sorted(grp.items())}}
        summary.append(line)
        print(json.dumps(line))
    if out:
        with open(out, "w") as f:
            json.dump({"phases": summary}, f, indent=1)
            f.write("\n")
    labels = list(phases)
    names = set().union(*[set(p) for p in phases.values()])
    base = phases[labels[0]]

    def us(p, n):
        return p[n][1] if n in p else 0.0

    def rank(n):  # largest difference first, ties by name (deterministic)
        d = max(abs(us(phases[l], n) - us(base, n)) for l in labels[1:]) if len(labels) > 1 else us(base, n)
        return (-round(d, 1), n)

    order = sorted(names, key=rank)
    head = ["kernel", "group"] + [f"{l}: n, µs" for l in labels] + [f"{l} − {labels[0]}" for l in labels[1:]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in order[:top]:
        cells = [n, group(n)]
        for l in labels:
            p = phases[l]
            cells.append(f"{p[n][0]}, {p[n][1]:.1f}" if n in p else "—")
        for l in labels[1:]:
            cells.append(f"{us(phases[l], n) - us(base, n):+.1f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
