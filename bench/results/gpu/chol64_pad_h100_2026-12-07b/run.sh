#!/usr/bin/env bash
# twenty-fourth session, second device call: chol64 by batch size (one
# matrix to ℓ = 128, several to 256) and small ranks left unpadded, after
# the first call; the vitgpu suite (TestModesAgree failed in the first),
# the padding and budget tests, one demo, the step benchmark, chol64 under ncu at ℓ = 231 (where
# its time goes), the QR tests.
set -u
S=/tmp/s; mkdir -p $S; R=$PWD
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_base)
pack() { (cd $S && tar czf $OUT/all.tgz .); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; } > $S/rc.txt 2>&1
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
step act activation/gpucheck 60 act_pad -test.run '^(TestDevicePaddedFactors|TestDeviceBudget.*)$' -test.v
t0=$SECONDS; timeout 60 .gpubin/loract demo -device gpu -torch=false -markdown -json $S/new3.json > $S/new3.txt 2> $S/new3.log; echo "new3 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
t0=$SECONDS; timeout 60 .gpubin/loract bench -step -tokens 16384 -ranks 256 -workers 0 -batch -torch=false -json $S/step_new3.jsonl > $S/step_new3.txt 2> $S/step_new3.log; echo "step_new3 rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
for l in 231; do t0=$SECONDS
  (cd gpu && timeout 60 $NCU -k chol64 -c 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section LaunchStats --section SourceCounters \
    $R/.gpubin/gpu.test -test.run '^TestProfileChol64$' -gpu.prof -gpu.cholwidths $l > $S/ncu_$l.txt 2>&1)
  echo "ncu_$l rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; done
step gpu gpu 90 gpu_chol -test.run '^(TestChol64|TestQRConditioning|TestQBBatchDevice|TestExactSVDSubspace.*|TestQRBatch)$' -test.v
for f in vitgpu act_pad gpu_chol; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done; pack
cat $S/rc.txt
