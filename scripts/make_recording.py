"""Writes posetween/assets/walk-cmu131.npz, the small recording the quick start replays on a fresh
clone (`posetween replay --fps 15 --loop`): CMU subject 131's first take (a walk) from
../shared/data/mocap/cmu-131, projected through the evaluation's fixed virtual camera 0, 30 fps,
pixels, the 19 joints of posetween19. CMU's terms allow shipping it (attribution in
posetween/assets/README.md).

    python scripts/make_recording.py [../shared/data/mocap/cmu-131/131_01.bvh]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from posetween.training.build_data import bvh_to_joints, resample
from posetween.training.evaluate import camera_for

ROOT = Path(__file__).resolve().parents[1]
FPS = 30.0


def main() -> None:
    bvh = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/data/mocap/cmu-131/131_01.bvh")
    joints, fps, _ = bvh_to_joints(bvh)
    joints = resample(joints, fps, FPS)
    xy = camera_for("cmu-131/131_01", 0, 0).project(torch.as_tensor(joints)[None])[0].numpy()
    out = ROOT / "posetween" / "assets" / "walk-cmu131.npz"
    np.savez_compressed(out, xy=xy.astype(np.float32), fps=np.float64(FPS), layout=np.str_("posetween19"))
    print(f"wrote {out}: {len(xy)} frames, {len(xy) / FPS:.1f} s")


if __name__ == "__main__":
    main()
