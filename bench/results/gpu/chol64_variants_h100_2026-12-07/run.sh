#!/usr/bin/env bash
# twenty-fifth session, first device call: chol64 variants (the embedded
# kernels.cu; row j through shared memory; the diagonal block rolled in
# shared memory; branch-free with rsqrt.approx and Newton, by shuffles or
# shared memory; the last with trinv64 multiplying by reciprocals,
# through TestQRBatch and TestTraceBatch beside the base) through -gpu.kernels: TestChol64 and TestProfileChol64
# each; ncu's stall reasons at ℓ = 231; chol64's SASS
# (nvcc + cuobjdump, where present); then every kernel's duration in
# three short demo runs under ncu (one fine-tuning phase each).
# .gpubin/var/V.cu is gpu/kernels.cu at 6a2f694 with variants/V.patch
# applied (base: none), gzipped; gpu.test and loract built at 6a2f694
# plus the -gpu.kernels flag.
set -u
S=/tmp/s; mkdir -p $S; R=$PWD
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz var/*.gz && chmod +x *.test loract)
pack() { (cd $S && tar czf $OUT/all.tgz --exclude='*.ncu-rep' .); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
for v in base rowj rolled bf bfrowj rcp; do t0=$SECONDS
  (cd gpu && timeout 40 $R/.gpubin/gpu.test -gpu.kernels $R/.gpubin/var/$v.cu -test.run '^TestChol64$' -test.v > $S/chol_$v.txt 2>&1)
  echo "chol_$v rc=$? $((SECONDS - t0))s" >> $S/rc.txt; t0=$SECONDS
  (cd gpu && timeout 60 $R/.gpubin/gpu.test -gpu.kernels $R/.gpubin/var/$v.cu -test.run '^TestProfileChol64$' -test.v -gpu.prof -gpu.cholwidths 32,64,115,231,256 > $S/prof_$v.txt 2>&1)
  echo "prof_$v rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; done
for v in base rcp; do t0=$SECONDS
  (cd gpu && timeout 60 $R/.gpubin/gpu.test -gpu.kernels $R/.gpubin/var/$v.cu -test.run '^(TestQRBatch|TestTraceBatch)$' -test.v -gpu.prof > $S/qrb_$v.txt 2>&1)
  echo "qrb_$v rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; done
for v in base rolled bf bfrowj; do for l in 231; do t0=$SECONDS
  (cd gpu && timeout 60 $NCU -k chol64 -c 1 --section SpeedOfLight --section WarpStateStats --section InstructionStats --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    $R/.gpubin/gpu.test -gpu.kernels $R/.gpubin/var/$v.cu -test.run '^TestProfileChol64$' -gpu.prof -gpu.cholwidths $l > $S/ncu_${v}_$l.txt 2>&1)
  echo "ncu_${v}_$l rc=$? $((SECONDS - t0))s" >> $S/rc.txt; done; pack; done
t0=$SECONDS
{ command -v nvcc cuobjdump nvdisasm; ls /usr/local/cuda/bin | head -50; } > $S/tools.txt 2>&1
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
if [ -n "$NVCC" ]; then for v in base rolled bf bfrowj; do
  $NVCC -arch=sm_90 -cubin -std=c++17 -o $S/$v.cubin .gpubin/var/$v.cu >> $S/tools.txt 2>&1 && \
  /usr/local/cuda/bin/cuobjdump -sass -fun chol64 $S/$v.cubin > $S/sass_$v.txt 2>&1; done; fi
echo "sass rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack
for ph in "as they are" "loract checkpoint" "loract ops"; do t0=$SECONDS; f=demo_$(echo $ph | tr ' ' _)
  timeout 100 $NCU --profile-from-start off -c 5000 --metrics gpu__time_duration.sum --cache-control none --clock-control none -f -o $S/$f \
    .gpubin/loract demo -device gpu -torch=false -pretrain-steps 20 -finetune-steps 3 -profile-phase "$ph" > $S/$f.log 2>&1
  echo "$f rc=$? $((SECONDS - t0))s" >> $S/rc.txt
  $NCU --import $S/$f.ncu-rep --csv --page raw --print-units base > $S/$f.csv 2>&1; gzip -f $S/$f.csv; pack; done
cat $S/rc.txt
