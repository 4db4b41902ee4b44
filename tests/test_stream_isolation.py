"""Senders without authentication over real TCP sockets: what one sender can do to the streams
of others is bounded. A keyframe stamped far in the future, a second body sent on a live
stream's id and ids kept alive with one message each leave the other streams' output as it
was; the counters say what happened (and mean what they say)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from posetween.stream import Engine, EngineConfig, wire
from posetween.stream.client import PosePublisher, PoseSubscriber
from posetween.stream.service import Service

from stream_support import Collector, LivePublisher, moving_pose, standing_pose, tiny_backend

RATE = 60.0


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))


def steady(poses, a: float, b: float) -> tuple[float, set[int], float]:
    """Output rate, segments, and the longest pause between poses published in [a, b)."""
    pub = np.array([p.published for p in poses if a <= p.published < b])
    return len(pub) / (b - a), {p.segment for p in poses if a <= p.published < b}, float(np.diff(pub).max())


def test_attacks_leave_the_other_streams_untouched(backend):
    engine = Engine(backend, EngineConfig(rate=RATE, lookahead=1, budget_ms=100, max_streams=64))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", stats_interval=0.25) as svc:
        out = Collector(PoseSubscriber(svc.out_address, stats=True))
        good = LivePublisher(svc.in_address, "good").start()
        other = LivePublisher(svc.in_address, "other").start()
        time.sleep(1.5)
        t0 = time.time()
        with PosePublisher(svc.in_address) as evil:
            assert evil.ready
            # 1. One keyframe on the victim's id, stamped a day ahead.
            evil.send("good", time.time() + 86400, standing_pose(), seq=10**9)
            time.sleep(1.0)
            # 2. A second body on the victim's id, at its rate, between its keyframes, for 2 s.
            end = time.time() + 2.0
            k = 0
            while time.time() < end:
                time.sleep(1 / 15)
                evil.send("good", time.time(), standing_pose(centre=(1500.0, 300.0)) + k, seq=None)
                k += 1
            # 3. 64 ids, one keyframe each: the service is full of ids that send nothing more.
            for i in range(64):
                evil.send(f"junk{i}", time.time(), standing_pose(), seq=0)
            t_junk = time.time()
            time.sleep(0.5)
        # A newcomer: refused while the junk ids are within their gap limit (2 s before an
        # interval is known), then it takes the place of the idlest of them.
        newcomer = LivePublisher(svc.in_address, "newcomer").start()
        time.sleep(4.0)
        t1 = time.time()
        for src in (good, other, newcomer):
            src.stop()
        time.sleep(0.5)
        out.stop()
    poses = {s: out.poses(s) for s in ("good", "other", "newcomer")}
    for stream in ("good", "other"):
        rate, segments, pause = steady(poses[stream], t0, t1)
        assert rate == pytest.approx(RATE, rel=0.05), stream
        assert pause < 0.5, stream        # never a freeze (a busy machine may delay a tick or two)
        # "other" never restarts; the victim at most switches to the second body and back
        # (when thread jitter gives the second body two keyframes in a row): not every keyframe.
        assert len(segments) <= (1 if stream == "other" else 3), (stream, segments)
    snap = out.stats()[-1].data
    assert snap["restarts"] <= 2, snap["restarts_by_reason"]
    assert snap["drops_by_reason"]["conflict"] >= 20         # the day-ahead one and the second body
    new = poses["newcomer"]
    assert new and new[0].published - t_junk < 3.5
    rate, _, _ = steady(new, t_junk + 3.5, t1)
    assert rate == pytest.approx(RATE, rel=0.05)
    assert snap["evictions"] >= 1 and snap["streams"] <= 64


def test_disconnects_count_closed_publisher_connections(backend):
    engine = Engine(backend, EngineConfig(rate=RATE))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as svc:
        pubs = [PosePublisher(svc.in_address) for _ in range(3)]
        assert all(p.ready for p in pubs)
        time.sleep(0.3)
        assert engine.snapshot()["publishers"] == 3 and engine.snapshot()["disconnects"] == 0
        pubs[0].close()
        deadline = time.time() + 3
        while engine.snapshot()["disconnects"] < 1 and time.time() < deadline:
            time.sleep(0.05)
        snap = engine.snapshot()
        assert snap["disconnects"] == 1 and snap["publishers"] == 2 and "send_dropped" in snap
        for p in pubs[1:]:
            p.close()


def test_synchronised_streams_keep_their_rate(backend):
    # 24 streams whose keyframes arrive at the same instants (one camera, several people): one
    # batched model call per interval; whatever does not fit falls back, and every stream keeps
    # its output rate without a pause.
    n, fps = 24, 15.0
    engine = Engine(backend, EngineConfig(rate=RATE, lookahead=1))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", stats_interval=0.25) as svc:
        out = Collector(PoseSubscriber(svc.out_address, stats=True))
        with PosePublisher(svc.in_address) as pub:
            assert pub.ready
            start = time.time()
            for k in range(int(4 * fps)):
                time.sleep(max(0.0, start + k / fps - time.time()))
                t = time.time()
                msgs = [wire.encode_keyframe(f"p{i}", t, standing_pose(centre=(100.0 + 40 * i, 360.0)) + k, seq=k)
                        for i in range(n)]
                for m in msgs:                                    # back to back, as one camera's
                    pub.send_raw(m)
            t_end = time.time()
        time.sleep(0.3)
        out.stop()
    snap = out.stats()[-1].data
    for i in range(n):
        rate, segments, pause = steady(out.poses(f"p{i}"), start + 1.0, t_end - 0.2)
        assert rate == pytest.approx(RATE, rel=0.05), i
        assert pause < 0.5 and len(segments) == 1, i
    # One model call per input interval for all the streams (a busy machine answers fewer
    # windows in it, and the rest fall back), not one per window.
    assert snap["model_calls"] <= 2 * 4 * fps
    # What fell back is said per frame (kind) and counted, consistently: a fallback frame comes
    # from a window counted as fallen back, and a window counted shows fallback frames unless
    # its model answer came too late (`late_answers`): the output had passed its times already,
    # shown from the window before's prediction (1 run in 25 here had 21 such and no fallback frame).
    fell_back = sum(p.kind == "fallback" for p in out.poses())
    assert fell_back == 0 or snap["fallbacks"] > 0
    assert fell_back > 0 or snap["fallbacks"] == snap["late_answers"]
