#!/usr/bin/env bash
# twenty-ninth session, third call: after MulBias declines an addend that
# shares memory with c (run2.sh's TestMulBias: in place came out one bf16
# ulp off), the whole gpu suite (TestMulBias among it), the vitgpu suite,
# then the default demo, new and base (7089477, .gpubin/loract_base),
# as many pairs as the deadline leaves time for. Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=150}
. bench/gpudemo/lib.sh
step gpu gpu 90 gpu -test.v
step vitgpu cmd/loract/internal/vitgpu 70 vitgpu -test.v
for r in 1 2 3; do demo loract new$r; demo loract_base base$r; done
tally gpu vitgpu
finish
grep -h -E 'TestMulBias|declined|MulBias on|TestBiasEpilogue' $S/gpu.txt $S/vitgpu.txt | head -30
for f in new1 base1 new2 base2 new3 base3; do echo "$f: $(grep -E 'step time|fastest timed|test accuracy' $S/$f.txt | head -3 | tr -s ' ' | tr '\n' ' ' | cut -c1-400)"; done
