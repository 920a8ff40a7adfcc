#!/usr/bin/env bash
# thirtieth session: the code as committed at dcb65d6 (gpu.Backend.MulBias
# declining an in-place addend and column-major operands) on the device:
# the whole gpu suite (TestMulBias among it), the vitgpu suite, the default
# demo alternating new and base (7089477, .gpubin/loract_base, without the
# bias epilogue) three times, the ten-seed study (bench/gpudemo/seeds.sh)
# with the new binary if its tests and demos passed (else the base), and
# the device adapter's suite (act) with what time is left.
# Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=575}
. bench/gpudemo/lib.sh
step gpu gpu 110 gpu -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
for r in 1 2 3; do demo loract new$r; demo loract_base base$r; done
tally gpu vitgpu
bin=new
grep -q -E '^--- FAIL' $S/gpu.txt $S/vitgpu.txt && bin=base
grep -q -E '^--- PASS: TestMulBias' $S/gpu.txt || bin=base
[ $(grep -c -E '^new[123] rc=0' $S/rc.txt) = 3 ] || bin=base
[ $bin = base ] && cp .gpubin/loract_base .gpubin/loract
echo "seeds with the $bin binary" >> $S/rc.txt
OUT=$S/seedsout DEADLINE=$(( $(left) - 100 )) bash bench/gpudemo/seeds.sh > $S/seeds.txt 2>&1
echo "seeds rc=$?" >> $S/rc.txt
[ $(left) -gt 40 ] && step act activation/gpucheck $(( $(left) - 10 )) act -test.v
tally act
finish
grep -h -E 'TestMulBias|declined|MulBias on|TestBiasEpilogue' $S/gpu.txt $S/vitgpu.txt | head -20
for f in new1 base1 new2 base2 new3 base3; do echo "$f: $(grep -E 'step time|fastest timed|test accuracy' $S/$f.txt | head -3 | tr -s ' ' | tr '\n' ' ' | cut -c1-400)"; done
tail -8 $S/seeds.txt
