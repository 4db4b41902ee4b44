#!/usr/bin/env bash
# Trains the `open` model (`make train-open`): only motion whose licence allows commercial use of
# a trained model (CMU's terms; HDM05's CC BY-SA 3.0, actors bd, bk and dg), from scratch, with
# the default model's recipe and augmentations (configs/default.yaml), 3 + 3 layers. Resumable:
# run again after an interruption. Ships posetween/models/open.pt and open.onnx.
set -euo pipefail
BIN=${BIN:-.venv/bin}
RUNS=${RUNS:-runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
name=open-1
start=()
[ -f "$RUNS/$name/last.pt" ] && start=(--resume)
if [ ! -f "$RUNS/$name/done" ]; then
  "$BIN/torchrun" --nproc_per_node 2 -m posetween.cli train --config configs/default.yaml --runs "$RUNS" --name $name \
    --batch-size 128 --steps 8000 --lr 0.0007 \
    --set "data.subsets=[cmu-indian, cmu-martial, cmu-salsa, hdm05-bd, hdm05-bk, hdm05-dg]" "${start[@]}"
  touch "$RUNS/$name/done"
fi
cp "$RUNS/$name/model.pt" posetween/models/open.pt
"$BIN/posetween" export --model posetween/models/open.pt --out posetween/models/open.onnx
echo "shipped $RUNS/$name/model.pt as posetween/models/open.pt (+ open.onnx)"
