#!/usr/bin/env bash
# twenty-ninth session, second call: run.sh's tests and demos again after
# the fix of MulBias's nil residual (an interface holding a nil *Matrix,
# which the first call's TestMulBias and every new demo hit), against base
# 7089477 (.gpubin/loract_base); the ten-seed study of run.sh is not
# repeated. Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=300}
. bench/gpudemo/lib.sh
step gpu gpu 40 gpu -test.run '^(TestMulBias|TestMisalignedProducts|TestConformance)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 70 vitgpu -test.v
demo loract new1; demo loract_base base1; demo loract new2; demo loract_base base2
tally gpu vitgpu
finish
grep -h -E 'TestMulBias|declined|MulBias on|TestBiasEpilogue' $S/gpu.txt $S/vitgpu.txt | head -20
for f in new1 base1 new2 base2; do echo "$f: $(grep -E 'step time|fastest timed|test accuracy' $S/$f.txt | head -3 | tr -s ' ' | tr '\n' ' ' | cut -c1-400)"; done
