#!/usr/bin/env bash
# The GPU check of issue 16.4: training throughput on a CUDA GPU, and `pcst-train --device
# cuda` with mixed precision end to end (train, validation, best.pt, an interrupted run
# resumed, evaluate, denoise), against float32 at equal steps.
#
#     make dataset                        # data/demo.zarr (built on any machine)
#     benchmarks/gpu_check.sh OUT_DIR     # on the GPU machine, from the repository root
#
# Needs pcst's trainer dependencies there (torch with CUDA, zarr, numcodecs, click, matplotlib,
# tifffile, imageio). PYTHON picks the interpreter (default python3); STORE, STEPS, WORKERS
# (the worker counts to time), BENCH (bench_train_step.py's options) and DEVICE change what
# runs. Exits 1 when a check failed. Writes OUT_DIR/check.txt
# (everything printed), bench.txt (the step timings, last: at most BENCH_TIMEOUT s), the bfloat16 and float32 runs' log.csv and the bfloat16
# run's curves.png and final.pt; ends with a line per check, "ok" or "FAILED".
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
PY=${PYTHON:-python3}
STORE=${STORE:-data/demo.zarr}
STEPS=${STEPS:-300}
BENCH=${BENCH:---compile --repeats 5 --steps 20}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu STEPS=30 tries the script on a machine without a GPU
RUNS=$(mktemp -d)
mkdir -p "$OUT"
exec > >(tee "$OUT/check.txt") 2>&1
TEE=$!
export PYTHONUNBUFFERED=1
train() { $PY -m pcst_train.cli "$@"; }
declare -A RESULT

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, platform; print('python', platform.python_version(), 'torch', \
torch.__version__, 'cuda', torch.version.cuda, 'cuda available', torch.cuda.is_available())"

summary() {  # steps/s of the training steps and the last validation row of a run's log.csv
    $PY - "$1" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/log.csv")))
steps = [r for r in rows if r["loss"]]
val = [r for r in rows if r["val_loss"]]
rate = (len(steps) - 1) / (float(steps[-1]["seconds"]) - float(steps[0]["seconds"]))
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: {len(steps)} steps, {rate:.1f} steps/s while "
      f"training (validations included), validation loss {val[0]['val_loss']} -> "
      f"{val[-1]['val_loss']}, PSNR {val[0]['val_psnr']} -> {val[-1]['val_psnr']} dB")
EOF
}

echo "== end to end: $STEPS steps on $STORE, float32 against bfloat16"
for precision in float32 bfloat16; do
    start=$(date +%s%N)
    if train "$STORE" --out "$RUNS/$precision" --device "$DEVICE" --precision "$precision" \
        --steps "$STEPS" --lr 3e-4 --no-progress; then
        echo "wall $(( ($(date +%s%N) - start) / 1000000 )) ms"; summary "$RUNS/$precision"
        RESULT[train_$precision]=ok
    else RESULT[train_$precision]=FAILED; fi
done
echo "== the default precision (auto), by DataLoader workers (0: the training process reads)"
for workers in ${WORKERS:-0 2 4 8}; do
    start=$(date +%s%N)
    train "$STORE" --out "$RUNS/auto_w$workers" --device "$DEVICE" --workers "$workers" \
        --steps "$STEPS" --lr 3e-4 --no-progress 2>&1 | grep -v "UserWarning\|warnings.warn"
    if [ "${PIPESTATUS[0]}" = 0 ]; then
        echo "wall $(( ($(date +%s%N) - start) / 1000000 )) ms"; summary "$RUNS/auto_w$workers"
        RESULT[train_workers]=${RESULT[train_workers]:-ok}
    else RESULT[train_workers]=FAILED; fi
done

echo "== interrupted (Ctrl-C after the first last.pt) and resumed; against the run above"
set -m  # a job of its own, which does not ignore SIGINT as a script's background jobs do
train "$STORE" --out "$RUNS/resumed" --device "$DEVICE" --precision bfloat16 --steps "$STEPS" \
    --lr 3e-4 --no-progress &
