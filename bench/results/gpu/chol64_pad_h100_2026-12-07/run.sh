#!/usr/bin/env bash
# twenty-fourth session, one device call, most needed first (each stage
# packed into $OUT/all.tgz as it ends): chol64's tests and the QR paths
# through it, the factor padding's device tests, the profiles (chol64
# beside cuSOLVER, the batched QRs, the traced batches), the default demo
# new / base alternating, the step benchmark new / base, the full suites.
set -u
S=/tmp/s; mkdir -p $S; R=$PWD
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_base)
pack() { (cd $S && tar czf $OUT/all.tgz .); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; } > $S/rc.txt 2>&1
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 name=$2 t0=$SECONDS
  timeout 60 $R/.gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$name.json > $S/$name.txt 2> $S/$name.log
  echo "$name rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
stepb() { local bin=$1 name=$2 t0=$SECONDS
  timeout 90 $R/.gpubin/$bin bench -step -tokens 16384,32768 -ranks 256 -workers 0 -batch -torch=false -json $S/$name.jsonl > $S/$name.txt 2> $S/$name.log
  echo "$name rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
step gpu gpu 90 gpu_chol -test.run '^(TestChol64|TestKernelList|TestQRBatch|TestQRConditioning|TestQRWidths|TestQRSweep|TestQRVariants|TestSamplingQB|TestQBBatchDevice|TestExactSVDTruncated|TestExactSVDSubspace.*)$' -test.v
step act activation/gpucheck 60 act_pad -test.run '^(TestDevicePaddedFactors|TestDeviceBudget.*|TestDeviceMatchesHost)$' -test.v
step gpu gpu 120 gpu_prof -test.run '^(TestProfileChol64|TestQRBatchPotrf|TestTraceBatch)$' -gpu.prof -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu_prof -test.run '^TestProfile(Rebuilds|Step)$' -vitgpu.prof -test.v
demo loract new1; demo loract_base base1; demo loract new2; demo loract_base base2
stepb loract step_new; stepb loract_base step_base
step act activation/gpucheck 120 act -test.skip '^(TestDevicePaddedFactors|TestDeviceBudget.*|TestDeviceMatchesHost)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 90 vitgpu -test.v
step gpu gpu 120 gpu -test.skip '^(TestChol64|TestKernelList|TestQRBatch|TestQRConditioning|TestQRWidths|TestQRSweep|TestQRVariants|TestSamplingQB|TestQBBatchDevice|TestExactSVDTruncated|TestExactSVDSubspace.*)$' -test.v
for f in gpu_chol act_pad gpu_prof vitgpu_prof act vitgpu gpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done; pack
cat $S/rc.txt
