#!/usr/bin/env bash
# twenty-seventh session, fourth device call: the working tree (the
# factors' storage copies queued before a batch's host synchronisation:
# sampling.Decomposer.OnQueued, activation's prestoreDevice) against mid
# (68a8cd1, the deferred reads alone; .gpubin/loract_mid): the
# activation/gpucheck and vitgpu suites, the gpu batch tests, the default
# demo alternating new and mid three times, and ncu kernel tables of the
# two compressed phases as time allows. Everything goes into
# $OUT/all.tgz.
set -u
S=$(mktemp -d); R=$PWD; T0=$SECONDS
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_mid)
pack() { (cd $S && tar czf $OUT/all.tgz .); cp $S/rc.txt $OUT/rc.txt; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
left() { echo $((${DEADLINE:-330} - (SECONDS - T0))); }
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 40 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 40 .gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$out.json > $S/$out.txt 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
step act activation/gpucheck 95 act -test.v
step vitgpu cmd/loract/internal/vitgpu 40 vitgpu -test.v
step gpu gpu 40 gpu -test.run '^(TestQRBatch|TestQBBatchDevice|TestQBBatchOrientations|TestMulCopyBatch)$' -test.v
demo loract new1; demo loract_mid mid1; demo loract new2; demo loract_mid mid2; demo loract new3; demo loract_mid mid3
if [ $(left) -ge 55 ]; then t0=$SECONDS
  OUT=$S/kernels DEADLINE=$(left) bash bench/gpudemo/kernels.sh "loract checkpoint" "loract ops" > $S/kernels.log 2>&1
  echo "kernels rc=$? $((SECONDS - t0))s" >> $S/rc.txt; rm -f $S/kernels/*.ncu-rep; pack; fi
for f in act vitgpu gpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done
echo "total $((SECONDS - T0))s" >> $S/rc.txt; pack
cat $S/rc.txt
for f in new1 mid1 new2 mid2 new3 mid3; do echo "$f: $(grep -E '^step time|^fastest timed|^  overhead' $S/$f.txt | tr -s ' ' | tr '\n' ' ')"; done
grep -h -B3 -A25 -E -- '^--- FAIL' $S/*.txt | head -60
