"""The engine without sockets, on a simulated clock: schedule, rate, corrections, fallbacks,
stream life (restarts, eviction), bad input and bounded memory. A small random-init model
(its heads start at zero, so its answer is the linear interpolation of the keyframes)."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pytest

from posetween.core.skeleton import COCO_17, MEDIAPIPE_33, get_layout
from posetween.stream import Engine, EngineConfig
from posetween.stream.demo import SimClock
from posetween.stream.engine import fallback_poses

from stream_support import moving_pose, standing_pose, tiny_backend

T0 = 1_700_000_000.0     # capture clock: Unix time
LOCAL0 = 5_000.0         # engine clock: monotonic


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))


def simulate(engine, poses, fps=10.0, duration=3.0, latency=0.003, streams=("a",), gaps=(), model_delay=0.0):
    """Keyframes of each stream at capture T0 + k/fps arrive at LOCAL0 + k/fps + latency; the
    model runs ``model_delay`` after each arrival (as a model thread busy that long would) and
    the output is rendered at each of the engine's ticks, as the service's threads do. Returns
    the output poses."""
    out, k, now, end = [], 0, LOCAL0, LOCAL0 + duration
    runs = deque()
    while now <= end:
        arrival = LOCAL0 + k / fps + latency
        if arrival <= now + 1e-9:
            if k not in gaps:
                for s in streams:
                    engine.push(s, T0 + k / fps, poses(k / fps), np.ones(19), seq=k, now=arrival)
                runs.append(arrival + model_delay)
            k += 1
            continue
        if runs and runs[0] <= now + 1e-9:
            if isinstance(engine.now, SimClock):     # the model's own time is model_delay only
                engine.now.t = runs.popleft()
                engine.process()
            else:
                engine.process(runs.popleft())
            continue
        out += engine.render(now)
        tick = engine.next_tick()
        now = min([arrival, tick if tick is not None and tick > now else now + 1e-3] + list(runs)[:1])
    return out


def linear_truth(key_times, key_poses, t):
    """Per-coordinate linear interpolation of keyframes (what an untrained model answers)."""
    flat = np.stack([p.reshape(-1) for p in key_poses])
    return np.stack([np.interp(t, key_times, flat[:, i]) for i in range(flat.shape[1])], -1).reshape(-1, 19, 2)


def test_lookahead1_interpolates_at_the_output_rate(backend):
    # (A generous budget: the model's real time counts against it, on a CPU shared with training.)
    cfg = EngineConfig(rate=120, lookahead=1, budget_ms=300)
    out = simulate(Engine(backend, cfg), moving_pose, fps=10, duration=3.0)
    t = np.array([p.time for p in out]) - T0
    delay = 0.1 + 0.003                 # one input interval + the 3 ms transit (no budget)
    assert len(out) == pytest.approx(120 * (3.0 - delay), abs=3)   # from the first keyframe on
    assert np.allclose(np.diff(t), 1 / 120, rtol=0.03)             # evenly spaced pose times
    assert 3.0 - t[-1] == pytest.approx(delay, abs=2 / 120)        # behind the engine's clock
    keys = np.arange(0, 3.0, 0.1)
    truth = linear_truth(keys, [moving_pose(k) for k in keys], t)
    xy = np.array([p.xy for p in out])
    assert np.abs(xy - truth).max() < 0.05                                       # pixels
    assert {p.kind for p in out} <= {"keyframe", "interpolated"}
    half = 0.5 / 120       # the frame nearest each keyframe is marked "keyframe"
    assert sum(p.kind == "keyframe" for p in out) == ((keys > t[0] - half) & (keys < t[-1] + half)).sum()
    assert [p.seq for p in out] == list(range(len(out)))


def test_lookahead2_waits_two_intervals(backend):
    cfg = EngineConfig(rate=60, lookahead=2, budget_ms=300)
    out = simulate(Engine(backend, cfg), moving_pose, fps=10, duration=2.0)
    t = np.array([p.time for p in out]) - T0
    assert 2.0 - t[-1] == pytest.approx(0.2 + 0.003, abs=2 / 60)
    keys = np.arange(0, 2.0, 0.1)
    truth = linear_truth(keys, [moving_pose(k) for k in keys], t)
    assert np.abs(np.array([p.xy for p in out]) - truth).max() < 0.05


def test_lookahead0_prediction_corrected_without_a_jump(backend):
    # Constant velocity, then the body turns back: the prediction overshoots and the real
    # keyframe corrects it, blended over blend_s instead of jumping.
    turn = 1.0
    path = lambda t: standing_pose() + np.array([200.0 * (t if t < turn else 2 * turn - t), 0.0])
    cfg = EngineConfig(rate=120, lookahead=0, budget_ms=60, blend_s=0.1)
    out = simulate(Engine(backend, cfg), path, fps=10, duration=2.0)
    t = np.array([p.time for p in out]) - T0
    x = np.array([p.xy[8, 0] for p in out])
    assert {p.kind for p in out} <= {"keyframe", "predicted"}
    # The delay is only the transit: the pose time runs 3 ms behind the clock.
    assert 2.0 - t[-1] == pytest.approx(0.003, abs=2 / 120)
    # The prediction runs past the turn (overshoot) and then comes back smoothly.
    overshoot = x.max() - path(turn)[8, 0]
    assert overshoot > 10
    steps = np.abs(np.diff(x))
    assert steps.max() < 0.5 * overshoot and steps.max() < 200.0 / 120 * 5   # per-frame motion: 1.7 px
    assert abs(x[-1] - path(t[-1])[8, 0]) < 20


def largest_step(poses) -> float:
    xy = np.array([p.xy for p in poses])
    return float(np.linalg.norm(np.diff(xy, axis=0), axis=-1).max())


def test_lookahead1_hides_the_model_latency(backend):
    # A model that answers 20 ms after each keyframe arrives: the output does not wait for it.
    # It shows the previous window's lead (a prediction) meanwhile, then the answer takes over
    # without a step.
    # (On a simulated clock: the real time of the call must not count on a busy machine.)
    cfg = EngineConfig(rate=120, lookahead=1, budget_ms=50)
    engine = Engine(backend, cfg, clock=SimClock(LOCAL0))
    out = simulate(engine, moving_pose, fps=10, duration=3.0, model_delay=0.02)
    t = np.array([p.time for p in out]) - T0
    assert 3.0 - t[-1] == pytest.approx(0.1 + 0.003, abs=2 / 120)     # one interval + transit
    snap = engine.snapshot()
    assert snap["fallbacks"] == 0 and snap["late_answers"] == 0
    kinds = [p.kind for p in out]
    # 20 ms at 120 Hz: two or three frames of each interval come from the lead.
    assert 2 * 25 <= kinds.count("predicted") <= 3 * 30
    assert set(kinds) == {"keyframe", "interpolated", "predicted"}
    truth = [moving_pose(x) for x in np.arange(0, 3.0, 1 / 120)]
    assert largest_step(out) <= 1.5 * largest_step([type("P", (), {"xy": x}) for x in truth])


def test_model_over_budget_falls_back_to_linear_and_late_answers_still_count(backend):
    # A model call that takes 30 ms against a budget of 5 ms, while the output goes on (as the
    # service's output thread does): the interval is shown as the fallback until the answer
    # comes, then the late answer takes over.
    clock, out = SimClock(LOCAL0), []

    def render_until(t):
        while engine.next_tick() is not None and engine.next_tick() <= t:
            clock.t = engine.next_tick()
            out.extend(engine.render())
        clock.t = t

    class SlowModel:
        window = backend.window

        def run(self, *arrays):
            render_until(clock.t + 0.03)
            return backend.run(*arrays)

    engine = Engine(SlowModel(), EngineConfig(rate=60, lookahead=1, budget_ms=5, budget_from_lead=False), clock=clock)
    for k in range(15):
        render_until(LOCAL0 + k / 10 + 0.003)
        engine.push("a", T0 + k / 10, moving_pose(k / 10), np.ones(19), seq=k)
        engine.process()
        out.extend(engine.render())
    snap = engine.snapshot()
    assert snap["fallbacks"] == 14
    # Every answer came late and was merged; once calls are known to be too slow, the engine
    # stops spending the model on windows it would miss anyway, but for a probe every 0.5 s.
    assert snap["late_answers"] == snap["model_calls"]
    assert 3 <= snap["model_calls"] <= 6 and snap["shed_windows"] == 14 - snap["model_calls"]
    kinds = [p.kind for p in out]
    assert {"fallback", "interpolated"} <= set(kinds)
    # Until the answer, the frames are the fallback: linear interpolation of the keyframes.
    t = np.array([p.time for p in out]) - T0
    keys = np.arange(0, 1.5, 0.1)
    truth = linear_truth(keys, [moving_pose(k) for k in keys], t)
    fell_back = np.array([k == "fallback" for k in kinds])
    assert np.abs(np.array([p.xy for p in out]) - truth)[fell_back].max() < 1e-3


def test_fallback_poses_per_joint():
    key_xy = np.zeros((3, 19, 2))
    key_xy[:, :, 0] = [[0.0], [1.0], [2.0]]
    conf = np.ones((3, 19))
    conf[1, 0] = 0                    # joint 0 missing in the middle keyframe
    conf[:, 1] = 0                    # joint 1 never seen
    out = fallback_poses(key_xy, conf, np.array([0.0, 1.0, 2.0]), np.array([1.5, 3.0]), max_alpha=2.0)
    assert out[0, 0, 0] == pytest.approx(1.5) and out[0, 5, 0] == pytest.approx(1.5)
    assert out[1, 5, 0] == pytest.approx(3.0)          # constant velocity past the newest
    assert np.isnan(out[:, 1]).all()


def test_fallback_poses_match_per_joint_interp():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = np.sort(rng.uniform(0, 1, 8)) + 1.7e9
        xy = rng.normal(0, 100, (8, 19, 2))
        conf = (rng.random((8, 19)) > rng.uniform(0, 0.9)).astype(float)
        q = rng.uniform(t[0] - 0.2, t[-1] + 0.5, 8)
        for max_alpha in (1.0, 2.0):
            expected = np.full((8, 19, 2), np.nan)
            for j in range(19):
                idx = np.flatnonzero(conf[:, j] > 0)
                if len(idx):
                    for c in (0, 1):
                        expected[:, j, c] = np.interp(q, t[idx], xy[idx, j, c])
                if max_alpha > 1 and len(idx) >= 2:
                    beyond = q > t[idx[-1]]
                    a = np.minimum((q[beyond] - t[idx[-2]]) / (t[idx[-1]] - t[idx[-2]]), max_alpha)
                    expected[beyond, j] = xy[idx[-2], j] + a[:, None] * (xy[idx[-1], j] - xy[idx[-2], j])
            got = fallback_poses(xy, conf, t, q, max_alpha)
            assert np.allclose(got, expected, equal_nan=True, atol=1e-6)


def test_gap_restarts_and_output_stops_during_it(backend):
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1, budget_ms=300, max_gap_intervals=4))
    out = simulate(engine, moving_pose, fps=10, duration=3.0, gaps=set(range(10, 20)))   # 1 s without keyframes
    assert engine.snapshot()["restarts_by_reason"] == {"gap": 1}
    segs = [p.segment for p in out]
    assert segs == sorted(segs) and set(segs) == {0, 1}
    t = np.array([p.time for p in out]) - T0
    # No output beyond the hold limit (last keyframe + 4 intervals) inside the gap, and no
    # interpolation across it.
    assert not ((t > 0.9 + 0.4 + 1e-6) & (t < 2.0 - 1e-6)).any()
    assert all(p.kind in ("keyframe", "predicted") for p in out if 0.9 < p.time - T0 < 2.0)


def test_person_switch_restarts_once_confirmed(backend):
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1))
    now = LOCAL0
    for k in range(5):
        assert engine.push("a", T0 + k / 10, standing_pose(), now=now + k / 10).accepted
    # Another person: the first keyframe of it is held back (it may be a one-off), the second
    # confirms it and the stream restarts with both.
    far = engine.push("a", T0 + 0.5, standing_pose(centre=(1100.0, 360.0)), now=now + 0.5)
    assert not far.accepted and far.reason == "conflict" and "jump" in far.detail
    again = engine.push("a", T0 + 0.6, standing_pose(centre=(1102.0, 360.0)), now=now + 0.6)
    assert again.accepted and again.restarted and again.reason == "jump"
    assert [k.time - T0 for k in engine._streams["a"].window.keys] == pytest.approx([0.5, 0.6])
    small = engine.push("a", T0 + 0.7, standing_pose(centre=(1100.0, 360.0), torso=30.0), now=now + 0.7)
    assert small.reason == "conflict" and "size" in small.detail
    small2 = engine.push("a", T0 + 0.8, standing_pose(centre=(1101.0, 360.0), torso=31.0), now=now + 0.8)
    assert small2.restarted and small2.reason == "jump"
    assert engine.snapshot()["restarts_by_reason"] == {"jump": 2}


def test_second_body_on_the_same_id_does_not_restart_it_forever(backend):
    # Two people sent on one id, alternately: the stream keeps the one it follows and drops the
    # other's keyframes (counted), instead of restarting on every keyframe with no output.
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1, budget_ms=300))
    out = []
    for k in range(40):
        centre = (400.0 + 4 * k, 360.0) if k % 2 == 0 else (1000.0 - 4 * k, 360.0)
        engine.push("a", T0 + k / 20, standing_pose(centre=centre), now=LOCAL0 + k / 20)
        engine.process(LOCAL0 + k / 20)
        out += engine.render(LOCAL0 + k / 20 + 0.01)
    snap = engine.snapshot()
    assert snap["restarts"] == 0 and snap["drops_by_reason"] == {"conflict": 20}
    assert len(out) > 60 and {p.segment for p in out} == {0}
    assert max(p.xy[8, 0] for p in out) < 600          # always the first body


def test_time_backwards_repeated_seq_and_bad_values_dropped(backend):
    engine = Engine(backend, EngineConfig())
    p = standing_pose()
    assert engine.push("a", T0, p, seq=1, now=LOCAL0).accepted
    assert engine.push("a", T0 - 0.1, p, seq=2, now=LOCAL0).reason == "time_backwards"
    assert engine.push("a", T0, p, seq=3, now=LOCAL0).reason == "time_backwards"
    assert engine.push("a", T0 + 0.1, p, seq=1, now=LOCAL0).reason == "repeated_seq"
    bad = p.copy()
    bad[3] = np.nan
    assert engine.push("a", T0 + 0.1, bad, seq=4, now=LOCAL0).reason == "non_finite"
    assert engine.push("a", T0 + 0.1, p[:17], seq=4, now=LOCAL0).reason == "bad_joint_count"
    assert engine.push("a", T0 + 0.1, p, np.zeros(19), seq=4, now=LOCAL0).reason == "empty_pose"
    assert engine.push("a", T0 + 0.1, p, seq=4, now=LOCAL0).accepted
    # A source that restarts its sequence numbers after a long gap is a new segment, not a drop.
    r = engine.push("a", T0 + 5.0, p, seq=0, now=LOCAL0 + 5.0)
    assert r.accepted and r.restarted and r.reason == "source_restart"
    assert engine.snapshot()["drops_by_reason"] == {"time_backwards": 2, "repeated_seq": 1, "non_finite": 1,
                                                    "bad_joint_count": 1, "empty_pose": 1}


def test_idle_streams_evicted_and_stream_count_bounded(backend):
    engine = Engine(backend, EngineConfig(max_streams=3, idle_timeout_s=2.0))
    for i in range(3):
        assert engine.push(f"s{i}", T0, standing_pose(), now=LOCAL0).accepted
    r = engine.push("s3", T0, standing_pose(), now=LOCAL0 + 1.0)
    assert not r.accepted and r.reason == "too_many_streams"
    assert engine.push("s0", T0 + 1.5, standing_pose(), now=LOCAL0 + 1.5).accepted
    engine.render(LOCAL0 + 2.5)               # s1, s2 idle for 2.5 s: evicted
    assert sorted(engine.streams) == ["s0"]
    assert engine.push("s3", T0 + 2.5, standing_pose(), now=LOCAL0 + 2.5).accepted
    assert engine.snapshot()["evictions"] == 2


def test_memory_bounded_whatever_the_input(backend):
    cfg = EngineConfig(max_streams=4)
    engine = Engine(backend, cfg)
    for k in range(1000):     # nobody runs the model or renders: the queue must not grow
        engine.push("a", T0 + k / 30, standing_pose(), now=LOCAL0 + k / 30)
    assert len(engine._jobs) <= 4 * cfg.max_streams
    st = engine._streams["a"]
    assert len(st.window.keys) == backend.window and len(st.track.samples) <= st.track.max_samples
    for i in range(500):
        engine.push(f"x{i}", T0, standing_pose(), now=LOCAL0)
    assert len(engine.streams) == cfg.max_streams


def test_streams_batched_into_one_call_and_layouts_converted(backend):
    engine = Engine(backend, EngineConfig(rate=30, lookahead=1, budget_ms=50))
    rng = np.random.default_rng(0)
    coco = rng.uniform(100, 500, (17, 2))
    mp = rng.uniform(100, 500, (33, 2))
    for k in range(3):
        now = LOCAL0 + k / 10
        engine.push("coco", T0 + k / 10, coco + k, layout="coco17", now=now)
        engine.push("mediapipe", T0 + k / 10, mp + k, np.full(33, 0.9), layout="mediapipe33", now=now)
        engine.push("own", T0 + k / 10, standing_pose() + k, now=now)
        assert engine.process(now) == (3 if k else 0)
    snap = engine.snapshot()
    assert snap["model_calls"] == 2 and snap["model_batch_mean"] == 3
    out = engine.render(LOCAL0 + 0.3)         # shows capture time 0.2 s (delay: one interval)
    last = {p.stream: p for p in out}
    assert set(last) == {"coco", "mediapipe", "own"}
    lacks = [j for j, src in enumerate(COCO_17.sources) if not src]
    assert (last["coco"].conf[lacks] == 0).all() and (last["coco"].conf[[0, 1, 8]] == 1).all()
    assert np.allclose(last["mediapipe"].conf, 0.9)
    assert get_layout("mediapipe33") is MEDIAPIPE_33


def test_newcomer_evicts_the_idlest_stream_that_shows_nothing(backend):
    # Ids kept with one keyframe each hold their place only for a gap limit; streams that keep
    # sending are never pushed out.
    engine = Engine(backend, EngineConfig(max_streams=4))
    for k in range(40):                                   # two live streams, 10 fps
        now = LOCAL0 + k / 10
        for s in ("live1", "live2"):
            engine.push(s, T0 + k / 10, standing_pose(), now=now)
        if k == 0:
            assert engine.push("junk1", T0, standing_pose(), now=now).accepted
            assert engine.push("junk2", T0, standing_pose(), now=now).accepted
            assert engine.push("new0", T0, standing_pose(), now=now).reason == "too_many_streams"
        if k == 30:                                       # 3 s later: the junk ids show nothing
            assert engine.push("new1", T0 + 3, standing_pose(), now=now).accepted
            assert engine.push("new2", T0 + 3, standing_pose(), now=now).accepted
            assert engine.push("new3", T0 + 3, standing_pose(), now=now).reason == "too_many_streams"
    assert sorted(engine.streams) == ["live1", "live2", "new1", "new2"]
    assert engine.snapshot()["evictions"] == 2


def test_segment_and_seq_keep_increasing_after_eviction(backend):
    engine = Engine(backend, EngineConfig(rate=30, lookahead=1, budget_ms=300, idle_timeout_s=1.0))
    out = []
    for start in (0.0, 3.0, 6.0):                         # the stream comes back after eviction
        for k in range(10):
            now = LOCAL0 + start + k / 10
            engine.push("a", T0 + start + k / 10, moving_pose(k / 10), now=now)
            engine.process(now)
            out += engine.render(now)
        out += engine.render(LOCAL0 + start + 2.5)        # idle: evicted
    assert engine.snapshot()["evictions"] == 3 and engine.snapshot()["restarts"] == 0
    segs, seqs = [p.segment for p in out], [p.seq for p in out]
    assert len(set(segs)) == 3 and segs == sorted(segs)
    assert all(b > a for a, b in zip(seqs, seqs[1:]))
    assert [p.time for p in out] == sorted(p.time for p in out)


@pytest.mark.parametrize("fps", [1.0, 0.6])
def test_slow_stream_down_to_the_minimum_rate_is_shown(backend, fps):
    # A stream at 1 fps (or 0.6) is interpolated, not restarted at every keyframe.
    engine = Engine(backend, EngineConfig(rate=30, lookahead=1, budget_ms=300))
    out = simulate(engine, moving_pose, fps=fps, duration=8.0)
    snap = engine.snapshot()
    assert snap["restarts"] == 0
    t = np.array([p.time for p in out]) - T0
    assert len(out) == pytest.approx(30 * (8.0 - 1 / fps - 0.003), abs=3)
    assert {p.kind for p in out} <= {"keyframe", "interpolated", "predicted"}


def test_below_the_minimum_rate_every_keyframe_starts_a_segment(backend):
    engine = Engine(backend, EngineConfig(rate=30, lookahead=1, max_interval_s=2.0))
    simulate(engine, moving_pose, fps=0.4, duration=8.0)
    assert engine.snapshot()["restarts_by_reason"] == {"gap": 3}


class CostlyModel:
    """The real (tiny) model, which takes ``per_window`` seconds of the simulated clock per
    window, rendering the output meanwhile as the service's output thread would."""

    def __init__(self, backend, clock, engine_ref, out, per_window, fixed=0.0):
        self.backend, self.clock, self.engine_ref, self.out, self.per_window = backend, clock, engine_ref, out, per_window
        self.fixed = fixed
        self.window = backend.window
        self.batches = []

    def run(self, *arrays):
        n = len(arrays[0])
        self.batches.append(n)
        engine, end = self.engine_ref[0], self.clock.t + self.fixed + self.per_window * n
        while engine.next_tick() is not None and engine.next_tick() <= end:
            self.clock.t = engine.next_tick()
            self.out.extend(engine.render())
        self.clock.t = end
        return self.backend.run(*arrays)


