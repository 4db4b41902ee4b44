#!/usr/bin/env bash
# Latency (and parity) of every backend, CUDA ones included, on a GPU machine, in one go.
#
#   bash benchmarks/gpu_latency.sh OUT_DIR [MODEL.pt]
#
# Makes its own virtual environment (.venv-gpu, or $VENV) with the CUDA build of torch and
# onnxruntime-gpu, then runs `posetween bench latency` (batches 1, 8, 64; 500 runs) and
# `posetween bench parity`, writing to OUT_DIR:
#   latency_gpu.json / latency_gpu.md   every backend x batch, CPU and GPU named
#   parity_gpu.json / parity_gpu.md     max / p99 / mean error vs PyTorch (fp32, fp16, int8)
#   env.txt, nvidia-smi.txt             versions and the card
# MODEL defaults to the shipped default model (posetween/models/default.pt).
# Needs the internet for pip (PyPI), a CUDA 12 driver, and about 5 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: bash benchmarks/gpu_latency.sh OUT_DIR [MODEL.pt]}
MODEL=${2:-}
VENV=${VENV:-.venv-gpu}
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0}
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip
# The default torch wheel from PyPI is the CUDA build on Linux (with its nvidia-* libraries).
"$PIP" install -q "$TORCH"
"$PIP" install -q -e .
# onnxruntime (CPU) and onnxruntime-gpu install the same `onnxruntime` module: the CPU package
# that the project's dependencies pulled in must go before the GPU one comes (never both).
"$PIP" uninstall -y -q onnxruntime || true
"$PIP" install -q onnxruntime-gpu

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
"$VENV/bin/python" - <<'PY' | tee "$OUT/env.txt"
import platform
import torch
import onnxruntime as ort
print("python", platform.python_version(), platform.platform())
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
print("onnxruntime", ort.__version__, ort.get_available_providers())
if "CUDAExecutionProvider" not in ort.get_available_providers():
    raise SystemExit("onnxruntime has no CUDAExecutionProvider: is the CPU onnxruntime still installed?")
PY

MODEL_ARGS=()
if [ -n "$MODEL" ]; then MODEL_ARGS=(--model "$MODEL"); fi
# Exports made on the fly (fp32, fp16, int8) go to a scratch cache, not into OUT_DIR.
export POSETWEEN_CACHE=${POSETWEEN_CACHE:-$(mktemp -d)}

"$VENV/bin/posetween" bench latency ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"} --batches 1 8 64 --runs 500 \
    --json "$OUT/latency_gpu.json" | tee "$OUT/latency_gpu.md"
"$VENV/bin/posetween" bench parity ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"} \
    --json "$OUT/parity_gpu.json" | tee "$OUT/parity_gpu.md"
echo "results in $OUT"
