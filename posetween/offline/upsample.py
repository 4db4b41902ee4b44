"""``posetween upsample``: the original's offline upsampler, on a whole recorded sequence.

    posetween upsample --pose-dir DIR --save-dir OUT --upsample-rate 8 [--fps F] [--model PATH]
    posetween upsample --input FILE.npz|FILE.jsonl --save-dir OUT --upsample-rate 8

OUT must be empty or new (the frames of an earlier run would mix with the new ones); with
``--overwrite`` this command's earlier outputs there are replaced.

Every person is kept and upsampled on their own, on one output time grid (see
:mod:`posetween.offline.keypoint_io` for how people are told apart). ``--pose-dir`` reads a
folder of OpenPose JSON (BODY_25 or COCO-18, one file per frame) and writes OpenPose JSON at
``upsample-rate`` times the frame rate into ``OUT/model/`` (the motion model) and ``OUT/linear/``
(linear interpolation), as the original did: each frame holds every person present then,
``person_id`` their identity. Joints our layout lacks (eyes, ears, small toes, heels) are
written ``0, 0, 0``, as OpenPose writes a missing joint. ``--input`` takes npz or JSON lines in
any supported layout and writes ``OUT/model.npz`` and ``OUT/linear.npz`` (``xy``, ``conf``,
``t``, ``fps``, ``layout``, ``is_key``): ``xy (M, 19, 2)`` for one person, ``xy (M, P, 19, 2)``
and ``ids (P,)`` for an npz of several.

Offline the model sees the future: each interval between keyframes ``i`` and ``i + 1`` is filled
from the window of ``K`` keyframes that ends ``lookahead`` (>= 1) keyframes after ``i``. Every
backend gets an interval's ``rate + 1`` query times in one call, because queries attend to each
other: an exported graph with another fixed query count is refused, never fed in chunks.

Missing joints stay missing. An output frame's confidence for a joint is the linear
interpolation of the two keyframes' confidences (0 where missing): a joint missing in both
keyframes around an interval is missing (conf 0, NaN; ``0, 0, 0`` in OpenPose JSON) all through
it, and a joint missing at a keyframe is missing at that keyframe's own time. A person absent
from a frame is missing there in the same way (their frames next to it fade out).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posetween.core.skeleton import NUM_JOINTS
from posetween.offline import keypoint_io as kio

log = logging.getLogger(__name__)


@dataclass
class Upsampled:
    t: np.ndarray            # (M,) seconds
    is_key: np.ndarray       # (M,) bool, the output frame is at a keyframe's time
    conf: np.ndarray         # (M, 19), shared by both methods
    model: np.ndarray | None  # (M, 19, 2), NaN where conf is 0
    linear: np.ndarray       # (M, 19, 2)
    model_seconds: float = 0.0


def output_times(t: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output times, the interval index of each and its fraction ``a`` in [0, 1]."""
    n = len(t)
    if n == 1:
        return t.copy(), np.zeros(1, int), np.zeros(1)
    j = np.arange(rate) / rate
    interval = np.repeat(np.arange(n - 1), rate)
    a = np.tile(j, n - 1)
    interval = np.append(interval, n - 2)
    a = np.append(a, 1.0)
    out_t = t[interval] + a * (t[interval + 1] - t[interval])
    return out_t, interval, a


def _interval_conf(conf: np.ndarray, interval: np.ndarray, a: np.ndarray) -> np.ndarray:
    if len(conf) == 1:
        return conf.copy()
    c = (1 - a)[:, None] * conf[interval] + a[:, None] * conf[interval + 1]
    # Exactly at a keyframe, only that keyframe counts (no 1e-17 leftovers).
    c = np.where((a == 0)[:, None], conf[interval], c)
    return np.where((a == 1)[:, None], conf[np.minimum(interval + 1, len(conf) - 1)], c)


def linear_upsample(xy: np.ndarray, conf: np.ndarray, t: np.ndarray, out_t: np.ndarray,
                    block: int = 64) -> np.ndarray:
    """Per joint, linear interpolation through the keyframes where it was seen, held before the
    first and after the last: the streaming engine's fallback curve (``max_alpha`` 1), one
    implementation for both. That function compares every query with every keyframe, so each
    block of output times gets only the keyframes its joints' brackets can come from (every
    keyframe of the block's span, and per joint the last seen before it and the first after)."""
    from posetween.stream.engine import fallback_poses
    n = len(t)
    seen = (conf > 0) & np.isfinite(xy).all(-1)
    k = np.arange(n)[:, None]
    last = np.maximum.accumulate(np.where(seen, k, -1), 0)               # (T, 19): last seen at or before
    first = np.minimum.accumulate(np.where(seen, k, n)[::-1], 0)[::-1]   # first seen at or after
    out = []
    for s in range(0, len(out_t), block):
        q = out_t[s:s + block]
        a = max(int(np.searchsorted(t, q[0], "right")) - 1, 0)
        b = min(int(np.searchsorted(t, q[-1], "left")), n - 1)
        lo = min(last[a][last[a] >= 0].min(initial=a), a)
        hi = max(first[b][first[b] < n].max(initial=b), b)
        out.append(fallback_poses(xy[lo:hi + 1], conf[lo:hi + 1], t[lo:hi + 1], q, 1.0))
    return np.concatenate(out)


