#!/usr/bin/env bash
# Builds data/multi.h5, the training and evaluation motion of every source in ../shared/data
# (`make data`): one subset per source, so that whole sources can be kept out of training
# (configs/default.yaml: data.split.test_subsets). Archives are unpacked once into data/src.
#   bash scripts/build_data.sh [SHARED_DATA_DIR]
set -euo pipefail
SHARED=${1:-../shared/data}
BIN=${BIN:-.venv/bin}
SRC=data/src
STAGE=data/stage
mkdir -p "$SRC" "$STAGE"
for a in "$SHARED"/mocap/*.tar.xz "$SHARED"/keypoints2d/*.tar.xz; do
  name=$(basename "$a" .tar.xz)
  [ -d "$SRC/$name" ] || { echo "unpacking $name"; tar -xJf "$a" -C "$SRC"; }
done
# One folder per subset: the folder's name is the subset's name.
link() {   # link SUBSET FILES...: a folder of symbolic links
  local dir="$STAGE/$1"; shift
  rm -rf "$dir"; mkdir -p "$dir"
  for f in "$@"; do ln -s "$(realpath "$f")" "$dir/"; done
}
daz="$SRC/cmu-aclstm-salsa-indian-martial/bvh"
link cmu-indian "$daz"/indian/*.bvh
link cmu-martial "$daz"/martial/*.bvh
link cmu-salsa "$daz"/salsa/*.bvh
for actor in bd bk dg mm tr; do link "hdm05-$actor" "$SRC"/hdm05-cuts-11classes/bvh/HDM_${actor}_*.bvh; done
link cmu-131 "$SHARED"/mocap/cmu-131/*.bvh
link music2dance-ballroom "$SRC"/music2dance-ballroom-25fps/music2dance_positions.npz

# The salsa takes are 60 fps although their headers say 120 (SOURCE.txt).
"$BIN/posetween" data build "$STAGE/cmu-salsa" --source-fps 60 --out data/cmu-salsa.h5 --no-progress
"$BIN/posetween" data build "$SHARED"/mocap/bandai-namco-1.tar.xz "$SHARED"/mocap/bandai-namco-2.tar.xz \
  "$STAGE"/cmu-indian "$STAGE"/cmu-martial data/cmu-salsa.h5 \
  "$STAGE"/hdm05-{bd,bk,dg,mm,tr} "$STAGE"/cmu-131 "$STAGE"/music2dance-ballroom/music2dance_positions.npz \
  --out data/multi.h5 --no-progress
