#!/usr/bin/env bash
# Thirtieth session: base (68579a9), mid (base + the gemm yield and
# claimed pieces, internal/gemm/gemm.go) and new (mid + CPU QRTol and
# skeleton.SketchQR), alternating three rounds. Binaries built with
# `go test -c` into $BINS from each tree (base and mid in a git worktree);
# gemm_base carries the new bench_test.go (two QR shapes) with the old
# gemm.go. Run from the repository root; output in this folder.
set -u
BINS=${BINS:-/tmp/bins}
D=bench/results/gosched_qrtol_2026-12-07_zen5
R=$PWD
{ date -u; uptime; } > $D/load.txt
for r in 1 2 3; do
  for v in base new; do
    (cd internal/gemm && $BINS/gemm_$v.test -test.run '^$' -test.bench 'Benchmark(Dgemm|Sgemm)$' -test.benchtime 0.3s) > $D/gemm_${v}_r$r.txt 2>&1
  done
  for v in base mid new; do
    (cd cmd/loract/internal/bench && $BINS/qb_$v.test -test.run '^$' -test.bench 'BenchmarkQB/backend=cpu' -test.benchtime 40x -bench.shapes 4096x1024x64,8192x4096x128) > $D/qb_${v}_r$r.txt 2>&1
  done
  { date -u; uptime; } >> $D/load.txt
done
