"""The streaming engine: keyframes in (any number of streams), poses out at a fixed rate.

In-process use, without sockets (the ZeroMQ service is a thin layer over this)::

    from posetween.export.backends import create_backend
    from posetween.stream import Engine, EngineConfig

    engine = Engine(create_backend("auto"), EngineConfig(rate=60, lookahead=1, budget_ms=20))
    ...
    # whenever the detector gives a pose (capture_time: the frame's timestamp, seconds):
    engine.push("cam0", capture_time, xy, conf, layout="mediapipe33")
    ...
    # in the display/output loop (now: time.monotonic(), the engine's clock):
    for pose in engine.poll():        # every output tick due since the last call
        draw(pose.stream, pose.time, pose.kind, pose.xy, pose.conf)   # pose: OutputPose

``poll()`` runs the model on the windows that are waiting (one batched backend call for all
ready streams), then renders the output ticks that are due. A threaded caller may split the
two: ``process()`` in a model thread (``wait_for_work()`` blocks until a keyframe comes) and
``render()`` in the output thread at ``next_tick()``; ``sample(now)`` renders every stream at
an arbitrary time instead of on the engine's own ticks.

How it works: each stream keeps a window of the K newest keyframes (``window.py``). With
lookahead L >= 1, keyframe k closes the interval between keyframes k-L and k-L+1; the model
answers Q evenly spaced queries in it from the window ending at k, and the answer goes on past
its right end at the velocity of its last segment for ``lead_queries`` samples (the *lead*).
The lead is extrapolated, not asked of the model: the decoder's queries attend to each other,
and queries outside the interval, where training never puts them, make the answers inside it
worse. With lookahead 0, the model predicts Q queries from keyframe k to ``horizon_intervals``
input intervals past it. The output shows stream ``s`` at capture time ``tick - lag_s``
(``clock.py``) and interpolates the dense samples linearly (``track.py``).

The model's time is hidden, not waited for. The lag is the clock offset plus L input intervals,
so when keyframe k arrives the output is just reaching the start of the interval k fills; for
the few milliseconds until the model answers, it shows the previous window's lead (lookahead
1: a prediction, kind ``predicted``; lookahead 0: the previous prediction), and the answer
takes over with a blend wherever it differs from what was shown. ``budget_ms`` bounds the
model: a window whose answer is not back ``budget_ms`` after its keyframe arrived is filled by
linear interpolation (extrapolation past the newest keyframe) instead, kind ``fallback``,
counted; an answer that comes later still replaces what is not shown yet (``late_answers``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import chain

import numpy as np

from .clock import Lag, TickClock
from .config import EngineConfig
from .frames import FALLBACK, INTERPOLATED, KEYFRAME, PREDICTED, Keyframe, OutputPose
from .guard import Guard, score_many
from .stats import RateLimitedLog, Stats
from .track import Track, evaluate
from .validate import InputError, check_seq, check_stream_id, check_time, to_model_pose
from .window import DROP, RESTART, START, StreamWindow

log = logging.getLogger("posetween.stream")

MAX_EXTRAPOLATION = 2.0   # fallback past the newest keyframe: at most one interval of constant velocity
PROBE_S = 0.5             # an overloaded engine still tries the model this often
DEFER_BUSY = 0.33         # defer_batches: hold windows for a larger call when the model is this busy
DEFER_MARGIN_S = 0.002    # ... until at least this long (or a quarter of the call) before it must start
DEFER_MARGIN_MAX_S = 0.005  # ... at most this long (a late wake-up doubles it)
BUSY_WINDOW_S = 0.5       # ... busy: over this long


@dataclass
class PushResult:
    accepted: bool
    reason: str | None = None      # drop reason; or restart reason when accepted and restarted
    restarted: bool = False
    detail: str = ""


@dataclass
class _Job:
    stream: str
    seg: int
    arrival: float
    deadline: float
    key_xy: np.ndarray      # (K, 19, 2)
    key_conf: np.ndarray    # (K, 19)
    key_time: np.ndarray    # (K,)
    query: np.ndarray       # (Q,)
    conf: np.ndarray        # (Q, 19) output confidences
    kinds: list[str]        # (Q,) what each answer is: interpolated or predicted
    lead: np.ndarray        # (P,) times past the last query the answer is extrapolated to
    done: bool = False
    fell_back: bool = False
    inflight: bool = False   # taken into a model call


@dataclass
class _Stream:
    window: StreamWindow
    track: Track
    lag: Lag
    seq_out: int = 0
    queued: _Job | None = None   # the newest window waiting for the model
    debt: int = 0                # windows fallen back since the model last answered one
    guard: Guard = dataclasses.field(default_factory=Guard)   # how far the model is trusted here


@dataclass
class ModelCall:
    """One batched model call: taken by :meth:`Engine.begin_call`, run by :meth:`run` (in any
    thread, without the engine's lock: onnxruntime releases the GIL meanwhile), merged by
    :meth:`Engine.end_call`."""
    batch: list[_Job]
    late: list[_Job]                # windows that fall back with this call's
    arrays: list[np.ndarray]        # the model's inputs
    backend: object
    wide: bool
    start: float                    # engine clock when taken
    clock: object = None            # the engine's clock when it is the real one (None: simulated)
    out: np.ndarray | None = None   # (n, Q, 19, 2) answers, after run()
    error: Exception | None = None
    elapsed: float = 0.0            # seconds of the backend call
    done: float = 0.0               # engine clock at the call's end

    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            out = np.asarray(self.backend.run(*self.arrays))[:len(self.batch)]
            if not np.isfinite(out).all():
                raise FloatingPointError("the model returned non-finite poses")
            self.out = out
        except Exception as e:   # (end_call counts and logs it; the windows fall back)
            self.error = e
        finally:
            # The call's end, taken where it ran (not when its merge gets its turn): what the
            # deadlines are judged by, and what the next calls are predicted from.
            self.elapsed = time.perf_counter() - t0
            self.done = self.start + self.elapsed if self.clock is None else self.clock()


def fallback_poses(key_xy: np.ndarray, key_conf: np.ndarray, key_time: np.ndarray, query: np.ndarray,
                   max_alpha: float) -> np.ndarray:
    """Per-joint linear interpolation through the keyframes where each joint was seen (hold
    before the first; past the last, constant velocity up to ``max_alpha`` of the last
    interval, hold with ``max_alpha`` 1). ``(K, 19, 2), (K, 19), (K,), (Q,)`` -> ``(Q, 19, 2)``."""
    return fallback_batch(key_xy[None], key_conf[None], key_time[None], query[None], max_alpha)[0]


def fallback_batch(key_xy: np.ndarray, key_conf: np.ndarray, key_time: np.ndarray, query: np.ndarray,
                   max_alpha: float) -> np.ndarray:
    """:func:`fallback_poses` of B windows at once: ``(B, K, 19, 2), (B, K, 19), (B, K), (B, Q)``
    -> ``(B, Q, 19, 2)``. Vectorised: under overload every window falls back, and one call for
    all of them leaves the output thread its time."""
    B, K = key_time.shape
    J = key_conf.shape[2]
    seen = (key_conf > 0) & np.isfinite(key_xy).all(-1)                 # (B, K, J)
    xy = np.where(seen[..., None], key_xy, 0.0)
    k = np.arange(K)[None, None, :, None]                                # (1, 1, K, 1)
    kt, qq = key_time[:, None, :, None], query[:, :, None, None]
    at_or_before = seen[:, None] & (kt <= qq)                            # (B, Q, K, J)
    after = seen[:, None] & (kt > qq)
    left = np.where(at_or_before, k, -1).max(2)                          # (B, Q, J)
    right = np.where(after, k, K).min(2)
    newest = np.where(seen, np.arange(K)[None, :, None], -1).max(1)      # (B, J)
    prev = np.where(seen[:, None] & (k < left[:, :, None, :]), k, -1).max(2)   # seen before `left`
    has_left, has_right = left >= 0, right < K
    # Bracket (a, b) and the fraction along it, for each case.
    a = np.where(has_left, left, right).clip(0, K - 1)
    b = np.where(has_right, right, a)
    extrapolate = has_left & ~has_right & (prev >= 0) & (max_alpha > 1)
    a = np.where(extrapolate, prev, a).clip(0, K - 1)
    b = np.where(extrapolate, left, b).clip(0, K - 1)
    bi, ji = np.arange(B)[:, None, None], np.arange(J)[None, None, :]
    ta, tb = key_time[bi, a], key_time[bi, b]
    span = tb - ta
    safe = np.abs(span) > 1e-12
    alpha = np.where(safe, (query[:, :, None] - ta) / np.where(safe, span, 1.0), 0.0)
    alpha = np.clip(alpha, 0.0, np.where(extrapolate, max_alpha, 1.0))
    xa, xb = xy[bi, a, ji], xy[bi, b, ji]
    out = xa + alpha[..., None] * (xb - xa)
    out[np.broadcast_to(newest[:, None, :] < 0, out.shape[:-1])] = np.nan   # never seen
    return out


def extrapolate(times: np.ndarray, poses: np.ndarray, later: np.ndarray) -> np.ndarray:
    """``poses (Q, 19, 2)`` at ``times (Q,)`` continued to ``later (P,)`` at the velocity of
    their last segment -> ``(P, 19, 2)``."""
    velocity = (poses[-1] - poses[-2]) / (times[-1] - times[-2])
    return poses[-1] + (later - times[-1])[:, None, None] * velocity


class LinearOnly:
    """A stand-in for the model that answers every window with linear interpolation of its
    keyframes (the fallback's): the service with no model cost, whose capacity is the ceiling
    the service itself sets (``posetween serve --linear-only``, benchmarks/capacity.py)."""

    name = "linear-only"

    def __init__(self, window: int):
        self.window = window

    def run(self, key_xy, key_conf, key_time, query_time) -> np.ndarray:
        """Linear through the two newest keyframes, for a whole batch at once (a joint unseen in
        one takes the other's position; unseen in both: 0, with confidence 0 in the output)."""
        a, b = key_xy[:, -2], key_xy[:, -1]                               # (B, J, 2)
        a = np.where(key_conf[:, -2, :, None] > 0, a, np.nan)
        b = np.where(key_conf[:, -1, :, None] > 0, b, np.nan)
        a, b = np.where(np.isnan(a), b, a), np.where(np.isnan(b), a, b)
        span = key_time[:, -1] - key_time[:, -2]
        alpha = np.clip((query_time - key_time[:, -2, None]) / np.where(span > 0, span, 1.0)[:, None], 0.0, 2.0)
        return np.nan_to_num(a[:, None] + alpha[..., None, None] * (b - a)[:, None])


class Engine:
    def __init__(self, backend, config: EngineConfig | None = None, *, clock=time.monotonic,
                 stats: Stats | None = None, wide_backend=None):
        self.backend = backend
        # The same model with more threads, for batches of wide_batch windows or more (many
        # streams at once): one thread is fastest for a few windows, both cores for many.
        self.wide_backend = wide_backend
        self.cfg = config or EngineConfig()
        fixed_q = getattr(backend, "queries", None)
        if fixed_q is not None and fixed_q != self.cfg.queries:   # an exported static-shape graph
            log.warning("backend %s answers exactly %d queries per window; using %d instead of %d",
                        getattr(backend, "name", "?"), fixed_q, fixed_q, self.cfg.queries)
            self.cfg = dataclasses.replace(self.cfg, queries=int(fixed_q))
        self.K = int(backend.window)
        self._frac = np.arange(self.cfg.queries) / (self.cfg.queries - 1)   # where the queries fall in an interval
        self.now = clock
        self.stats = stats or Stats()
        self.ticks = TickClock(self.cfg.rate, self.cfg.max_catchup_s)
        self._streams: dict[str, _Stream] = {}
        self._jobs: deque[_Job] = deque()
        self._inflight: list[_Job] = []
        self._stale: list[_Job] = []      # windows too late for the model, waiting for their fallback
        self._observed: list[tuple] = []  # keyframes for the guards to compare, all at the next answers
        self._max_jobs = 4 * self.cfg.max_streams
        self._lock = threading.RLock()
        self._work = threading.Condition(self._lock)
        self._bad = RateLimitedLog(log)
        self._events = RateLimitedLog(log, every=5.0, level=logging.INFO)   # restarts, evictions
        # Numbering that keeps increasing for a stream id for the engine's life, also when the
        # stream is evicted and comes back, without remembering evicted ids: a new segment takes
        # the next engine-wide segment number, a new stream's frames start at the engine-wide
        # count of frames so far (above any number that id had).
        self._segments = 0
        self._frames_total = 0
        self._model_failed = False
        # Recent calls, (windows, seconds), and seconds per window once two sizes were seen: one
        # of each for the backend (False) and the wide backend (True), whose costs differ.
        self._latency: dict[bool, deque[tuple[int, float]]] = {False: deque(maxlen=16), True: deque(maxlen=16)}
        self._slope = {False: 0.0, True: 0.0}
        self._last_probe = -math.inf
        self._cost_cache: dict[bool, tuple] = {}
        self._n_calls = 0
        self._calls: deque[tuple[float, float]] = deque()   # (end, seconds) of the recent calls
        self._defer_margin = DEFER_MARGIN_S   # defer_batches: how long before the predicted last moment
        self._deferring = False

    # ------------------------------------------------------------ input

    def push(self, stream_id: str, capture_time: float, xy, conf=None, layout: str | None = "posetween19",
             seq: int | None = None, now: float | None = None) -> PushResult:
        """Give the engine one pose of one stream. ``xy (J, 2)`` and ``conf (J,)`` in ``layout``
        (None: guessed from the joint count); missing joints: confidence 0. ``capture_time``:
        seconds, the source's clock; ``seq``: the source's sequence number, optional. Bad input
        is counted by reason, logged (rate-limited) and dropped: the result says why."""
        now = self.now() if now is None else now
        try:
            check_stream_id(stream_id)
            t = check_time(capture_time)
            seq = check_seq(seq)
            xy19, conf19 = to_model_pose(xy, conf, layout)
        except InputError as e:
            return self.drop(e.reason, f"stream {str(stream_id)[:64]!r}: {e}")
        if not (conf19 > 0).any():
            return self.drop("empty_pose", "", quiet=True)
        with self._lock:
            st = self._streams.get(stream_id)
            if st is None:
                self._evict_idle(now)
                if len(self._streams) >= self.cfg.max_streams and not self._evict_for(stream_id, now):
                    return self.drop("too_many_streams", f"stream {stream_id!r} refused: {self.cfg.max_streams} "
                                                         "streams, each with a keyframe within its gap limit")
                st = _Stream(StreamWindow(stream_id, self.cfg, self.K), Track(),
                             Lag(self.cfg.max_lag_slew, self.cfg.max_lag_catchup), seq_out=self._frames_total)
            d = st.window.check(t, xy19, conf19, seq, now)
            if d.action == DROP:
                if d.reason == "conflict":      # the next keyframe may confirm it
                    st.window.hold_conflict(d)
                return self.drop(d.reason, f"stream {stream_id!r}: {d.detail}")
            self._streams[stream_id] = st
            segment = None
            if d.action in (START, RESTART):
                segment = self._segments
                self._segments += 1
            if d.action == RESTART:
                self.stats.restart(d.reason)
                self._events(f"restart:{d.reason}", "stream %r restarts (%s): %s", stream_id, d.reason, d.detail)
                self._cancel(stream_id)
                # Perhaps another clock, or another delay.
                st.lag = Lag(self.cfg.max_lag_slew, self.cfg.max_lag_catchup)
            if self.cfg.guard and d.action not in (START, RESTART):
                prediction = st.guard.take(st.window.segment, t)
                if prediction is not None:
                    self._observed.append((st.guard, prediction, t, xy19, conf19))
                    if len(self._observed) >= self._max_jobs:    # bounded, whatever the caller does
                        self._score_guards()
            st.window.add(Keyframe(t, xy19, conf19, seq, now), d, segment)
            if d.first is not None:
                st.track.note_keyframe(d.first.time)
            st.track.note_keyframe(t)
            self.stats.add("keyframes_in")
            self._schedule(st, now)
            self._work.notify_all()
        return PushResult(True, d.reason, d.action == RESTART, d.detail)

    def drop(self, reason: str, message: str, quiet: bool = False) -> PushResult:
        """Count (and log, rate-limited) a dropped input; used by the service for wire errors too."""
        self.stats.drop(reason)
        if not quiet:
            self._bad(reason, "dropped input (%s): %s", reason, message)
        return PushResult(False, reason, False, message)

    def _schedule(self, st: _Stream, now: float) -> None:
        cfg, w, Q, L = self.cfg, st.window, self.cfg.queries, self.cfg.lookahead
        keys = w.keys
        if len(keys) >= L + 1:
            # No budget in the lag: the previous window's lead covers the model's time.
            self._retarget(st, w.offset() + L * w.interval() + cfg.extra_delay_ms / 1000.0)
        if L >= 1 and not st.track.has_segment(w.segment):
            # A segment starts with its keyframe as it is, where the output will first show it
            # (the answer for the interval it opens replaces it).
            k = keys[max(len(keys) - L - 1, 0)]
            st.track.merge([k.time], k.xy[None], k.conf[None], KEYFRAME, w.segment, 0.0)
        if len(keys) < L + 1:
            return
        if L >= 1:
            # Q queries from the interval's left keyframe to its right one, both included: the
            # new window's estimate at the left keyframe takes over from the previous window's
            # with a blend (track.py), so the two windows' answers join without a step. Past the
            # right keyframe, the lead: shown while the next window is computed.
            a, b = keys[-L - 1], keys[-L]
            frac = self._frac
            query = a.time + (b.time - a.time) * frac
            query[-1] = b.time
            conf = a.conf + frac[:, None] * (b.conf - a.conf)
            kinds = [INTERPOLATED] * Q
            span = min(w.interval(), max(cfg.lead_intervals * w.interval(), 1.5 * cfg.budget_s))
            P = cfg.lead_queries
            lead = b.time + span * np.arange(1, P + 1) / max(P, 1)
        else:
            k = keys[-1]
            query = k.time + cfg.horizon_intervals * w.interval() * np.arange(Q) / (Q - 1)
            conf = np.tile(k.conf, (Q, 1))
            kinds = [PREDICTED] * Q
            lead = np.zeros(0)
        key_xy, key_conf, key_time = w.arrays()
        budget = self._budget(w, keys[-1], lead)
        job = _Job(w.id, w.segment, now, now + budget, key_xy, key_conf, key_time, query, conf, kinds, lead)
        old = st.queued
        if old is not None and not old.done and not old.inflight:
            # Its stream's newer window is here (a burst, or a busy model): the model answers the
            # newer one; the older interval, if it is shown at all, is the linear fallback.
            self._resolve(old, superseded=True)
        if budget <= 0:
            # Too late for the model: its fallback with the next call's (all at once), not in
            # the output thread's render.
            if len(self._stale) >= self._max_jobs:
                self._fall_back(self._stale)
                self._stale = []
            self._stale.append(job)
        else:
            if len(self._jobs) >= self._max_jobs:     # bounded whatever the input does
                self._resolve(self._jobs.popleft())
            self._jobs.append(job)
        st.queued = job

    def _budget(self, w: StreamWindow, newest: Keyframe, lead: np.ndarray) -> float:
        """Seconds the model may take on a window before its fallback is merged. With
        ``budget_from_lead``, as long as what the output shows meanwhile lasts (less one output
        period and this keyframe's lateness): the previous window's lead (lookahead >= 1) or
        prediction (lookahead 0) past the keyframe the output is reaching; never below
        ``budget_ms``. At 15 fps, with a lead of one interval, that is about 58 ms instead of
        10: a burst of 64 windows is answered in one call before anything falls back. Nothing (the fallback at once) for a keyframe
        taken later than that lead lasts: the output has passed what the answer would cover,
        and the model's time goes to the windows still in time (a backlog drains)."""
        cfg = self.cfg
        if not cfg.budget_from_lead:
            return cfg.budget_s
        if cfg.lookahead >= 1:
            covered = min(w.interval(), max(cfg.lead_intervals * w.interval(), 1.5 * cfg.budget_s)) \
                if cfg.lead_queries else 0.0
        else:
            covered = (cfg.horizon_intervals - 1.0) * w.interval()
        # The output reaches the keyframe's interval extra_delay later than the lag alone says.
        covered += cfg.extra_delay_ms / 1000.0
        late = (newest.arrival - newest.time) - w.offset()
        if late >= covered:
            # Taken later than the lead lasts (input processed behind, a backlog): the output
            # has passed what the model would answer in time, so the window falls back at once
            # and the model's time goes to windows that are still fresh.
            return 0.0
        return max(cfg.budget_s, covered - late - 1.0 / cfg.rate)

    def _retarget(self, st: _Stream, target: float) -> None:
        """Aim the stream's lag at ``target``. A small change slews (evenly spaced pose times);
        one beyond ``max_lag_error_s`` (a stale backlog delivered late, a start in a burst, a
        delivery that became slower for good) is set at once: silently when nothing of the
        segment has been shown yet, else as a new segment (``resync``), so that the output is
        at the normal delay again with the next keyframe instead of after a long slew."""
        lag = st.lag
        if lag.value is not None and abs(lag.value - target) > self.cfg.max_lag_error_s:
            if st.track.shown_segment() == st.window.segment:
                self._resync(st, f"output delay {lag.value * 1000:.0f} ms -> {target * 1000:.0f} ms "
                                 "(clock offset plus the lookahead's intervals)")
            else:
                lag.value = None
        lag.set_target(target)

    def _resync(self, st: _Stream, detail: str) -> None:
        """Start a new segment of the stream with its keyframes kept (they are right, only late)."""
        w = st.window
        w.segment = self._segments
        self._segments += 1
        self._cancel(w.id)
        st.track = Track()
        for k in w.keys:
            st.track.note_keyframe(k.time)
        st.lag = Lag(self.cfg.max_lag_slew, self.cfg.max_lag_catchup)
        self.stats.restart("resync")
        self._events("restart:resync", "stream %r resynchronised: %s", w.id, detail)

    def _cancel(self, stream_id: str) -> None:
        for job in chain(self._inflight, self._jobs, self._stale):
            if job.stream == stream_id:
                job.done = True

    def _fall_back(self, jobs) -> None:
        """:meth:`_resolve` without answers, for many jobs in one vectorised fallback."""
        jobs = [j for j in jobs if not j.done]
        if len(jobs) < 2:
            for job in jobs:
                self._resolve(job)
            return
        stack = lambda name: np.stack([getattr(j, name) for j in jobs])
        poses = fallback_batch(stack("key_xy"), stack("key_conf"), stack("key_time"), stack("query"),
                               MAX_EXTRAPOLATION)
        for job, p in zip(jobs, poses):
            self._resolve(job, fallback=p)

    def _score_guards(self) -> None:
        """The guards' comparisons of the keyframes pushed since the last answers, all at once:
        a stream's trust is needed only when its next answer is merged."""
        if self._observed:
            score_many(self._observed)
            self._observed = []

    def _curves(self, batch: list[_Job], arrays: list[np.ndarray]) -> dict[int, np.ndarray]:
        """The guard's curve (the fallback's poses) of the batch's windows that get their
        answer now, computed for all at once: at every query for those whose stream's guard
        does not trust the model fully (their answers lean on it), else at the last two
        queries only (what the guard compares with the next keyframe)."""
        full, tail = [], []
        for i, job in enumerate(batch):
            st = self._streams.get(job.stream)
            if not job.done and st is not None:
                (full if st.guard.trust < 1.0 else tail).append(i)
        curves = {}
        for rows, queries in ((full, slice(None)), (tail, slice(-2, None))):
            if rows:
                xy, conf, t, q = (a[rows] for a in arrays)
                curves.update(zip(rows, fallback_batch(xy, conf, t, q[:, queries], MAX_EXTRAPOLATION)))
        return curves

    def _resolve(self, job: _Job, poses: np.ndarray | None = None, superseded: bool = False,
                 fallback: np.ndarray | None = None, curve: np.ndarray | None = None) -> None:
        """Merge a job's answer into its stream's track; without an answer, the fallback (given
        when computed for many jobs at once). ``curve``: the guard's curve for the answer, when
        computed for many jobs at once (:meth:`_curves`)."""
        if job.done:
            return
        job.done = True
        kinds = job.kinds
        if poses is None:
            poses = fallback if fallback is not None else \
                fallback_poses(job.key_xy, job.key_conf, job.key_time, job.query, MAX_EXTRAPOLATION)
            kinds = [FALLBACK] * len(job.query)
            job.fell_back = True
            self.stats.add("superseded_windows" if superseded else "fallbacks")
            st = self._streams.get(job.stream)
            if st is not None and not superseded:
                st.debt += 1
        elif self.cfg.guard:
            poses = self._guarded(job, poses, curve)
        self._merge(job, poses, kinds)

    def _guarded(self, job: _Job, poses: np.ndarray, curve: np.ndarray | None = None) -> np.ndarray:
        """The model's answer as its stream's guard trusts it (guard.py): ``curve + trust *
        (model - curve)``, the curve being the fallback's (given: at every query, or at the last
        two only when the guard trusts the model fully); the raw answer is what the guard will
        hold against the stream's next keyframe."""
        st = self._streams.get(job.stream)
        if st is None:
            return poses
        trust = st.guard.trust
        if curve is None or (trust < 1.0 and len(curve) < len(poses)):
            curve = fallback_poses(job.key_xy, job.key_conf, job.key_time, job.query, MAX_EXTRAPOLATION)
        st.guard.expect(job.seg, job.query, poses, curve)
        if trust >= 1.0:
            return poses
        self.stats.add("guarded_windows")
        return np.where(np.isfinite(curve), curve + trust * (poses - curve), poses)

    def _merge(self, job: _Job, poses: np.ndarray, kinds: list[str]) -> None:
        st = self._streams.get(job.stream)
        if st is None or st.window.segment != job.seg:
            return
        times, conf = job.query, job.conf
        if len(job.lead):   # a fallback's lead is the fallback's too
            lead_kind = FALLBACK if kinds[-1] == FALLBACK else PREDICTED
            times = np.concatenate([times, job.lead])
            poses = np.concatenate([poses, extrapolate(job.query, poses, job.lead)])
            conf = np.concatenate([conf, np.tile(conf[-1], (len(job.lead), 1))])
            kinds = kinds + [lead_kind] * len(job.lead)
        st.track.merge(times, poses, conf, kinds, job.seg, self.cfg.blend_s)

    # ------------------------------------------------------------ model

    def wait_for_work(self, timeout: float | None = None) -> bool:
        """Block until a window waits for the model (or the timeout); True when one does."""
        with self._work:
            if not any(not j.done for j in chain(self._jobs, self._stale)):
                self._work.wait(timeout)
            return any(not j.done for j in chain(self._jobs, self._stale))

    def process(self, now: float | None = None) -> int:
        """Run the model once on the waiting windows (one batch); returns how many windows it
        answered or let fall back (0 also when, with ``defer_batches``, they can wait for more:
        see :meth:`due`). The three steps, for a caller that overlaps one call's merge with the
        next call (the service's model thread): :meth:`begin_call`, :meth:`ModelCall.run` and
        :meth:`end_call`."""
        call = self.begin_call(now)
        if call is None or not call.batch:
            return 0 if call is None else len(call.late)
        call.run()
        return self.end_call(call)

    def begin_call(self, now: float | None = None) -> ModelCall | None:
        """Take the waiting windows for one model call (None: none waits, or with
        ``defer_batches`` they can wait for more). Windows too late for the model fall back
        here at once; a call with an empty ``batch`` had only those."""
        with self._lock:
            given = now is not None
            now = now if given else self.now()
            # Windows too late for the model (already, or by the time a call would end) get
            # their fallback after the call, in one batch with any it misses; if the call
            # takes long, the output's render gives them theirs first (they wait in _inflight).
            late, self._stale = self._stale, []
            due = self.due(now)
            if due is None or due > now:
                self._fall_back(late)
                return None
            batch = []
            while self._jobs and len(batch) < self.cfg.max_batch:
                job = self._jobs.popleft()
                if job.done:
                    continue
                if now > job.deadline:      # already too late: do not spend the model on it
                    late.append(job)
                else:
                    job.inflight = True
                    batch.append(job)
            if batch:
                batch, shed = self._fit(batch, now)
                if shed:                    # shed load: their answers would come too late anyway
                    self.stats.add("shed_windows", len(shed))
                    late += shed
            if not batch:
                self._fall_back(late)
                return ModelCall([], late, [], None, False, now, self.now if not given else None)
            self._inflight.extend(batch + late)
        n = len(batch)
        stack = lambda name: np.stack([getattr(j, name) for j in batch])
        arrays = [stack("key_xy"), stack("key_conf"), stack("key_time"), stack("query")]
        if self.cfg.pad_batch:
            size = 1 << (n - 1).bit_length()
            arrays = [np.concatenate([a, np.repeat(a[-1:], size - n, 0)]) for a in arrays]
        wide = self._wide(n)
        return ModelCall(batch, late, arrays, self.wide_backend if wide else self.backend, wide, now,
                         None if given else self.now)

    def end_call(self, call: ModelCall) -> int:
        """Merge a call's answers (after :meth:`ModelCall.run`); those past their deadline
        fall back first, and come as late answers after it. Returns the windows handled."""
        batch, late, arrays, out, now, done = call.batch, call.late, call.arrays, call.out, call.start, call.done
        n = len(batch)
        if call.error is not None:  # a failing backend must not stop the service: fall back
            self.stats.add("model_errors")
            e = call.error
            if not self._model_failed:
                self._model_failed = True
                log.error("model call failed (%s); its windows fall back", e, exc_info=e)
            else:
                self._bad("model_error", "model call failed again (%s: %s); %d windows fall back",
                          type(e).__name__, e, n)
        self.stats.model_call(call.elapsed, n)
        # What a call costs on the engine's clock, the one deadlines are judged by: the real
        # time on a wall clock, nothing on a simulated one (a video file replayed by the demo).
        self._latency[call.wide].append((n, done - now))
        self._n_calls += 1
        self._calls.append((done, done - now))
        self.stats.answered([done - j.arrival for j in batch])
        if self._deferring:
            # Held windows that then missed their deadline (a call slower than predicted, a
            # thread woken late on a busy machine): hold the next ones less long; else a little
            # longer again.
            self._deferring = False
            missed = any(done > j.deadline for j in batch)
            self._defer_margin = (min(2 * self._defer_margin, DEFER_MARGIN_MAX_S) if missed
                                  else max(0.97 * self._defer_margin, DEFER_MARGIN_S))
        with self._lock:
            # No answer within the budget: the fallback (once); a late answer comes after it.
            self._fall_back(late + [j for j in batch if out is None or done > j.deadline])
            self._score_guards()
            curves = self._curves(batch, arrays) if out is not None and self.cfg.guard else {}
            for i, job in enumerate(batch):
                if out is None:
                    continue
                if not job.done:
                    self._resolve(job, out[i], curve=curves.get(i))
                    st = self._streams.get(job.stream)
                    if st is not None:
                        st.debt = 0
                elif job.fell_back:               # late, but still better than the fallback
                    self.stats.add("late_answers")
                    self._merge(job, out[i], job.kinds)
            mine = set(map(id, batch + late))
            self._inflight = [j for j in self._inflight if id(j) not in mine]
        return n + len(late)

    def due(self, now: float | None = None) -> float | None:
        """Engine-clock time by which :meth:`process` should run (None: no window waits). At once,
        unless ``defer_batches`` and the model is busy (more than DEFER_BUSY of the last 0.5 s):
        then as late as the earliest waiting window allows, less the call's predicted time and a
        margin, so that windows arriving meanwhile (streams spread over the interval) join the
        same call. The lead covers the wait; what a call costs per window falls with its size."""
        with self._lock:
            now = self.now() if now is None else now
            pending = [j for j in self._jobs if not j.done]
            if not pending:      # (windows too late for the model: their fallback at once)
                return now if any(not j.done for j in self._stale) else None
            if (not self.cfg.defer_batches or len(pending) >= self.cfg.max_batch
                    or self._busy(now) < DEFER_BUSY):
                return now
            if self._call_cost() is None:
                return now
            self._deferring = True
            return self._latest_start(pending, margin=self._defer_margin)

    def _latest_start(self, pending: list[_Job], margin: float) -> float | None:
        """When a call for these windows must start for the earliest to be answered within its
        deadline: the predicted cost of the call (nothing before any call is measured) and a
        margin (at least ``margin`` and a quarter of the call)."""
        if not pending:
            return None
        fixed, per_window, _ = self._call_cost(len(pending)) or (0.0, 0.0, False)
        predicted = fixed + per_window * min(len(pending), self.cfg.max_batch)
        return min(j.deadline for j in pending) - predicted - max(margin, 0.25 * predicted)

    def _wide(self, n: int) -> bool:
        """Whether a call of ``n`` windows goes to the wide backend."""
        return self.wide_backend is not None and n >= self.cfg.wide_batch

    def _busy(self, now: float) -> float:
        """Share of the last BUSY_WINDOW_S the model was working."""
        calls = self._calls
        while calls and calls[0][0] < now - BUSY_WINDOW_S:
            calls.popleft()
        return sum(e for _, e in calls) / BUSY_WINDOW_S

    def _fit(self, batch: list[_Job], now: float) -> tuple[list[_Job], list[_Job]]:
        """The windows the model can answer before the earliest of their deadlines (from the
        per-window cost of recent calls), and the rest, which fall back at once. Under load
        every stream keeps its output rate: the model where it fits, the fallback where not.
        The windows of streams that fell back most recently go first, so that the fallback is
        spread over the streams instead of always hitting the same ones."""
        cost = self._call_cost(len(batch))
        if cost is None:
            return batch, []
        fixed, per_window, fitted = cost
        # The most windows one call can answer in time: m, where the m-th latest deadline is
        # after the end of a call of m windows (a window that cannot be saved does not stop
        # the others).
        n_fit = 0
        for m, deadline in enumerate(sorted((j.deadline for j in batch), reverse=True), 1):
            if deadline - now < fixed + per_window * m:
                break
            n_fit = m
        if n_fit < len(batch) and (n_fit == 0 or not fitted) and now - self._last_probe >= PROBE_S:
            # Now and then one window more than the estimate allows, until it has seen two sizes
            # of call (or while nothing fits): it would never learn what one more window costs
            # beside a call's fixed part, or that the machine has recovered.
            self._last_probe = now
            n_fit += 1
        if n_fit == len(batch):
            return batch, []
        end = now + fixed + per_window * n_fit
        debt = lambda j: (j.deadline < end, -(self._streams[j.stream].debt if j.stream in self._streams else 0))
        batch = sorted(batch, key=debt)      # stable: equal debts keep their arrival order
        return batch[:n_fit], batch[n_fit:]

    def _call_cost(self, n: int = 1) -> tuple[float, float, bool] | None:
        """(fixed seconds, seconds per window, whether fitted) of a model call of ``n`` windows,
        from the recent calls of the backend it goes to: a line through (windows, seconds) by
        medians (Theil-Sen: one slow call, a preempted thread, does not tilt it); per window
        only, while all recent calls had one size. None before any call. The wide backend's
        line counts only while it predicts no more than the other's (which is used until the
        wide one has been): calls too small for it must not keep an early slow call of it
        from being corrected."""
        wide = self._wide(n)
        if wide:
            mine, other = self._backend_cost(True), self._backend_cost(False)
            if mine is None or (other is not None and other[0] + other[1] * n < mine[0] + mine[1] * n):
                return other or mine
            return mine
        return self._backend_cost(False) or self._backend_cost(True)

    def _backend_cost(self, wide: bool) -> tuple[float, float, bool] | None:
        cached = self._cost_cache.get(wide)
        if cached is not None and cached[0] == self._n_calls:   # (asked after every keyframe)
            return cached[1]
        calls = list(self._latency[wide])
        cost = self._fit_cost(wide, calls) if calls else None
        self._cost_cache[wide] = (self._n_calls, cost)
        return cost

    def _fit_cost(self, wide: bool, calls: list[tuple[int, float]]) -> tuple[float, float, bool]:
        slopes = sorted((s2 - s1) / (n2 - n1) for i, (n1, s1) in enumerate(calls)
                        for n2, s2 in calls[i + 1:] if n2 != n1)
        if slopes and slopes[len(slopes) // 2] > 0:
            self._slope[wide] = slopes[len(slopes) // 2]
        slope = self._slope[wide]      # (kept while the recent calls are all of one size)
        if slope <= 0:
            per = sorted(s / n for n, s in calls)
            return 0.0, max(per[len(per) // 2], 1e-6), False
        fixed = sorted(s - slope * n for n, s in calls)
        return max(fixed[len(fixed) // 2], 0.0), slope, True

    # ------------------------------------------------------------ output

    def next_tick(self) -> float | None:
        """Engine-clock time of the next output tick (None before the first render)."""
        return self.ticks.next_tick()

    def render(self, now: float | None = None, *, fresh: bool = False) -> list[OutputPose]:
        """Poses of every live stream at each output tick due by ``now``; pose times are the
        ticks' times minus each stream's lag. With ``fresh``, the newest due tick, when it is
        rendered late (a thread that woke late), shows the pose at ``now`` instead: the delay
        stays what the lag says, at the cost of a slightly uneven spacing (the service does
        this; a simulation on its own clock should not)."""
        with self._lock:
            now = self.now() if now is None else now
            skipped = self.ticks.skipped
            ticks = self.ticks.due(now)
            if self.ticks.skipped != skipped:
                self.stats.add("skipped_ticks", self.ticks.skipped - skipped)
            if not ticks:
                return []
            self._expire(now)
            self._evict_idle(now)
            if fresh:   # (ticks caught up after a stall keep their own times)
                ticks[-1] = max(ticks[-1], min(now, ticks[-1] + self.ticks.period))
            out = [p for tau in ticks for p in self._render_at(tau)]
        self.stats.frames([p.kind for p in out])
        return out

    def poll(self, now: float | None = None) -> list[OutputPose]:
        """``process()`` then ``render()``: the whole engine in one call, for in-process use."""
        self.process(now)
        return self.render(now)

    def sample(self, now: float | None = None) -> list[OutputPose]:
        """Every live stream's pose at ``now`` exactly, outside the engine's own ticks (for a
        caller with its own display clock). Do not mix with :meth:`render` in one engine."""
        with self._lock:
            now = self.now() if now is None else now
            self._expire(now)
            self._evict_idle(now)
            out = self._render_at(now)
        self.stats.frames([p.kind for p in out])
        return out

    def _expire(self, now: float) -> None:
        # (Windows too late for the model get their fallback from process(); here only when
        # that has not come for a budget.)
        self._fall_back([j for j in chain(self._inflight, self._jobs) if not j.done and j.deadline < now]
                        + [j for j in self._stale if not j.done and j.deadline + self.cfg.budget_s < now])

    def _render_at(self, tau: float) -> list[OutputPose]:
        tol = 0.4995 / self.cfg.rate   # one output frame per keyframe, even with float noise
        shown = []
        for st in self._streams.values():
            # Catching up (output time running fast) only while no window of the stream awaits
            # the model: the window's budget assumed output time at most real time, and running
            # ahead of it could pass an interval before its answer or fallback is merged.
            lag = st.lag.advance(tau, catch_up=st.queued is None or st.queued.done)
            if lag is None:
                continue
            b = st.track.locate(tau - lag, self.cfg.max_gap_intervals * st.window.interval(), tol)
            if b is not None:
                shown.append((st, b))
        if not shown:
            return []
        # Every stream's pose in one evaluation (the per-stream work above is scalar only).
        xy, conf = evaluate([b for _, b in shown])
        xy32, conf32 = xy.astype(np.float32), conf.astype(np.float32)
        out = []
        for i, (st, b) in enumerate(shown):
            st.track.shown(b, xy[i], conf[i])
            out.append(OutputPose(st.window.id, st.seq_out, b.t, b.kind, xy32[i], conf32[i], b.left.seg))
            st.seq_out += 1
        self._frames_total += len(out)
        return out

    def _evict_idle(self, now: float) -> None:
        for sid in [s for s, st in self._streams.items()
                    if now - st.window.last_arrival > self.cfg.idle_timeout_s]:
            self._evict(sid, f"after {self.cfg.idle_timeout_s:.1f} s without keyframes")

    def _evict_for(self, newcomer: str, now: float) -> bool:
        """Make room for a new stream: evict the idlest stream that shows nothing any more (no
        keyframe for longer than its gap limit, past which its output has stopped). Streams that
        send keyframes are never pushed out by newcomers, and ids kept alive with one message
        each hold their place only for a gap limit (0.8 s before an interval is known)."""
        idle = [(st.window.last_arrival, sid) for sid, st in self._streams.items()
                if now - st.window.last_arrival > st.window.gap_limit()]
        if not idle:
            return False
        self._evict(min(idle)[1], f"for the new stream {newcomer!r} (max_streams {self.cfg.max_streams})")
        return True

    def _evict(self, sid: str, why: str) -> None:
        del self._streams[sid]
        self._cancel(sid)
        self.stats.add("evictions")
        self._events("evict", "stream %r evicted %s", sid, why)

    # ------------------------------------------------------------ introspection

    @property
    def streams(self) -> list[str]:
        with self._lock:
            return list(self._streams)

    def snapshot(self) -> dict:
        """The live counters (what the service publishes on the ``stats`` topic)."""
        with self._lock:
            extra = {"streams": len(self._streams), "pending_windows": sum(not j.done for j in self._jobs)}
        return self.stats.snapshot(**extra)

    def push_frame(self, camera: str, capture_time: float, xy, conf=None, layout: str | None = None,
                   ids=None, now: float | None = None):
        """Several people of one camera frame, unordered: ``xy (N, J, 2)``, ``conf (N, J)``.
        Each person becomes the stream ``<camera>/<person>``, identities from ``ids`` or a
        tracker (``people.py``, which does the work); returns a ``people.FrameResult``."""
        from .people import router_for
        return router_for(self).push(camera, capture_time, xy, conf, layout, ids, now=now)