def run_synchronised(backend, streams, per_window, cfg, seconds=3.0, fps=10.0):
    """``streams`` streams whose keyframes arrive at the same instants; returns the output,
    the engine and the model's batch sizes."""
    clock, out, ref = SimClock(LOCAL0), [], []
    model = CostlyModel(backend, clock, ref, out, per_window)
    engine = Engine(model, cfg, clock=clock)
    ref.append(engine)
    for k in range(int(seconds * fps)):
        arrival = LOCAL0 + k / fps + 0.003
        while engine.next_tick() is not None and engine.next_tick() <= arrival:
            clock.t = engine.next_tick()
            out.extend(engine.render())
        clock.t = arrival
        for i in range(streams):
            engine.push(f"s{i}", T0 + k / fps, moving_pose(k / fps) + i, np.ones(19), seq=k)
        engine.process()
        out.extend(engine.render())
    return out, engine, model.batches


def test_budget_from_the_lead_lets_a_slower_model_answer(backend):
    # 20 ms for a window against a 5 ms budget: at 10 fps the lead covers 50 ms, so the model
    # is waited for (the output shows the lead meanwhile) and nothing falls back.
    cfg = EngineConfig(rate=60, lookahead=1, budget_ms=5)
    out, engine, _ = run_synchronised(backend, 1, 0.020, cfg)
    snap = engine.snapshot()
    assert snap["fallbacks"] == 0 and snap["model_calls"] == 29
    assert {p.kind for p in out} == {"keyframe", "interpolated", "predicted"}
    fixed = EngineConfig(rate=60, lookahead=1, budget_ms=5, budget_from_lead=False)
    assert run_synchronised(backend, 1, 0.020, fixed)[1].snapshot()["fallbacks"] >= 25


