"""One stream's output trajectory: dense samples from the model, rendered at any time.

The model answers Q queries per interval; the track keeps those samples (time-ordered) and
the output clock interpolates linearly between them. New samples replace the ones at and after
their first time. When that changes what the output already showed, or was about to show (a
late keyframe, a lookahead-0 prediction corrected by the real keyframe), the difference is
blended out over ``blend_s`` with a smoothstep, so the output never jumps. Samples of different
segments (stream restarts) are never interpolated between.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from dataclasses import dataclass

import numpy as np

from .frames import KEYFRAME, PREDICTED

EPS = 1e-6   # seconds; capture times are often Unix times, whose float64 resolution is ~0.2 us


@dataclass
class Sample:
    t: float
    xy: np.ndarray     # (19, 2)
    conf: np.ndarray   # (19,)
    kind: str
    seg: int


@dataclass
class Bracket:
    """What one render shows: ``left`` and ``right`` samples and the weight between them
    (``right`` is ``left`` while a pose is held)."""
    t: float
    left: Sample
    right: Sample
    w: float
    kind: str


def _time(s: Sample) -> float:
    return s.t


def _weight(a: Sample, b: Sample, t: float) -> float:
    """How far ``t`` is from ``a`` to ``b`` (0 to 1)."""
    span = b.t - a.t
    return 0.0 if span <= EPS else min(max((t - a.t) / span, 0.0), 1.0)


def _mix(a: np.ndarray, b: np.ndarray, w) -> np.ndarray:
    """``a + w (b - a)``, a value missing (NaN) on one side taking the other side's."""
    return np.where(np.isnan(a), b, np.where(np.isnan(b), a, a + w * (b - a)))


def evaluate(brackets: list[Bracket]) -> tuple[np.ndarray, np.ndarray]:
    """``(xy (n, 19, 2), conf (n, 19))`` of n brackets at once: the output renders every
    stream of a tick in one evaluation instead of a few small array operations per stream."""
    w = np.array([b.w for b in brackets])
    xy = _mix(np.stack([b.left.xy for b in brackets]), np.stack([b.right.xy for b in brackets]), w[:, None, None])
    ca = np.stack([b.left.conf for b in brackets])
    return xy, ca + w[:, None] * (np.stack([b.right.conf for b in brackets]) - ca)   # (confidences: never NaN)


def _lerp(a: Sample, b: Sample, t: float) -> tuple[np.ndarray, np.ndarray]:
    w = _weight(a, b, t)
    return _mix(a.xy, b.xy, w), a.conf + w * (b.conf - a.conf)


def _zero_nan(a: np.ndarray) -> np.ndarray:
    """``a`` with its NaN (a joint missing on one side) 0: np.nan_to_num's checks cost more
    than the arithmetic here (twice per merge), and poses are never infinite."""
    return np.where(np.isnan(a), 0.0, a)


def _fades(u: np.ndarray) -> np.ndarray:
    """1 at u <= 0 falling smoothly (smoothstep) to 0 at u >= 1, elementwise."""
    u = np.clip(u, 0.0, 1.0)
    return 1.0 - u * u * (3 - 2 * u)


