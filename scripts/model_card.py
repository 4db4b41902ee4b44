"""Writes posetween/models/MODEL_CARD.md from the shipped model file and the evaluation JSON of
scripts/evaluate_default.sh, and copies the evaluation reports and plots into docs/eval/.

    python scripts/model_card.py out/eval [--model posetween/models/default.pt]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from posetween.training.evaluate import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [("clean-lookahead1", "Lookahead 1 (live interpolation), clean input"),
            ("noisy-lookahead1", "Lookahead 1, noisy input (4% torso noise, 10% joints missing)"),
            ("clean-lookahead0", "Lookahead 0 (prediction past the newest keyframe), clean input"),
            ("noisy-lookahead0", "Lookahead 0, noisy input"),
            ("clean-lookahead2", "Lookahead 2 (one more keyframe past the interval: offline quality), clean input")]
README_TABLE = ("<!-- accuracy-table: written by scripts/model_card.py -->", "<!-- /accuracy-table -->")
README_COLUMNS = [("model", "model"), ("linear", "linear"), ("cubic", "cubic spline"),
                  ("curve", "Hermite curve (the model's prior)"), ("one_euro", "One-Euro + linear"),
                  ("constant_velocity", "constant velocity")]


def mpjpe_ratio(eval_dir: Path, stem: str, fps: str, method: str, base: str) -> float | None:
    """method's MPJPE over base's in eval_dir/stem.json at input rate fps (None: not evaluated)."""
    path = eval_dir / f"{stem}.json"
    if not path.exists():
        return None
    r = by_fps(json.loads(path.read_text())).get(fps)
    return r[method]["mpjpe"] / r[base]["mpjpe"] if r else None


def ratio(eval_dir: Path, stem: str, fps: str, method: str, base: str) -> str:
    value = mpjpe_ratio(eval_dir, stem, fps, method, base)
    return "n/a" if value is None else f"{value:.2f}"


def by_fps(result: dict) -> dict[str, dict]:
    return result.get("by_input_fps", {f"{result['settings']['input_fps']:g}": result})


def readme_table(eval_dir: Path) -> str:
    """The README's accuracy table: MPJPE of every method, one row per input rate and setting."""
    lines = ["| input | lookahead | " + " | ".join(title for _, title in README_COLUMNS) + " |",
             "|---|---|" + "---|" * len(README_COLUMNS)]
    for stem, _ in SETTINGS:
        path = eval_dir / f"{stem}.json"
        if not path.exists():
            continue
        noise, la = stem.split("-lookahead")
        for fps, r in sorted(by_fps(json.loads(path.read_text())).items(), key=lambda kv: float(kv[0])):
            cells = []
            for method, _ in README_COLUMNS:
                value = f"{r[method]['mpjpe']:.4f}" if method in r else ""
                if method == "linear" and la == "0" and value:
                    value += " (hold)"     # past the newest keyframe linear interpolation holds it
                cells.append(value)
            lines.append(f"| {fps} fps, {noise} | {la} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_readme_table(eval_dir: Path) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = (text.index(marker) for marker in README_TABLE)
    readme.write_text(text[:start + len(README_TABLE[0])] + "\n" + readme_table(eval_dir) + "\n" + text[end:])
    print(f"wrote the accuracy table of {readme}")


# The project's targets at 7.5 fps in, lookahead 1: the model's MPJPE over linear interpolation's.
TARGETS = {"clean": 0.5, "noisy": 0.6}


def target_verdict(eval_dir: Path, hours: float) -> str:
    """Whether the model meets TARGETS, judged on the unrounded ratios."""
    margin = {}
    for noise, target in TARGETS.items():
        value = mpjpe_ratio(eval_dir, f"{noise}-lookahead1", "7.5", "model", "linear")
        margin[noise] = -1.0 if value is None else target - value
    tightest = min(margin, key=margin.get)
    if margin[tightest] < 0:
        return (f"{tightest.capitalize()} input is the gap: this model had {hours:.1f} h of training on "
                "CPU cores; more training (a GPU, `--init` from this model, deeper with `--set`) is the "
                "first thing to try.")
    return (f"Both are met, {tightest} input with the least margin; this model had {hours:.1f} h of "
            "training on CPU cores, and more (a GPU, `--init` from this model) is the first thing to try.")


def limitations(eval_dir: Path, hours: float) -> list[str]:
    clean = ratio(eval_dir, "clean-lookahead1", "7.5", "model", "linear")
    noisy = ratio(eval_dir, "noisy-lookahead1", "7.5", "model", "linear")
    cubic = ratio(eval_dir, "clean-lookahead1", "7.5", "model", "cubic")
    predict = ratio(eval_dir, "clean-lookahead0", "7.5", "model", "constant_velocity")
    curve = ratio(eval_dir, "clean-lookahead1", "7.5", "curve", "linear")
    spline = ratio(eval_dir, "clean-lookahead1", "7.5", "cubic", "linear")
    spline2 = ratio(eval_dir, "clean-lookahead2", "7.5", "cubic", "linear")
    model2 = ratio(eval_dir, "clean-lookahead2", "7.5", "model", "linear")
    fast = ratio(eval_dir, "clean-lookahead1", "15", "model", "curve")
    fast_spline = ratio(eval_dir, "clean-lookahead1", "15", "model", "cubic")
    return [
        "## Known limitations", "",
        f"- At 7.5 fps in, lookahead 1, the model's MPJPE is {clean} x linear interpolation's on clean "
        f"input and {noisy} x on noisy input ({cubic} x cubic spline's on clean input); the project's "
        f"targets are at most {TARGETS['clean']} x and {TARGETS['noisy']} x. " + target_verdict(eval_dir, hours),
        f"- What limits lookahead 1: no classical curve through the same keyframes comes close "
        f"(the parabola through the newest three, the model's curve prior: {curve} x; the cubic spline: "
        f"{spline} x at 7.5 fps, clean). With one keyframe past the interval (lookahead 2) the spline "
        f"reaches {spline2} x and the model {model2} x: the newest keyframe's unknown future is what "
        "limits live interpolation.",
        f"- At 15 fps on clean input the model's error is {fast} x its own curve prior's and {fast_spline} x "
        "the cubic spline's: at high rates on clean input the model adds little to a good curve.",
        f"- Lookahead 0: {predict} x constant-velocity extrapolation's MPJPE at 7.5 fps (clean).",
        "- The One-Euro baseline uses min_cutoff 1 Hz and beta 1 (torso lengths per second), not "
        "tuned; at these input rates any such filter lags.",
        "- The training skeleton's \"nose\" is Bandai's head joint (the base of the skull, 6.5 cm "
        "above the neck), its hands are the wrists and its big toes the balls of the feet: a "
        "detector's nose, hand centres and toes sit elsewhere, and the model was not trained on that "
        "offset.", "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--model", type=Path, default=ROOT / "posetween" / "models" / "default.pt")
    args = ap.parse_args()
    ckpt = torch.load(args.model, map_location="cpu", weights_only=False)
    params = sum(v.numel() for v in ckpt["state_dict"].values())
    cfg = ckpt["config"]
    hours = ckpt.get("train_seconds", float("nan")) / 3600
    docs = ROOT / "docs" / "eval"
    docs.mkdir(parents=True, exist_ok=True)

    lines = [
        "# Model card: posetween default motion model", "",
        "The model `posetween` uses when no `--model` is given: a DETR-style encoder-decoder over a "
        f"window of {cfg['window']} keyframes (d_model {cfg['d_model']}, {cfg['heads']} heads, feed-forward "
        f"{cfg['ff']}, {cfg['encoder_layers']} encoder + {cfg['decoder_layers']} decoder layers, "
        f"{params / 1e6:.2f} M parameters, {args.model.stat().st_size / 1e6:.1f} MB), following the motion model of "
        "\"Render In-between\" (Yu et al., BMVC 2021), made for a stream: continuous-time positions, "
        "queries at any time, lookahead 0, 1 or more (see `posetween/core/model.py`).", "",
        "## Licence: non-commercial", "",
        "The weights were trained on the Bandai Namco Research Motion Dataset (CC BY-NC 4.0). "
        "**The weights are for non-commercial use only.** The code is MIT.", "",
        "## Data and attribution", "",
        "Kobayashi et al., \"Motion Capture Dataset for Practical Use of AI-based Motion Editing and "
        "Stylization\", arXiv:2306.08861, Bandai Namco Research Inc. Datasets 1 and 2 (3,076 BVH takes, "
        "416,845 frames at 30 fps), imported with `posetween data build` (`make data`). Split by take "
        "(a stable hash of each take's name): 85% train, 5% validation, 10% test "
        "(`configs/default.yaml`). Training windows project the 3D motion through random virtual "
        "cameras, at random input rates from 3.5 to 30 fps with timestamp jitter and dropped frames, "
        "with keyframe noise, outliers, missing joints and left/right flips "
        "(`posetween/training/windows.py`).", "",
        "## Training", "",
        "```", "make data", "make train   # = bash scripts/train_default.sh: the stages below, then ships the model",
        "```", "",
        "Eleven stages of `posetween train --config configs/default.yaml` (the script has the exact "
        "commands), each from the best weights of the one before: 8000 steps from scratch (3 encoder "
        "+ 3 decoder layers, one process of 256 windows a step); a warm restart at half the learning "
        "rate, stopped after 3500 steps; 14000 steps with the Hermite curve head added (at zero, so it "
        "started exactly where the previous stage ended); then 16000 steps with two more encoder and "
        "two more decoder layers (added as the identity, so again no step back), as two processes of "
        "128 windows (DistributedDataParallel on the two cores); then a longer warm restart of that "
        "model, 30000 steps from a learning rate of 3e-4; then 16000 steps with two more of each layer "
        "again (7 + 7, as the identity) and the body residual head (at zero), from a learning rate "
        "of 2.5e-4; then a warm restart of that model, 17000 steps from a learning rate of 1.5e-4; "
        "then a short one, 4000 steps from 1e-4 with 70% of the windows noisy instead of 50%; "
        "then a longer one, 15000 steps from 1e-4 with 80% noisy; then the same again, 12000 steps, and once more, 15000 steps. "
        f"Hardware: 2-core VMs, one thread a process: {ckpt.get('hardware', 'not recorded')} for the "
        "last stage, AMD EPYCs for stages 1 and 8 to 10 and an Intel Xeon for stages 2 to 7. "
        f"Time: {hours:.2f} h of training in all, {ckpt.get('step', '?')} steps of 256 windows (each "
        "stage keeps its checkpoint with the lowest validation error).", "",
        "## Evaluation", "",
        "Bandai test split, 4 fixed virtual cameras per take, 30 fps output; errors in torso lengths "
        "(neck to mid-hip) on the frames between keyframes. Every method gets the same window of "
        "keyframes the streaming engine gives the model. Reproduce: `bash scripts/evaluate_default.sh` "
        "(`make eval`). `unanswered` counts joints a baseline could not place (missing in every "
        "keyframe it saw); they are left out of that baseline's errors.", "",
    ]
    for stem, title in SETTINGS:
        path = args.eval_dir / f"{stem}.json"
        if not path.exists():
            continue
        rates = by_fps(json.loads(path.read_text()))
        lines += [f"### {title}", ""]
        if len(rates) > 1:
            lines += [f"![error against input rate](../../docs/eval/{stem}.png)", ""]
        for fps, r in sorted(rates.items(), key=lambda kv: float(kv[0])):
            lines += [f"{fps} fps in:", "", markdown_table(r), ""]
        for suffix in (".md", ".png"):
            if path.with_suffix(suffix).exists():
                shutil.copy(path.with_suffix(suffix), docs / f"{stem}{suffix}")
    lines += limitations(args.eval_dir, hours)
    out = ROOT / "posetween" / "models" / "MODEL_CARD.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    write_readme_table(args.eval_dir)


if __name__ == "__main__":
    main()
