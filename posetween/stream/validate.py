"""Input checks shared by the wire decoder and the in-process engine API.

Every problem is an :class:`InputError` with a short machine-readable ``reason`` (the key the
drop counters use) and a message naming the problem.
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque

import numpy as np

from posetween.core.skeleton import LAYOUTS, POSETWEEN19, Layout, get_layout, layout_for_joint_count

# Drop reasons, with what each means (README.md, section "Wire format", lists the same).
REASONS: dict[str, str] = {
    "malformed": "not a message of this format (no topic separator, not msgpack, not a map)",
    "bad_version": "schema version missing or not supported",
    "bad_field": "a required field is missing or has the wrong type",
    "bad_topic": "topic does not match the body's stream id, or is not a pose topic",
    "bad_stream_id": "stream id empty, too long, or with characters outside [A-Za-z0-9_.:/-]",
    "unknown_layout": "joint layout not one of " + ", ".join(LAYOUTS),
    "bad_joint_count": "joint count does not match the layout (or no layout has it, or several do)",
    "non_finite": "NaN or infinite time, confidence, or coordinate of a joint with confidence > 0",
    "out_of_range": "value outside its allowed range (negative confidence, |coordinate| > 1e6, a time "
                    "that is not seconds)",
    "oversized": "message larger than the service's limit",
    "time_backwards": "capture time not later than the stream's previous keyframe",
    "repeated_seq": "sequence number not above the stream's previous one",
    "too_many_streams": "the engine already serves max_streams streams",
    "empty_pose": "no joint has confidence > 0 (not an error: the detector saw nobody)",
    "internal_error": "the service failed on this message (a bug: the log has the traceback)",
}

MAX_COORD = 1e6
MAX_STREAM_ID = 64
# "/" separates a camera from a person (``cam1/3``): a subscription to ``pose/cam1/`` takes
# every person of camera cam1.
_STREAM_ID = re.compile(r"[A-Za-z0-9_.:/\-]{1,%d}\Z" % MAX_STREAM_ID)

# A joint whose confidence is below this counts as missing. Estimators report every joint,
# seen or not: YOLO-pose zeroes the coordinates of joints under 0.5 but keeps their confidence,
# OpenPose and RTMPose give low scores to guesses. 0.3 is mmpose's and rtmlib's own drawing
# threshold; pass min_conf=0 to keep everything.
MIN_CONF = 0.3

log = logging.getLogger("posetween.stream")


class InputError(ValueError):
    def __init__(self, reason: str, message: str):
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason


def check_stream_id(stream_id) -> str:
    if not isinstance(stream_id, str) or not _STREAM_ID.match(stream_id):
        raise InputError("bad_stream_id", f"stream id {str(stream_id)[:80]!r} must be 1-{MAX_STREAM_ID} "
                                          "characters from [A-Za-z0-9_.:/-]")
    return stream_id


def check_time(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)):
        raise InputError("bad_field", f"capture time must be a number of seconds, got {type(t).__name__}")
    t = float(t)
    if not math.isfinite(t):
        raise InputError("non_finite", f"capture time is {t}")
    if abs(t) > 1e11:   # year 5138 in Unix seconds: a finer unit
        unit = "milliseconds" if abs(t) < 1e14 else "microseconds" if abs(t) < 1e17 else "nanoseconds"
        div = {"milliseconds": "1e3", "microseconds": "1e6", "nanoseconds": "1e9"}[unit]
        raise InputError("out_of_range", f"capture time {t:g} looks like {unit} since 1970: send seconds "
                                         f"(t / {div})")
    return t


class TimeUnits:
    """Catches capture times that are not seconds from how a stream's times step.

    A capture time alone cannot say (MediaPipe Tasks counts milliseconds from 0; a frame index is
    a small integer too), and the engine then misreads the source: 33 "seconds" between
    keyframes is a gap, so every keyframe restarts the stream and nothing comes out. Steps of
    ``ms_step`` or more (median of the last few) are refused as milliseconds; integer times
    stepping by exactly 1 are frame indices, warned about once per stream (they work, at 1 fps).
    """

    def __init__(self, history: int = 5, ms_step: float = 5.0):
        self.history, self.ms_step = history, ms_step
        self._times: dict[str, deque[float]] = {}
        self._warned: set[str] = set()

    def check(self, stream: str, t: float) -> None:
        times = self._times.get(stream)
        if times is None:
            if len(self._times) > 4096:       # bounded whatever the input does
                self._times.clear()
            times = self._times[stream] = deque(maxlen=self.history)
        if times and t <= times[-1]:
            times.clear()                     # the engine reports it (time_backwards); start afresh
        times.append(t)
        if len(times) < 3:
            return
        steps = np.diff(np.asarray(times))
        step = float(np.median(steps))
        if step >= self.ms_step:
            times.pop()
            raise InputError("out_of_range", f"stream {stream!r}: capture times step by {step:g} (median of the "
                                             f"last {len(steps)}): these look like milliseconds; send seconds "
                                             f"(t / 1000), e.g. MediaPipe Tasks' timestamp_ms / 1000")
        if step == 1.0 and all(float(x).is_integer() for x in times) and stream not in self._warned:
            self._warned.add(stream)
            log.warning("stream %r: capture times are integers stepping by 1: frame indices? Send seconds "
                        "(index / fps); the engine reads them as a 1 fps source", stream)


def check_seq(seq) -> int | None:
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)) or seq < 0:
        raise InputError("bad_field", f"sequence number must be a non-negative integer, got {seq!r}")
    return int(seq)


def to_model_pose(xy, conf=None, layout: str | None = None,
                  min_conf: float = MIN_CONF) -> tuple[np.ndarray, np.ndarray]:
    """Check a pose in any known layout and convert it to the model's 19 joints.

    ``xy``: ``(J, 2)`` (or ``(2J,)`` flat), ``conf``: ``(J,)`` or None (all 1). A joint with
    confidence 0 is missing and may have any coordinates (NaN included); a seen joint must
    be finite. Confidences must be finite and >= 0; above 1 they are clipped to 1; below
    ``min_conf`` the joint counts as missing (its coordinates are not checked).
    Returns ``(xy (19, 2) float64 with NaN for missing joints, conf (19,) float64)``.
    """
    try:
        xy = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("bad_field", "joints must be numbers") from None
    if xy.ndim == 1 and xy.size % 2 == 0:
        xy = xy.reshape(-1, 2)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InputError("bad_joint_count", f"joints must be (J, 2) or a flat list of 2J numbers, got shape {xy.shape}")
    J = xy.shape[0]
    if layout is None:
        try:
            lay = layout_for_joint_count(J)
        except ValueError as e:
            raise InputError("bad_joint_count", str(e)) from None
    else:
        if layout not in LAYOUTS:
            raise InputError("unknown_layout", f"unknown joint layout {str(layout)[:40]!r}; known: {', '.join(LAYOUTS)}")
        lay = get_layout(layout)
        if J != lay.num_joints:
            raise InputError("bad_joint_count", f"layout {lay.name!r} has {lay.num_joints} joints, got {J}")
    if conf is None:
        conf = np.ones(J)
    else:
        try:
            conf = np.asarray(conf, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError("bad_field", "confidences must be numbers") from None
        if conf.shape != (J,):
            raise InputError("bad_joint_count", f"{J} joints but {conf.size} confidences")
    # (The streaming engine checks every keyframe: few array operations on the usual path; the
    # checks that name the problem only when one of these fails.)
    if not (conf.min() >= 0 and conf.max() < np.inf):
        if not np.isfinite(conf).all():
            raise InputError("non_finite", f"confidence of joint {int(np.flatnonzero(~np.isfinite(conf))[0])} "
                                           "is not finite")
        raise InputError("out_of_range", f"confidence of joint {int(np.flatnonzero(conf < 0)[0])} is negative")
    conf = np.where(conf < min_conf, 0.0, np.minimum(conf, 1.0))
    seen = conf > 0
    shown = np.where(seen[:, None], xy, 0.0)
    if not np.abs(shown).max() <= MAX_COORD:     # (NaN: not <=)
        bad = seen & ~np.isfinite(xy).all(-1)
        if bad.any():
            raise InputError("non_finite", f"joint {int(np.flatnonzero(bad)[0])} has confidence > 0 but "
                                           "non-finite coordinates (mark missing joints with confidence 0)")
        far = (np.abs(shown) > MAX_COORD).any(-1)
        raise InputError("out_of_range", f"joint {int(np.flatnonzero(far)[0])} coordinate beyond +-{MAX_COORD:g}")
    if lay is POSETWEEN19:     # the model's own layout: only the missing joints to mark
        shown[~seen] = np.nan
        return shown, conf
    return lay.to_model(xy, conf)


