#!/usr/bin/env bash
# twenty-seventh session, fifth device call: the working tree (a bf16
# batch's Ω gathered in bf16 for its sketches: SketchBatchDeferred)
# against mid (68a8cd1, the deferred reads alone; .gpubin/loract_mid):
# the gpu tests of the fused read and the batched QB, activation/gpucheck's
# batch and steady-state tests, the vitgpu suite, TestTraceBatch, then the
# default demo alternating new and mid twice, within DEADLINE seconds.
set -u
S=$(mktemp -d); R=$PWD; T0=$SECONDS
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_mid)
pack() { (cd $S && tar czf $OUT/all.tgz .); cp $S/rc.txt $OUT/rc.txt; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
left() { echo $((${DEADLINE:-230} - (SECONDS - T0))); }
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 40 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 40 .gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$out.json > $S/$out.txt 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
step gpu gpu 50 gpu -test.run '^(TestKernelList|TestGatherNorm|TestGatherNormExtreme|TestGatherNormQB|TestQBBatchDevice|TestQBBatchOrientations|TestSteadyStateAllocs|TestMisalignedBatch)$' -test.v
step act activation/gpucheck 45 act -test.run '^(TestDeviceCompressBatch|TestDeviceMatchesHost|TestSteadyState|TestDeviceErrors|TestDeviceScale|TestDevicePaddedFactors)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 25 vitgpu -test.v
step gpu gpu 15 gpu_trace -test.run '^TestTraceBatch$' -gpu.prof -test.v
demo loract new1; demo loract_mid mid1; demo loract new2; demo loract_mid mid2
for f in gpu act vitgpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done
echo "total $((SECONDS - T0))s" >> $S/rc.txt; pack
cat $S/rc.txt
for f in new1 mid1 new2 mid2; do echo "$f: $(grep -E '^step time|^fastest timed|in Compress' $S/$f.txt | tr -s ' ' | tr '\n' ' ')"; done
grep -h '"op":"SketchBatchDeferred\|"op":"MulBatch' $S/gpu_trace.txt | head -8
grep -h -B3 -A25 -E -- '^--- FAIL' $S/*.txt | head -60
