"""Latency and parity of the runtime backends (``posetween bench latency|parity``).

Latency: each backend x batch (default 1, 8, 64) on the default window (K from the model,
Q = 5 queries, as the engine asks), the full ``backend.run`` call as the streaming engine pays it, median and p99
over ``--runs`` calls after a warm-up, with the machine named, printed as a markdown table and
written as JSON, and the ratio of each backend to plain PyTorch measured in the same run.

Parity: every backend against plain PyTorch, max and mean absolute error in normalised units
(pixel error / the window's scale, see :func:`posetween.core.model.normalize_window`), on
random windows (missing joints, padding slots, NaN coordinates, absolute Unix times, empty and
single-keyframe windows) and on real windows from the Bandai Namco motion capture.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from posetween.core.skeleton import NUM_JOINTS
from posetween.export.model_files import DEFAULT_QUERIES

log = logging.getLogger("posetween.bench")

DEFAULT_BATCHES = (1, 8, 64)
BANDAI_ARCHIVE = "mocap/bandai-namco-1.tar.xz"


# ----------------------------------------------------------------------------- windows

def random_windows(n: int, window: int = 8, queries: int = DEFAULT_QUERIES, seed: int = 0,
                   absolute: bool = True) -> dict[str, np.ndarray]:
    """``n`` hard but legal windows: person-sized random poses drifting over irregular times,
    ~15% missing joints (half NaN, half garbage coordinates), padding slots in front in a third
    of the windows, query times between the last two keyframes (interpolation) or past the
    newest (prediction); window 0 has no joint at all, window 1 a single keyframe."""
    rng = np.random.default_rng(seed)
    K, Q, J = window, queries, NUM_JOINTS
    center = rng.uniform(200, 1000, (n, 1, 1, 2))
    torso = rng.uniform(40, 250, (n, 1, 1, 1))
    pose = rng.normal(0, 0.8, (n, 1, J, 2))
    drift = np.cumsum(rng.normal(0, 0.08, (n, K, J, 2)), axis=1)
    key_xy = center + torso * (pose + drift)
    key_conf = rng.uniform(0.2, 1.0, (n, K, J))
    dt = rng.uniform(0.04, 0.3, (n, K))
    key_time = np.cumsum(dt, 1)
    key_time -= key_time[:, -1:]
    if absolute:
        key_time += 1.7e9 + rng.uniform(0, 1e6, (n, 1))
    missing = rng.random((n, K, J)) < 0.15
    key_conf[missing] = 0
    key_xy[missing & (rng.random((n, K, J)) < 0.5)] = np.nan
    for i in range(n):
        if rng.random() < 1 / 3:
            p = rng.integers(1, K)
            key_conf[i, :p] = 0
            key_xy[i, :p] = np.nan
    if n > 0:
        key_conf[0] = 0
        key_xy[0] = np.nan
    if n > 1:
        key_conf[1, :-1] = 0
        key_xy[1, :-1] = np.nan
    last, prev = key_time[:, -1:], key_time[:, -2:-1]
    frac = np.arange(1, Q + 1) / Q
    interp = prev + (last - prev) * frac
    predict = last + (last - prev) * frac
    query_time = np.where(rng.random((n, 1)) < 0.5, interp, predict)
    return dict(key_xy=key_xy.astype(np.float32), key_conf=key_conf.astype(np.float32),
                key_time=key_time, query_time=query_time)


def data_root() -> Path:
    """The shared data folder beside the checkout (``../shared/data``), or $POSETWEEN_DATA."""
    env = os.environ.get("POSETWEEN_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def read_bandai_motions(archive: Path | None = None, members: int = 3):
    """The first ``members`` BVH files of a Bandai Namco archive as Motions (streamed: only
    the start of the archive is decompressed)."""
    from posetween.training.build_data import Motion, bvh_to_joints

    archive = Path(archive) if archive is not None else data_root() / BANDAI_ARCHIVE
    if not archive.is_file():
        raise FileNotFoundError(f"no Bandai Namco archive at {archive}")
    motions = []
    with tarfile.open(archive, "r|*") as tf:
        for member in tf:
            if not (member.isfile() and member.name.lower().endswith(".bvh")):
                continue
            joints, fps, _ = bvh_to_joints(tf.extractfile(member).read())
            motions.append(Motion("bandai", Path(member.name).stem, float(fps), joints))
            if len(motions) >= members:
                break
    return motions


def real_windows(window: int = 8, queries: int = DEFAULT_QUERIES, archive: Path | None = None, members: int = 3,
                 noisy: bool = True, views: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Windows as ``posetween eval`` makes them (virtual cameras, pixels, padded stream starts,
    noisy keyframes with missing joints), keyframes at fps / queries so that each interval
    has ``queries`` output frames."""
    from posetween.training.evaluate import EvalSettings, build_windows

    motions = read_bandai_motions(archive, members)
    fps = motions[0].fps
    motions = [m for m in motions if m.fps == fps]
    w = build_windows(motions, window, EvalSettings(input_fps=fps / queries, lookahead=1, noisy=noisy,
                                                    views=views, seed=seed))
    return dict(key_xy=w.key_xy.astype(np.float32), key_conf=w.key_conf.astype(np.float32),
                key_time=w.key_time, query_time=w.query_time)