class Track:
    def __init__(self, max_samples: int = 512, key_times: int = 16):
        self.samples: list[Sample] = []
        self.last: Sample | None = None          # the last rendered output
        self.key_times: deque[float] = deque(maxlen=key_times)   # as noted (the newest last)
        self._sorted_keys: list[float] = []                      # the same, sorted: the render's lookup
        self.max_samples = max_samples

    def _at(self, samples: list[Sample], t: float) -> tuple[int, Sample | None]:
        """Index of the first sample after t, and the one at or before it (samples are in time
        order: a binary search, as a track not yet rendered may hold hundreds)."""
        i = bisect_right(samples, t, key=_time)
        return i, (samples[i - 1] if i else None)

    def _value(self, samples: list[Sample], t: float):
        i, left = self._at(samples, t)
        if left is None:
            return None
        if i == len(samples) or samples[i].seg != left.seg:
            return left.xy, left.conf
        return _lerp(left, samples[i], t)

    # ------------------------------------------------------------ writing

    def merge(self, times, xy, conf, kinds, seg: int, blend_s: float) -> None:
        """Add samples ``times (n,)`` ascending, ``xy (n, 19, 2)``, ``conf (n, 19)`` and their
        ``kinds`` (one for all, or one per sample)."""
        kinds = [kinds] * len(times) if isinstance(kinds, str) else list(kinds)
        xy, conf = np.array(xy, np.float64), np.array(conf, np.float64)   # one copy; samples are views
        times = np.asarray(times, np.float64)
        new = [Sample(t, x, c, k, seg) for t, x, c, k in zip(times.tolist(), xy, conf, kinds)]
        if not new:
            return
        t_s = new[0].t
        old = self.samples
        n_keep, _ = self._at(old, t_s - EPS)
        keep, removed = old[:n_keep], old[n_keep:]
        cand = keep + new
        last = self.last
        shown_changes = last is not None and last.seg == seg and last.t >= t_s - EPS
        # (The fades below change the new samples' poses in place, all at once: the samples'
        # xy are views of ``xy``, and the NaN of a missing joint stays NaN.)
        if shown_changes and blend_s > 0:
            # The output already showed last.t, and the new samples change what it would show
            # there: continue from what was shown and fade the difference out.
            te = last.t
            v = self._value(cand, te)
            delta = _zero_nan(last.xy - v[0]) if v is not None else np.zeros_like(last.xy)
            past = [s for s in cand if s.t < te - EPS]
            future = [s for s in cand if s.t > te + EPS]     # (new samples only: those kept are before t_s)
            kind = future[0].kind if future else new[-1].kind
            anchor = Sample(te, last.xy.copy(), (v[1] if v is not None else last.conf).copy(), kind, seg)
            if not future:
                future = [Sample(te + blend_s, new[-1].xy, new[-1].conf, kind, seg)]
            else:
                first = len(new) - len(future)
                xy[first:] += delta * _fades((times[first:] - te) / blend_s)[:, None, None]
            cand = past + [anchor] + future
        elif removed and keep and keep[-1].seg == seg == removed[0].seg and blend_s > 0:
            # Replacing samples not shown yet (a prediction corrected by the real keyframe):
            # start from the old trajectory at t_s and fade to the new one.
            old_xy, _ = _lerp(keep[-1], removed[0], t_s)
            delta = _zero_nan(old_xy - new[0].xy)
            xy += delta * _fades((times - t_s) / blend_s)[:, None, None]
        if len(cand) > self.max_samples:
            cand = cand[-self.max_samples:]
        self.samples = cand

    def note_keyframe(self, t: float) -> None:
        if len(self.key_times) == self.key_times.maxlen:
            self._sorted_keys.remove(self.key_times[0])
        self.key_times.append(t)
        insort(self._sorted_keys, t)

    def _near_key(self, t: float, tolerance: float) -> bool:
        keys = self._sorted_keys
        i = bisect_right(keys, t)
        return (i > 0 and t - keys[i - 1] <= tolerance) or (i < len(keys) and keys[i] - t <= tolerance)

    def has_segment(self, seg: int) -> bool:
        """Whether any sample belongs to segment ``seg``."""
        return any(s.seg == seg for s in reversed(self.samples))

    def shown_segment(self) -> int | None:
        """The segment of the last rendered output (None before any)."""
        return None if self.last is None else self.last.seg

    # ------------------------------------------------------------ reading

    def locate(self, t: float, hold_s: float, key_tolerance: float) -> Bracket | None:
        """What the output shows at ``t`` (its value: :func:`evaluate`, for all streams at
        once), or None before the first sample. Past a segment's last sample its last pose is
        held (kind ``predicted``) until ``hold_s`` after its newest keyframe, then nothing until
        the next sample."""
        s = self.samples
        i, left = self._at(s, t + EPS)   # a time on a sample, up to float noise, is that sample's
        if left is None:
            return None
        if i == len(s) or s[i].seg != left.seg:
            newest_key = self.key_times[-1] if self.key_times else left.t
            if t - min(left.t, newest_key) > hold_s:   # counted from the keyframe, not the lead
                return None
            right, w, kind = left, 0.0, (left.kind if t - left.t < EPS else PREDICTED)
        else:
            right = s[i]
            w, kind = _weight(left, right, t), right.kind
        if self._near_key(t, key_tolerance):
            kind = KEYFRAME
        # Keep the sample at or before t (the left end of the next render's bracket).
        if i > 1:
            del s[:i - 1]
        return Bracket(t, left, right, w, kind)

    def shown(self, bracket: Bracket, xy: np.ndarray, conf: np.ndarray) -> None:
        """The output showed ``bracket`` as ``xy``, ``conf`` (a later merge blends from it)."""
        self.last = Sample(bracket.t, xy, conf, bracket.kind, bracket.left.seg)
