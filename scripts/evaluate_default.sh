#!/usr/bin/env bash
# Evaluates a model (default: the shipped one) on the Bandai test split, as in the model card:
# 3.75 / 7.5 / 15 fps in, 30 fps out, lookahead 1 and 0, clean and noisy input; lookahead 2 at 7.5 fps.
#   bash scripts/evaluate_default.sh [MODEL.pt] [OUT_DIR]
set -euo pipefail
MODEL=${1:-}
OUT=${2:-out/eval}
DATA=${DATA:-data/bandai.h5}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
common=(--data "$DATA" --split test --split-config configs/default.yaml --output-fps 30)
[ -n "$MODEL" ] && common+=(--model "$MODEL")
for la in 1 0; do
  "$BIN/posetween" eval "${common[@]}" --input-fps 7.5 3.75 15 --lookahead $la --json "$OUT/clean-lookahead$la.json"
  "$BIN/posetween" eval "${common[@]}" --input-fps 7.5 3.75 15 --lookahead $la --noisy --json "$OUT/noisy-lookahead$la.json"
done
# What one more keyframe past the interval buys (offline quality), at the middle rate.
"$BIN/posetween" eval "${common[@]}" --input-fps 7.5 --lookahead 2 --json "$OUT/clean-lookahead2.json"
"$BIN/python" scripts/model_card.py "$OUT" ${MODEL:+--model "$MODEL"}
