#!/usr/bin/env bash
# Every device test suite, then the compression traces, then the default
# GPU demo: the first device call of a session that changed GPU code (the
# binaries and data from build.sh in .gpubin/; one CUDA GPU, no Go). Each
# suite runs from its package folder, as go test would, under a time
# limit; everything goes to $OUT (default ./out), in eight files because
# the device returns at most eight: one log per suite, gpu_trace.txt
# (TestTraceBatch's JSON lines), the demo's table (its progress log
# appended) and JSON, and rc.txt with the card, each step's exit status
# and seconds, and the pass/skip/fail counts. On an H200 the whole script
# took 181 s in the twentieth session (suites 136 s, traces 1 s, demo 44 s;
# bench/results/gpu/suites_h200_2026-12-05/).
set -u
cd "$(dirname "$0")/../.."
R=$PWD
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
export GOMODCACHE="$R/.gpubin/gomodcache"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; } > "$OUT/rc.txt" 2>&1
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
demolog=$(mktemp)
timeout 150 .gpubin/loract demo -device gpu -markdown -json "$OUT/demo.json" > "$OUT/demo.txt" 2> "$demolog"
echo "demo rc=$? $((SECONDS - t0))s (limit 150s)" | tee -a "$OUT/rc.txt"
{ echo "---- progress (stderr) ----"; cat "$demolog"; rm -f "$demolog"; } >> "$OUT/demo.txt"
for f in gpu act step vitgpu; do
	echo "$f: $(grep -c -E '^--- PASS' "$OUT/$f.txt") pass, $(grep -c -E '^--- SKIP' "$OUT/$f.txt") skip, $(grep -c -E '^--- FAIL' "$OUT/$f.txt") fail (top level)" | tee -a "$OUT/rc.txt"
	grep -B2 -A15 -E -- '^--- FAIL' "$OUT/$f.txt" | head -40
done
