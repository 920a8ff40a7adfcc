#!/usr/bin/env bash
# twenty-seventh session, third device call: the working tree (the
# skeleton's B from NewPadded, products padded in place) against mid
# (68a8cd1, the deferred reads; .gpubin/loract_mid) and base (579ecac;
# .gpubin/loract_base): the device suites (gpu, activation/gpucheck,
# vitgpu), TestTraceBatch, the default demo alternating new, mid and
# base twice, ncu kernel tables of the two compressed phases (kernels.sh),
# then the step benchmark as time allows. Everything goes into
# $OUT/all.tgz (the device returns at most eight files).
set -u
S=$(mktemp -d); R=$PWD; T0=$SECONDS
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_mid loract_base)
pack() { (cd $S && tar czf $OUT/all.tgz .); cp $S/rc.txt $OUT/rc.txt; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
left() { echo $((${DEADLINE:-560} - (SECONDS - T0))); }
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 45 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 45 .gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$out.json > $S/$out.txt 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
step gpu gpu 110 gpu -test.v
step act activation/gpucheck 100 act -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
step gpu gpu 30 gpu_trace -test.run '^TestTraceBatch$' -gpu.prof -test.v
demo loract new1; demo loract_mid mid1; demo loract_base base1
demo loract new2; demo loract_mid mid2; demo loract_base base2
if [ $(left) -ge 60 ]; then t0=$SECONDS
  OUT=$S/kernels DEADLINE=$(( $(left) < 80 ? $(left) : 80 )) bash bench/gpudemo/kernels.sh "loract checkpoint" "loract ops" > $S/kernels.log 2>&1
  echo "kernels rc=$? $((SECONDS - t0))s" >> $S/rc.txt; rm -f $S/kernels/*.ncu-rep; pack; fi
if [ $(left) -ge 75 ]; then t0=$SECONDS
  timeout 75 .gpubin/loract bench -step -workers 0 -batch -json $S/step.jsonl > $S/step.md 2> $S/step.log
  echo "step bench rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; fi
for f in gpu act vitgpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done
echo "total $((SECONDS - T0))s" >> $S/rc.txt; pack
cat $S/rc.txt
for f in new1 mid1 base1 new2 mid2 base2; do echo "$f: $(grep -E '^step time|^  overhead' $S/$f.txt | tr -s ' ' | tr '\n' ' ')"; done
grep -h -B3 -A25 -E -- '^--- FAIL' $S/*.txt | head -80
