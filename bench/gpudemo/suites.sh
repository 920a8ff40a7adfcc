#!/usr/bin/env bash
# Every device test suite, then the compression traces, then the default
# GPU demo: the first device call of a session that changed GPU code (the
# binaries and data from build.sh in .gpubin/; one CUDA GPU, no Go). Each
# suite runs from its package folder, as go test would, under a time
# limit; everything goes to $OUT (default ./out): one log per suite,
# trace.txt (TestTraceBatch's JSON lines), the demo's table and JSON, and
# rc.txt with each step's exit status and seconds. On an H200 the four
# suites took 144 s and the default demo 47 s in the eighteenth session
# (bench/results/gpu/tests_h200_2026-12-04h.txt); with the traces, the
# whole script is estimated at under 6 minutes (not yet run as a script).
set -u
cd "$(dirname "$0")/../.."
R=$PWD
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
export GOMODCACHE="$R/.gpubin/gomodcache"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
: > "$OUT/rc.txt"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; } > "$OUT/card.txt" 2>&1
step() { # step NAME DIR LIMIT ARGS...: the NAME binary's tests from DIR
	local name=$1 dir=$2 limit=$3 t0=$SECONDS
	shift 3
	(cd "$dir" && timeout "$limit" "$R/.gpubin/$name.test" "$@" > "$OUT/$name$suffix.txt" 2>&1)
	echo "$name$suffix rc=$? $((SECONDS - t0))s (limit ${limit}s)" | tee -a "$OUT/rc.txt"
}
suffix=
step gpu gpu 120 -test.v
step act activation/gpucheck 120 -test.v
step step cmd/loract/internal/step 60 -test.v
step vitgpu cmd/loract/internal/vitgpu 90 -test.v
suffix=_trace
step gpu gpu 60 -test.run '^TestTraceBatch$' -gpu.prof -test.v
t0=$SECONDS
timeout 150 .gpubin/loract demo -device gpu -markdown -json "$OUT/demo.json" > "$OUT/demo.txt" 2> "$OUT/demo.log"
echo "demo rc=$? $((SECONDS - t0))s (limit 150s)" | tee -a "$OUT/rc.txt"
for f in gpu act step vitgpu; do
	echo "$f: $(grep -c -E '^--- PASS' "$OUT/$f.txt") pass, $(grep -c -E '^--- SKIP' "$OUT/$f.txt") skip, $(grep -c -E '^--- FAIL' "$OUT/$f.txt") fail (top level)"
	grep -B2 -A15 -E -- '^--- FAIL' "$OUT/$f.txt" | head -40
done
