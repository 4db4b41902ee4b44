"""Choose the rule for the share of the plain Hermite curve in the model's answers
(``model.curve_blend_per_octave``, ``curve_noise_low``, ``curve_noise_high``: ``PoseTween.curve_share``)
on the validation split of the training sources, and show what it does on held-out sources.

An answer is linear in the share (``out0 + share * (out1 - out0)``), so the model runs twice per
window, at share 0 and at share 1, and every rule is then scored without running it again: its
share per window, query and joint comes from ``PoseTween.curve_share`` itself, from the gap
between the two keyframes around each query and the window's roughness (``model.roughness``).
Errors are MPJPE in torso lengths between keyframes, as ``posetween eval``; each case is shown
relative to the shipped constant share (``curve_blend``, the rule's value at 7.5 fps and below).

    python scripts/curve_share.py --split validation \\
        --subsets cmu-salsa,cmu-martial,cmu-indian hdm05-bd,hdm05-bk,hdm05-dg     # choose
    python scripts/curve_share.py --split test --subsets cmu-131 hdm05-mm,hdm05-tr \\
        --rule 0.3 0.04 0.1                                                       # held out
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from posetween.core.model import load_model, normalize_window, per_joint_curve_weights, roughness
from posetween.training.build_data import load_motions
from posetween.training.config import load_config
from posetween.training.evaluate import EvalSettings, build_windows, run_model
from posetween.training.splits import split_of

GRID = {"per_octave": (0.2, 0.3, 0.4, 0.5), "noise_low": (0.02, 0.04, 0.06), "noise_high": (0.08, 0.1, 0.12)}


def case(model, motions, fps: float, noisy: bool, views: int) -> dict:
    """The model's answers at share 0 and 1, the truth, and each query's gap and window roughness."""
    w = build_windows(motions, model.cfg.window, EvalSettings(input_fps=fps, noisy=noisy, views=views))
    out = {}
    for share in (0, 1):
        model.cfg.curve_blend, model.cfg.curve_blend_per_octave = float(share), 0.0
        out[share] = run_model(model, w)
    gaps, rough = [], []
    for i in range(0, len(w.key_xy), 1024):      # the rule's inputs, as the model computes them
        sl = slice(i, i + 1024)
        t_ref = w.key_time[sl, -1:]
        win = normalize_window(*(torch.as_tensor(a, dtype=torch.float32) for a in
                                 (w.key_xy[sl], w.key_conf[sl], w.key_time[sl] - t_ref, w.query_time[sl] - t_ref)))
        gaps.append(per_joint_curve_weights(win.time, win.present > 0, win.query_time, model.cfg.max_extrapolation)[3])
        rough.append(roughness(win))
    return {"out0": out[0], "out1": out[1], "target": w.target, "torso": w.torso,
            "gap": torch.cat(gaps), "rough": torch.cat(rough)}


def error(c: dict, share: np.ndarray) -> float:
    """MPJPE (torso lengths, queries between keyframes) with ``share`` (N, J, Q) of the curve."""
    s = share.transpose(0, 2, 1)[..., None]
    pred = c["out0"] + s * (c["out1"] - c["out0"])
    e = np.linalg.norm(pred[:, :-1] - c["target"][:, :-1], axis=-1) / c["torso"][:, None, None]
    return float(np.nanmean(e))


def rule_share(model, c: dict, per_octave: float, low: float, high: float) -> np.ndarray:
    model.cfg.curve_blend_per_octave, model.cfg.curve_noise_low, model.cfg.curve_noise_high = per_octave, low, high
    return model.curve_share(c["gap"], c["rough"]).numpy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file or shipped name (default: the default model)")
    p.add_argument("--data", default="data/multi.h5")
    p.add_argument("--split-config", default="configs/default.yaml")
    p.add_argument("--split", default="validation", choices=["validation", "test"])
    p.add_argument("--subsets", nargs="+", required=True, help="one case per comma-separated group of subsets")
    p.add_argument("--fps", nargs="+", type=float, default=[15.0, 30.0])
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--rule", nargs=3, type=float, metavar=("PER_OCTAVE", "NOISE_LOW", "NOISE_HIGH"),
                   help="score this rule only (default: the whole grid, best first)")
    args = p.parse_args()
    torch.set_num_threads(1)
    split_cfg = load_config(args.split_config).data.split
    model = load_model(args.model).eval()
    base_share = model.cfg.curve_blend
    cases = {}
    for group in args.subsets:
        motions = [m for m in load_motions(args.data, subsets=group.split(","))
                   if split_of(m.subset, m.name, split_cfg) == args.split]
        if not motions:
            raise SystemExit(f"no {args.split} motions in {group}")
        for fps, noisy in itertools.product(args.fps, (False, True)):
            label = group.split(",")[0].rsplit("-", 1)[0] if "," in group else group
            cases[f"{label} {fps:g} fps {'noisy' if noisy else 'clean'}"] = case(model, motions, fps, noisy, args.views)
    model.cfg.curve_blend = base_share
    print("window roughness (model.roughness, torso lengths), median: "
          + "; ".join(f"{name} {float(c['rough'].median()):.3f}" for name, c in cases.items()))
    base = {name: error(c, np.full(c["gap"].shape, base_share)) for name, c in cases.items()}
    rules = [tuple(args.rule)] if args.rule else list(itertools.product(*GRID.values()))
    rows = []
    for rule in rules:
        if rule[2] <= rule[1]:
            continue
        rel = [error(c, rule_share(model, c, *rule)) / base[name] for name, c in cases.items()]
        rows.append((float(np.mean(rel)), rule, rel))
    rows.sort(key=lambda r: r[0])
    print(f"MPJPE relative to a constant share of {base_share:g} ({args.split} split):")
    print("| per octave, noise low, high | mean | " + " | ".join(cases) + " |")
    print("|---|---|" + "---|" * len(cases))
    for mean, rule, rel in rows[:10]:
        print(f"| {rule[0]:g}, {rule[1]:g}, {rule[2]:g} | {mean:.3f} | " + " | ".join(f"{r:.3f}" for r in rel) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
