#!/usr/bin/env bash
# thirty-third session, second call: the Chebyshev interval widened to
# [0, 1.15·d_ℓ] (chebWiden, gpu/subspace.go) after the first call
# (chebshift_2026-12-07) saw the k = 32 route fail its first check. The
# gpu package's suite, the exact SVD profile (TestProfile: every k with
# the cycle and with the constant shift) and issue 13's 8192×4096 k = 128
# table with torch.linalg.svd. Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=400}
. bench/gpudemo/lib.sh
step gpu gpu 150 gpu -test.v
tally gpu
step gpu gpu 60 prof -test.run '^TestProfile$' -gpu.prof -test.v
t0=$SECONDS
if [ $(left) -ge 80 ]; then
  timeout 80 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32 -fair=false -repeats 5 -md > $S/bench_exact.md 2> $S/bench_exact.log
  echo "bench_exact rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
fi
finish
grep -h 'subspace, power law' $S/prof.txt | cut -c1-200 | head -40
grep -h -E '^\| (exact|rows)' $S/bench_exact.md | head -8
