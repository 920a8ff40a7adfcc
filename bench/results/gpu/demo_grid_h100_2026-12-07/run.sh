#!/usr/bin/env bash
# twenty-fifth session, second device call: the working tree (chol64
# branch-free with row j through shared memory, trinv64 by reciprocals,
# MulBatchedGrid and one product per attention step, bias_rows and
# ln_affine eight bf16 a thread with 32-bit indices) against base (HEAD
# 6a2f694): the vitgpu and gpu suites, the profiles, the default demo
# alternating new and base, the kernel table under ncu (as time allows);
# argument tests or demo picks the half. Also chol64 with a look-ahead
# (.gpubin/var/la.cu through -gpu.kernels): TestChol64 and its profile.
set -u
S=/tmp/s; mkdir -p $S; R=$PWD; T0=$SECONDS
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_base)
pack() { (cd $S && tar czf $OUT/all.tgz --exclude='*.ncu-rep' .); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
left() { echo $((${DEADLINE:-300} - (SECONDS - T0))); }
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 60 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 60 .gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$out.json > $S/$out.txt 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
case "${1:-tests}" in
tests)
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
step gpu gpu 80 gpu -test.run '^(TestMulBatched|TestKernelList|TestChol64|TestQRBatch|TestQRConditioning|TestQBBatchDevice|TestExactSVD.*|TestSamplingQB|TestQRWidths)$' -test.v
step gpu gpu 30 gpu_prof -test.run '^(TestTraceBatch|TestProfileChol64)$' -test.v -gpu.prof -gpu.cholwidths 32,115,231,256
step gpu gpu 30 chol_la -test.run '^TestChol64$' -test.v -gpu.kernels $R/.gpubin/var/la.cu
step gpu gpu 20 prof_la -test.run '^TestProfileChol64$' -test.v -gpu.prof -gpu.cholwidths 32,115,231,256 -gpu.kernels $R/.gpubin/var/la.cu
;;
demo)
demo loract new1; demo loract_base base1; demo loract new2; demo loract_base base2
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
for ph in "as they are" "loract checkpoint" "loract ops"; do t0=$SECONDS; f=ncu_$(echo $ph | tr ' ' _)
  [ $(left) -lt 40 ] && { echo "$f skipped" >> $S/rc.txt; continue; }
  timeout 40 $NCU --profile-from-start off -c 5000 --metrics gpu__time_duration.sum --cache-control none --clock-control none -f -o $S/$f \
    .gpubin/loract demo -device gpu -torch=false -pretrain-steps 20 -finetune-steps 3 -profile-phase "$ph" > $S/$f.log 2>&1
  echo "$f rc=$? $((SECONDS - t0))s" >> $S/rc.txt
  $NCU --import $S/$f.ncu-rep --csv --page raw --print-units base > $S/$f.csv 2>&1; gzip -f $S/$f.csv; pack; done
;;
esac
for f in vitgpu gpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done; pack
cat $S/rc.txt
