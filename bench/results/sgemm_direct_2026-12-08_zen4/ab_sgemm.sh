#!/usr/bin/env bash
# Thirty-fifth session (Zen 4): float32 products with a row-major A, the
# direct kernels (A read in place) against packed. Binaries: go test -c -o
# /tmp/gemm_direct.test ./internal/gemm with the change, and the same with
# useDirect = false in internal/gemm/gemm.go as /tmp/gemm_packed.test. Six
# rounds alternating: Y = A·Ω of the 8192×4096 QB (8192×128·4096) and
# 4096×64·1024 on two threads (20 calls), Y on one thread (10 calls), and
# 1024³ (whose two-thread product shares op(B) and so never reads A in
# place; on one thread it does). Output ab_sgemm.txt (ms a call).
set -eu
cd internal/gemm
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5 6; do
  for b in packed direct; do
    echo -n "$r $b 2thr: "
    /tmp/gemm_$b.test -test.run '^$' -test.bench 'BenchmarkSgemm$/kernel=avx512/m=(8192|4096|1024)/n=(128|64|1024)/k=(4096|1024)/ta=false' -test.benchtime 20x | grep Bench | awk '{printf "%s %.2f  ", $1, $3/1e6}'
    echo -n " 1thr: "
    GOMAXPROCS=1 /tmp/gemm_$b.test -test.run '^$' -test.bench 'BenchmarkSgemm$/kernel=avx512/m=(8192|1024)/n=(128|1024)/k=(4096|1024)/ta=false' -test.benchtime 10x | grep Bench | awk '{printf "%s %.2f  ", $1, $3/1e6}'
    echo
  done
done | sed 's/BenchmarkSgemm\/kernel=avx512\///g; s/\/ta=false\/tb=false-[12]//g'
echo "# $(date -u) $(uptime)"
