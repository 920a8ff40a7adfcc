#!/usr/bin/env bash
# thirty-second session: the code at cd797cd (the GPU code as at
# 1c3123a; later commits touch the CPU's exact SVD only) on the device,
# in one call: the activation/gpucheck suite with a limit it fits in (the
# thirty-first session's 80 s cut it inside TestDeviceBudgetDemoShape),
# the step package's suite, issue 13's 32768×4096 k = 256 bf16 QB with
# its PyTorch peer (cut by its 60 s limit last time), issue 11's whole
# step grid, and issue 13's 8192×4096 table a second time. Helpers:
# bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=570}
. bench/gpudemo/lib.sh
step act activation/gpucheck 200 act -test.v
step step cmd/loract/internal/step 40 step_test -test.v
tally act step_test
t0=$SECONDS
timeout 150 .gpubin/loract bench -backend gpu -m 32768 -n 4096 -k 256 -dtype bf16 -fair=false -exact=false -repeats 20 -md > $S/qb_32768.md 2> $S/qb_32768.log
echo "qb_32768 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
stepb loract stepgrid
t0=$SECONDS
if [ $(left) -ge 90 ]; then
  timeout 90 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32,bf16 -fair=false -exact=false -repeats 20 -md > $S/qb_8192.md 2> $S/qb_8192.log
  echo "qb_8192 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
fi
finish
grep -h -E '^\| (rows|gaussian)' $S/qb_32768.md $S/qb_8192.md | head -12
grep -h -E '^\|' $S/stepgrid.md | head -30
