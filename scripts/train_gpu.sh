#!/usr/bin/env bash
# Several training runs side by side on one lent GPU machine, inside a fixed time (the `device`
# tool: one command of at most 10 minutes). Here, first:
#
#   python scripts/gpu_data.py pack --out data/gpu/train.pack     # the training motions, ~20 MB
#
# then on the machine, from the repository's root, with data/gpu carried along:
#
#   OUT=$OUT DEADLINE=520 bash scripts/train_gpu.sh
#
# (CONFIG, PACK, NAMES, BATCH, PROBE, RUNS and PY may be set too: tests/test_training.py runs it
# on the CPU with a tiny config.) Every run draws its windows on the GPU (batch 4096) and all runs share it. A short probe of all
# of them together measures their steps per second first; each run's schedule (--steps) is then
# sized to end by DEADLINE seconds after the start, so its learning rate is annealed, not cut off.
# Each run's best model.pt is copied to $OUT/NAME.pt every 30 s and at the end, with a log.
#
# The runs below are this script's experiment: change them for the next one. Each is
# "NAME ARGS...", passed to `posetween train` after the common arguments.
set -euo pipefail
PY=${PY:-python3}
CONFIG=${CONFIG:-configs/default.yaml}
PACK=${PACK:-data/gpu/train.pack}
DATA=${PACK%.pack}.h5
OUT=${OUT:-out/gpu}
DEADLINE=${DEADLINE:-520}
PROBE=${PROBE:-40}
BATCH=${BATCH:-4096}
RUNS=${RUNS:-/tmp/gpu-runs}
T0=$(date +%s)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}   # the checkout, installed or not
mkdir -p "$OUT" "$RUNS"

STAGE16=(--set model.encoder_layers=7 --set model.decoder_layers=7 --set augment.max_fps=60
         --set "data.subset_weights={cmu-: 3.0, hdm05-: 4.0}" --set optim.relative_loss_weight=0.8)
declare -A ARGS=(
  [warm]="--init posetween/models/default.pt --lr 0.0002"
  [scratch]="--lr 0.001"
  [scratch-aug]="--lr 0.001 --set augment.max_tempo=1.5 --set augment.skeleton_share=0.9 --set augment.bone_log_std=0.18"
  [scratch-4x4]="--lr 0.001 --set model.encoder_layers=4 --set model.decoder_layers=4"
)
NAMES=(${NAMES:-warm scratch scratch-aug scratch-4x4})

if [ ! -f "$DATA" ]; then
  [ -f "$PACK" ] || { echo "train_gpu.sh: no $PACK: run 'python scripts/gpu_data.py pack --out $PACK' first" >&2; exit 2; }
  $PY scripts/gpu_data.py unpack "$PACK" --out "$DATA"
fi
$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

launch() {   # launch NAME PREFIX STEPS: one run in the background, its tqdm log in RUNS/PREFIXNAME.log
  local name=$1 prefix=$2 steps=$3
  # shellcheck disable=SC2086  # ARGS holds several words on purpose
  PYTHONUNBUFFERED=1 $PY -m posetween.cli train --config "$CONFIG" --data "$DATA" \
    --runs "$RUNS" --name "$prefix$name" --batch-size "$BATCH" --steps "$steps" "${STAGE16[@]}" ${ARGS[$name]} \
    > "$RUNS/$prefix$name.log" 2>&1 &
}

# 1. Probe: every run at once for PROBE seconds; SIGINT makes each save last.pt with its step and
#    its seconds of training (loading excluded).
for n in "${NAMES[@]}"; do launch "$n" probe- 1000000; done
sleep "$PROBE"
pkill -INT -f "posetween.cli train" || true
wait || true
declare -A STEPS
left=$(( DEADLINE - ($(date +%s) - T0) - 25 ))   # 25 s: each run's start (imports, data, CUDA)
for n in "${NAMES[@]}"; do
  [ -f "$RUNS/probe-$n/last.pt" ] || { echo "probe of $n failed:"; tail -30 "$RUNS/probe-$n.log"; exit 1; }
  rate=$($PY -c "import torch; c = torch.load('$RUNS/probe-$n/last.pt', weights_only=True); print(c['step'] / c['seconds'])")
  STEPS[$n]=$($PY -c "print(int($rate * $left * 0.92))")
  echo "$n: $rate steps/s in the probe -> ${STEPS[$n]} steps in $left s"
done

# 2. The runs, sized to the time left.
for n in "${NAMES[@]}"; do launch "$n" "" "${STEPS[$n]}"; done
collect() {
  for n in "${NAMES[@]}"; do
    [ -f "$RUNS/$n/model.pt" ] && cp "$RUNS/$n/model.pt" "$OUT/$n.pt"
    tr '\r' '\n' < "$RUNS/$n.log" | grep -v "^train $n:" > "$OUT/$n.log" || true
  done
}
while pgrep -f "posetween.cli train" > /dev/null; do sleep 30; collect; done
collect
echo "done in $(( $(date +%s) - T0 )) s"
for n in "${NAMES[@]}"; do echo "== $n"; grep "validation" "$OUT/$n.log" | tail -3; done
