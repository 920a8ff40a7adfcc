#!/usr/bin/env bash
# thirty-first session: the committed code at 1c3123a on the device, in
# one call: the device suites (gpu — cc1f1bc's MulBias change had not run
# on a GPU — vitgpu, activation/gpucheck, step), issue 13's QB table
# (the seventeenth session's two commands, PyTorch beside), issue 11's
# step benchmark at L = 16384, k = 256 with its PyTorch peer, and the
# default GPU demo twice (the second with its PyTorch twin, issue 12's
# "within 2× of PyTorch eager"). Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=570}
. bench/gpudemo/lib.sh
step gpu gpu 110 gpu -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
tally gpu vitgpu
t0=$SECONDS
timeout 100 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32,bf16 -fair=false -exact=false -repeats 20 -md > $S/qb_8192.md 2> $S/qb_8192.log
echo "qb_8192 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
t0=$SECONDS
timeout 60 .gpubin/loract bench -backend gpu -m 32768 -n 4096 -k 256 -dtype bf16 -fair=false -exact=false -repeats 20 -md > $S/qb_32768.md 2> $S/qb_32768.log
echo "qb_32768 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
t0=$SECONDS
timeout 90 .gpubin/loract bench -step -tokens 16384 -ranks 256 -workers 0 -batch -repeats 20 -json $S/step.jsonl > $S/step.md 2> $S/step.log
echo "step bench rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
demo loract demo1
t0=$SECONDS
if [ $(left) -ge 70 ]; then
  timeout 70 .gpubin/loract demo -device gpu -markdown -json $S/demo_torch.json > $S/demo_torch.txt 2> $S/demo_torch.log
  echo "demo_torch rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
fi
step act activation/gpucheck 80 act -test.v
step step cmd/loract/internal/step 40 step_test -test.v
tally act step_test
finish
grep -h -E '^\| (rows|gaussian)' $S/qb_8192.md $S/qb_32768.md | head -12
grep -h -E '^\|' $S/step.md | head -20
for f in demo1 demo_torch; do echo "$f: $(grep -E 'step time|fastest timed|test accuracy|eager' $S/$f.txt | head -5 | tr -s ' ' | tr '\n' ' ' | cut -c1-500)"; done
