#!/usr/bin/env bash
# The GPU demo's single device run (one CUDA GPU, no Go; the binaries and
# data from build.sh in .gpubin/): the device tests first, then the demo
# in a short and in the default configuration (the default one runs the
# PyTorch twin at its end). Everything goes to $OUT (default ./out):
# one log per step, the demos' stdout (tables) and JSON, rc.txt with each
# step's exit status. Each step has a time limit and the default demo gets
# what is left of 230 seconds, so the whole run ends within 4 minutes.
# PACK=1 packs the outputs into $OUT/all.tgz (pack.sh), leaving rc.txt and
# the default demo's tables beside it.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
export GOMODCACHE="$PWD/.gpubin/gomodcache"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
start=$SECONDS
left() { echo $((230 - (SECONDS - start))); }
step() { # step NAME LIMIT COMMAND...: run with a time limit, note the status
	local name=$1 limit=$2
	shift 2
	local t0=$SECONDS
	timeout "$limit" "$@"
	local rc=$?
	echo "$name rc=$rc $((SECONDS - t0))s (limit ${limit}s)" | tee -a "$OUT/rc.txt"
}
: > "$OUT/rc.txt"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv; nvidia-smi; } > "$OUT/nvidia-smi.txt" 2>&1
python3 -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())' > "$OUT/python.txt" 2>&1
# The model's tests run in two processes, so that a panic among the
# kernels' tests (which aborts a test binary) leaves the model's to run.
kernels='^Test(KernelList|Layout|Schedule|FitBudget|DemoConfigCheck|TwinArgs|RunTwin|FillCast|Patches|BiasRows|LayerNorm|GELU|Softmax|MeanPool|CrossEntropy|Adam|Attention)$'
model='^Test(ModelMatchesCPU|ModesAgree|Recompute|CheckpointGroups|CheckpointEnds|OpsGroup|BF16MatchesCPU|Training|TinyDemo)$'
step gpu.test 30 bash -c "cd gpu && ../.gpubin/gpu.test -test.run '^Test(Module|MulBatched|Unavailable|KernelList)$' -test.v > '$OUT/gpu_test.txt' 2>&1"
step vitgpu-kernels 30 bash -c "cd cmd/loract/internal/vitgpu && ../../../../.gpubin/vitgpu.test -test.run '$kernels' -test.v > '$OUT/vitgpu_kernels_test.txt' 2>&1"
step vitgpu-model 50 bash -c "cd cmd/loract/internal/vitgpu && ../../../../.gpubin/vitgpu.test -test.run '$model' -test.v > '$OUT/vitgpu_model_test.txt' 2>&1"
step demo-short 35 .gpubin/loract demo -device gpu -depth 2 -pretrain-steps 150 -finetune-steps 100 -lr-warmup 20 -torch=false \
	-json "$OUT/demo_short.json" > "$OUT/demo_short.txt" 2> "$OUT/demo_short.log"
step demo-default "$(left)" .gpubin/loract demo -device gpu -markdown -json "$OUT/demo_default.json" \
	> "$OUT/demo_default.txt" 2> "$OUT/demo_default.log"
echo "total $((SECONDS - start))s" | tee -a "$OUT/rc.txt"
grep -E '^(--- FAIL|--- SKIP|FAIL|ok|PASS|panic)' "$OUT"/*_test.txt | tail -30
tail -n 40 "$OUT/demo_default.txt"
[ "${PACK:-0}" = 1 ] && bash bench/gpudemo/pack.sh "$OUT" rc.txt demo_default.txt
exit 0
