"""One stream's sliding window of keyframes, its timing estimates, and its life rules.

The window is keyed by the source's capture timestamps (never arrival times). A keyframe is

* dropped when its sequence number is not above the previous one (``repeated_seq``) or its
  capture time is not later than the previous keyframe's (``time_backwards``), both by less
  than a gap (a reordered or repeated message);
* a *restart* at once (a new segment: nothing is interpolated across it) after a gap longer
  than ``max_gap_intervals`` input intervals in capture time *and* in arrival time (the source
  paused);
* a *conflict* when it contradicts the live segment while the source has not paused: the
  capture clock jumped (forwards or backwards by more than a gap, or the sequence numbers
  started again), or the body centre moved further than a person can (``max_jump_torso +
  max_jump_torso_per_s * dt`` torso lengths) or changed size by more than ``max_scale_change``
  (a detector switching to another person). A conflict is a restart only when the next
  keyframe confirms it (follows the conflicting one, not the live segment); otherwise it is
  dropped (``conflict``). So one keyframe stamped far in the future, or a second body sent on
  the same id, cannot restart the stream on every keyframe; a real clock jump or person switch
  costs one keyframe;
* otherwise appended.

The input interval is the median of recent capture intervals; until a stream has shown one,
its second keyframe may come up to ``max_interval_s`` after the first (the minimum input
rate). Everything is bounded: K keyframes, and short histories for the interval and
clock-offset estimates.
"""

from __future__ import annotations

