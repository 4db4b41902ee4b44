"""Capacity of ``posetween serve``: the largest number of streams at 15 fps in, 120 Hz out,
with every stream's output rate within 1 % of 120 Hz and at most 1 % of windows fallen back
to linear interpolation, for two arrival patterns:

* spread: the streams' keyframes spread evenly over the input interval (independent cameras);
* synchronised: every stream's keyframe at the same instant (one camera with several people,
  or synchronised cameras): the model gets one large batch per interval.

Beside the model, the same service with ``--linear-only`` (every window linear: no model
cost), the ceiling the service itself sets (decoding, rendering, sending).

The service runs as a subprocess; the streams are published by a second subprocess, and this
process subscribes to the output (it only keeps the raw messages while measuring, and reads
them afterwards, so that the measurement costs the machine little).

    python benchmarks/capacity.py --seconds 6 --json out/capacity.json --plot docs/capacity.png
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from stream_latency import free_address, pose  # noqa: E402

from posetween.export.bench import machine_info, random_windows, time_backend  # noqa: E402

FPS, RATE = 15.0, 120.0


def publish(address: str, n: int, fps: float, synchronised: bool, seconds: float) -> None:
    """Publish n streams (a subprocess: its own interpreter, its own GIL)."""
    from posetween.stream.client import PosePublisher
    gc.disable()   # (see run_one)
    base = [pose(0.0, i) for i in range(n)]
    with PosePublisher(address) as pub:
        start = time.time() + 0.05
        phase = np.zeros(n) if synchronised else np.arange(n) / (fps * n)
        k = np.zeros(n, int)
        while time.time() < start + seconds:
            due = start + k / fps + phase
            i = int(np.argmin(due))
            wait = due[i] - time.time()
            if wait > 0:
                time.sleep(wait)
            t = float(due[i])
            xy = base[i] + np.array([40.0 * (t - start), 0.0])
            pub.send(f"s{i}", t, xy, check=False)
            k[i] += 1


def busy(share: float, period: float = 0.01) -> None:
    """Keep ``share`` of one core busy (a subprocess): another program on the machine."""
    while True:
        start = time.perf_counter()
        while time.perf_counter() - start < share * period:
            pass
        time.sleep((1 - share) * period)


def _tally(received: list[tuple[float, bytes]], since: float):
    """The messages that arrived from ``since``: each stream's publish times, the poses of each
    kind, the first and last stats. (Reading them while measuring would cost a tenth of a core
    at 100 streams, on the service's two.)"""
    frames: dict[str, list[float]] = {}
    kinds: dict[str, int] = {}
    first_stats = last_stats = None
    for now, msg in received:
        if now < since:
            continue
        topic, _, body = msg.partition(b"\0")
        if topic == b"stats":
            last_stats = msgpack.unpackb(body)
            first_stats = first_stats or last_stats
        elif topic.startswith(b"pose/"):
            m = msgpack.unpackb(body)
            frames.setdefault(m["stream"], []).append(m["pub"])
            kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
    return frames, kinds, first_stats, last_stats


def run_one(args, n: int, synchronised: bool, linear_only: bool) -> dict:
    in_addr, out_addr = free_address(), free_address()
    cmd = [sys.executable, "-m", "posetween.cli", "serve", "--in", in_addr, "--out", out_addr,
           "--rate", str(RATE), "--lookahead", "1", "--backend", args.backend, "--max-streams", str(max(n, 64)),
           "--stats-interval", "0.5", "--log-interval", "1000"]
    if args.model:
        cmd += ["--model", args.model]
    if linear_only:
        cmd.append("--linear-only")
    cmd += shlex.split(args.serve_args)
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 1_000_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        deadline = time.time() + 120
        while not any("serving" in line for line in log):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("serve did not start:\n" + "".join(log))
            time.sleep(0.1)
        sub.connect(out_addr)
        total = args.warmup + args.seconds
        publisher = mp.get_context("spawn").Process(target=publish, args=(in_addr, n, FPS, synchronised, total + 0.5))
        publisher.start()
        if args.busy:
            hog = mp.get_context("spawn").Process(target=busy, args=(args.busy,), daemon=True)
            hog.start()
        t_measure = time.time() + args.warmup
        t_end = t_measure + args.seconds
        received = []    # (arrival, message): read after the measurement, not while the service runs
        # No garbage collection meanwhile (nothing here makes cycles): a full one over the
        # messages kept would hold a core for tens of milliseconds.
        gc.disable()
        while (now := time.time()) < t_end:
            try:
                received.append((now, sub.recv(zmq.NOBLOCK)))
            except zmq.Again:
                sub.poll(100)
        gc.enable()
        if args.busy:
            hog.terminate()
        publisher.join(10)
    finally:
        sub.close(0)
        ctx.term()
        proc.terminate()
        proc.wait(20)
    frames, kinds, first_stats, last_stats = _tally(received, t_measure)
    rates = [len(v) / args.seconds for v in frames.values()]
    stall = max((float(np.diff(v).max()) for v in frames.values() if len(v) > 1), default=float("inf"))
    d = lambda key: (last_stats[key] - first_stats[key]) if first_stats and last_stats else 0
    windows = d("keyframes_in")
    fallen = d("fallbacks")
    row = {"streams": n, "pattern": "synchronised" if synchronised else "spread",
           "mode": "linear only" if linear_only else "model",
           "streams_seen": len(frames), "rate_min": min(rates) if len(rates) == n else 0.0,
           "rate_mean": float(np.mean(rates)) if rates else 0.0, "stall_s": stall,
           "fallback_share": fallen / windows if windows else None,
           "model_ms_p50": last_stats and last_stats["model_ms_p50"],
           "model_batch_mean": last_stats and last_stats["model_batch_mean"],
           "model_ms_p99": last_stats and last_stats["model_ms_p99"],
           "answer_ms_p50": last_stats and last_stats["answer_ms_p50"],
           "answer_ms_p99": last_stats and last_stats["answer_ms_p99"],
           "shed_windows": d("shed_windows"), "late_answers": d("late_answers"),
           "superseded_windows": d("superseded_windows"),
           "skipped_ticks": d("skipped_ticks"), "kinds": kinds}
    row["ok"] = bool(row["rate_min"] >= 0.99 * RATE and row["fallback_share"] is not None
                     and row["fallback_share"] <= 0.01)
    return row


def model_cost(model: str | None) -> dict[str, float]:
    """The model's cost alone, on one core, outside the service (median ms per call of 16 and
    64 windows): what this machine's capacity follows most, the same code and model having cost
    22.7 and 37 ms for 64 windows on two hosts of the same kind."""
    from posetween.export.backends import create_backend
    backend = create_backend("onnxruntime", model, threads=1)
    w = random_windows(64)
    return {str(n): round(time_backend(backend, w, n, runs=40, warmup=10)["median_ms"], 1) for n in (16, 64)}


def capacity(args, synchronised: bool, linear_only: bool, results: list) -> int:
    """Step up the stream count until a count fails; the largest passing count."""
    best = 0
    for n in args.counts:
        r = run_one(args, n, synchronised, linear_only)
        results.append(r)
        fb = "-" if r["fallback_share"] is None else f"{100 * r['fallback_share']:.1f} %"
        print(f"{r['pattern']:>12} {r['mode']:>11} {n:4d} streams: rate min {r['rate_min']:.1f} Hz, "
              f"fallback {fb}, longest pause {1000 * r['stall_s']:.0f} ms, batch {r['model_batch_mean']}, "
              f"{'ok' if r['ok'] else 'FAIL'}", file=sys.stderr, flush=True)
        if not r["ok"] and not args.all:
            break
        if r["ok"] and best == max((x for x in args.counts if x < n), default=0):
            best = n
    return best


def plot(results: list[dict], path: str, meta: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, pattern in zip(axes, ("spread", "synchronised")):
        for mode, style in (("model", "o-"), ("linear only", "s--")):
            rows = sorted((r for r in results if r["pattern"] == pattern and r["mode"] == mode),
                          key=lambda r: r["streams"])
            if not rows:
                continue
            x = [r["streams"] for r in rows]
            ax.plot(x, [r["rate_min"] for r in rows], style, label=f"{mode}: slowest stream's rate")
            if mode == "model":
                ax2 = ax.twinx()
                ax2.plot(x, [100 * (r["fallback_share"] or 0) for r in rows], "x:", color="tab:red",
                         label="model: windows fallen back (%)")
                ax2.set_ylabel("windows fallen back (%)", color="tab:red")
                ax2.set_ylim(0, 100)
                ax2.legend(loc="center left", fontsize=7)
        ax.axhline(0.99 * RATE, color="gray", lw=0.8)
        ax.set_title(f"{pattern} arrivals")
        ax.set_xlabel("streams at 15 fps")
        ax.set_ylabel("output rate (Hz)")
        ax.set_ylim(0, RATE * 1.1)
        ax.legend(loc="lower left", fontsize=7)
    cost = meta.get("model_ms_one_core", {}).get("64")   # (older JSON files lack it)
    fig.suptitle(f"posetween serve capacity, 120 Hz out; {meta['cpu']}"
                 + (f"; model alone: {cost} ms per 64 windows on one core" if cost else ""), fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default: the shipped default model)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--serve-args", default="", help="more options for posetween serve, e.g. --serve-args='--wide-batch 8'; one option "
                        "alone needs the = (--serve-args=--no-pin), else it is read as this script's own")
    p.add_argument("--counts", type=int, nargs="+", default=[8, 16, 32, 48, 64, 80, 100, 128, 160])
    p.add_argument("--patterns", nargs="+", default=["spread", "synchronised"])
    p.add_argument("--modes", nargs="+", default=["model", "linear"])
    p.add_argument("--seconds", type=float, default=6.0, help="measured seconds per count")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--busy", type=float, default=0.0, metavar="SHARE",
                   help="meanwhile keep this share of one core busy in another process (headroom)")
    p.add_argument("--all", action="store_true", help="measure every count (for the plot), not only up to the first failing one")
    p.add_argument("--replot", metavar="JSON", help="only draw --plot from a previous run's --json")
    p.add_argument("--json")
    p.add_argument("--plot")
    args = p.parse_args()
    if args.replot:
        data = json.loads(Path(args.replot).read_text())
        plot(data["results"], args.plot, data["meta"])
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    meta = {"cpu": f"{machine_info()['cpu']}, {os.cpu_count()} cores, load average {load:.1f} at start",
            "backend": args.backend, "model": args.model or "default", "seconds": args.seconds, "fps": FPS,
            "rate": RATE, "model_ms_one_core": model_cost(args.model)}
    print(f"{meta['cpu']}; the model alone on one core (onnxruntime): "
          + ", ".join(f"{ms} ms for {n} windows" for n, ms in meta["model_ms_one_core"].items()))
    results: list[dict] = []
    table = ["| arrivals | model | linear only |", "|---|---|---|"]
    for pattern in args.patterns:
        caps = {}
        for mode in args.modes:
            caps[mode] = capacity(args, pattern == "synchronised", mode == "linear", results)
        table.append(f"| {pattern} | {caps.get('model', '-')} | {caps.get('linear', '-')} |")
    rows = ["| arrivals | streams | model: slowest rate / fallen back / longest pause | linear only: slowest rate / "
            "fallen back / longest pause |", "|---|---|---|---|"]
    for pattern in args.patterns:
        for n in args.counts:
            cells = []
            for mode in ("model", "linear only"):
                r = next((r for r in results if r["pattern"] == pattern and r["mode"] == mode and r["streams"] == n), None)
                cells.append("-" if r is None else f"{r['rate_min']:.1f} Hz / "
                             f"{100 * (r['fallback_share'] or 0):.1f} % / {1000 * r['stall_s']:.0f} ms")
            rows.append(f"| {pattern} | {n} | {cells[0]} | {cells[1]} |")
    print("\n".join(table + [""] + rows))
    if args.plot:
        plot(results, args.plot, meta)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