pid=$!
set +m
for _ in $(seq 3000); do  # up to 5 min, while the run lives
    [ -e "$RUNS/resumed/last.pt" ] || ! kill -0 $pid 2>/dev/null && break; sleep 0.1
done
checkpointed=$([ -e "$RUNS/resumed/last.pt" ] && echo yes || echo no)
kill -INT -- -$pid 2>/dev/null; wait $pid; interrupted=$?
echo "interrupted: exit $interrupted, last.pt written before: $checkpointed"
if [ "$interrupted" = 130 ] && [ "$checkpointed" = yes ] && train "$STORE" --out "$RUNS/resumed" --device "$DEVICE" --precision bfloat16 --steps "$STEPS" \
    --lr 3e-4 --no-progress --resume auto; then
    summary "$RUNS/resumed"
    $PY - "$RUNS" <<'EOF' && RESULT[resume]=ok || RESULT[resume]=FAILED
import csv, sys
last = [[r for r in csv.DictReader(open(f"{sys.argv[1]}/{run}/log.csv")) if r["val_loss"]][-1]
        for run in ("bfloat16", "resumed")]
a, b = (float(r["val_loss"]) for r in last)
print(f"final validation loss: uninterrupted {a:.8g}, resumed {b:.8g}, "
      f"relative difference {abs(a - b) / a:.2e} (cuDNN's kernels are not bit-deterministic)")
sys.exit(0 if abs(a - b) / a < 1e-2 else 1)
EOF
else RESULT[resume]=FAILED; fi

echo "== evaluate and denoise on the GPU"
if train evaluate "$RUNS/bfloat16/best.pt" --store "$STORE" --device "$DEVICE"; then
    RESULT[evaluate]=ok; else RESULT[evaluate]=FAILED; fi
frame=$(ls data/demo/*/*.png data/demo/*.png 2>/dev/null | head -1)
$PY -c "import sys, imageio.v3 as iio, tifffile; tifffile.imwrite(sys.argv[2], \
iio.imread(sys.argv[1]))" "$frame" "$RUNS/frame.tif"
if train denoise "$RUNS/bfloat16/final.pt" "$RUNS/frame.tif" "$RUNS/gpu.tif" --device "$DEVICE" \
    && train denoise "$RUNS/bfloat16/final.pt" "$RUNS/frame.tif" "$RUNS/cpu.tif" --device cpu \
    && $PY - "$RUNS" <<'EOF'
import sys, numpy as np, tifffile
gpu, cpu = (tifffile.imread(f"{sys.argv[1]}/{n}.tif") for n in ("gpu", "cpu"))
diff = np.abs(gpu.astype(int) - cpu)
print(f"denoised on the GPU against the CPU: {gpu.shape} {gpu.dtype}, max difference "
      f"{diff.max()} levels, {np.mean(diff > 0):.2%} of values differ")
sys.exit(0 if diff.max() <= 1 else 1)
EOF
then RESULT[denoise]=ok; else RESULT[denoise]=FAILED; fi

echo
echo "== one training step, by setting (bench_train_step.py --device $DEVICE $BENCH)"
if timeout "${BENCH_TIMEOUT:-300}" $PY benchmarks/bench_train_step.py --device "$DEVICE" $BENCH \
    | tee "$OUT/bench.txt"; then RESULT[bench]=ok; else RESULT[bench]=FAILED; fi

for precision in bfloat16 float32; do
    cp "$RUNS/$precision/log.csv" "$OUT/log_$precision.csv" 2>/dev/null
done
cp "$RUNS/bfloat16/curves.png" "$RUNS/bfloat16/final.pt" "$OUT/" 2>/dev/null
echo "== checks"
status=0
for key in bench train_float32 train_bfloat16 train_workers resume evaluate denoise; do
    echo "$key: ${RESULT[$key]:-FAILED}"
    [ "${RESULT[$key]:-FAILED}" = ok ] || status=1
done
rm -rf "$RUNS"
exec >&- 2>&-  # let tee write the last of check.txt
wait "$TEE" 2>/dev/null
exit $status
