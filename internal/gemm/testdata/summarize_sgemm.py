# Reads the output of bench_sgemm.sh and prints a Markdown table of the
# best GFLOP/s over the rounds: ours, NumPy with each OpenBLAS kernel, and
# ours over the best of them. Usage: python3 summarize_sgemm.py FILE
import re, sys, collections
best = collections.defaultdict(dict)
shapes, kernels, loads, correct = [], [], [], True
arch = None
for line in open(sys.argv[1]):
    if line.startswith('round'):
        loads.append(line.split('load ')[1].split()[0])
        continue
    m = re.match(r'# openblas \S+ architecture=(\S+)', line)
    if m:
        arch = m[1]
        if arch not in kernels:
            kernels.append(arch)
        continue
    m = re.match(r'BenchmarkSgemm/kernel=\w+/(\S+?)(-\d+)?\s+\d+\s+\d+ ns/op.*?([\d.]+) GFLOP/s', line)
    if m:
        who, shape, v = 'ours', m[1], float(m[3])
    else:
        m = re.match(r'numpy-sgemm (\S+) ([\d.]+) GFLOP/s correct=(\w+)', line)
        if not m:
            continue
        who, shape, v = arch, m[1], float(m[2])
        correct = correct and m[3] == 'True'
    if shape not in shapes:
        shapes.append(shape)
    best[shape][who] = max(best[shape].get(who, 0), v)
print(f"rounds: {len(loads)//2}, load averages (1 min) {min(loads)}–{max(loads)}; NumPy results all within the float32 bound: {correct}")
print('| product | ours | ' + ' | '.join(f'NumPy {k}' for k in kernels) + ' | ours / best NumPy |')
print('|---|---:|' + '---:|' * len(kernels) + '---:|')
for s in shapes:
    b = best[s]
    top = max(b.get(k, 0) for k in kernels)
    print(f"| {s} | {b.get('ours', 0):.0f} | " + ' | '.join(f"{b.get(k, 0):.0f}" for k in kernels) + f" | {b.get('ours', 0)/top:.2f} |")
