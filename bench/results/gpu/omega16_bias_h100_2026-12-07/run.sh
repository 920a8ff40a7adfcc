#!/usr/bin/env bash
# twenty-eighth session, first device call: the working tree (the
# twenty-seventh session's omega16.patch, a bf16 batch's Ω gathered in
# bf16 for its sketches: SketchBatchDeferred; and bias_rows striding
# each thread down one column vector, its grid capped) against mid (the
# omega16 change alone, .gpubin/loract_mid) and base 02d532a
# (.gpubin/loract_base): the device suites (gpu, activation/gpucheck,
# vitgpu; step last), TestProfileBiasRows, bench/bias/epilogue.py (PyTorch:
# what a bias epilogue would save the demo's linear layers), the default
# demo alternating new, mid and base twice, the step benchmark with new
# and base, and TestTraceBatch. Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=480}
. bench/gpudemo/lib.sh
step gpu gpu 110 gpu -test.v
step act activation/gpucheck 100 act -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
step vitgpu cmd/loract/internal/vitgpu 30 vitgpu_bias -test.run '^TestProfileBiasRows$' -vitgpu.prof -test.v
t0=$SECONDS; timeout 40 python3 bench/bias/epilogue.py > $S/epilogue.txt 2>&1; echo "epilogue rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
demo loract new1; demo loract_mid mid1; demo loract_base base1; demo loract new2; demo loract_mid mid2; demo loract_base base2
stepb loract step_new; stepb loract_base step_base
step step cmd/loract/internal/step 40 step_test -test.v
step gpu gpu 20 gpu_trace -test.run '^TestTraceBatch$' -gpu.prof -test.v
tally gpu act vitgpu step_test
finish
for f in new1 mid1 base1 new2 mid2 base2; do echo "$f: $(grep -E '^step time|^fastest timed|in Compress' $S/$f.txt | tr -s ' ' | tr '\n' ' ' | cut -c1-400)"; done
grep -h '"op":"SketchBatchDeferred' $S/gpu_trace.txt | head -3
grep -h '"piece"' $S/vitgpu_bias.txt
cat $S/epilogue.txt
