"""How far any mix of the model and its Hermite curve could go on a source: the bound on what a
gate, a guard or a curve-share rule can reach without a better model.

For each source: the model (with the file's inference settings) and the plain curve against
linear interpolation (MPJPE between keyframes, torso lengths, as ``posetween eval``), the best
constant share of the curve, and an oracle that knows the truth and picks, for every window,
the better of the two (no rule that sees only the input can do better than that pick per
window). With ``--joints``, each joint's ratios too.

    python scripts/mix_oracle.py --subsets cmu-131 music2dance-ballroom hdm05-mm,hdm05-tr \\
        [--input-fps 7.5] [--views 2] [--model default] [--joints]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from posetween.core.model import load_model
from posetween.core.skeleton import JOINT_NAMES
from posetween.training.build_data import load_motions
from posetween.training.config import load_config
from posetween.training.evaluate import EvalSettings, build_windows, run_method
from posetween.training.splits import split_of

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def errors(pred: np.ndarray, windows) -> np.ndarray:
    """(windows, queries between keyframes, joints) distances in torso lengths."""
    return np.linalg.norm(pred[:, :-1] - windows.target[:, :-1], axis=-1) / windows.torso[:, None, None]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/multi.h5")
    ap.add_argument("--split-config", default="configs/default.yaml")
    ap.add_argument("--split", default="test")
    ap.add_argument("--subsets", nargs="+", required=True, help="one source per argument (subsets joined by commas)")
    ap.add_argument("--input-fps", type=float, default=7.5)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--model", default=None, help="model file, or a shipped model by name")
    ap.add_argument("--joints", action="store_true", help="also each joint's model / linear and curve / linear")
    args = ap.parse_args()
    torch.set_num_threads(2)
    split = load_config(args.split_config).data.split
    model = load_model(args.model)
    print(f"{args.input_fps:g} fps in, lookahead 1, {args.views} views; ratios to linear interpolation\n")
    print("| source | model | curve | best constant share of the curve | oracle: the better per window |")
    print("|---|---|---|---|---|")
    for source in args.subsets:
        motions = [m for m in load_motions(args.data, subsets=source.split(","))
                   if args.split == "all" or split_of(m.subset, m.name, split) == args.split]
        if not motions:
            raise SystemExit(f"no {args.split} motions in {source}")
        w = build_windows(motions, model.cfg.window, EvalSettings(input_fps=args.input_fps, views=args.views))
        out = {name: run_method(name, model, w) for name in ("model", "linear", "curve")}
        err = {name: errors(p, w) for name, p in out.items()}
        linear = np.nanmean(err["linear"])
        mixes = {b: np.nanmean(errors(out["model"] + b * (out["curve"] - out["model"]), w)) / linear for b in SHARES}
        best = min(mixes, key=mixes.get)
        per_window = lambda e: np.nanmean(e, axis=(1, 2))
        oracle = np.nanmean(np.minimum(per_window(err["model"]), per_window(err["curve"]))) / np.nanmean(per_window(err["linear"]))
        print(f"| {source} | {np.nanmean(err['model']) / linear:.3f} | {np.nanmean(err['curve']) / linear:.3f} "
              f"| {mixes[best]:.3f} (share {best:g}) | {oracle:.3f} |")
        if args.joints:
            for j, name in enumerate(JOINT_NAMES):
                lin = np.nanmean(err["linear"][..., j])
                print(f"|   {name} | {np.nanmean(err['model'][..., j]) / lin:.2f} | "
                      f"{np.nanmean(err['curve'][..., j]) / lin:.2f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