def test_overload_runs_the_model_on_what_fits_and_every_stream_keeps_its_rate(backend):
    # 24 streams arriving together, 3 ms of model per window: about 11 fit in the lead's 33 ms
    # (half an interval at 10 fps). The model answers that many per call, the rest fall back at
    # once (never a stall), and which streams fall back rotates.
    cfg = EngineConfig(rate=60, lookahead=1, budget_ms=5, lead_intervals=0.5)
    out, engine, batches = run_synchronised(backend, 24, 0.003, cfg, seconds=4.0)
    snap = engine.snapshot()
    assert 6 <= np.median(batches) <= 12 and max(batches) <= 24
    assert 0.3 < snap["fallbacks"] / (24 * 39) < 0.8
    # Late: the first call (its cost unknown) and one probe of one window more than fits.
    assert snap["late_answers"] <= 24 + 12 and snap["skipped_ticks"] == 0
    for i in range(24):
        mine = [p for p in out if p.stream == f"s{i}" and p.time - T0 > 0.5]
        kinds = {p.kind for p in mine}
        # Its rate: a pose every tick, from 0.5 s to the newest keyframe (3.9 s) less the delay.
        assert len(mine) == pytest.approx(60 * (3.9 - 0.1 - 0.5), abs=3)
        assert np.diff([p.time for p in mine]).max() < 1.5 / 60
        assert {"interpolated", "fallback"} <= kinds, (i, kinds)              # both, rotating


