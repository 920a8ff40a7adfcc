#!/usr/bin/env bash
# twenty-eighth session, written for a fourth device call that did not
# start (no device time left): the working tree with lt.patch applied (the linear
# layers' bias in cuBLASLt's epilogue, gpu.Backend.MulBias) against base
# 04a0641 (.gpubin/loract_base): TestMulBias and the product tests of
# package gpu, the vitgpu suite (TestBiasEpilogue among them), then the
# default demo alternating new and base twice. Helpers: bench/gpudemo/lib.sh.
set -u
: ${DEADLINE:=240}
. bench/gpudemo/lib.sh
step gpu gpu 40 gpu -test.run '^(TestMulBias|TestMisalignedProducts|TestConformance)$' -test.v
step vitgpu cmd/loract/internal/vitgpu 60 vitgpu -test.v
demo loract new1; demo loract_base base1; demo loract new2; demo loract_base base2
tally gpu vitgpu
finish
grep -h -E 'TestMulBias|declined|MulBias on' $S/gpu.txt $S/vitgpu.txt | head -20
for f in new1 base1 new2 base2; do echo "$f: $(grep -E '^step time|^fastest timed|in Compress|^test accuracy' $S/$f.txt | tr -s ' ' | tr '\n' ' ' | cut -c1-500)"; done
