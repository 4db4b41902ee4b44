"""``posetween replay``: publish a recorded pose sequence in real time, as a live detector would.

Sources:

* HDF5 from ``posetween data build`` (3D motion capture): one motion (``--motion``, default the
  first of the test split) projected through the fixed virtual camera ``--view`` of the
  offline evaluation (``posetween.training.evaluate.camera_for``), in pixels, 19 joints;
* ``.npz`` of one person, ``xy (T, J, 2)``, optional ``conf (T, J)``, ``t (T,)`` seconds or
  ``fps``, and optional ``layout`` (else guessed from J); or of several people, ``xy (T, P, J,
  2)``, ``conf (T, P, J)``, optional ``ids (P,)``;
* a folder of OpenPose JSON files (one per frame, BODY_25 or COCO-18, sorted by name), at
  ``--source-fps``, every person of every frame.

npz and OpenPose are read by the offline tools' reader (:mod:`posetween.offline.keypoint_io`),
in the model's 19 joints. One person goes out as keyframes of the stream ``--stream``. A
recording of several people (an OpenPose folder, even one showing a single person, or an npz of
several) goes out as frame messages of the camera ``--stream``, every person shown at that
time in each, as a multi-person detector sends them: the service gives each person their own
stream ``<stream>/<person>``, with the recording's ids when it has its own (OpenPose's
``person_id`` when it tracked, an npz's ``ids``), else with its tracker's.

Keyframes are taken at ``--fps`` (linear interpolation between the recording's frames when
the rates do not divide; several people: each person between their own frames) and stamped
with the wall-clock time they are sent at, so the capture timestamps are exactly ``start + k / fps``.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


log = logging.getLogger("posetween.replay")


@dataclass
class Sequence:
    xy: np.ndarray        # (T, J, 2) one person, or (T, P, J, 2) several
    conf: np.ndarray      # (T, J) or (T, P, J)
    times: np.ndarray     # (T,) seconds from the first frame
    layout: str
    name: str
    ids: list[int] | None = None   # several people: the recording's own ids, sent along (None: the service's)

    @property
    def people(self) -> bool:
        """Several people (sent as frame messages), not one (keyframes)."""
        return self.xy.ndim == 4

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The pose (or every person's) at time ``t`` (seconds from the start): linear between
        frames; a joint is missing (conf 0, NaN) when it is missing in either neighbouring frame."""
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


def _from_keypoints(path: Path, source_fps: float) -> Sequence:
    """An npz or an OpenPose folder through the offline tools' reader; a format of several
    people stays several, whoever it shows."""
    from posetween.offline import keypoint_io as kio
    tracks = kio.read_people(path, source_fps if path.is_dir() else None)
    name = path.name if path.is_dir() else path.stem
    times = tracks.t - tracks.t[0]
    if tracks.ids is None:
        return Sequence(tracks.xy[:, 0], tracks.conf[:, 0], times, "posetween19", name)
    ids = [int(i) for i in tracks.ids] if tracks.tracked else None
    return Sequence(tracks.xy, tracks.conf, times, "posetween19", name, ids)


def load_sequence(path, motion: str | None = None, view: int = 0, source_fps: float = 30.0) -> Sequence:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return _from_h5(path, motion, view)
    if path.is_dir() or suffix == ".npz":
        return _from_keypoints(path, source_fps)
    raise ValueError(f"{path}: expected an HDF5 from `posetween data build`, an .npz, or a folder of OpenPose JSON")


def replay(seq: Sequence, publisher, fps: float, stream_id: str = "replay", *, loop: bool = False,
           start: float | None = None, stop: threading.Event | None = None,
           max_keyframes: int | None = None) -> list[tuple[float, float]]:
    """Publish ``seq`` at ``fps`` in real time through ``publisher`` (a ``PosePublisher``):
    keyframes of ``stream_id``, or for several people frame messages of the camera ``stream_id``.
    Keyframe k goes out at wall-clock ``start + k / fps`` (``start``: now) stamped with that
    time. Returns ``(capture_time, sequence_time)`` of every keyframe (or frame) sent."""
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
        _publish(publisher, seq, stream_id, capture, seq_time, k)
        sent.append((capture, seq_time))
        k += 1
    return sent


def _publish(publisher, seq: Sequence, stream_id: str, capture: float, seq_time: float, k: int) -> None:
    """One keyframe of one person, or one frame message of every person shown at ``seq_time``."""
    xy, conf = seq.at(seq_time)
    if not seq.people:
        publisher.send(stream_id, capture, xy, conf, layout=seq.layout, seq=k, check=False)
        return
    shown = np.flatnonzero((conf > 0).any(-1))
    ids = None if seq.ids is None else [seq.ids[p] for p in shown]
    publisher.send_frame(stream_id, capture, xy[shown], conf[shown], layout=seq.layout, ids=ids, seq=k)


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
    p.add_argument("--stream", default="replay",
                   help="stream id; several people: the camera id, each person the stream <stream>/<person>")
    p.add_argument("--motion", help="HDF5: motion name or subset/name (default: the first test motion)")
    p.add_argument("--view", type=int, default=0, help="HDF5: which fixed virtual camera")
    p.add_argument("--source-fps", type=float, default=30.0, help="OpenPose folder: frames per second")
    p.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .client import PosePublisher
    seq = load_sequence(args.file, args.motion, args.view, args.source_fps)
    as_what = f"camera {args.stream!r} (a stream {args.stream}/<person> each)" if seq.people \
        else f"stream {args.stream!r}"
    log.info("replaying %s (%.1f s, %d frames, %s) at %g fps to %s as %s", seq.name, seq.duration,
             len(seq.times), seq.layout, args.fps, args.to, as_what)
    with PosePublisher(args.to) as pub:
        if not pub.ready:
            log.warning("no service subscribed at %s yet; publishing anyway (ZeroMQ drops until one does)", args.to)
        try:
            sent = replay(seq, pub, args.fps, args.stream, loop=args.loop)
        except KeyboardInterrupt:
            return 0
    log.info("sent %d keyframes", len(sent))
    return 0