def window_scale(w: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) input units per normalised unit, as the model normalises each window."""
    from posetween.core.model import normalize_window

    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    rel = lambda a: a - w["key_time"][:, -1:]
    return normalize_window(t(w["key_xy"]), t(w["key_conf"]), t(rel(w["key_time"])),
                            t(rel(w["query_time"]))).scale.numpy().astype(np.float64)


def normalised_error(out: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N, Q, J) absolute coordinate error in normalised units (inf where either is not finite)."""
    err = np.abs(out.astype(np.float64) - ref.astype(np.float64)) / scale[:, None, None, None]
    err[~(np.isfinite(out) & np.isfinite(ref))] = np.inf
    return err.max(-1)


def run_chunked(backend, w: dict, chunk: int = 256) -> np.ndarray:
    keys = ("key_xy", "key_conf", "key_time", "query_time")
    n = len(w["key_xy"])
    return np.concatenate([backend.run(*(w[k][i:i + chunk] for k in keys)) for i in range(0, n, chunk)])


# ----------------------------------------------------------------------------- parity

def parity_specs(cuda: bool) -> list[tuple[str, str, dict]]:
    specs = [("onnxruntime fp32", "onnxruntime", {}),
             ("onnxruntime int8", "onnxruntime", {"precision": "int8"}),
             ("onnxruntime fp16 (on CPU)", "onnxruntime", {"precision": "fp16"}),
             ("torchscript", "torchscript", {})]
    if cuda:
        specs += [("onnxruntime-cuda fp32", "onnxruntime-cuda", {"precision": "fp32", "cuda_graph": False}),
                  ("onnxruntime-cuda fp16", "onnxruntime-cuda", {"precision": "fp16", "cuda_graph": False}),
                  ("onnxruntime-cuda fp16 + CUDA graphs", "onnxruntime-cuda", {"precision": "fp16"}),
                  ("torch cuda", "torch", {"device": "cuda"}),
                  ("torchscript cuda", "torchscript", {"device": "cuda"})]
    return specs


