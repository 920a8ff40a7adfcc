#!/usr/bin/env bash
# Thirty-fifth session (Zen 4): float64 products with a row-major A, the
# direct kernels (kern512x{24,16,8}d) against packed. Binaries: go test -c
# -o /tmp/gemm_direct64.test ./internal/gemm with the change, and the same
# with useDirect = false in internal/gemm/gemm.go as
# /tmp/gemm_packed64.test. Five rounds alternating: Y = A·Ω of the 8192×4096
# QB (8192×128·4096) and 4096×64·1024 on two threads (10 calls), Y and
# 1024³ on one thread (5 calls). Output ab_dgemm.txt (ms a call).
set -eu
cd internal/gemm
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5; do
  for b in packed64 direct64; do
    echo -n "$r $b 2thr: "
    /tmp/gemm_$b.test -test.run '^$' -test.bench 'BenchmarkDgemm$/m=(8192|4096)/n=(128|64)/k=(4096|1024)/ta=false' -test.benchtime 10x | grep Bench | awk '{printf "%s %.2f  ", $1, $3/1e6}'
    echo -n " 1thr: "
    GOMAXPROCS=1 /tmp/gemm_$b.test -test.run '^$' -test.bench 'BenchmarkDgemm$/m=(8192|1024)/n=(128|1024)/k=(4096|1024)/ta=false' -test.benchtime 5x | grep Bench | awk '{printf "%s %.2f  ", $1, $3/1e6}'
    echo
  done
done | sed 's/BenchmarkDgemm\///g; s/\/ta=false\/tb=false-[12]//g'
echo "# $(date -u) $(uptime)"
