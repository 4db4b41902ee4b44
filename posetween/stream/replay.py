"""``posetween replay``: publish a recorded pose sequence in real time, as a live detector would.

Sources:

* HDF5 from ``posetween data build`` (3D motion capture): one motion (``--motion``, default the
  first of the test split) projected through the fixed virtual camera ``--view`` of the
  offline evaluation (``posetween.training.evaluate.camera_for``), in pixels, 19 joints;
* ``.npz`` with ``xy (T, J, 2)``, optional ``conf (T, J)``, ``t (T,)`` seconds or ``fps``, and
  optional ``layout`` (else guessed from J);
* a folder of OpenPose JSON files (one per frame, BODY_25, sorted by name), at ``--source-fps``.

Keyframes are taken at ``--fps`` (linear interpolation between the recording's frames when
the rates do not divide) and stamped with the wall-clock time they are sent at, so the capture
timestamps are exactly ``start + k / fps``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posetween.core.skeleton import layout_for_joint_count

log = logging.getLogger("posetween.replay")


@dataclass
class Sequence:
    xy: np.ndarray        # (T, J, 2)
    conf: np.ndarray      # (T, J)
    times: np.ndarray     # (T,) seconds from the first frame
    layout: str
    name: str

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The pose at time ``t`` (seconds from the start): linear between frames; a joint is
        missing (conf 0, NaN) when it is missing in either neighbouring frame."""
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        i = min(max(i, 0), len(self.times) - 1)
        j = min(i + 1, len(self.times) - 1)
        span = self.times[j] - self.times[i]
        a = 0.0 if span <= 0 else min(max((t - self.times[i]) / span, 0.0), 1.0)
        if a < 1e-9:
            return self.xy[i].copy(), self.conf[i].copy()
        conf = np.where((self.conf[i] > 0) & (self.conf[j] > 0), np.minimum(self.conf[i], self.conf[j]), 0.0)
        xy = self.xy[i] * (1 - a) + self.xy[j] * a
        xy[conf == 0] = np.nan
        return xy, conf


def project_motion(motion, view: int = 0, seed: int = 0) -> np.ndarray:
    """A motion's 3D joints through the offline evaluation's fixed camera -> ``(T, 19, 2)`` pixels."""
    import torch
    from posetween.training.evaluate import camera_for
    cam = camera_for(f"{motion.subset}/{motion.name}", view, seed)
    world = torch.as_tensor(motion.joints, dtype=torch.float32)[None]
    return cam.project(world)[0].double().numpy()


def _from_h5(path: Path, motion: str | None, view: int) -> Sequence:
    import h5py

    from posetween.training.build_data import JOINT_LAYOUT, Motion
    from posetween.training.config import SplitConfig
    from posetween.training.splits import split_of
    with h5py.File(path, "r") as f:   # read only the one motion (a dataset file is large)
        if f.attrs.get("joint_layout") != JOINT_LAYOUT:
            raise ValueError(f"{path} is not a dataset from `posetween data build`")
        names = [(subset, name) for subset in f for name in f[subset]]
        if not names:
            raise ValueError(f"{path} holds no motions")
        if motion:
            chosen = [(s, n) for s, n in names if motion in (n, f"{s}/{n}")]
            if not chosen:
                raise ValueError(f"no motion {motion!r} in {path} (names look like {names[0][1]!r} "
                                 f"or {names[0][0]}/{names[0][1]!r})")
        else:
            chosen = [(s, n) for s, n in names if split_of(s, n, SplitConfig()) == "test"] or names
        subset, name = chosen[0]
        g = f[subset][name]
        m = Motion(subset, name, float(g.attrs["fps"]), g["joints"][()])
    xy = project_motion(m, view)
    conf = np.isfinite(xy).all(-1).astype(np.float64)
    return Sequence(xy, conf, np.arange(len(xy)) / m.fps, "posetween19", f"{m.subset}/{m.name} view {view}")


def _from_npz(path: Path) -> Sequence:
    with np.load(path, allow_pickle=False) as z:
        if "xy" not in z:
            raise ValueError(f"{path}: no 'xy' array (T, J, 2)")
        xy = np.asarray(z["xy"], np.float64)
        if xy.ndim != 3 or xy.shape[2] != 2:
            raise ValueError(f"{path}: 'xy' must be (T, J, 2), got {xy.shape}")
        conf = np.asarray(z["conf"], np.float64) if "conf" in z else np.isfinite(xy).all(-1).astype(np.float64)
        if "t" in z:
            times = np.asarray(z["t"], np.float64)
        elif "fps" in z:
            times = np.arange(len(xy)) / float(z["fps"])
        else:
            raise ValueError(f"{path}: needs 't' (T,) seconds or 'fps'")
        layout = str(z["layout"]) if "layout" in z else layout_for_joint_count(xy.shape[1]).name
    if conf.shape != xy.shape[:2] or times.shape != (len(xy),):
        raise ValueError(f"{path}: shapes of xy {xy.shape}, conf {conf.shape}, t {times.shape} do not match")
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise ValueError(f"{path}: 't' must increase")
    return Sequence(xy, conf, times - times[0], layout, path.stem)


