#!/usr/bin/env bash
# base (HEAD 0719d32) against new (plan: a narrow op(B) not shared), alternating
set -u
out=/tmp/cmp.txt; : > $out
{ date -u; uptime; lscpu | grep -E 'Model name|^CPU\(s\)'; } >> $out
for r in 1 2 3; do
  for v in base new; do
    (cd internal/gemm && /tmp/gemm_$v.test -test.run '^$' -test.bench 'BenchmarkSgemm$|BenchmarkDgemm$' -test.benchtime 10x | sed "s/^Benchmark/$v $r Benchmark/" | grep Benchmark >> $out)
    (cd cmd/loract/internal/bench && /tmp/bench_$v.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu/method=(rows|gaussian)/m=(4096/n=1024|8192/n=4096)/' -test.benchtime 20x | sed "s/^Benchmark/$v $r Benchmark/" | grep Benchmark >> $out)
  done
done
{ date -u; uptime; } >> $out
