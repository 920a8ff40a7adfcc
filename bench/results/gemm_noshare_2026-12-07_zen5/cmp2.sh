#!/usr/bin/env bash
set -u
out=/tmp/cmp2.txt; : > $out
{ date -u; uptime; } >> $out
for r in 1 2 3; do
  for v in base new; do
    (cd cmd/loract/internal/bench && /tmp/bench_$v.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu/method=/m=(4096|8192)/n=(1024|4096)/k=(64|128)/' -test.benchtime 20x | sed "s/^Benchmark/$v $r Benchmark/" | grep Benchmark >> $out)
  done
done
{ date -u; uptime; } >> $out
