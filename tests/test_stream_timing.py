"""The service's timing under real conditions, over real TCP sockets on 127.0.0.1: a restart of
the service while the detector and the consumer stay connected, source clocks that jump, a
stream whose first second arrives in one burst. Each must be back at the normal output delay
(one input interval behind the capture clock, lookahead 1) within seconds, not minutes.

The margins are generous (the machine may be busy): a failure here is seconds, not
milliseconds, which is what these defects looked like."""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

from posetween.stream import Engine, EngineConfig
from posetween.stream.client import PosePublisher, PoseSubscriber
from posetween.stream.clock import Lag
from posetween.stream.service import Service

from stream_support import (Collector, LivePublisher, ServeProcess, delays, free_tcp_address, moving_pose, tiny_backend,
                           tiny_model_file)

FPS = 15.0
RATE = 60.0
NORMAL = 1 / FPS          # lookahead 1: one input interval behind (plus the transit)
SLACK = 0.03              # the delay may differ by this much from before (a busy machine)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("served"))


@pytest.fixture(autouse=True)
def no_full_collections():
    # This process sends the keyframes: a full garbage collection of the test session's heap
    # (80-120 ms were seen) would hold a keyframe back and show as output delay that the service
    # did not cause. Objects alive now are exempt from collection until the test ends.
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def engine(backend) -> Engine:
    return Engine(backend, EngineConfig(rate=RATE, lookahead=1, budget_ms=100))


def published_between(poses, a: float, b: float):
    return [p for p in poses if a <= p.published < b]


