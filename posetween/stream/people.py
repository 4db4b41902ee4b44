"""Several people per camera: one frame of unordered detections in, one stream per person out.

**One stream = one person.** The engine interpolates each stream's keyframes as one body; two
people on one stream id would look like a body jumping back and forth (the engine restarts
the stream each time and shows almost nothing). A multi-person estimator gives, per camera
frame, N poses in no particular order; :class:`PeopleTracker` gives each a stable identity and
:class:`FrameRouter` pushes each person to the stream ``<camera>/<person>``::

    engine.push_frame("cam1", t, xy, conf, layout="coco17")     # xy (N, J, 2), conf (N, J)
    for frame in camera_frames(engine.poll()):                   # or the per-person poses as they are
        for pose in frame.people: ...

How people are matched: each person's track predicts where its joints are at the new frame's
time from a straight line fitted (least squares) through its newest keyframes, per joint -- the
curve the engine's own fallback uses -- so two people crossing keep their directions instead of
swapping at the crossing, as matching with the previous pose does. The cost of a (track,
detection) pair is the mean distance of the joints both show, in units of the person's size
(RMS spread of the joints); pairs beyond ``gate``, or whose size changes more than the engine
allows between keyframes, never match. scipy's ``linear_sum_assignment`` (Hungarian / Jonker-
Volgenant, the maintained solver every Python tracker uses) picks the matching of least total
cost: one person per track, one track per person. A detection left over starts a new track with
a new id (ids are never reused, so a stream never holds two people); a track missed for more
than ``max_missed`` frames ends. Detections that duplicate another (the same body twice, a
detector's failed non-maximum suppression) are dropped first.

Why not norfair or another tracker library: they match boxes or points with their own Kalman
filter and need per-detection objects; ours is 150 lines over numpy and scipy, uses every joint
the layout has, and gates with the engine's own limits so that a match never becomes a restart.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from . import wire
from .frames import OutputPose
from .validate import MIN_CONF, InputError, TimeUnits, check_stream_id, check_time, to_model_pose

MAX_PEOPLE = 64            # people per frame (more is not a pose estimator's output)
_BIG = 1e9


@dataclass
class TrackerConfig:
    gate: float = 1.0              # largest match cost: mean joint distance after prediction, in body sizes
    max_scale_change: float = 1.8  # body size ratio beyond which a pair never matches (the engine's restart rule)
    max_missed: int = 5            # frames a person may go undetected before the track ends
    history: int = 3               # keyframes the motion line is fitted through
    max_predict_s: float = 0.3     # the line is followed at most this far past the newest keyframe
    duplicate: float = 0.1         # detections closer than this (body sizes) are one person
    min_joints: int = 3            # joints seen in both, for a pose distance (else the centres)


def body_size(xy: np.ndarray, seen: np.ndarray) -> float:
    """RMS distance of the seen joints from their mean (a pose's scale, whatever the layout)."""
    pts = xy[seen]
    if len(pts) < 2:
        return 0.0
    return float(np.sqrt(((pts - pts.mean(0)) ** 2).sum(-1).mean()))


@dataclass
class _Track:
    id: int
    times: deque
    xy: deque          # (19, 2) with NaN where unseen
    size: float
    missed: int = 0
    hits: int = 1

    def predict(self, t: float, max_dt: float) -> np.ndarray:
        """Each joint on the least-squares line through its recent sightings, at ``t`` (or at
        most ``max_dt`` past the newest keyframe); a joint seen once stays where it was."""
        times = np.asarray(self.times)
        xy = np.stack(self.xy)                       # (H, 19, 2)
        seen = np.isfinite(xy).all(-1)               # (H, 19)
        t = min(t, times[-1] + max_dt)
        w = seen.astype(float)
        n = w.sum(0)                                 # (19,)
        safe = np.maximum(n, 1)
        tm = (w * times[:, None]).sum(0) / safe
        vals = np.nan_to_num(xy)
        xm = (w[..., None] * vals).sum(0) / safe[:, None]
        dt = (times[:, None] - tm) * w
        var = (dt * dt).sum(0)
        slope = (dt[..., None] * (vals - xm)).sum(0) / np.where(var > 1e-12, var, 1.0)[:, None]
        slope[(n < 2) | (var <= 1e-12)] = 0.0
        out = xm + slope * (t - tm)[:, None]
        out[n == 0] = np.nan
        return out


class PeopleTracker:
    """Stable identities for the unordered people of one camera's frames."""

    def __init__(self, config: TrackerConfig | None = None):
        self.cfg = config or TrackerConfig()
        self.tracks: list[_Track] = []
        self.next_id = 0

    def _cost(self, pred: np.ndarray, size: float, xy: np.ndarray, det_size: float) -> float:
        a, b = np.isfinite(pred).all(-1), np.isfinite(xy).all(-1)
        common = a & b
        if size > 1e-6 and det_size > 1e-6 and max(size / det_size, det_size / size) > self.cfg.max_scale_change:
            return _BIG
        unit = max(size, det_size, 1e-6)
        if common.sum() >= self.cfg.min_joints:
            d = np.linalg.norm(pred[common] - xy[common], axis=-1).mean()
        elif a.any() and b.any():
            d = np.linalg.norm(pred[a].mean(0) - xy[b].mean(0))
        else:
            return _BIG
        cost = float(d / unit)
        return cost if cost <= self.cfg.gate else _BIG

    def _dedupe(self, xy: np.ndarray, conf: np.ndarray) -> list[int]:
        """Indices of the detections to keep: of two that are one body, the more confident."""
        order = np.argsort(-np.where(conf > 0, conf, 0).sum(-1), kind="stable")
        kept: list[int] = []
        for i in order:
            seen_i = conf[i] > 0
            size_i = body_size(xy[i], seen_i)
            dup = False
            for j in kept:
                common = seen_i & (conf[j] > 0)
                if common.sum() >= self.cfg.min_joints:
                    d = np.linalg.norm(xy[i][common] - xy[j][common], axis=-1).mean()
                    if d <= self.cfg.duplicate * max(size_i, body_size(xy[j], conf[j] > 0), 1e-6):
                        dup = True
                        break
            if not dup:
                kept.append(int(i))
        return sorted(kept)

    def update(self, t: float, xy: np.ndarray, conf: np.ndarray) -> list[int | None]:
        """People of one frame, ``xy (N, 19, 2)``, ``conf (N, 19)`` (NaN / 0 where unseen) ->
        the id of each (None: dropped as a duplicate of another)."""
        N = len(xy)
        ids: list[int | None] = [None] * N
        keep = self._dedupe(xy, conf) if N > 1 else list(range(N))
        sizes = {i: body_size(xy[i], conf[i] > 0) for i in keep}
        preds = [tr.predict(t, self.cfg.max_predict_s) for tr in self.tracks]
        cost = np.full((len(self.tracks), len(keep)), _BIG)
        for r, tr in enumerate(self.tracks):
            for c, i in enumerate(keep):
                cost[r, c] = self._cost(preds[r], tr.size, xy[i], sizes[i])
        matched_tracks: set[int] = set()
        if cost.size:
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] >= _BIG:
                    continue
                i, tr = keep[c], self.tracks[r]
                tr.times.append(t)
                tr.xy.append(np.where((conf[i] > 0)[:, None], xy[i], np.nan))
                tr.size = 0.7 * tr.size + 0.3 * sizes[i] if tr.size > 0 else sizes[i]
                tr.missed, tr.hits = 0, tr.hits + 1
                ids[i] = tr.id
                matched_tracks.add(r)
        survivors = []
        for r, tr in enumerate(self.tracks):
            if r not in matched_tracks:
                tr.missed += 1
            if tr.missed <= self.cfg.max_missed:
                survivors.append(tr)
        self.tracks = survivors
        for i in keep:
            if ids[i] is None:
                tr = _Track(self.next_id, deque([t], maxlen=self.cfg.history),
                            deque([np.where((conf[i] > 0)[:, None], xy[i], np.nan)], maxlen=self.cfg.history),
                            sizes[i])
                self.next_id += 1
                self.tracks.append(tr)
                ids[i] = tr.id
        return ids


