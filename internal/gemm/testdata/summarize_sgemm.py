# Reads the output of bench_sgemm.sh and prints a Markdown table of the
# best GFLOP/s over the rounds: ours, NumPy with each OpenBLAS kernel, and
# ours over the best of them; with --cpu, the same for GFLOP per
# CPU-second of the process. Usage: python3 summarize_sgemm.py [--cpu] FILE
import re, sys, collections
cpu = '--cpu' in sys.argv
path = [a for a in sys.argv[1:] if a != '--cpu'][0]
best = collections.defaultdict(dict)
shapes, kernels, loads, correct = [], [], [], True
arch = None
for line in open(path):
    if line.startswith('round'):
        loads.append(float(line.split('load ')[1].split()[0]))
        continue
    m = re.match(r'# openblas \S+ architecture=(\S+)', line)
    if m:
        arch = m[1]
        if arch not in kernels:
            kernels.append(arch)
        continue
    m = re.match(r'BenchmarkSgemm/kernel=\w+/(\S+?)(-\d+)?\s+\d+\s+\d+ ns/op\s+([\d.]+) GFLOP/cpu-s\s+([\d.]+) GFLOP/s', line)
    if m:
        who, shape, v = 'ours', m[1], float(m[3] if cpu else m[4])
    else:
        m = re.match(r'numpy-sgemm (\S+) ([\d.]+) GFLOP/s ([\d.]+) GFLOP/cpu-s correct=(\w+)', line)
        if not m:
            continue
        who, shape, v = arch, m[1], float(m[3] if cpu else m[2])
        correct = correct and m[4] == 'True'
    if shape not in shapes:
        shapes.append(shape)
    best[shape][who] = max(best[shape].get(who, 0), v)
unit = 'GFLOP per CPU-second' if cpu else 'GFLOP/s'
print(f"{unit}; rounds: {len(loads)//2}, load averages (1 min) {min(loads):.2f}–{max(loads):.2f}; NumPy results all within the float32 bound: {correct}")
print('| product | ours | ' + ' | '.join(f'NumPy {k}' for k in kernels) + ' | ours / best NumPy |')
print('|---|---:|' + '---:|' * len(kernels) + '---:|')
for s in shapes:
    b = best[s]
    top = max(b.get(k, 0) for k in kernels)
    print(f"| {s} | {b.get('ours', 0):.0f} | " + ' | '.join(f"{b.get(k, 0):.0f}" for k in kernels) + f" | {b.get('ours', 0)/top:.2f} |")