@pytest.mark.parametrize("jump", [6.0, 30.0, -10.0])
def test_source_clock_jump_is_a_new_segment_at_the_normal_delay(backend, jump):
    with Service(engine(backend), "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as svc:
        out = Collector(PoseSubscriber(svc.out_address, streams=["live"]))
        src = LivePublisher(svc.in_address).start()
        time.sleep(2.5)
        src.shift = jump
        t_jump = time.time()
        time.sleep(3.0)
        src.stop()
        time.sleep(0.2)
        out.stop()
    poses = out.poses()
    before = published_between(poses, t_jump - 1.5, t_jump)
    assert len(before) > 0.8 * 1.5 * RATE
    d_before = np.median(delays(before))
    assert d_before == pytest.approx(NORMAL, abs=SLACK)
    # The first keyframe stamped with the new clock, and the output after it.
    first_new = min(wall for wall, capture, _ in src.sent if wall >= t_jump - 0.01 and capture > wall + jump / 2
                    or wall >= t_jump - 0.01 and jump < 0 and capture < wall + jump / 2)
    new_seg = [p for p in poses if p.published >= first_new and p.segment != before[-1].segment]
    assert new_seg, "no output in a new segment after the clock jump"
    assert new_seg[0].published - first_new < 1.0
    assert new_seg[0].segment > before[-1].segment
    # Poses of the new segment stand for the new clock's times, at the normal delay.
    settled = published_between(new_seg, first_new + 1.0, first_new + 2.5)
    print(f"clock jump {jump:+g} s: output in the new segment {new_seg[0].published - first_new:.3f} s after "
          f"its first keyframe; delay p50 / p99 before {1e3 * d_before:.1f} / "
          f"{1e3 * np.percentile(delays(before), 99):.1f} ms, from 1 s after "
          f"{1e3 * np.median(delays(settled, jump)):.1f} / {1e3 * np.percentile(delays(settled, jump), 99):.1f} ms")
    assert len(settled) > 0.8 * 1.5 * RATE
    assert np.median(delays(settled, jump)) == pytest.approx(d_before, abs=SLACK)
    assert np.percentile(delays(settled, jump), 99) < d_before + 0.1
    # Nothing of the old clock after the new segment started, and pose times increase in it.
    assert all(p.segment == new_seg[0].segment for p in poses if p.published > new_seg[0].published)
    assert np.all(np.diff([p.time for p in settled]) > 0)


def test_service_process_restart_with_publisher_and_subscriber_connected(served_model):
    # The real command in its own process, stopped as Ctrl-C would and started again, while the
    # detector keeps sending (its queue fills) and the consumer stays subscribed.
    in_addr, out_addr = free_tcp_address(), free_tcp_address()
    args = ("--in", in_addr, "--out", out_addr, "--rate", str(RATE), "--lookahead", "1",
            "--backend", "torch", "--model", str(served_model), "--budget-ms", "100")
    svc = ServeProcess(*args)
    out = Collector(PoseSubscriber(out_addr, streams=["live"]))
    src = LivePublisher(in_addr).start()
    try:
        time.sleep(3.0)
        t_stop = time.time()
        assert svc.stop() == 0, svc.stderr
        time.sleep(1.5)
        svc = ServeProcess(*args)
        t_start = svc.ready                    # it logged "serving"
        time.sleep(5.5)
    finally:
        src.stop()
        svc.stop()
        out.stop()
    poses = out.poses()
    before = published_between(poses, t_stop - 2.0, t_stop)
    assert len(before) > 0.8 * 2 * RATE
    d = delays(before)
    after = [p for p in poses if p.published >= t_start]
    assert after and after[0].published - t_start < 2.0, "no output within 2 s of the restart"
    # At the normal delay from 2 s on (the issue allows 5). A lag set a little high by the
    # backlog's last keyframes (less than max_lag_error_s, so not reset) catches up at
    # max_lag_catchup, 100 ms a second (with max_lag_slew alone, CI saw 40 ms left at 3 s).
    settled = published_between(after, t_start + 2.0, t_start + 5.0)
    print(f"service restart: output {after[0].published - t_start:.3f} s after it served again; delay p50 / p99 "
          f"before {1e3 * np.median(d):.1f} / {1e3 * np.percentile(d, 99):.1f} ms, from 2 s after "
          f"{1e3 * np.median(delays(settled)):.1f} / {1e3 * np.percentile(delays(settled), 99):.1f} ms")
    assert len(settled) > 0.8 * 3 * RATE
    assert np.median(delays(settled)) == pytest.approx(np.median(d), abs=SLACK)
    assert np.percentile(delays(settled), 99) < np.percentile(d, 99) + SLACK


def test_first_second_delivered_in_one_burst_starts_at_the_normal_delay(backend):
    # A stream whose first second of keyframes arrives at once (a detector that buffered them):
    # the newest of them sets the delay, not the oldest.
    with Service(engine(backend), "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", stats_interval=0.25) as svc:
        out = Collector(PoseSubscriber(svc.out_address, streams=["late"], stats=True))
        with PosePublisher(svc.in_address) as pub:
            assert pub.ready
            start = time.time()
            for k in range(int(FPS)):                      # capture times start-1 .. start
                pub.send("late", start - 1.0 + k / FPS, moving_pose(k / FPS), seq=k)
            k = int(FPS)
            while time.time() < start + 3.0:               # then live
                wall = start - 1.0 + k / FPS
                time.sleep(max(0.0, wall - time.time()))
                pub.send("late", wall, moving_pose(k / FPS), seq=k)
                k += 1
        time.sleep(0.2)
        out.stop()
    poses = out.poses("late")
    assert poses and poses[0].published - start < 1.0
    settled = published_between(poses, start + 1.0, start + 3.0)
    assert len(settled) > 0.8 * 2 * RATE
    assert np.median(delays(settled)) == pytest.approx(NORMAL, abs=SLACK)
    assert np.percentile(delays(settled), 99) < NORMAL + 0.1


def test_a_late_lag_catches_up_fast_only_while_no_window_waits():
    """After a stale backlog the lag is often set a little high by its last keyframes (less
    than max_lag_error_s, so not reset): it comes down within about a second, not the five that
    max_lag_slew takes, but only while no window of the stream awaits the model (the window's
    budget assumed output time running at most at real speed). A lag that must grow slews."""
    cfg = EngineConfig()
    cases = ((0.160, 0.068, True, 0.068),                               # late, nothing waits
             (0.160, 0.068, False, 0.160 - cfg.max_lag_slew),           # late, a window waits
             (0.068, 0.160, True, 0.068 + cfg.max_lag_slew))            # early: never fast
    for start, target, catch_up, after_1s in cases:
        lag = Lag(cfg.max_lag_slew, cfg.max_lag_catchup)
        lag.set_target(start)
        lag.advance(100.0)
        lag.set_target(target)
        for k in range(1, 121):             # 120 Hz output ticks for one second
            lag.advance(100.0 + k / 120, catch_up)
        assert lag.value == pytest.approx(after_1s, abs=1e-9)
