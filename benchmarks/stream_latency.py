"""End-to-end latency of ``posetween serve``: publish time minus the capture time each output
pose stands for, with 1, 8 and 32 streams at 15 fps in and 120 Hz out, lookahead 1 and 0.

The service runs as a subprocess (``python -m posetween.cli serve``); this process publishes
the streams (phases spread over the input interval) and subscribes to the output. Capture
timestamps and the service's publish stamps are both wall-clock ``time.time()`` on this machine.

    python benchmarks/stream_latency.py --model posetween/models/default.pt --seconds 5 \\
        --json out/stream_latency.json --plot docs/stream_latency.png

Goal on a 2-core CPU, one stream: p99 within one input interval + 5 ms (lookahead 1), under
5 ms (lookahead 0). The table also gives the share of windows that fell back to linear
interpolation because the model missed its budget, the share of output frames that showed a
prediction while the model worked (kind ``predicted``), and the model's own latency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posetween.stream.client import PosePublisher, PoseSubscriber  # noqa: E402
from posetween.stream.config import EngineConfig  # noqa: E402


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def pose(t: float, i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    base = rng.uniform(300, 700, (19, 2))
    return base + np.array([40.0 * t, 0.0]) + 20 * np.sin(2 * np.pi * 0.8 * t + np.arange(19)[:, None])


def publish(address: str, n: int, fps: float, stop: threading.Event) -> None:
    with PosePublisher(address) as pub:
        start = time.time() + 0.05
        k = np.zeros(n, int)
        while not stop.is_set():
            # next event: the stream whose next capture time is the earliest
            due = start + k / fps + np.arange(n) / (fps * n)
            i = int(np.argmin(due))
            wait = due[i] - time.time()
            if wait > 0:
                time.sleep(wait)
            pub.send(f"s{i}", float(due[i]), pose(float(due[i] - start), i), check=False)
            k[i] += 1


def run_config(args, streams: int, lookahead: int) -> dict:
    in_addr, out_addr = free_address(), free_address()
    cmd = (["nice", "-n", str(args.nice)] if args.nice else []) + [sys.executable, "-m", "posetween.cli", "serve", "--in", in_addr, "--out", out_addr,
           "--rate", str(args.rate), "--lookahead", str(lookahead), "--budget-ms", str(args.budget_ms),
           "--backend", args.backend, "--stats-interval", "0.5", "--log-interval", "1000"]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    try:
        deadline = time.time() + 120
        while not any("serving" in line for line in log):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("serve did not start:\n" + "".join(log))
            time.sleep(0.1)
        sub = PoseSubscriber(out_addr, stats=True)
        stop = threading.Event()
        pub = threading.Thread(target=publish, args=(in_addr, streams, args.fps, stop), daemon=True)
        pub.start()
        t_measure = time.time() + args.warmup
        t_end = t_measure + args.seconds
        e2e, kinds, stats, per_stream = [], {}, None, {}
        while time.time() < t_end:
            m = sub.recv(timeout=0.1)
            if m is None or time.time() < t_measure:
                continue
            if hasattr(m, "kind"):
                e2e.append(m.published - m.time)
                kinds[m.kind] = kinds.get(m.kind, 0) + 1
                per_stream[m.stream] = per_stream.get(m.stream, 0) + 1
            else:
                stats = m.data
        stop.set()
        pub.join(2)
        sub.close()
    finally:
        proc.terminate()
        proc.wait(20)
    e2e_ms = np.array(e2e) * 1000
    frames = sum(kinds.values())
    return {"e2e_ms": e2e_ms,     # every frame's delay, for the plot (not written to the JSON)
        
        "streams": streams, "lookahead": lookahead, "fps_in": args.fps, "rate_out": args.rate,
        "budget_ms": args.budget_ms, "frames": frames,
        "e2e_ms_p50": float(np.percentile(e2e_ms, 50)), "e2e_ms_p99": float(np.percentile(e2e_ms, 99)),
        "e2e_ms_max": float(e2e_ms.max()),
        "goal_ms": (1000.0 / args.fps if lookahead else 0.0) + 5.0,
        "rate_per_stream": frames / args.seconds / max(len(per_stream), 1),
        "fallback_share": (stats["fallbacks"] / max(stats["keyframes_in"], 1)) if stats else None,
        "model_ms_p50": stats and stats["model_ms_p50"], "model_ms_p99": stats and stats["model_ms_p99"],
        "model_batch_mean": stats and stats["model_batch_mean"], "kinds": kinds,
        "answer_ms_p50": stats and stats.get("answer_ms_p50"), "answer_ms_p99": stats and stats.get("answer_ms_p99"),
    }


def markdown(results: list[dict], meta: dict) -> str:
    lines = [f"End-to-end delay (service publish time - capture time of the pose), {meta['fps']:g} fps in, "
             f"{meta['rate']:g} Hz out, budget {meta['budget_ms']:g} ms, backend {meta['backend']}, "
             f"{meta['seconds']:g} s per row; {meta['cpu']}.", "",
             "| lookahead | streams | e2e p50 (ms) | e2e p99 (ms) | goal p99 (ms) | out rate / stream (Hz) "
             "| windows fallen back | frames predicted | arrival -> answer p50 / p99 (ms) | mean batch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        fb = "-" if r["fallback_share"] is None else f"{100 * r['fallback_share']:.1f} %"
        predicted = 100 * r["kinds"].get("predicted", 0) / max(r["frames"], 1)
        lines.append(f"| {r['lookahead']} | {r['streams']} | {r['e2e_ms_p50']:.1f} | {r['e2e_ms_p99']:.1f} | "
                     f"{'<= ' if r['lookahead'] else '< '}{r['goal_ms']:.1f} | {r['rate_per_stream']:.1f} | {fb} | "
                     f"{predicted:.1f} % | {r['answer_ms_p50']} / {r['answer_ms_p99']} | {r['model_batch_mean']} |")
    return "\n".join(lines)


def plot(results: list[dict], meta: dict, path: str) -> None:
    """Each configuration's delay distribution against its goal."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, la in zip(axes, (1, 0)):
        rows = [r for r in results if r["lookahead"] == la]
        if not rows:
            ax.set_visible(False)
            continue
        ax.boxplot([r["e2e_ms"] for r in rows], whis=(1, 99), showfliers=False)
        ax.set_xticks(range(1, len(rows) + 1), [f"{r['streams']} stream{'s' * (r['streams'] > 1)}" for r in rows])
        ax.axhline(rows[0]["goal_ms"], color="tab:red", ls="--", label=f"goal for one stream ({rows[0]['goal_ms']:.1f} ms)")
        ax.set_yscale("log")   # one stream and an overloaded 32 side by side
        ax.set_title(f"lookahead {la}")
        ax.set_ylabel("publish - capture time (ms)")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"posetween serve, {meta['fps']:g} fps in, {meta['rate']:g} Hz out "
                 "(box: quartiles, whiskers: 1st-99th percentile)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default: the shipped default model)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--lookahead", type=int, nargs="+", default=[1, 0])
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=120.0)
    p.add_argument("--budget-ms", type=float, default=EngineConfig.budget_ms)
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per configuration")
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--nice", type=int, default=0, help="run the service at this niceness (negative: needs privileges)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--plot", help="write a plot of the delay distributions here (PNG)")
    args = p.parse_args()
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    try:
        load = os.getloadavg()[0]
        cpu += f", load average {load:.1f} at start"
    except OSError:
        pass
    results = []
    for la in args.lookahead:
        for n in args.streams:
            r = run_config(args, n, la)
            results.append(r)
            print(f"lookahead {la}, {n} streams: e2e p50 {r['e2e_ms_p50']:.1f} ms, p99 {r['e2e_ms_p99']:.1f} ms, "
                  f"fallback {r['fallback_share']}, answer p50/p99 {r['answer_ms_p50']}/{r['answer_ms_p99']} ms", file=sys.stderr)
    meta = {"fps": args.fps, "rate": args.rate, "budget_ms": args.budget_ms, "backend": args.backend,
            "seconds": args.seconds, "cpu": cpu, "model": args.model or "default"}
    table = markdown(results, meta)
    print(table)
    if args.plot:
        plot(results, meta, args.plot)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        rows = [{k: v for k, v in r.items() if k != "e2e_ms"} for r in results]
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
