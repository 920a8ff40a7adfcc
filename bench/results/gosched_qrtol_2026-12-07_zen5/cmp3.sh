#!/usr/bin/env bash
# The 4096×1024 k=64 float32 rows QB only, 100 calls a run, fifteen
# rounds alternating base, mid and new (binaries as in cmp.sh): on a
# machine whose speed drifts, the minimum and median over many short
# interleaved runs.
set -u
BINS=${BINS:-/tmp/bins}
D=bench/results/gosched_qrtol_2026-12-07_zen5
{ date -u; uptime; } > $D/load3.txt
for r in $(seq 1 15); do
  for v in base mid new; do
    (cd cmd/loract/internal/bench && $BINS/qb_$v.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu/method=rows/m=4096/n=1024/k=64/dtype=f32' -test.benchtime 100x -bench.shapes 4096x1024x64) | grep '^Benchmark' | sed "s/^/$v r$r /" >> $D/qb3.txt
  done
done
{ date -u; uptime; } >> $D/load3.txt
