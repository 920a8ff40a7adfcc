#!/usr/bin/env bash
# The GPU demo at several rank ratios, for the memory-and-accuracy-against-
# rank figure (loract plot -only gpurank). Run on the device after
# build.sh; each argument is CHECKPOINT:OPS, the -ratio and -ops-ratio of
# one full demo (pre-training, the bf16 baseline and both modes; no
# PyTorch twin). Every demo's -json output is appended to
# $OUT/demo_rank.json, the file plot's -gpurank reads; a run that would
# not finish by $DEADLINE seconds from the start (default 600) is not
# started. PACK=1 packs the other files into $OUT/all.tgz (pack.sh),
# leaving demo_rank.json beside it.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/out}"
DEADLINE="${DEADLINE:-600}"
mkdir -p "$OUT"
export GOMODCACHE="$PWD/.gpubin/gomodcache"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ $# -gt 0 ] || set -- 0.1:0.05 0.2:0.1 0.3:0.15 0.45:0.25
: > "$OUT/demo_rank.json"
start=$SECONDS
last=45 # seconds one demo takes on an H200 (31.9 s measured with the twin), a first guess
for pair in "$@"; do
	r=${pair%%:*} o=${pair##*:}
	left=$((DEADLINE - (SECONDS - start)))
	if [ "$left" -lt $((last + 5)) ]; then
		echo "ratio $r ops $o: not started, ${left}s left, a run took ${last}s"
		continue
	fi
	t0=$SECONDS
	timeout "$left" .gpubin/loract demo -device gpu -torch=false -ratio "$r" -ops-ratio "$o" \
		-json "$OUT/demo_r$r.json" > "$OUT/demo_r$r.txt" 2> "$OUT/demo_r$r.log"
	rc=$?
	last=$((SECONDS - t0))
	echo "ratio $r ops $o rc=$rc ${last}s"
	[ $rc -eq 0 ] && cat "$OUT/demo_r$r.json" >> "$OUT/demo_rank.json"
done
[ "${PACK:-0}" = 1 ] && bash bench/gpudemo/pack.sh "$OUT" demo_rank.json
exit 0
