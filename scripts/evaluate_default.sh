#!/usr/bin/env bash
# Evaluates a model (default: the shipped one) as in its model card (`make eval`):
#  - the Bandai test split: 3.75 / 7.5 / 15 fps in, 30 fps out, lookahead 1 and 0, clean and noisy
#    input; lookahead 2 at 7.5 fps; COCO-17 inputs at 7.5 fps;
#  - every source kept out of training (CMU subject 131, HDM05 actors mm and tr, the ballroom set),
#    full-rate output, lookahead 1, clean and noisy, all joints and COCO-17 inputs, 3.75 to 30 fps;
#  - real 2D keypoints from video (SPEED21 climbing, football penalties): every 4th real frame in,
#    the frames left out as the (noisy) truth.
#   bash scripts/evaluate_default.sh [MODEL.pt] [OUT_DIR]
# With CARD=open (`make eval-open`) it evaluates the open model (posetween/models/open.pt, for which
# Bandai is a source never seen in training too) at 7.5 fps only and writes its own model card.
set -euo pipefail
CARD=${CARD:-default}
MODEL=${1:-$([ "$CARD" = open ] && echo posetween/models/open.pt || true)}
OUT=${2:-out/eval-$CARD}
DATA=${DATA:-data/multi.h5}
SRC=${SRC:-data/src}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
model=()
[ -n "$MODEL" ] && model=(--model "$MODEL")
eval_=("$BIN/posetween" eval --data "$DATA" --split-config configs/default.yaml "${model[@]}")

# run JSON ARGS...: one evaluation, skipped when JSON exists already (run again to resume; rm -r
# OUT_DIR to start over).
run() { local json=$1; shift; [ -f "$json" ] || "${eval_[@]}" "$@" --json "$json"; }

# Sources never seen in training, at their full rate.
held_out() {   # held_out NAME VIEWS RATES... -- SUBSETS...
  local name=$1 views=$2; shift 2
  local rates=(); while [ "$1" != "--" ]; do rates+=("$1"); shift; done; shift
  [ "$CARD" = open ] && rates=(7.5)
  for noise in clean noisy; do
    for layout in posetween19 $([ "$CARD" = open ] || echo coco17); do
      run "$OUT/source-$name-$noise-$layout.json" --split test --subset "$@" --views "$views" \
        --input-fps "${rates[@]}" --layout $layout $([ $noise = noisy ] && echo --noisy)
    done
  done
}
# PART=sources or PART=bandai runs only that half (two processes for two cores).
if [ "${PART:-all}" != bandai ]; then
held_out cmu-131 4 7.5 3.75 15 30 -- cmu-131
held_out hdm05-mm-tr 4 7.5 3.75 15 30 -- hdm05-mm hdm05-tr
held_out ballroom 2 7.5 3.75 15 -- music2dance-ballroom   # 30 fps data: no frame between 30 fps keyframes

# Real 2D keypoints from video.
run "$OUT/video-speed21.json" --keypoints "$SRC/speed21-climbing-2d/speed21_keypoints2d.npz"
run "$OUT/video-football.json" --keypoints "$SRC/football-penalties-centernet-2d/penaltiesv1"
fi
[ "${PART:-all}" = sources ] && exit 0

# The Bandai test split.
bandai=(--split test --subset bandai-namco-1 bandai-namco-2 --output-fps 30)
if [ "$CARD" = open ]; then
  run "$OUT/clean-lookahead1.json" "${bandai[@]}" --input-fps 7.5
  run "$OUT/noisy-lookahead1.json" "${bandai[@]}" --input-fps 7.5 --noisy
else
  run "$OUT/clean-lookahead1.json" "${bandai[@]}" --input-fps 7.5 3.75 15
  run "$OUT/noisy-lookahead1.json" "${bandai[@]}" --input-fps 7.5 3.75 15 --noisy
  run "$OUT/clean-coco17-lookahead1.json" "${bandai[@]}" --input-fps 7.5 --layout coco17
  run "$OUT/clean-lookahead0.json" "${bandai[@]}" --input-fps 7.5 3.75 15 --lookahead 0
  run "$OUT/noisy-lookahead0.json" "${bandai[@]}" --input-fps 7.5 3.75 15 --lookahead 0 --noisy
  # What one more keyframe past the interval buys (offline quality), at the middle rate.
  run "$OUT/clean-lookahead2.json" "${bandai[@]}" --input-fps 7.5 --lookahead 2
fi

"$BIN/python" scripts/model_card.py "$OUT" --card "$CARD" ${MODEL:+--model "$MODEL"}
