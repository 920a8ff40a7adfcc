#!/usr/bin/env bash
# twenty-fifth session, third device call: MulBatchedGrid's address tables
# kept and reused (gridTables) against the previous binary (loract_prev:
# the second call's demo binary, 05:54 UTC). The gpu tests of the batched
# products, the vitgpu suite, the default demo alternating new and prev,
# and the kernel table of the per-op phase under ncu.
set -u
S=$OUT/s; mkdir -p $S; R=$PWD; T0=$SECONDS
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_prev)
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
left() { echo $((${DEADLINE:-200} - (SECONDS - T0))); }
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; }
demo() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 40 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 40 .gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$out.json > $S/$out.txt 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; }
step gpu gpu 30 gpu -test.run '^(TestMulBatched|TestMulBatchedGridTables|TestKernelList)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 40 vitgpu -test.v
demo loract new1; demo loract_prev prev1; demo loract new2; demo loract_prev prev2
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
for ph in "as they are" "loract ops"; do t0=$SECONDS; f=ncu_$(echo $ph | tr ' ' _)
  [ $(left) -lt 25 ] && { echo "$f skipped" >> $S/rc.txt; continue; }
  timeout 25 $NCU --profile-from-start off -c 5000 --metrics gpu__time_duration.sum --cache-control none --clock-control none -f -o $S/$f \
    .gpubin/loract demo -device gpu -torch=false -pretrain-steps 20 -finetune-steps 3 -profile-phase "$ph" > $S/$f.log 2>&1
  echo "$f rc=$? $((SECONDS - t0))s" >> $S/rc.txt
  $NCU --import $S/$f.ncu-rep --csv --page raw --print-units base > $S/$f.csv 2>&1; gzip -f $S/$f.csv; rm -f $S/$f.ncu-rep; done
for f in vitgpu gpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done
cat $S/rc.txt
