#!/usr/bin/env bash
# twenty-ninth session: the working tree with lt.patch applied (the linear
# layers' bias in cuBLASLt's epilogue, gpu.Backend.MulBias) against base
# 7089477 (.gpubin/loract_base): TestMulBias and the product tests of
# package gpu, the vitgpu suite (TestBiasEpilogue among them), the default
# demo alternating new and base twice, then the ten-seed study
# (bench/gpudemo/seeds.sh) with the new binary if its tests and demos
# passed, else with the base. Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=570}
. bench/gpudemo/lib.sh
step gpu gpu 40 gpu -test.run '^(TestMulBias|TestMisalignedProducts|TestConformance)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 70 vitgpu -test.v
demo loract new1; demo loract_base base1; demo loract new2; demo loract_base base2
tally gpu vitgpu
bin=new
grep -q -E '^--- FAIL' $S/gpu.txt $S/vitgpu.txt && bin=base
grep -q -E '^--- PASS: TestMulBias' $S/gpu.txt || bin=base
grep -q -E '^new[12] rc=0' $S/rc.txt && [ $(grep -c -E '^new[12] rc=0' $S/rc.txt) = 2 ] || bin=base
[ $bin = base ] && cp .gpubin/loract_base .gpubin/loract
echo "seeds with the $bin binary" >> $S/rc.txt
OUT=$S/seedsout DEADLINE=$(( $(left) - 15 )) bash bench/gpudemo/seeds.sh > $S/seeds.txt 2>&1
echo "seeds rc=$?" >> $S/rc.txt
finish
grep -h -E 'TestMulBias|declined|MulBias on|TestBiasEpilogue' $S/gpu.txt $S/vitgpu.txt | head -20
for f in new1 base1 new2 base2; do echo "$f: $(grep -E 'step time|fastest timed|test accuracy' $S/$f.txt | tr -s ' ' | tr '\n' ' ' | cut -c1-500)"; done
tail -8 $S/seeds.txt
