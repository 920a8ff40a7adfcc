#!/usr/bin/env bash
# The 4096×1024 k=64 float32 QBs only, 300 calls a run, five rounds
# alternating base, mid and new (binaries as in cmp.sh).
set -u
BINS=${BINS:-/tmp/bins}
D=bench/results/gosched_qrtol_2026-12-07_zen5
{ date -u; uptime; } > $D/load2.txt
for r in 1 2 3 4 5; do
  for v in base mid new; do
    (cd cmd/loract/internal/bench && $BINS/qb_$v.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu/method=.*/m=4096/n=1024/k=64/dtype=f32' -test.benchtime 300x -bench.shapes 4096x1024x64) > $D/qb2_${v}_r$r.txt 2>&1
  done
  { date -u; uptime; } >> $D/load2.txt
done
