#!/usr/bin/env bash
# Trains the `open` model (`make train-open`): only motion whose licence allows commercial use of
# a trained model (CMU's terms; HDM05's CC BY-SA 3.0, actors bd, bk and dg), from scratch, with
# the default model's recipe and augmentations (configs/default.yaml), 3 + 3 layers. Resumable:
# run again after an interruption (a finished stage is skipped). Ships posetween/models/open.pt
# and open.onnx.
set -euo pipefail
BIN=${BIN:-.venv/bin}
RUNS=${RUNS:-runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OPEN_DATA="data.subsets=[cmu-indian, cmu-martial, cmu-salsa, hdm05-bd, hdm05-bk, hdm05-dg]"
# Its own share of the Hermite curve (inference only): none at 7.5 fps and slower (a constant
# share gained it at most 0.2 % on CMU 131), 0.4 more per halving of the interval unless the input
# is noisy (scripts/curve_share.py --model open on the validation split: README, "Accuracy").
OPEN_CURVE=(model.curve_blend=0 model.curve_blend_per_octave=0.4 model.curve_noise_low=0.06 model.curve_noise_high=0.1)

stage() {   # stage NAME INIT ARGS...: train RUNS/NAME (from INIT's weights, if any) unless it has finished
  local name=$1 init=$2; shift 2
  if [ -f "$RUNS/$name/done" ]; then return; fi
  local start=()
  if [ -f "$RUNS/$name/last.pt" ]; then start=(--resume); elif [ -n "$init" ]; then start=(--init "$init"); fi
  "$BIN/torchrun" --nproc_per_node 2 -m posetween.cli train --config configs/default.yaml --runs "$RUNS" \
    --name "$name" --batch-size 128 --set "$OPEN_DATA" "${OPEN_CURVE[@]/#/--set=}" "$@" "${start[@]}"
  touch "$RUNS/$name/done"
}

# 1. From scratch: 8000 steps from a learning rate of 7e-4.
stage open-1 "" --steps 8000 --lr 0.0007
# 2. As the default model's stages 13 and 15: input rates up to 60 fps, the HDM05 source weighted
#    up, and half the query loss relative to linear interpolation's per window; a warm restart
#    from 3e-4 for 24000 steps.
stage open-2 "$RUNS/open-1/model.pt" --steps 24000 --lr 0.0003 --set augment.max_fps=60 \
  --set "data.subset_weights={cmu-: 1.0, hdm05-: 2.0}" --set optim.relative_loss_weight=0.5
# 3. A warm restart from 1.5e-4, 16000 steps, with more of the loss relative to linear (0.7).
stage open-3 "$RUNS/open-2/model.pt" --steps 16000 --lr 0.00015 --set augment.max_fps=60 \
  --set "data.subset_weights={cmu-: 1.0, hdm05-: 2.0}" --set optim.relative_loss_weight=0.7

cp "$RUNS/open-3/model.pt" posetween/models/open.pt
"$BIN/python" scripts/set_inference.py posetween/models/open.pt configs/default.yaml "${OPEN_CURVE[@]/#model./--set=}"
"$BIN/posetween" export --model posetween/models/open.pt --out posetween/models/open.onnx
echo "shipped $RUNS/open-3/model.pt as posetween/models/open.pt (+ open.onnx)"
