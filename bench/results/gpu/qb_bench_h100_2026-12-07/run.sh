#!/usr/bin/env bash
# thirtieth session: issue 13's QB table with the code at dcb65d6
# (.gpubin/loract from bench/gpudemo/build.sh), loract beside PyTorch's
# rows QB on the same card: the seventeenth session's two commands
# (docs/gpu.md, "Compression speed"). Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=240}
. bench/gpudemo/lib.sh
t0=$SECONDS
timeout 100 .gpubin/loract bench -backend gpu -m 8192 -n 4096 -k 128 -dtype fp32,bf16 -fair=false -exact=false -repeats 20 -md > $S/qb_8192.md 2> $S/qb_8192.log
echo "qb_8192 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
t0=$SECONDS
timeout 100 .gpubin/loract bench -backend gpu -m 32768 -n 4096 -k 256 -dtype bf16 -fair=false -exact=false -repeats 20 -md > $S/qb_32768.md 2> $S/qb_32768.log
echo "qb_32768 rc=$? $((SECONDS - t0))s" >> $S/rc.txt
finish
grep -h -E '^\| (rows|gaussian|svd)' $S/qb_8192.md $S/qb_32768.md | head -30
tail -3 $S/qb_8192.log $S/qb_32768.log
