#!/usr/bin/env bash
# Every kernel of one GPU demo training step, per phase, under Nsight
# Compute (docs/gpu-demo.md, "Profiling the device run"): one ncu capture
# of each fine-tuning phase of a short demo (-pretrain-steps 20
# -finetune-steps 3, -profile-phase), exported to CSV, then
# ncu_kernels.py's table (kernels.md) and totals by group
# (kernel_groups.json, which `loract plot -only gpukernels` draws). Run on
# the device after build.sh, .gpubin/ carried; the arguments are the
# phases (default the three), everything goes to $OUT (default ./out), a
# capture not started when fewer than 40 s of $DEADLINE (default 150) are
# left. PACK=1 packs the captures into $OUT/all.tgz (pack.sh), leaving the
# table, the totals and rc.txt beside it. On an H100 a capture took 14–16
# s (bench/results/gpu/demo_grid_h100_2026-12-07/).
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/out}"
DEADLINE="${DEADLINE:-150}"
mkdir -p "$OUT"
export GOMODCACHE="$PWD/.gpubin/gomodcache"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
[ -n "$NCU" ] || { echo "kernels.sh: no ncu on PATH or in /usr/local/cuda/bin" >&2; exit 1; }
[ $# -gt 0 ] || set -- "as they are" "loract checkpoint" "loract ops"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; } > "$OUT/rc.txt" 2>&1
start=$SECONDS
args=()
for ph in "$@"; do
	f=demo_$(echo "$ph" | tr ' ' _)
	left=$((DEADLINE - (SECONDS - start)))
	if [ "$left" -lt 40 ]; then
		echo "$f: not started, ${left}s left" | tee -a "$OUT/rc.txt"
		continue
	fi
	t0=$SECONDS
	timeout 40 "$NCU" --profile-from-start off -c 5000 --metrics gpu__time_duration.sum --cache-control none \
		--clock-control none -f -o "$OUT/$f" .gpubin/loract demo -device gpu -torch=false -pretrain-steps 20 \
		-finetune-steps 3 -profile-phase "$ph" > "$OUT/$f.log" 2>&1
	echo "$f rc=$? $((SECONDS - t0))s" | tee -a "$OUT/rc.txt"
	"$NCU" --import "$OUT/$f.ncu-rep" --csv --page raw --print-units base > "$OUT/$f.csv" 2>> "$OUT/$f.log" &&
		gzip -f "$OUT/$f.csv" && rm -f "$OUT/$f.ncu-rep"
	# ncu's own lines, one a kernel, make the log long.
	grep -v '^==PROF==' "$OUT/$f.log" > "$OUT/$f.log.tmp" && mv "$OUT/$f.log.tmp" "$OUT/$f.log"
	label=${ph#loract } # the records' labels: as they are, checkpoint, per op
	[ "$label" = ops ] && label="per op"
	args+=("$label=$OUT/$f.csv.gz")
done
[ ${#args[@]} -gt 0 ] && python3 bench/gpudemo/ncu_kernels.py --top 60 --json "$OUT/kernel_groups.json" "${args[@]}" > "$OUT/kernels.md"
[ "${PACK:-0}" = 1 ] && bash bench/gpudemo/pack.sh "$OUT" rc.txt kernels.md kernel_groups.json
exit 0