def parity(model_path, specs=None, datasets: dict[str, dict] | None = None) -> list[dict]:
    from posetween.core.model import load_model
    from posetween.export.backends import TorchBackend, create_backend, cuda_usable

    model = load_model(model_path)
    specs = specs if specs is not None else parity_specs(cuda_usable())
    if datasets is None:
        datasets = {"random": random_windows(512, model.cfg.window, 8)}
        try:
            datasets["bandai"] = real_windows(model.cfg.window, 8)
        except FileNotFoundError as e:
            log.warning("%s: parity on random windows only", e)
    ref_backend = TorchBackend(model=model)
    refs = {name: run_chunked(ref_backend, w) for name, w in datasets.items()}
    scales = {name: window_scale(w) for name, w in datasets.items()}
    rows = []
    for label, name, options in specs:
        backend = create_backend(name, model_path=model_path, **options)
        for dname, w in datasets.items():
            err = normalised_error(run_chunked(backend, w), refs[dname], scales[dname])
            rows.append(dict(backend=label, device=backend.device, data=dname, windows=len(err),
                             max_abs=float(err.max()), mean_abs=float(err.mean()),
                             p99_abs=float(np.quantile(err, 0.99))))
    return rows


def parity_table(rows: list[dict]) -> str:
    lines = ["| backend | data | windows | max abs | p99 abs | mean abs |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['data']} | {r['windows']} | {r['max_abs']:.2e} | "
                     f"{r['p99_abs']:.2e} | {r['mean_abs']:.2e} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- latency

def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import onnxruntime as ort
        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
    try:
        info["loadavg_before"] = os.getloadavg()
    except OSError:
        pass
    return info


def default_backend_specs(cuda: bool) -> list[tuple[str, str, dict]]:
    specs = [("torch", "torch", {}),
             ("onnxruntime", "onnxruntime", {}),
             ("onnxruntime int8", "onnxruntime", {"precision": "int8"}),
             ("torchscript", "torchscript", {})]
    if cuda:
        specs += [("torch cuda", "torch", {"device": "cuda"}),
                  ("torchscript cuda", "torchscript", {"device": "cuda"}),
                  ("onnxruntime-cuda fp32", "onnxruntime-cuda", {"precision": "fp32", "cuda_graph": False}),
                  ("onnxruntime-cuda fp16", "onnxruntime-cuda", {"precision": "fp16", "cuda_graph": False}),
                  ("onnxruntime-cuda fp16 + CUDA graphs", "onnxruntime-cuda", {"precision": "fp16"})]
    return specs


def spec_from_name(text: str) -> tuple[str, str, dict]:
    """'onnxruntime', 'onnxruntime:int8', 'onnxruntime-cuda:fp16', 'torch:cuda', ..."""
    name, _, opt = text.partition(":")
    options: dict = {}
    for o in filter(None, opt.split(",")):
        if o in ("fp32", "fp16", "int8"):
            options["precision"] = o
        elif o in ("cpu", "cuda"):
            options["device"] = o
        elif o in ("graph", "nograph"):
            options["cuda_graph"] = o == "graph"
        else:
            raise ValueError(f"unknown backend option {o!r} in {text!r}")
    return text, name, options


def time_backend(backend, w: dict, batch: int, runs: int, warmup: int) -> dict:
    keys = ("key_xy", "key_conf", "key_time", "query_time")
    args = [w[k][:batch] for k in keys]
    for _ in range(warmup):
        backend.run(*args)
    ts = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        backend.run(*args)
        ts[i] = time.perf_counter() - t0
    ms = ts * 1e3
    return dict(median_ms=float(np.median(ms)), p99_ms=float(np.quantile(ms, 0.99)),
                mean_ms=float(ms.mean()), min_ms=float(ms.min()), runs=runs)


def latency(model_path, specs=None, batches=DEFAULT_BATCHES, runs: int = 500, warmup: int = 50,
            threads: int = 1, queries: int = DEFAULT_QUERIES) -> dict:
    from posetween.core.model import load_model
    from posetween.export.backends import create_backend, cuda_usable

    torch.set_num_threads(threads)
    model = load_model(model_path)
    specs = specs if specs is not None else default_backend_specs(cuda_usable())
    w = random_windows(max(batches) + 2, model.cfg.window, queries, seed=1)
    w = {k: v[2:] for k, v in w.items()}  # rows 0 and 1 are the empty and one-keyframe windows
    info = machine_info()
    results = []
    for label, name, options in specs:
        opts = dict(options)
        if name in ("onnxruntime", "onnxruntime-cuda", "auto"):
            opts.setdefault("threads", threads)
        if name in ("onnxruntime", "onnxruntime-cuda", "torchscript"):
            opts.setdefault("queries", queries)
        try:
            backend = create_backend(name, model_path=model_path, **opts)
        except Exception as e:  # noqa: BLE001 -- report and go on with the others
            log.warning("%s: %s: %s", label, type(e).__name__, e)
            continue
        for b in batches:
            r = time_backend(backend, w, b, runs, warmup)
            results.append(dict(backend=label, device=backend.device, precision=backend.precision,
                                batch=b, **r))
            log.info("%s batch %d: median %.3f ms, p99 %.3f ms", label, b, r["median_ms"], r["p99_ms"])
    ref = {r["batch"]: r for r in results if r["backend"] == "torch"}
    for r in results:
        if r["batch"] in ref:
            r["median_vs_torch"] = r["median_ms"] / ref[r["batch"]]["median_ms"]
    try:
        info["loadavg_after"] = os.getloadavg()
    except OSError:
        pass
    return {"machine": info, "model": str(model_path) if model_path else "default",
            "window": model.cfg.window, "queries": queries, "threads": threads, "runs": runs,
            "warmup": warmup, "results": results}


def latency_table(report: dict) -> str:
    m = report["machine"]
    head = (f"CPU: {m['cpu']} ({m['cpu_count']} cores), GPU: {m['gpu'] or 'none'}; torch {m['torch']}, "
            f"onnxruntime {m.get('onnxruntime')}; K={report['window']}, Q={report['queries']}, "
            f"{report['threads']} thread(s), {report['runs']} runs after {report['warmup']} warm-up")
    lines = [head, "", "| backend | device | batch | median ms | p99 ms | median vs torch |",
             "|---|---|---:|---:|---:|---:|"]
    for r in report["results"]:
        ratio = f"{r['median_vs_torch']:.2f}" if "median_vs_torch" in r else "-"
        lines.append(f"| {r['backend']} | {r['device']} | {r['batch']} | {r['median_ms']:.3f} | "
                     f"{r['p99_ms']:.3f} | {ratio} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line

def add_latency_arguments(p) -> None:
    p.add_argument("--model", help="model checkpoint (.pt), or a shipped model by name: default (the default) or open")
    p.add_argument("--backends", nargs="+", metavar="NAME[:OPT,...]",
                   help="backends to time, e.g. torch onnxruntime onnxruntime:int8 torchscript "
                        "onnxruntime-cuda:fp16 onnxruntime-cuda:fp32,nograph torch:cuda "
                        "(default: all that run here; the ratio column needs torch)")
    p.add_argument("--batches", nargs="+", type=int, default=list(DEFAULT_BATCHES))
    p.add_argument("--runs", type=int, default=500, help="timed calls per backend and batch (default 500)")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch and onnxruntime (default 1)")
    p.add_argument("--queries", type=int, default=DEFAULT_QUERIES)
    p.add_argument("--json", help="write the results here as JSON")


def run_latency(args) -> int:
    specs = [spec_from_name(b) for b in args.backends] if args.backends else None
    report = latency(args.model, specs, args.batches, args.runs, args.warmup, args.threads, args.queries)
    print(latency_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


def add_parity_arguments(p) -> None:
    p.add_argument("--model", help="model checkpoint (.pt), or a shipped model by name: default (the default) or open")
    p.add_argument("--backends", nargs="+", metavar="NAME[:OPT,...]",
                   help="backends to compare with plain PyTorch (default: all that run here)")
    p.add_argument("--json", help="write the results here as JSON")


def run_parity(args) -> int:
    specs = [spec_from_name(b) for b in args.backends] if args.backends else None
    rows = parity(args.model, specs)
    print("max / p99 / mean absolute coordinate error vs plain PyTorch, normalised units "
          "(pixels / window scale)\n")
    print(parity_table(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0
