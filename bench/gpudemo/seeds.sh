#!/usr/bin/env bash
# The GPU demo's default configuration (both modes, no PyTorch twin) at
# several seeds, for the accuracy drop's mean and spread: -seed sets the
# model, the batches and the draws. Run on the device after build.sh;
# the arguments are the seeds (default 1 to 10). Each run's -json output
# and tables go to $OUT/seeds/seedS.{json,txt}; $OUT/summary.tsv has one
# row per compressed run (seeds_summary.py). A run that would not finish
# by $DEADLINE seconds from the start (default 330) is not started.
# PACK=1 packs the seeds' files into $OUT/all.tgz (pack.sh), leaving
# summary.tsv beside it.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/out}"
DEADLINE="${DEADLINE:-330}"
mkdir -p "$OUT/seeds"
export GOMODCACHE="$PWD/.gpubin/gomodcache"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ $# -gt 0 ] || set -- 1 2 3 4 5 6 7 8 9 10
start=$SECONDS
last=25 # seconds one seed takes on an H200 (20–21 s measured), a first guess
for seed in "$@"; do
	left=$((DEADLINE - (SECONDS - start)))
	if [ "$left" -lt $((last + 5)) ]; then
		echo "seed $seed: not started, ${left}s left, a run took ${last}s"
		continue
	fi
	t0=$SECONDS
	timeout "$left" .gpubin/loract demo -device gpu -torch=false -seed "$seed" \
		-json "$OUT/seeds/seed$seed.json" > "$OUT/seeds/seed$seed.txt" 2>&1
	echo "seed $seed rc=$? $((SECONDS - t0))s"
	last=$((SECONDS - t0))
done
python3 bench/gpudemo/seeds_summary.py "$OUT/seeds" | tee "$OUT/summary.tsv"
[ "${PACK:-0}" = 1 ] && bash bench/gpudemo/pack.sh "$OUT" summary.tsv
exit 0
