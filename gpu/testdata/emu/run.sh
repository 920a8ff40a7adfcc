#!/bin/sh
# CPU emulation of the fused first-read kernels of ../../kernels.cu (one
# ucontext fiber per CUDA thread; __syncthreads and warp shuffles as
# barriers), for checking their indexing without a GPU:
#   sh gpu/testdata/emu/run.sh
# It tests logic only (tiles, grid-stride loops, vector and scalar loads,
# both layouts, NaN), not speed, alignment faults or memory ordering.
set -e
d=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
sed -e 's/extern __shared__/extern/' -e 's/extern "C" //' "$d/../../kernels.cu" > "$t/kernels_emu.cc"
g++ -std=c++17 -O1 -w -I"$t" -I"$d" -o "$t/test" "$d/test.cc" "$d/emu.cc"
"$t/test"
rm -rf "$t"