def model_upsample(backend, xy: np.ndarray, conf: np.ndarray, t: np.ndarray, rate: int,
                   lookahead: int = 1, batch: int = 256) -> np.ndarray:
    """The model's poses at ``output_times(t, rate)``: interval ``i`` from the window of
    ``backend.window`` keyframes ending at keyframe ``min(i + lookahead, N - 1)``."""
    if lookahead < 1:
        raise ValueError("offline upsampling interpolates: lookahead must be >= 1")
    n, K = len(t), backend.window
    seen = (conf > 0) & np.isfinite(xy).all(-1)
    key_xy = np.where(seen[..., None], xy, 0.0)
    key_conf = np.where(seen, conf, 0.0)
    if n == 1:
        ends, queries = np.array([0]), t[None, :1]
    else:
        ends = np.minimum(np.arange(n - 1) + lookahead, n - 1)
        frac = np.arange(rate + 1) / rate                     # rate queries and the next keyframe
        queries = t[:-1, None] + frac[None] * np.diff(t)[:, None]
    idx = ends[:, None] - np.arange(K - 1, -1, -1)[None]      # (B, K), oldest first
    pad = idx < 0
    idx = np.maximum(idx, 0)
    w_xy = key_xy[idx]
    w_conf = np.where(pad[..., None], 0.0, key_conf[idx])
    w_time = np.where(pad, t[idx] - 1.0, t[idx])               # padding: any finite time, masked
    check_query_count(backend, queries.shape[1], rate)
    outs = [backend.run(w_xy[s:s + batch], w_conf[s:s + batch], w_time[s:s + batch], queries[s:s + batch])
            for s in range(0, len(ends), batch)]
    res = np.concatenate(outs).astype(np.float64)             # (B, Q, 19, 2)
    if n == 1:
        return res[0]
    return np.concatenate([res[:, :rate].reshape(-1, NUM_JOINTS, 2), res[-1, rate:]], 0)


def check_query_count(backend, count: int, rate: int) -> None:
    """Queries attend to each other, so a window's answers change when its query set does: a
    graph exported for another fixed count can serve this rate neither in chunks nor padded."""
    fixed = getattr(backend, "queries", None)
    if fixed is not None and fixed != count:
        raise ValueError(f"the model file of the {backend.name} backend takes {fixed} query times per window; "
                         f"upsampling x{rate} needs {count} in one call: export it with --queries {count}, or "
                         f"--queries 0 for any count")


def upsample(xy: np.ndarray, conf: np.ndarray, t: np.ndarray, rate: int, backend=None,
             lookahead: int = 1) -> Upsampled:
    """Upsample a sequence ``rate`` times with linear interpolation and, given a backend, the model."""
    xy, conf, t = np.asarray(xy, np.float64), np.asarray(conf, np.float64), np.asarray(t, np.float64)
    if len(t) == 0:
        raise ValueError("no frames to upsample")
    if rate < 1:
        raise ValueError("--upsample-rate must be >= 1")
    out_t, interval, a = output_times(t, rate)
    out_conf = _interval_conf(np.where(np.isfinite(xy).all(-1), conf, 0.0), interval, a)
    present = out_conf > 0
    lin = np.where(present[..., None], linear_upsample(xy, conf, t, out_t), np.nan)
    model, seconds = None, 0.0
    if backend is not None:
        t0 = time.perf_counter()
        model = np.where(present[..., None], model_upsample(backend, xy, conf, t, rate, lookahead), np.nan)
        seconds = time.perf_counter() - t0
    is_key = a == 0
    if len(t) > 1:
        is_key[-1] = True
    return Upsampled(out_t, is_key, out_conf, model, lin, seconds)


def _prefix(files: list[Path]) -> str:
    m = re.match(r"^(.*?)_?\d+(_keypoints)?\.json$", files[0].name)
    return (m.group(1) if m and m.group(1) else "frame")


def output_paths(out: Path, openpose: bool) -> tuple[Path, Path]:
    """Where the model's and linear interpolation's frames go."""
    return (out / "model", out / "linear") if openpose else (out / "model.npz", out / "linear.npz")


