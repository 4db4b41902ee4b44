"""The streaming engine's settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from posetween.export.model_files import DEFAULT_QUERIES


@dataclass
class EngineConfig:
    # Output clock
    rate: float = 60.0                 # output poses per second and stream (60, 120, 240, any)
    lookahead: int = 1                 # keyframes to wait for: 1 interpolates (delay one input
                                       # interval), 0 predicts past the newest keyframe
    budget_ms: float = 10.0            # the model's time after a keyframe arrives; later = fallback
                                       # (not part of the delay: the previous window's lead covers it)
    budget_from_lead: bool = True      # allow the model as long as the lead shown meanwhile lasts
                                       # (less a frame), when that is longer than budget_ms
    extra_delay_ms: float = 0.0        # added to the output delay (margin for arrival jitter)
    max_lag_slew: float = 0.02         # output time may run this much fast/slow while the delay adapts,
    max_lag_catchup: float = 0.1       # ... and this much fast while it shrinks and no window of the
                                       # stream awaits the model (late for no reason: the last
                                       # keyframes of a stale backlog set it a little high)
    max_lag_error_s: float = 0.1       # a lag further than this from its target (a stale backlog, a
                                       # changed network delay) is set at once, as a new segment:
                                       # slewing 1 s away at 0.02 s/s would take 50 s
    max_catchup_s: float = 0.25        # an output clock further behind than this skips ticks

    # Model queries
    queries: int = DEFAULT_QUERIES     # Q samples per window (the output draws a curve through them)
    lead_queries: int = 2              # lookahead >= 1: samples past the interval's right keyframe,
                                       # the answer's last velocity (shown while the model works on
                                       # the next window)
    lead_intervals: float = 1.0        # ... spread over this many input intervals (at least 1.5
                                       # budgets, at most one): the model's time on the next window
    horizon_intervals: float = 1.5     # lookahead 0: the prediction covers this many intervals
    blend_s: float = 0.1               # a correction (new data over shown output) blends this long
    guard: bool = True                 # lean a stream on the linear curve while the model keeps losing
                                       # to it on the stream's new keyframes (guard.py)
    max_batch: int = 64                # windows per model call
    defer_batches: bool = False        # under load (the model busy more than a third of the time),
                                       # hold windows until just before the earliest can wait no
                                       # longer, so that one call answers many (for a caller that runs
                                       # the model between its other work; the service's model thread
                                       # needs none: windows gather while a call runs)
    wide_batch: int = 64               # from this many windows, the engine's wide_backend (more threads):
                                       # below, one core for the model, the other for the service's Python
    pad_batch: bool = False            # pad the batch to a power of two (static-shape backends)

    # Stream life
    max_gap_intervals: float = 4.0     # a longer gap between keyframes restarts the stream
    max_jump_torso: float = 1.0        # centre displacement allowed at dt -> 0 (torso lengths) ...
    max_jump_torso_per_s: float = 8.0  # ... plus this much per second of capture time; beyond: restart
    max_scale_change: float = 1.8      # body size ratio between consecutive keyframes; beyond: restart
    initial_interval_s: float = 0.2    # input interval assumed before a stream has shown its own
    interval_window: int = 16          # recent intervals whose median is the input interval
    offset_window: int = 64            # recent messages whose minimum (arrival - capture) maps clocks ...
    offset_window_s: float = 2.0       # ... of those that arrived within this long of the newest (at
                                       # least the newest 4): a later delivery is noticed after this long
    max_interval_s: float = 2.0        # longest input interval (minimum input rate: 0.5 fps); a stream's
                                       # second keyframe may come this late; longer gaps still restart
    idle_timeout_s: float = 5.0        # a stream without an accepted keyframe this long is evicted
    max_streams: int = 64

    def __post_init__(self) -> None:
        problems = []
        if not self.rate > 0:
            problems.append(f"rate must be > 0 (got {self.rate})")
        if self.lookahead not in (0, 1, 2):
            problems.append(f"lookahead must be 0, 1 or 2 (got {self.lookahead})")
        if self.queries < 2:
            problems.append(f"queries must be >= 2 (got {self.queries})")
        if self.lead_queries < 0:
            problems.append(f"lead_queries must be >= 0 (got {self.lead_queries})")
        if not 0 < self.lead_intervals <= 1:
            problems.append(f"lead_intervals must be in (0, 1] (got {self.lead_intervals})")
        if self.budget_ms < 0 or self.extra_delay_ms < 0:
            problems.append("budget_ms and extra_delay_ms must be >= 0")
        if self.max_streams < 1 or self.max_batch < 1:
            problems.append("max_streams and max_batch must be >= 1")
        if not self.max_gap_intervals > 1:
            problems.append(f"max_gap_intervals must be > 1 (got {self.max_gap_intervals})")
        if not self.max_scale_change > 1:
            problems.append(f"max_scale_change must be > 1 (got {self.max_scale_change})")
        if self.max_lag_slew < 0 or self.max_lag_catchup < 0:
            problems.append("max_lag_slew and max_lag_catchup must be >= 0")
        if self.max_lag_error_s <= 0 or self.offset_window_s <= 0 or self.max_interval_s <= 0:
            problems.append("max_lag_error_s, offset_window_s and max_interval_s must be > 0")
        if self.horizon_intervals <= 0 or self.blend_s < 0 or self.initial_interval_s <= 0:
            problems.append("horizon_intervals and initial_interval_s must be > 0, blend_s >= 0")
        if problems:
            raise ValueError("invalid EngineConfig: " + "; ".join(problems))

    @property
    def budget_s(self) -> float:
        return self.budget_ms / 1000.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