def run_spread(backend, streams, fixed, per_window, cfg, seconds=4.0, fps=10.0):
    """``streams`` streams spread evenly over the input interval; the model costs ``fixed`` +
    ``per_window`` seconds per call. The loop runs the model whenever the engine says it is
    due, as the service's input thread does."""
    clock, out, ref = SimClock(LOCAL0), [], []
    model = CostlyModel(backend, clock, ref, out, per_window, fixed)
    engine = Engine(model, cfg, clock=clock)
    ref.append(engine)
    arrivals = sorted((LOCAL0 + k / fps + i / (fps * streams) + 0.003, k, i)
                      for k in range(int(seconds * fps)) for i in range(streams))
    for arrival, k, i in arrivals:
        while True:
            due, tick = engine.due(), engine.next_tick()
            nxt = min(x for x in (due, tick, arrival) if x is not None)
            if nxt >= arrival:
                break
            clock.t = max(clock.t, nxt)
            if due is not None and due <= clock.t:
                engine.process()
            if tick is not None and tick <= clock.t:
                out.extend(engine.render())
        clock.t = max(clock.t, arrival)
        engine.push(f"s{i}", T0 + k / fps + i / (fps * streams), moving_pose(k / fps) + i, np.ones(19), seq=k)
        engine.process()
        out.extend(engine.render())
    return out, engine, model.batches


def test_deferred_batches_carry_a_busy_model_through_spread_arrivals(backend):
    # 32 streams spread over the interval, a model call costing 6 ms + 0.5 ms a window: one
    # call per keyframe would need 2 s of model a second. Held until their lead runs short,
    # the windows share calls and (nearly) all get the model; without, most fall back (with a
    # lead of half an interval; the default whole interval leaves more time either way).
    cfg = dict(rate=60, lookahead=1, budget_ms=5, lead_intervals=0.5)
    out, engine, batches = run_spread(backend, 32, 0.006, 0.0005, EngineConfig(**cfg, defer_batches=True))
    snap = engine.snapshot()
    windows = snap["keyframes_in"] - 32
    assert snap["fallbacks"] < 0.1 * windows and np.mean(batches) > 3    # (the first half second: not yet busy)
    assert snap["skipped_ticks"] == 0
    _, eager, eager_batches = run_spread(backend, 32, 0.006, 0.0005, EngineConfig(**cfg))
    assert eager.snapshot()["fallbacks"] > 0.3 * windows
    for i in (0, 31):                                    # every stream at its rate
        times = [p.time for p in out if p.stream == f"s{i}" and p.time - T0 > 0.5]
        assert np.diff(times).max() < 1.5 / 60

