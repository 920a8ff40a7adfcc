#!/usr/bin/env bash
# thirty-fourth session: the code at HEAD (GPU code as in the thirty-third
# session's chebshift_2026-12-07b call) on whatever card comes, in one
# call. On an H200 (the card the issues' targets name, which no call has
# given since the seventeenth session) the gpu and activation/gpucheck
# suites run too; on an H100 the time goes to repeats of issue 11's step
# grid instead, for the spread of the L = 16384, k = 256 ratio. Then issue
# 13's tables (8192×4096 with torch.linalg.svd and the QB peers,
# 32768×4096 bf16) and issue 12's demo with and without its PyTorch twin.
# Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=570}
. bench/gpudemo/lib.sh
h200=0
grep -q H200 $S/rc.txt && h200=1
run() { local out=$1 limit=$2 t0=$SECONDS; shift 2
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  timeout $limit "$@" > $S/$out.md 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
[ $h200 = 1 ] && { step gpu gpu 150 gpu -test.v; tally gpu; }
stepb loract stepgrid1
run qb_8192 80 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32,bf16 -fair=false -exact=false -repeats 20 -md
run bench_exact 70 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32 -fair=false -repeats 5 -md
demo loract demo
if [ $h200 = 1 ]; then
  step act activation/gpucheck 200 act -test.v; tally act
else
  stepb loract stepgrid2
  stepb loract stepgrid3
fi
run demo_twin 90 .gpubin/loract demo -device gpu -markdown
run qb_32768 150 .gpubin/loract bench -backend gpu -m 32768 -n 4096 -k 256 -dtype bf16 -fair=false -exact=false -repeats 20 -md
[ $h200 = 0 ] && stepb loract stepgrid4
finish
grep -h -E '^\| (rows|exact)' $S/qb_8192.md $S/bench_exact.md $S/qb_32768.md | head -12
grep -h -E '^\| 16384 \| 256' $S/stepgrid*.md | head -12
