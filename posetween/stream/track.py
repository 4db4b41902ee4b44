"""One stream's output trajectory: dense samples from the model, rendered at any time.

The model answers Q queries per interval; the track keeps those samples (time-ordered) and
the output clock interpolates between them with a cubic Hermite curve whose tangents are the
samples' slopes, each from the parabola through it and its neighbours in the same answer
(``_set_slopes``): it passes through every sample, is exact wherever the samples lie on a line
or a parabola, and its velocity is continuous, so a few samples per interval give what many
would (a linear interpolation of them has a corner at every sample: velocity steps that a game
or a robot reads as acceleration spikes). New samples replace the ones at and after their
first time. When that changes what the output already showed, or was about to show (a late
keyframe, a lookahead-0 prediction corrected by the real keyframe), the difference is blended
out over ``blend_s`` with a smoothstep, so the output never jumps. Samples of different
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
    # (19, 2) velocity per second here, from the samples of the same answer (``_set_slopes``)
    slope: np.ndarray | None = None


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


_NO_SLOPE = np.full((19, 2), np.nan)   # (a sample without one: the chord is its tangent)


def _hermite(a, b, slope_a, slope_b, h, w) -> np.ndarray:
    """The cubic Hermite curve from ``a`` to ``b`` (..., 19, 2) with these slopes (per second;
    the chord's where one is NaN) over ``h`` seconds, at ``w`` (0 to 1) of the way (h and w
    broadcast against the poses); a joint missing (NaN) on one side takes the other side's
    value."""
    chord = b - a
    m1, m2 = slope_a * h, slope_b * h
    m1, m2 = np.where(np.isfinite(m1), m1, chord), np.where(np.isfinite(m2), m2, chord)
    w2, w3 = w * w, w * w * w
    curve = a + (3 * w2 - 2 * w3) * chord + (w - 2 * w2 + w3) * m1 + (w3 - w2) * m2
    return np.where(np.isfinite(chord), curve, _mix(a, b, w))


def evaluate(brackets: list[Bracket]) -> tuple[np.ndarray, np.ndarray]:
    """``(xy (n, 19, 2), conf (n, 19))`` of n brackets at once: the output renders every
    stream of a tick in one evaluation instead of a few small array operations per stream.
    The pose is on the cubic Hermite curve between the bracket's samples, with their slopes as
    its tangents (:func:`_hermite`); confidences are linear."""
    n = len(brackets)
    arrays, h, w = [], np.empty(n), np.empty(n)
    for i, k in enumerate(brackets):
        a, b = k.left, k.right
        arrays += (a.xy, b.xy, _NO_SLOPE if a.slope is None else a.slope,
                   _NO_SLOPE if b.slope is None else b.slope, a.conf, b.conf)
        h[i], w[i] = b.t - a.t, k.w
    poses = np.concatenate(arrays[0::6] + arrays[1::6] + arrays[2::6] + arrays[3::6]).reshape(4, n, 19, 2)
    w = w[:, None, None]
    xy = _hermite(*poses, h[:, None, None], w)
    conf = np.concatenate(arrays[4::6] + arrays[5::6]).reshape(2, n, 19)
    return xy, conf[0] + w[:, :, 0] * (conf[1] - conf[0])   # (confidences: never NaN)


def _set_slopes(samples: list[Sample], times: np.ndarray | None = None, xy: np.ndarray | None = None) -> None:
    """Each sample's velocity (per second): the slope of the parabola through it and its two
    neighbours (one-sided at the ends: exact for a parabola too), NaN where a joint is missing
    nearby; with two samples the chord's, with one 0. ``samples`` are one answer's (their
    ``times`` and ``xy``, when the caller has them as arrays already)."""
    n = len(samples)
    if n == 0:
        return
    xy = np.stack([s.xy for s in samples]) if xy is None else xy
    if n == 1:
        samples[0].slope = np.zeros_like(xy[0])
        return
    t = np.array([s.t for s in samples]) if times is None else times
    h = np.maximum(t[1:] - t[:-1], EPS)[:, None, None]
    chord = (xy[1:] - xy[:-1]) / h                       # (n - 1, 19, 2): each interval's slope
    slope = np.empty_like(xy)
    if n == 2:
        slope[:] = chord
    else:
        # Inside, the parabola's slope is the neighbouring chords' mean weighted by the other
        # interval; at an end, the end chord moved away from the next by its share of the two.
        hl, hr = h[:-1], h[1:]
        slope[1:-1] = (hr * chord[:-1] + hl * chord[1:]) / (hl + hr)
        slope[0] = chord[0] + (chord[0] - chord[1]) * (h[0] / (h[0] + h[1]))
        slope[-1] = chord[-1] + (chord[-1] - chord[-2]) * (h[-1] / (h[-1] + h[-2]))
    for s, v in zip(samples, slope):
        s.slope = v


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
        """What ``samples`` show at ``t`` (xy, conf), as the render would; None before them."""
        i, left = self._at(samples, t)
        if left is None:
            return None
        if i == len(samples) or samples[i].seg != left.seg:
            return left.xy, left.conf
        right = samples[i]
        w = _weight(left, right, t)
        conf = left.conf + w * (right.conf - left.conf)
        if left.slope is None or right.slope is None:
            # A sample being merged has no slope yet: the line between them (this value sets
            # how much a correction fades out, and the fade starts from what was shown).
            return _mix(left.xy, right.xy, w), conf
        return _hermite(left.xy, right.xy, left.slope, right.slope, right.t - left.t, w), conf

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
        answer = (new, times, xy)   # the samples that get slopes, after any fade
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
            answer = ([s for s in past if s.t >= t_s - EPS] + [anchor] + future,)
        elif removed and keep and keep[-1].seg == seg == removed[0].seg and blend_s > 0:
            # Replacing samples not shown yet (a prediction corrected by the real keyframe):
            # start from the old trajectory at t_s and fade to the new one.
            old_xy, _ = self._value(old, t_s)
            delta = _zero_nan(old_xy - new[0].xy)
            xy += delta * _fades((times - t_s) / blend_s)[:, None, None]
        _set_slopes(*answer)
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
            bracket = Bracket(t, left, left, 0.0, left.kind if t - left.t < EPS else PREDICTED)
        else:
            bracket = Bracket(t, left, s[i], _weight(left, s[i], t), s[i].kind)
        if self._near_key(t, key_tolerance):
            bracket.kind = KEYFRAME
        # Keep the sample at or before t (the left end of the next render's bracket).
        if i > 1:
            del s[:i - 1]
        return bracket

    def shown(self, bracket: Bracket, xy: np.ndarray, conf: np.ndarray) -> None:
        """The output showed ``bracket`` as ``xy``, ``conf`` (a later merge blends from it)."""
        self.last = Sample(bracket.t, xy, conf, bracket.kind, bracket.left.seg)