def _from_openpose(folder: Path, fps: float) -> Sequence:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ValueError(f"{folder}: no OpenPose .json files")
    xy = np.full((len(files), 25, 2), np.nan)
    conf = np.zeros((len(files), 25))
    for i, f in enumerate(files):
        people = json.loads(f.read_text()).get("people", [])
        best = None
        for p in people:   # the most confident person of the frame
            k = np.asarray(p.get("pose_keypoints_2d", []), np.float64)
            if k.size != 75:
                continue
            k = k.reshape(25, 3)
            if best is None or k[:, 2].sum() > best[:, 2].sum():
                best = k
        if best is not None:
            xy[i], conf[i] = best[:, :2], best[:, 2]
    xy[conf <= 0] = np.nan
    return Sequence(xy, np.maximum(conf, 0), np.arange(len(files)) / fps, "body25", folder.name)


def load_sequence(path, motion: str | None = None, view: int = 0, source_fps: float = 30.0) -> Sequence:
    path = Path(path)
    if path.is_dir():
        return _from_openpose(path, source_fps)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return _from_h5(path, motion, view)
    if suffix == ".npz":
        return _from_npz(path)
    raise ValueError(f"{path}: expected an HDF5 from `posetween data build`, an .npz, or a folder of OpenPose JSON")


def replay(seq: Sequence, publisher, fps: float, stream_id: str = "replay", *, loop: bool = False,
           start: float | None = None, stop: threading.Event | None = None,
           max_keyframes: int | None = None) -> list[tuple[float, float]]:
    """Publish ``seq`` at ``fps`` in real time through ``publisher`` (a ``PosePublisher``).
    Keyframe k goes out at wall-clock ``start + k / fps`` (``start``: now) stamped with that
    time. Returns ``(capture_time, sequence_time)`` of every keyframe sent."""
    if not fps > 0:
        raise ValueError("fps must be > 0")
    start = time.time() if start is None else start
    sent, k = [], 0
    n_per_pass = int(np.floor(seq.duration * fps + 1e-9)) + 1
    while True:
        i = k % n_per_pass if loop else k
        if (not loop and i >= n_per_pass) or (max_keyframes is not None and k >= max_keyframes):
            break
        if stop is not None and stop.is_set():
            break
        capture = start + k / fps
        wait = capture - time.time()
        if wait > 0:
            time.sleep(wait)
        seq_time = i / fps
        xy, conf = seq.at(seq_time)
        publisher.send(stream_id, capture, xy, conf, layout=seq.layout, seq=k, check=False)
        sent.append((capture, seq_time))
        k += 1
    return sent


# A walk from CMU's motion capture (subject 131), projected to 2D: what the quick start replays on
# a fresh clone (posetween/assets/README.md; scripts/make_recording.py writes it).
SHIPPED_RECORDING = Path(__file__).resolve().parents[1] / "assets" / "walk-cmu131.npz"


def register(sub) -> None:
    p = sub.add_parser("replay", help="publish a recorded pose sequence in real time to `posetween serve`",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", default=str(SHIPPED_RECORDING),
                   help="HDF5 (posetween data build), .npz, or a folder of OpenPose JSON (default: the "
                        "shipped recording, a walk from CMU motion capture, 8.3 s)")
    p.add_argument("--fps", type=float, required=True, help="keyframes per second to publish")
    p.add_argument("--to", default="tcp://127.0.0.1:5555", help="the service's input address")
    p.add_argument("--stream", default="replay", help="stream id")
    p.add_argument("--motion", help="HDF5: motion name or subset/name (default: the first test motion)")
    p.add_argument("--view", type=int, default=0, help="HDF5: which fixed virtual camera")
    p.add_argument("--source-fps", type=float, default=30.0, help="OpenPose folder: frames per second")
    p.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .client import PosePublisher
    seq = load_sequence(args.file, args.motion, args.view, args.source_fps)
    log.info("replaying %s (%.1f s, %d frames, %s) at %g fps to %s as stream %r", seq.name, seq.duration,
             len(seq.times), seq.layout, args.fps, args.to, args.stream)
    with PosePublisher(args.to) as pub:
        if not pub.ready:
            log.warning("no service subscribed at %s yet; publishing anyway (ZeroMQ drops until one does)", args.to)
        try:
            sent = replay(seq, pub, args.fps, args.stream, loop=args.loop)
        except KeyboardInterrupt:
            return 0
    log.info("sent %d keyframes", len(sent))
    return 0
