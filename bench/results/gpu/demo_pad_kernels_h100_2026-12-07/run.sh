#!/usr/bin/env bash
# twenty-third session, one device call, most needed first (each stage
# packed into $OUT/all.tgz as it ends): the gemm's inner-dimension padding
# (gpu tests), the vectorized elementwise kernels (vitgpu kernel tests),
# the rebuild and step profiles, the default demo new / pad-only / base
# alternating, then the full suites.
set -u
S=/tmp/s; mkdir -p $S; R=$PWD
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f *.gz && chmod +x *.test loract loract_base loract_pad)
pack() { (cd $S && tar czf $OUT/all.tgz .); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; } > $S/rc.txt 2>&1
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 name=$2 t0=$SECONDS
  timeout 60 $R/.gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$name.json > $S/$name.txt 2> $S/$name.log
  echo "$name rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
step gpu gpu 60 gpu_pad -test.run '^(TestPadPlan|TestInnerPadded|TestMisaligned.*|TestConformance|TestSamplingQB|TestRSVD|TestPrecision|TestQBBatchDevice|TestSteadyStateAllocs|TestProfilerRange)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 40 vitgpu_kern -test.run '^(TestKernelList|TestGELU|TestLayerNorm)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu_prof -test.run '^TestProfile(Rebuilds|Step)$' -vitgpu.prof -test.v
demo loract new1; demo loract_pad pad1; demo loract_base base1; demo loract new2; demo loract_pad pad2; demo loract_base base2
step act activation/gpucheck 120 act -test.v
step vitgpu cmd/loract/internal/vitgpu 90 vitgpu -test.v
step gpu gpu 120 gpu -test.v
for f in gpu_pad vitgpu_kern vitgpu_prof act vitgpu gpu; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done; pack
cat $S/rc.txt
