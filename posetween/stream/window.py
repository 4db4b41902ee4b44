"""One stream's sliding window of keyframes, its timing estimates, and its life rules.

The window is keyed by the source's capture timestamps (never arrival times). A keyframe is

* dropped when its sequence number is not above the previous one (``repeated_seq``) or its
  capture time is not later than the previous keyframe's (``time_backwards``);
* a *restart* (a new segment: nothing is interpolated across it) after a gap longer than
  ``max_gap_intervals`` input intervals, when the body centre moves further than a person can
  (``max_jump_torso + max_jump_torso_per_s * dt`` torso lengths), or when the body's size
  changes by more than ``max_scale_change`` (a detector switching to another person); a
  sequence number that starts again after a gap is a restarted source, also a restart;
* otherwise appended.

Everything is bounded: K keyframes, and short histories for the interval and clock-offset
estimates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from posetween.core.skeleton import MID_HIP, NECK, NUM_JOINTS

from .config import EngineConfig
from .frames import Keyframe

ACCEPT, START, RESTART, DROP = "accept", "start", "restart", "drop"


@dataclass
class Decision:
    action: str              # accept | start | restart | drop
    reason: str | None = None
    detail: str = ""


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    return sorted_values[n // 2] if n % 2 else 0.5 * (sorted_values[n // 2 - 1] + sorted_values[n // 2])


def _centre_and_size(xy: np.ndarray, common: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (mid-hip when seen, else the mean of the common joints) and RMS size about the
    mean of the common joints."""
    pts = xy[common]
    mean = pts.mean(0)
    centre = xy[MID_HIP] if common[MID_HIP] else mean
    return centre, float(np.sqrt(((pts - mean) ** 2).sum(-1).mean()))


class StreamWindow:
    def __init__(self, stream_id: str, cfg: EngineConfig, window: int):
        self.id = stream_id
        self.cfg = cfg
        self.K = window
        self.keys: deque[Keyframe] = deque(maxlen=window)
        self.intervals: deque[float] = deque(maxlen=cfg.interval_window)
        self._interval = cfg.initial_interval_s   # median of intervals, updated on add
        self._torsos: deque[float] = deque(maxlen=window)   # torso length of each keyframe (NaN: unseen)
        self.offsets: deque[float] = deque(maxlen=cfg.offset_window)
        self.segment = -1            # becomes 0 with the first keyframe
        self.last_seq: int | None = None
        self.last_time: float | None = None
        self.last_arrival: float | None = None

    # ------------------------------------------------------------ estimates

    def interval(self) -> float:
        """Input interval: median of the recent intervals between consecutive keyframes."""
        return self._interval

    def offset(self) -> float:
        """Local clock minus capture clock: minimum of (arrival - capture) over recent messages
        (the fastest delivery; later ones waited in queues)."""
        return min(self.offsets)

    def torso(self) -> float | None:
        """Median torso length (neck to mid-hip) over the window's keyframes that show it."""
        lengths = sorted(x for x in self._torsos if x > 1e-6)
        return _median(lengths) if lengths else None

    # ------------------------------------------------------------ life rules

    def check(self, time: float, xy: np.ndarray, conf: np.ndarray, seq: int | None) -> Decision:
        if self.last_time is None:
            return Decision(START)
        gap_limit = self.cfg.max_gap_intervals * self.interval()
        dt = time - self.last_time
        if seq is not None and self.last_seq is not None and seq <= self.last_seq:
            if dt > gap_limit:
                return Decision(RESTART, "source_restart", f"sequence {seq} after {self.last_seq}, {dt:.3f} s later")
            return Decision(DROP, "repeated_seq", f"sequence number {seq} not above {self.last_seq}")
        if dt <= 0:
            return Decision(DROP, "time_backwards",
                            f"capture time {time:.6f} not after the previous keyframe's {self.last_time:.6f}")
        if dt > gap_limit:
            return Decision(RESTART, "gap", f"{dt:.3f} s since the previous keyframe (limit {gap_limit:.3f} s)")
        jump = self._jump(xy, conf, dt)
        if jump:
            return Decision(RESTART, "jump", jump)
        return Decision(ACCEPT)

    def _jump(self, xy: np.ndarray, conf: np.ndarray, dt: float) -> str | None:
        prev = self.keys[-1] if self.keys else None
        if prev is None:
            return None
        common = (prev.conf > 0) & (conf > 0)
        if common.sum() < 3:
            return None   # too little seen in both to judge
        c0, s0 = _centre_and_size(prev.xy, common)
        c1, s1 = _centre_and_size(xy, common)
        unit = self.torso() or s0
        if unit <= 1e-6:
            return None
        moved = float(np.linalg.norm(c1 - c0)) / unit
        limit = self.cfg.max_jump_torso + self.cfg.max_jump_torso_per_s * dt
        if moved > limit:
            return f"centre moved {moved:.2f} torso lengths in {dt:.3f} s (limit {limit:.2f})"
        if common.sum() >= 5 and min(s0, s1) > 1e-6:
            ratio = max(s1 / s0, s0 / s1)
            if ratio > self.cfg.max_scale_change:
                return f"body size changed {ratio:.2f}x (limit {self.cfg.max_scale_change:.2f}x)"
        return None

    def add(self, kf: Keyframe, decision: Decision) -> None:
        """Append an accepted keyframe (after :meth:`check`); a start or restart begins a new segment."""
        if decision.action in (START, RESTART):
            self.keys.clear()
            self._torsos.clear()
            self.segment += 1
        elif self.last_time is not None:
            self.intervals.append(kf.time - self.last_time)
            self._interval = _median(sorted(self.intervals))
        self.keys.append(kf)
        seen = kf.conf[NECK] > 0 and kf.conf[MID_HIP] > 0
        self._torsos.append(float(np.hypot(*(kf.xy[NECK] - kf.xy[MID_HIP]))) if seen else float("nan"))
        self.offsets.append(kf.arrival - kf.time)
        self.last_time, self.last_seq, self.last_arrival = kf.time, kf.seq, kf.arrival

    # ------------------------------------------------------------ model input

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The window as model input: ``(K, 19, 2)``, ``(K, 19)``, ``(K,)`` with padding slots
        (confidence 0, times one interval apart before the oldest) first."""
        K, n = self.K, len(self.keys)
        xy = np.full((K, NUM_JOINTS, 2), np.nan)
        conf = np.zeros((K, NUM_JOINTS))
        t = np.empty(K)
        for i, k in enumerate(self.keys):
            xy[K - n + i], conf[K - n + i], t[K - n + i] = k.xy, k.conf, k.time
        if n < K:
            t[:K - n] = self.keys[0].time - self.interval() * np.arange(K - n, 0, -1)
        return xy, conf, t
