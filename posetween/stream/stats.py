"""Live counters of the streaming engine and a rate-limited logger for bad input."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque

import numpy as np


class Stats:
    """Thread-safe counters. :meth:`snapshot` gives the dict published on the ``stats`` topic."""

    def __init__(self, latency_window: int = 2000):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.counts: Counter[str] = Counter()      # keyframes_in, frames_out, fallbacks, ...
        self.drops: Counter[str] = Counter()       # by reason
        self.restarts: Counter[str] = Counter()    # by reason
        self.kinds: Counter[str] = Counter()       # output frames by kind
        self.model_ms: deque[float] = deque(maxlen=latency_window)
        self.batch: deque[int] = deque(maxlen=latency_window)
        self.answer_ms: deque[float] = deque(maxlen=latency_window)   # keyframe arrival -> model answer

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def drop(self, reason: str) -> None:
        with self._lock:
            self.drops[reason] += 1

    def restart(self, reason: str) -> None:
        with self._lock:
            self.restarts[reason] += 1

    def frames(self, kinds: list[str]) -> None:
        with self._lock:
            self.counts["frames_out"] += len(kinds)
            self.kinds.update(kinds)

    def answered(self, seconds: list[float]) -> None:
        with self._lock:
            self.answer_ms.extend(1000.0 * s for s in seconds)

    def model_call(self, seconds: float, batch: int) -> None:
        with self._lock:
            self.counts["model_calls"] += 1
            self.counts["model_windows"] += batch
            self.model_ms.append(seconds * 1000.0)
            self.batch.append(batch)

    def snapshot(self, **extra) -> dict:
        with self._lock:
            ms = np.array(self.model_ms) if self.model_ms else None
            ans = np.array(self.answer_ms) if self.answer_ms else None
            return {
                "uptime_s": round(time.monotonic() - self.started, 3),
                "keyframes_in": self.counts["keyframes_in"],
                "frames_out": self.counts["frames_out"],
                "fallbacks": self.counts["fallbacks"],
                "late_answers": self.counts["late_answers"],
                "shed_windows": self.counts["shed_windows"],
                "superseded_windows": self.counts["superseded_windows"],
                "guarded_windows": self.counts["guarded_windows"],
                "restarts": sum(self.restarts.values()),
                "restarts_by_reason": dict(self.restarts),
                "evictions": self.counts["evictions"],
                "drops": sum(self.drops.values()),
                "drops_by_reason": dict(self.drops),
                "frames_by_kind": dict(self.kinds),
                "skipped_ticks": self.counts["skipped_ticks"],
                "publishers": max(self.counts["connects"] - self.counts["disconnects"], 0),
                "disconnects": self.counts["disconnects"],
                "refused": self.counts["refused"],
                "send_dropped": self.counts["send_dropped"],
                "model_calls": self.counts["model_calls"],
                "model_errors": self.counts["model_errors"],
                "model_ms_p50": None if ms is None else round(float(np.percentile(ms, 50)), 3),
                "model_ms_p99": None if ms is None else round(float(np.percentile(ms, 99)), 3),
                "model_batch_mean": None if ms is None else round(float(np.mean(self.batch)), 2),
                "answer_ms_p50": None if ans is None else round(float(np.percentile(ans, 50)), 3),
                "answer_ms_p99": None if ans is None else round(float(np.percentile(ans, 99)), 3),
                **extra,
            }


def summary_line(s: dict) -> str:
    drops = ", ".join(f"{k}={v}" for k, v in sorted(s["drops_by_reason"].items())) or "none"
    return (f"streams={s.get('streams', 0)} keyframes_in={s['keyframes_in']} frames_out={s['frames_out']} "
            f"fallbacks={s['fallbacks']} restarts={s['restarts']} evictions={s['evictions']} "
            f"model_ms p50={s['model_ms_p50']} p99={s['model_ms_p99']} drops: {drops}")


class RateLimitedLog:
    """Logs a warning per key at most once every ``every`` seconds, with the count suppressed."""

    def __init__(self, logger: logging.Logger, every: float = 5.0, level: int = logging.WARNING):
        self.logger, self.every, self.level = logger, every, level
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str, *args) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._suppressed[key] += 1
                return
            self._last[key] = now
            n = self._suppressed.pop(key, 0)
        if n:
            message += f" ({n} more like this since the last report)"
        self.logger.log(self.level, message, *args)
