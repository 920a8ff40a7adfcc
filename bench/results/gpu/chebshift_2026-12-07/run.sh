#!/usr/bin/env bash
# thirty-third session: the truncated exact SVD's subspace route with a
# Chebyshev cycle of shifts (gpu/subspace.go) on the device, in one call:
# the gpu package's suite (TestExactSVDSubspace with both shift rules,
# TestChebShifts), the exact SVD profile (TestProfile: every k of the
# power law with the cycle and with the one constant shift, each with its
# steps and checks), issue 13's 8192×4096 k = 128 table with the exact SVD
# beside torch.linalg.svd, and the activation/gpucheck suite (Method =
# Exact goes through the route). Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=560}
. bench/gpudemo/lib.sh
step gpu gpu 150 gpu -test.v
tally gpu
step gpu gpu 100 prof -test.run '^TestProfile$' -gpu.prof -test.v
t0=$SECONDS
if [ $(left) -ge 100 ]; then
  timeout 100 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32 -fair=false -repeats 5 -md > $S/bench_exact.md 2> $S/bench_exact.log
  echo "bench_exact rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
fi
step act activation/gpucheck 200 act -test.v
tally act
finish
grep -h 'ExactSVD k=' $S/prof.txt | cut -c1-220 | head -40
grep -h -E '^\| (exact|rows)' $S/bench_exact.md | head -8