# ---------------------------------------------------------------- frames -> streams

@dataclass
class FrameResult:
    """What :meth:`FrameRouter.push` did with one frame: per detection, its stream (None when
    it was dropped: nothing seen, a duplicate, or refused by the engine) and the engine's answer."""
    streams: list[str | None]
    results: list = field(default_factory=list)


def person_stream(camera: str, person) -> str:
    return check_stream_id(f"{camera}/{person}")


class FrameRouter:
    """Turns multi-person frames of any number of cameras into per-person engine streams."""

    def __init__(self, engine, config: TrackerConfig | None = None):
        self.engine = engine
        self.config = config or TrackerConfig()
        self.trackers: dict[str, PeopleTracker] = {}
        self.units = TimeUnits()

    def push(self, camera: str, t: float, xy, conf=None, layout: str | None = None, ids=None,
             min_conf: float = MIN_CONF, now: float | None = None) -> FrameResult:
        """``xy (N, J, 2)`` and ``conf (N, J)`` (or None) of N people, in ``layout``; ``ids``:
        the detector's own identities (then no tracking), or None. Bad input raises nothing:
        the whole frame is counted as dropped with its reason, as :meth:`Engine.push` does."""
        engine = self.engine
        try:
            if not isinstance(camera, str) or "/" in camera:
                raise InputError("bad_stream_id", f"camera id {str(camera)[:40]!r} must be a stream id without '/'")
            check_stream_id(camera)
            t = check_time(t)
            self.units.check(camera, t)
            xy = np.asarray(xy, dtype=np.float64)
            if xy.size == 0:   # nobody in the frame: keep the joint count (N = 0 of (N, J, 2))
                xy = xy.reshape(0, xy.shape[1] if xy.ndim == 3 else 0, 2)
            if xy.ndim != 3 or xy.shape[-1] != 2:
                raise InputError("bad_joint_count", f"a frame's joints must be (people, joints, 2), got {xy.shape}")
            if len(xy) > MAX_PEOPLE:
                raise InputError("out_of_range", f"{len(xy)} people in one frame (at most {MAX_PEOPLE})")
            conf = np.ones(xy.shape[:2]) if conf is None else np.asarray(conf, dtype=np.float64)
            if len(xy) == 0 and conf.size == 0:
                conf = np.zeros(xy.shape[:2])
            if conf.shape != xy.shape[:2]:
                raise InputError("bad_joint_count", f"{xy.shape[:2]} people x joints but confidences {conf.shape}")
            if ids is not None and len(ids) != len(xy):
                raise InputError("bad_field", f"{len(ids)} ids for {len(xy)} people")
            people = [to_model_pose(xy[i], conf[i], layout, min_conf) for i in range(len(xy))]
        except InputError as e:
            return FrameResult([], [engine.drop(e.reason, f"camera {str(camera)[:64]!r}: {e}")])
        xy19 = np.stack([p[0] for p in people]) if people else np.zeros((0, 19, 2))
        conf19 = np.stack([p[1] for p in people]) if people else np.zeros((0, 19))
        seen = (conf19 > 0).any(-1)
        if ids is None:
            idx = np.flatnonzero(seen)
            tracker = self.trackers.setdefault(camera, PeopleTracker(self.config))
            tracked = tracker.update(t, xy19[idx], conf19[idx])
            ids = [None] * len(xy19)
            for i, pid in zip(idx, tracked):
                ids[i] = pid
        streams: list[str | None] = []
        results = []
        for i, pid in enumerate(ids):
            if pid is None or not seen[i]:
                streams.append(None)
                continue
            try:
                sid = person_stream(camera, pid)
            except InputError as e:
                results.append(engine.drop(e.reason, str(e)))
                streams.append(None)
                continue
            r = engine.push(sid, t, xy19[i], conf19[i], layout="posetween19", now=now)
            results.append(r)
            streams.append(sid if r.accepted else None)
        return FrameResult(streams, results)


_ROUTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def router_for(engine) -> FrameRouter:
    """The engine's frame router (one per engine, made on first use)."""
    r = _ROUTERS.get(engine)
    if r is None:
        r = _ROUTERS[engine] = FrameRouter(engine)
    return r


# ---------------------------------------------------------------- output per camera

@dataclass
class CameraFrame:
    """Every person of one camera at one output tick (``people``: their poses, by stream)."""
    camera: str
    people: list[OutputPose]

    def person(self, pose: OutputPose) -> str:
        return pose.stream.partition("/")[2]


def camera_frames(poses: list[OutputPose]) -> list[CameraFrame]:
    """Group the engine's output poses (``render()``/``poll()``: tick after tick, each stream
    at most once per tick) into one frame per camera and tick. Streams without ``/`` are not
    people of a camera and are left out. A tick's poses come together in the list; a stream
    seen again starts the camera's next tick."""
    out: list[CameraFrame] = []
    current: dict[str, CameraFrame] = {}
    for p in poses:
        camera, slash, _ = p.stream.partition("/")
        if not slash:
            continue
        frame = current.get(camera)
        if frame is None or any(q.stream == p.stream for q in frame.people):
            frame = current[camera] = CameraFrame(camera, [])
            out.append(frame)
        frame.people.append(p)
    return out


def camera_messages(poses: list[OutputPose], published: float | None = None) -> list[bytes]:
    """The ``frame/<camera>`` output messages of a batch of rendered poses (see ``wire.py``)."""
    published = time.time() if published is None else published
    return [wire.encode_camera_frame(f.camera, f.people, published) for f in camera_frames(poses)]