import math
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
    first: Keyframe | None = None   # a confirmed restart begins with the conflicting keyframe before
    conflict: str | None = None     # a dropped conflict: what the restart would be (jump, clock_jump...)


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    return sorted_values[n // 2] if n % 2 else 0.5 * (sorted_values[n // 2 - 1] + sorted_values[n // 2])


def _centre_and_size(xy: np.ndarray, common: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (mid-hip when seen, else the mean of the common joints) and RMS size about the
    mean of the common joints. (Plain sums: numpy's mean costs more than the arithmetic here,
    and this runs twice per keyframe.)"""
    pts = xy[common]
    mean = pts.sum(0) / len(pts)
    centre = xy[MID_HIP] if common[MID_HIP] else mean
    d = pts - mean
    return centre, float(np.sqrt((d * d).sum() / len(pts)))


class StreamWindow:
    def __init__(self, stream_id: str, cfg: EngineConfig, window: int):
        self.id = stream_id
        self.cfg = cfg
        self.K = window
        self.keys: deque[Keyframe] = deque(maxlen=window)
        self.intervals: deque[float] = deque(maxlen=cfg.interval_window)
        self._interval = cfg.initial_interval_s   # median of intervals, updated on add
        self._torsos: deque[float] = deque(maxlen=window)   # torso length of each keyframe (NaN: unseen)
        self._torso: float | None | bool = False            # their median (False: not computed)
        # (arrival, arrival - capture, n) of recent messages, n counting them: a sliding-window
        # minimum (offsets increase from front to back, so the front is the minimum).
        self.offsets: deque[tuple[float, float, int]] = deque()
        self._n_offsets = 0
        self.segment = -1            # set by the engine at each start and restart
        self.last_seq: int | None = None
        self.last_time: float | None = None
        self.last_arrival: float | None = None
        self.pending: tuple[Keyframe, str, str] | None = None   # a conflicting keyframe, its reason, detail
        self._xy = np.full((window, NUM_JOINTS, 2), np.nan)
        self._conf = np.zeros((window, NUM_JOINTS))
        self._t = np.zeros(window)

    # ------------------------------------------------------------ estimates

    def interval(self) -> float:
        """Input interval: median of the recent intervals between consecutive keyframes."""
        return self._interval

    def offset(self) -> float:
        """Local clock minus capture clock: minimum of (arrival - capture) over the messages that
        arrived within ``offset_window_s`` of the newest (at least the newest 4): the fastest
        delivery, the others waited in queues. Burst-delivered stale keyframes do not hold it
        up (the newest of the burst is the fastest), and a delivery that became slower for good
        is noticed after ``offset_window_s``."""
        return self._offset

    def _add_offset(self, arrival: float, offset: float) -> None:
        q = self.offsets
        while q and q[-1][1] >= offset:      # never the minimum again: a newer one is as low
            q.pop()
        q.append((arrival, offset, self._n_offsets))
        self._n_offsets += 1
        newest_kept = self._n_offsets - min(4, self.cfg.offset_window)
        while len(q) > 1 and (arrival - q[0][0] > self.cfg.offset_window_s or
                              q[0][2] < self._n_offsets - self.cfg.offset_window) and q[0][2] < newest_kept:
            q.popleft()
        self._offset = q[0][1]

    def gap_limit(self) -> float:
        """Longest capture-time step that continues the segment. Before the stream has shown its
        interval (two keyframes), the minimum input rate's: a 1 fps stream is not a gap."""
        limit = self.cfg.max_gap_intervals * self.interval()
        return limit if self.intervals else max(limit, self.cfg.max_interval_s)

    def torso(self) -> float | None:
        """Median torso length (neck to mid-hip) over the window's keyframes that show it."""
        if self._torso is False:      # (asked for every keyframe: computed once per change)
            lengths = sorted(x for x in self._torsos if x > 1e-6)
            self._torso = _median(lengths) if lengths else None
        return self._torso

    # ------------------------------------------------------------ life rules

    def check(self, time: float, xy: np.ndarray, conf: np.ndarray, seq: int | None,
              arrival: float | None = None) -> Decision:
        """What to do with a keyframe (``arrival``: its local arrival time; None: as if it came
        one capture step after the previous one). Changes nothing but the pending conflict."""
        if self.last_time is None:
            return Decision(START)
        gap_limit = self.gap_limit()
        dt = time - self.last_time
        waited = dt if arrival is None else arrival - self.last_arrival
        paused = waited > gap_limit        # nothing arrived for a gap: start again at once
        conflict = None
        if seq is not None and self.last_seq is not None and seq <= self.last_seq:
            if abs(dt) <= gap_limit and not paused:
                return Decision(DROP, "repeated_seq", f"sequence number {seq} not above {self.last_seq}")
            conflict = ("source_restart", f"sequence {seq} after {self.last_seq}, {dt:+.3f} s of capture time")
        elif dt <= 0:
            if -dt <= gap_limit and not paused:
                return Decision(DROP, "time_backwards",
                                f"capture time {time:.6f} not after the previous keyframe's {self.last_time:.6f}")
            conflict = ("clock_jump", f"capture time went back {-dt:.3f} s")
        elif dt > gap_limit:
            if paused:
                return Decision(RESTART, "gap", f"{dt:.3f} s since the previous keyframe (limit {gap_limit:.3f} s)")
            conflict = ("clock_jump", f"capture time went {dt:.3f} s forwards in {waited:.3f} s")
        else:
            jump = self._jump(self.keys[-1] if self.keys else None, xy, conf, dt)
            if jump:
                conflict = ("jump", jump)
        if conflict is None:
            return Decision(ACCEPT)
        if paused:
            return Decision(RESTART, *conflict)
        first = self._confirms(time, xy, conf, seq)
        if first is not None:
            return Decision(RESTART, self.pending[1], self.pending[2].replace("unconfirmed", "confirmed"), first)
        held = Keyframe(time, xy, conf, seq, time - dt + waited if arrival is None else arrival)
        return Decision(DROP, "conflict", f"{conflict[1]} ({conflict[0]}, unconfirmed)", held, conflict[0])

    def hold_conflict(self, decision: Decision) -> None:
        """Remember a dropped conflicting keyframe: the next keyframe may confirm it."""
        self.pending = (decision.first, decision.conflict, decision.detail)

    def _confirms(self, time: float, xy: np.ndarray, conf: np.ndarray, seq: int | None) -> Keyframe | None:
        """The pending conflicting keyframe, when this one follows it (not the live segment)."""
        if self.pending is None:
            return None
        first = self.pending[0]
        dt = time - first.time
        if not 0 < dt <= self.gap_limit():
            return None
        if seq is not None and first.seq is not None and seq <= first.seq:
            return None
        if self._jump(first, xy, conf, dt):
            return None
        return first

    def _jump(self, prev: Keyframe | None, xy: np.ndarray, conf: np.ndarray, dt: float) -> str | None:
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
        moved = math.dist(c1.tolist(), c0.tolist()) / unit
        limit = self.cfg.max_jump_torso + self.cfg.max_jump_torso_per_s * dt
        if moved > limit:
            return f"centre moved {moved:.2f} torso lengths in {dt:.3f} s (limit {limit:.2f})"
        if common.sum() >= 5 and min(s0, s1) > 1e-6:
            ratio = max(s1 / s0, s0 / s1)
            if ratio > self.cfg.max_scale_change:
                return f"body size changed {ratio:.2f}x (limit {self.cfg.max_scale_change:.2f}x)"
        return None

    def add(self, kf: Keyframe, decision: Decision, segment: int | None = None) -> None:
        """Append an accepted keyframe (after :meth:`check`); a start or restart begins segment
        ``segment`` (the engine's numbering) with a fresh clock-offset estimate (the source's
        clock may have changed), after the conflicting keyframe it confirms, if any."""
        self.pending = None
        if decision.action in (START, RESTART):
            self.keys.clear()
            self._torsos.clear()
            self._torso = False
            self.offsets.clear()
            self._xy.fill(np.nan)
            self._conf.fill(0.0)
            self.segment = self.segment + 1 if segment is None else segment
            if decision.first is not None:
                self._append(decision.first)
        self._append(kf)

    def _append(self, kf: Keyframe) -> None:
        if self.keys:
            self.intervals.append(kf.time - self.keys[-1].time)
            self._interval = _median(sorted(self.intervals))
        self.keys.append(kf)
        # The model's input arrays, kept shifted (newest last) instead of rebuilt per window.
        self._xy[:-1], self._conf[:-1], self._t[:-1] = self._xy[1:], self._conf[1:], self._t[1:]
        self._xy[-1], self._conf[-1], self._t[-1] = kf.xy, kf.conf, kf.time
        seen = kf.conf[NECK] > 0 and kf.conf[MID_HIP] > 0
        self._torsos.append(math.dist(kf.xy[NECK].tolist(), kf.xy[MID_HIP].tolist()) if seen else float("nan"))
        self._torso = False
        self._add_offset(kf.arrival, kf.arrival - kf.time)
        self.last_time, self.last_seq, self.last_arrival = kf.time, kf.seq, kf.arrival

    # ------------------------------------------------------------ model input

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The window as model input: ``(K, 19, 2)``, ``(K, 19)``, ``(K,)`` with padding slots
        (confidence 0, times one interval apart before the oldest) first."""
        K, n = self.K, len(self.keys)
        xy, conf, t = self._xy.copy(), self._conf.copy(), self._t.copy()
        if n < K:
            t[:K - n] = self.keys[0].time - self.interval() * np.arange(K - n, 0, -1)
        return xy, conf, t
