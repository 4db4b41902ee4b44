"""The output clock: regular ticks in local time, and each stream's lag behind them.

A tick at local time ``tau`` shows stream ``s`` at capture time ``tau - lag_s``, where the
lag's target is ``offset_s + delay_s``: the capture-to-local clock offset (the minimum of
arrival minus capture over recent messages) plus the delay the lookahead needs (lookahead
intervals; the model's own time is covered by the previous window's lead, see ``engine.py``).
The lag moves towards its target at most
``max_slew`` seconds per second, so the pose times stay evenly spaced (within that fraction)
while the estimates settle.
"""

from __future__ import annotations

import math


class TickClock:
    """Ticks at ``start + n / rate``; :meth:`due` returns the ticks that have come."""

    def __init__(self, rate: float, max_catchup_s: float = 0.25):
        self.period = 1.0 / rate
        self.max_catchup_s = max_catchup_s
        self.start: float | None = None
        self.n = 0
        self.skipped = 0

    def next_tick(self) -> float | None:
        return None if self.start is None else self.start + self.n * self.period

    def due(self, now: float) -> list[float]:
        if self.start is None:
            self.start, self.n = now, 0
        ticks = []
        nxt = self.start + self.n * self.period
        if now - nxt > self.max_catchup_s:           # far behind (a stall): skip, do not burst
            n_now = math.floor((now - self.start) / self.period)
            self.skipped += n_now - self.n
            self.n = n_now
            nxt = self.start + self.n * self.period
        while nxt <= now + 1e-9:
            ticks.append(nxt)
            self.n += 1
            nxt = self.start + self.n * self.period
        return ticks


class Lag:
    """A stream's output lag, slewed towards its target: at most ``max_slew`` seconds per second,
    or ``max_catchup`` while it shrinks and the caller says that is safe (the output runs fast:
    it was later than it needs to be, as after a stale backlog's last keyframes)."""

    def __init__(self, max_slew: float, max_catchup: float):
        self.max_slew = max_slew
        self.max_catchup = max_catchup
        self.value: float | None = None
        self.target: float | None = None
        self.at: float | None = None    # local time of the last update

    def set_target(self, target: float) -> None:
        self.target = target
        if self.value is None:
            self.value = target

    def advance(self, now: float, catch_up: bool = False) -> float | None:
        if self.value is None:
            return None
        if self.at is not None and now > self.at:
            dt = now - self.at
            down = (self.max_catchup if catch_up else self.max_slew) * dt
            self.value += min(max(self.target - self.value, -down), self.max_slew * dt)
        self.at = now
        return self.value
