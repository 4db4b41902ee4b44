"""What the streaming engine delivers: held-out motion capture streamed through the engine (on a
simulated clock, so the model's time does not count), its output poses against the truth at
their times. ``posetween eval`` asks the model for every output frame directly; the engine asks
it for ``--queries`` samples per interval and its output track draws a curve through them
(posetween/stream/track.py), so this is where the number of queries shows.

    python benchmarks/stream_accuracy.py [--queries 8 5] [--input-fps 15] [--rate 120] \\
        [--subset cmu-131 hdm05-mm hdm05-tr] [--json out/stream_accuracy.json]

For each query count: MPJPE and acceleration error (second differences of consecutive output
poses against the truth's), in torso lengths, over every output frame of every test motion
(one fixed virtual camera each, as ``posetween eval``), lookahead 1. Needs data/multi.h5
(``make data``) and onnxruntime; each query count is its own ONNX export (cached).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import CubicSpline
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posetween.core.skeleton import MID_HIP, NECK  # noqa: E402
from posetween.export.backends import create_backend  # noqa: E402
from posetween.stream import Engine, EngineConfig  # noqa: E402
from posetween.stream.demo import SimClock  # noqa: E402
from posetween.training.build_data import load_motions  # noqa: E402
from posetween.training.config import load_config  # noqa: E402
from posetween.training.evaluate import camera_for  # noqa: E402
from posetween.training.splits import split_of  # noqa: E402

LATENCY_S = 0.003    # a keyframe's transit to the engine


def stream_motion(engine: Engine, clock: SimClock, gt: np.ndarray, fps: float, input_fps: float, rate: float):
    """Streams every (fps / input_fps)-th frame of ``gt`` (T, 19, 2) as keyframes in real time
    on ``clock``, the model answering at once, and renders the output at ``rate`` meanwhile;
    returns the output poses' times and xy."""
    keys = np.arange(0, len(gt), round(fps / input_fps))
    end = keys[-1] / fps + 0.5
    ticks = iter(np.arange(0.0, end, 1.0 / rate))
    tick = next(ticks)
    times, poses = [], []
    for n, k in enumerate(list(keys) + [None]):
        arrival = end if k is None else k / fps + LATENCY_S
        while tick is not None and tick < arrival:      # every output tick before it arrives
            clock.t = tick
            for p in engine.render(tick):
                times.append(p.time)
                poses.append(p.xy)
            tick = next(ticks, None)
        if k is not None:
            clock.t = arrival
            engine.push("s", k / fps, gt[k], np.ones(19), seq=n, now=arrival)
            engine.process(arrival)
    return np.array(times), np.array(poses, np.float64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/multi.h5")
    ap.add_argument("--split-config", default="configs/default.yaml")
    ap.add_argument("--subset", nargs="+", default=["cmu-131", "hdm05-mm", "hdm05-tr"])
    ap.add_argument("--queries", type=int, nargs="+", default=[8, 5])
    ap.add_argument("--input-fps", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=120.0)
    ap.add_argument("--model", default=None, help="model file, or a shipped model by name")
    ap.add_argument("--limit", type=int, default=0, help="only the first N motions")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not Path(args.data).is_file():
        raise SystemExit(f"{args.data} is absent: build it with `make data`")
    torch.set_num_threads(1)
    split = load_config(args.split_config).data.split
    motions = [m for m in load_motions(args.data, subsets=args.subset) if split_of(m.subset, m.name, split) == "test"]
    motions = motions[:args.limit or None]
    if not motions:
        raise SystemExit(f"no test motions in {args.subset} of {args.data}")
    results = {}
    for q in args.queries:
        backend = create_backend("onnxruntime", model=args.model, queries=q)
        errors, accels = [], []
        for m in tqdm(motions, desc=f"{q} queries"):
            world = torch.as_tensor(m.joints, dtype=torch.float32)[None]
            gt = camera_for(f"{m.subset}/{m.name}", 0, 0).project(world)[0].double().numpy()
            torso = np.nanmean(np.linalg.norm(gt[:, NECK] - gt[:, MID_HIP], axis=-1))
            clock = SimClock(0.0)
            engine = Engine(backend, EngineConfig(rate=args.rate, lookahead=1, queries=q, budget_ms=1000.0), clock=clock)
            t, xy = stream_motion(engine, clock, gt, m.fps, args.input_fps, args.rate)
            # The truth at the output times: a spline through the capture frames (120 or 30 fps).
            inside = (t >= 0) & (t <= (len(gt) - 1) / m.fps)
            t, xy = t[inside], xy[inside]
            truth = CubicSpline(np.arange(len(gt)) / m.fps, gt.reshape(len(gt), -1))(t).reshape(xy.shape)
            errors.append(np.linalg.norm(xy - truth, axis=-1).ravel() / torso)
            acc = lambda x: x[2:] - 2 * x[1:-1] + x[:-2]
            accels.append(np.linalg.norm(acc(xy) - acc(truth), axis=-1).ravel() / torso)
        results[q] = {"mpjpe": float(np.nanmean(np.concatenate(errors))),
                      "accel": float(np.nanmean(np.concatenate(accels))),
                      "frames": int(sum(len(e) for e in errors) // 19)}
    print(f"\n{len(motions)} test motions of {', '.join(args.subset)}, {args.input_fps:g} fps in, "
          f"{args.rate:g} Hz out, lookahead 1 (torso lengths):\n")
    print("| queries per interval | MPJPE | acceleration error | frames |\n|---|---|---|---|")
    for q, r in results.items():
        print(f"| {q} | {r['mpjpe']:.5f} | {r['accel']:.6f} | {r['frames']} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