def prepare_save_dir(out: Path, outputs: tuple[Path, ...], overwrite: bool) -> None:
    """Refuse a non-empty ``out`` (an earlier run's frames would mix with the new ones) unless
    ``overwrite``; then remove this command's earlier outputs, and only those (``out`` may be
    a folder the user keeps other things in, the input even)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--save-dir {out} is a file, not a folder")
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not overwrite:
        raise ValueError(f"--save-dir {out} is not empty: an earlier run's frames would mix with the new "
                         f"ones; give an empty or new folder, or --overwrite to replace the outputs there")
    for path in outputs:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def backend_options(name: str) -> dict:
    """An exported graph with a dynamic query count: one export serves every rate (queries
    must all go in one call; see check_query_count)."""
    return {} if name in ("torch", "torchscript") else {"queries": None}


def upsample_people(tracks: kio.Tracks, rate: int, backend=None, lookahead: int = 1) -> list[Upsampled]:
    """Each person of ``tracks`` on their own, on one output time grid
    (every track spans all frames): a person never lends another their keyframes."""
    if tracks.people == 0:
        raise ValueError("no person in any frame: nothing to upsample")
    return [upsample(tracks.xy[:, p], tracks.conf[:, p], tracks.t, rate, backend, lookahead)
            for p in range(tracks.people)]


def _stack(ups: list[Upsampled], field: str) -> np.ndarray:
    """One field of every person's output, people on axis 1: ``(M, P, ...)``."""
    return np.stack([getattr(u, field) for u in ups], 1)


def _read(src: Path, pose_dir: bool, fps: float | None, rate: int) -> kio.Tracks:
    """The recording's tracks; without times or --fps the keyframes are taken at 30 / rate fps
    (so the output is at 30 fps)."""
    read = kio.read_openpose_people if pose_dir else kio.read_people
    try:
        return read(src, fps)
    except kio.MissingTimes:
        fps = 30.0 / rate
        log.info("no times and no --fps: taking the keyframes at %.3g fps (output at 30 fps)", fps)
        return read(src, fps)


def _write(out: Path, tracks: kio.Tracks, ups: list[Upsampled], pose_dir: bool, src: Path) -> str:
    """Both methods' outputs; returns where they went."""
    model_out, linear_out = output_paths(out, pose_dir)
    conf = _stack(ups, "conf")
    if pose_dir:
        prefix = _prefix(kio.openpose_files(src))
        kio.write_openpose_folder(model_out, _stack(ups, "model"), conf, tracks.ids, prefix)
        kio.write_openpose_folder(linear_out, _stack(ups, "linear"), conf, tracks.ids, prefix)
        return f"{model_out}/ and {linear_out}/"
    model, linear = _stack(ups, "model"), _stack(ups, "linear")
    extra = {"is_key": ups[0].is_key}
    if tracks.ids is None:          # a one-person format is written back as one: (M, 19, 2)
        model, linear, conf = model[:, 0], linear[:, 0], conf[:, 0]
    else:
        extra["ids"] = tracks.ids
    kio.write_npz(model_out, model, conf, ups[0].t, **extra)
    kio.write_npz(linear_out, linear, conf, ups[0].t, **extra)
    return f"{model_out} and {linear_out}"


def run(args) -> int:
    from posetween.export.backends import create_backend

    if bool(args.pose_dir) == bool(args.input):
        raise SystemExit("posetween upsample: give exactly one of --pose-dir DIR or --input FILE")
    src = Path(args.pose_dir or args.input)
    out = Path(args.save_dir)
    pose_dir = bool(args.pose_dir)
    prepare_save_dir(out, output_paths(out, pose_dir), args.overwrite)
    tracks = _read(src, pose_dir, args.fps, args.upsample_rate)
    backend = create_backend(args.backend, model_path=args.model, **backend_options(args.backend))
    ups = upsample_people(tracks, args.upsample_rate, backend, lookahead=args.lookahead)
    where = _write(out, tracks, ups, pose_dir, src)
    conf = _stack(ups, "conf")
    shown = conf.any(-1)                                   # (M, P): frames each person is in
    missing = float((conf[shown] == 0).mean()) if shown.any() else 1.0
    people = "" if tracks.people == 1 else f" of {tracks.people} people"
    print(f"upsampled {len(tracks.t)} keyframes{people} x{args.upsample_rate} -> {len(ups[0].t)} frames "
          f"(lookahead {args.lookahead}, model {sum(u.model_seconds for u in ups):.2f} s, "
          f"{missing:.1%} joints missing); wrote {where}")
    return 0


def register(sub) -> None:
    import argparse

    from posetween.export.backends import BACKENDS

    p = sub.add_parser("upsample", help="upsample a recorded pose sequence offline (OpenPose JSON, npz, JSON lines)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pose-dir", help="folder of OpenPose JSON (BODY_25 or COCO-18), one file per frame; "
                                         "every person kept")
    src.add_argument("--input", help="npz (one person, or several: xy (T, P, J, 2)) or JSON lines, any layout")
    p.add_argument("--save-dir", required=True, help="output folder (empty or new, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace this command's earlier outputs in a non-empty --save-dir")
    p.add_argument("--upsample-rate", type=int, default=8, help="output frames per input frame (default 8)")
    p.add_argument("--fps", type=float, help="keyframe rate of the input (default: the file's times, "
                                             "else 30 / upsample-rate, i.e. 30 fps out)")
    p.add_argument("--lookahead", type=int, default=1, help="keyframes of future each interval sees (>= 1)")
    p.add_argument("--model", help="model file, or a shipped model by name: default (the default) or open")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="runtime backend (default torch, the reference; the others agree with it within 1e-4)")
    p.set_defaults(func=run)
