#!/usr/bin/env bash
# Thirty-fifth session (Zen 4): the float32 QBs of 8192×4096 at k = 128 with
# B = Qᵀ·Aᵀ computed as Bᵀ = A·Q (cpu gemm32: A read in place by the direct
# kernels, then transposed into B) against the code before (B by the
# packed, transposed product). Binaries: go test -c -o /tmp/bench_trans.test
# ./cmd/loract/internal/bench with the change, and the same at the commit
# before it as /tmp/bench_notrans.test. Eight rounds alternating, ten calls
# each; output ab_qb_trans.txt (round, binary, benchmark, ms, CPU ms). Run
# from the repository root.
set -eu
cd cmd/loract/internal/bench
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5 6 7 8; do
  for b in notrans trans; do
    /tmp/bench_$b.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu/method=(rows|gaussian)/m=8192/n=4096/k=128/dtype=f32' -test.benchtime 10x | grep Bench | awk -v b=$b -v r=$r '{print r, b, $1, $3/1e6, $7}'
  done
done
echo "# $(date -u) $(uptime)"
