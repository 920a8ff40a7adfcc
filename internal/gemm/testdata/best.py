# Reads `go test -bench` output (any number of runs, files or stdin) and
# prints, per benchmark name (with its -GOMAXPROCS suffix), the best
# GFLOP/s and GFLOP/cpu-s over the runs and how many runs there were.
# Usage: python3 best.py FILE...
import re, sys, fileinput, collections
best = collections.OrderedDict()
for line in fileinput.input():
    m = re.match(r'(Benchmark\S+)\s+\d+\s+\d+ ns/op(.*)', line)
    if not m:
        continue
    metrics = dict((k, float(v)) for v, k in re.findall(r'([\d.]+) (\S+)', m[2]))
    b = best.setdefault(m[1], {'runs': 0})
    b['runs'] += 1
    for k in ('GFLOP/s', 'GFLOP/cpu-s'):
        if k in metrics:
            b[k] = max(b.get(k, 0), metrics[k])
for name, b in best.items():
    print(f"{name}\t{b.get('GFLOP/s', 0):.1f} GFLOP/s\t{b.get('GFLOP/cpu-s', 0):.1f} GFLOP/cpu-s\t{b['runs']} runs")
