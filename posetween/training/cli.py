"""The parsers of the training side's commands (``data``, ``train``, ``eval``), apart from the
modules that run them: those import torch, h5py and scipy (seconds), so ``posetween train
--help`` stays instant and a command's module is imported only when the command runs."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def _docstring(module: str) -> str | None:
    """A module's docstring (its command's --help text), read from its source, not imported."""
    return ast.get_docstring(ast.parse(Path(importlib.util.find_spec(module).origin).read_text()))


def _runner(module: str, function: str):
    """The command's ``func``: imports ``module`` when the command runs."""
    def run(args) -> int:
        return getattr(importlib.import_module(module), function)(args)
    return run


def register(sub) -> None:
    """``posetween.cli`` calls this for any of the three commands: it adds all three."""
    register_data(sub)
    register_train(sub)
    register_eval(sub)


def register_data(subparsers) -> None:
    data = subparsers.add_parser("data", help="motion-capture datasets",
                                 description="Build and inspect training datasets.")
    sub = data.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser(
        "build", help="import BVH / archives / AMASS HDF5 into a training HDF5",
        description=_docstring("posetween.training.build_data"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="BVH file, folder (recursive), .tar.xz/.tar.gz/.zip archive of BVH, "
                        "or AMASS HDF5")
    p.add_argument("--out", required=True, metavar="FILE.h5", help="output HDF5 (replaced)")
    p.add_argument("--joint-map", metavar="MAP",
                   help="joint map YAML, or built-in name (bandai, cmu); default: detected "
                        "from each skeleton's joint names")
    p.add_argument("--fps-out", type=float, metavar="F",
                   help="resample every motion to F fps (default: keep each file's rate)")
    p.add_argument("--source-fps", type=float, metavar="F",
                   help="the BVH inputs' true frame rate, where their headers are wrong")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_runner("posetween.training.build_data", "_run_build"))


def register_train(sub) -> None:
    p = sub.add_parser("train", help="train the motion model", description=_docstring("posetween.training.train"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="YAML config (default: the default model's, configs/default.yaml; --resume uses the run's own)")
    p.add_argument("--batch-size", type=int, help="windows per step and process (overrides the config)")
    p.add_argument("--name", required=True, help="run name: checkpoints and logs go to RUNS/NAME")
    p.add_argument("--runs", default="runs", help="folder of runs (default: runs)")
    p.add_argument("--resume", action="store_true", help="continue RUNS/NAME exactly where it stopped")
    p.add_argument("--init", type=Path, help="start a new run from this model file's weights")
    p.add_argument("--until", type=int, help="stop (with a checkpoint) at this step")
    p.add_argument("--steps", type=int, help="total steps of the schedule (overrides the config)")
    p.add_argument("--lr", type=float, help="peak learning rate (overrides the config)")
    p.add_argument("--data", help="HDF5 from `posetween data build` (overrides the config)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value (YAML), e.g. model.encoder_layers=5; repeatable")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=_runner("posetween.training.train", "_run"))


def register_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate the model against linear, cubic and One-Euro baselines",
                       description=_docstring("posetween.training.evaluate"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="HDF5 from `posetween data build` (with --keypoints: only to tune One-Euro)")
    p.add_argument("--keypoints", help="real 2D keypoints instead of motion capture: SPEED21's "
                   "speed21_keypoints2d.npz or the football penalties folder; every --every-th real "
                   "frame is a keyframe, the frames left out are the truth")
    p.add_argument("--every", type=int, default=4, help="with --keypoints: keep every N-th frame (default 4)")
    p.add_argument("--split", default="test", choices=("train", "validation", "test", "all"))
    p.add_argument("--split-config", default=None,
                   help="training YAML whose data.split defines the splits (default: split by take, 5%% val, 10%% test)")
    p.add_argument("--input-fps", type=float, nargs="+", default=[7.5],
                   help="keyframe rate(s); with several, the JSON's methods are for the first and the report plots all")
    p.add_argument("--output-fps", type=float, help="output rate (default: the data's rate)")
    p.add_argument("--lookahead", type=int, default=1)
    p.add_argument("--noisy", action="store_true", help="4%% torso noise on every keyframe joint, 10%% joints missing")
    p.add_argument("--layout", default="posetween19", choices=("posetween19", "coco17"),
                   help="coco17: inputs and truth as a COCO-17 detector gives them (lateral hip points, "
                        "neck and mid-hip the means of shoulders and hips, no hand centres or big toes)")
    p.add_argument("--no-tune-one-euro", action="store_true",
                   help="keep the One-Euro filter at 1 Hz / 1 instead of tuning it on the validation split")
    p.add_argument("--model", help="model file, or a shipped model by name: default (the default) or open")
    p.add_argument("--curve-blend", type=float, metavar="SHARE",
                   help="override the model file's share of the Hermite curve in its answers between "
                        "keyframes with this constant share at every rate (0: the model alone, 1: the curve)")
    p.add_argument("--views", type=int, default=4, help="fixed virtual cameras per motion")
    p.add_argument("--subset", nargs="+", metavar="NAME",
                   help="only these subsets (sources) of the data file, e.g. cmu-131 hdm05-mm hdm05-tr")
    p.add_argument("--limit", type=int, help="evaluate only the first N motions (quick checks)")
    p.add_argument("--json", required=True, help="write results here")
    p.add_argument("--report", help="markdown report with a plot (default: next to --json)")
    p.set_defaults(func=_runner("posetween.training.evaluate", "_run"))
