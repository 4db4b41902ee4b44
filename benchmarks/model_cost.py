"""Per-window cost of ONNX model files side by side, in one run: onnxruntime on the CPU, one
thread, batch 1 and 64, the files timed in turns so that each sees the same machine.

    python benchmarks/model_cost.py posetween/models/default.onnx posetween/models/open.onnx \\
        [--before REV] [--runs 300] [--json out/model_cost.json]

``--before REV`` adds the shipped default.onnx of a git revision (e.g. the model before the
multi-source training) as a third column. ``--profile`` also prints, for each file, where
onnxruntime spends its time at the last of ``--batches``: the share of each operator type (what to
make cheaper first). ``--agree`` prints, for each file after the first, the largest difference of
its answers from the first file's on 511 hard windows (``posetween.export.bench.random_windows``:
missing joints, NaN coordinates, padding slots, irregular times, prediction; without its window
that has no joint at all): two exports of the same weights should agree to float rounding.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def windows(batch: int, rng: np.random.Generator, queries: int) -> dict[str, np.ndarray]:
    """Realistic inputs: a body-sized pose walking across keyframes at 15 fps, lookahead 1."""
    K, J = 8, 19
    base = rng.uniform(200, 600, (batch, 1, J, 2)).astype(np.float32)
    drift = np.arange(K, dtype=np.float32)[None, :, None, None] * rng.normal(0, 5, (batch, 1, 1, 2)).astype(np.float32)
    key_time = (np.arange(K, dtype=np.float32) - (K - 1)) / 15.0
    return {"key_xy": base + drift, "key_conf": np.ones((batch, K, J), np.float32),
            "key_time": np.repeat(key_time[None], batch, 0),
            "query_time": np.repeat(np.linspace(key_time[-2], key_time[-1], queries, dtype=np.float32)[None], batch, 0)}


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def operator_shares(path: Path, inputs: dict[str, np.ndarray], runs: int = 30) -> dict[str, float]:
    """Share of onnxruntime's node time by operator type over ``runs`` calls (its profiler)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        s.run(None, inputs)
    events = json.loads(Path(s.end_profiling()).read_text())
    by_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values())
    return {op: t / total for op, t in by_op.most_common()}


def largest_difference(first: ort.InferenceSession, other: ort.InferenceSession) -> float:
    """Largest |answer - first file's answer| (input units: pixels) on the hard windows of
    ``--agree``."""
    from posetween.export.bench import random_windows

    w = random_windows(512, absolute=False)
    feed = {k: np.asarray(v[1:], np.float32) for k, v in w.items()}     # window 0 has no joint
    return float(np.nanmax(np.abs(first.run(None, feed)[0] - other.run(None, feed)[0])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--before", help="git revision whose posetween/models/default.onnx is timed too")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", action="store_true", help="time by operator type, at the last of --batches")
    ap.add_argument("--agree", action="store_true", help="how far each file's answers are from the first's")
    args = ap.parse_args()
    paths = {p.name: p for p in args.models}
    if args.before:
        old = Path(tempfile.mkdtemp()) / f"default@{args.before}.onnx"
        old.write_bytes(subprocess.run(["git", "show", f"{args.before}:posetween/models/default.onnx"],
                                       check=True, capture_output=True).stdout)
        paths[old.name] = old
    sessions = {name: session(p) for name, p in paths.items()}
    rng = np.random.default_rng(0)
    results = {}
    for batch in args.batches:
        inputs = {name: windows(batch, rng, int(s.get_modelmeta().custom_metadata_map.get("queries", "8")
                                               .replace("dynamic", "8")))
                  for name, s in sessions.items()}
        for name, s in sessions.items():        # warm-up
            for _ in range(20):
                s.run(None, inputs[name])
        times = {name: [] for name in sessions}
        for _ in range(args.runs):               # in turns: every file sees the same machine
            for name, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, inputs[name])
                times[name].append(time.perf_counter() - t0)
        for name, ts in times.items():
            ms = np.array(ts) * 1000
            results.setdefault(name, {})[batch] = {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}
    cols = " | ".join(f"batch {b} median / p99" for b in args.batches)
    print(f"| model file | size | {cols} |\n|---|---|" + "---|" * len(args.batches))
    for name, r in results.items():
        cells = " | ".join(f"{r[b]['median_ms']:.2f} / {r[b]['p99_ms']:.2f} ms" for b in args.batches)
        print(f"| {name} | {paths[name].stat().st_size / 1e6:.1f} MB | {cells} |")
    if args.profile:
        for name, s in sessions.items():
            shares = operator_shares(paths[name], inputs[name])
            top = ", ".join(f"{op} {share:.0%}" for op, share in list(shares.items())[:8])
            print(f"{name}, batch {args.batches[-1]}, time by operator: {top}")
            results[name]["operators"] = shares
    if args.agree:
        first, *others = sessions
        for name in others:
            diff = largest_difference(sessions[first], sessions[name])
            print(f"{name} against {first}: answers differ by at most {diff:.2g} px on 511 hard windows")
            results[name]["max_difference_px"] = diff
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
