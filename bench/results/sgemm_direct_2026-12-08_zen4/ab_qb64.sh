#!/usr/bin/env bash
# Thirty-fifth session (Zen 4): the float64 QBs of 8192×4096 at k = 128 with
# Y = A·Ω's A read in place by the float64 direct kernels against packed
# (internal/gemm macroDirect). Binaries: go test -c -o
# /tmp/bench_direct.test ./cmd/loract/internal/bench with the change, and
# the same with useDirect = false in internal/gemm/gemm.go as
# /tmp/bench_packed.test. Eight rounds alternating, ten calls each; output
# ab_qb64.txt (round, binary, benchmark, ms, CPU ms). Run from the repository root.
# Note (written after the run): the QBs' two products take A transposed
# (op(A) = Aᵀ for this shape), so neither uses the direct kernels; this
# compares the same products, and its differences are the machine's noise
# (docs/gemm.md, "Thirty-fifth session").
set -eu
cd cmd/loract/internal/bench
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5 6 7 8; do
  for b in packed direct; do
    /tmp/bench_$b.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu/method=(rows|gaussian)/m=8192/n=4096/k=128/dtype=f64' -test.benchtime 10x | grep Bench | awk -v b=$b -v r=$r '{print r, b, $1, $3/1e6, $7}'
  done
done
echo "# $(date -u) $(uptime)"
