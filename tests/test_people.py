"""Several people per camera: the tracker (enter, leave, cross, missed frames, duplicates), the
engine's push_frame, the frame message, and the service over real TCP sockets."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from posetween.stream import Engine, EngineConfig, wire
from posetween.stream.people import PeopleTracker, TrackerConfig, camera_frames
from posetween.stream.service import Service
from posetween.stream.validate import InputError

from stream_support import standing_pose, tiny_backend


def person(x: float, y: float = 300.0, scale: float = 1.0) -> np.ndarray:
    """A 19-joint standing body with its mid-hip at (x, y)."""
    p = standing_pose()
    return (p - p[8]) * scale + [x, y]


def frame(*xs, ys=None) -> tuple[np.ndarray, np.ndarray]:
    ys = ys or [300.0] * len(xs)
    xy = np.stack([person(x, y) for x, y in zip(xs, ys)]) if xs else np.zeros((0, 19, 2))
    return xy, np.ones(xy.shape[:2])


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))


def crossing_switches(config: TrackerConfig) -> int:
    """Two people walking towards each other at the same height, detected in any order; how
    often a person's id changed."""
    tr = PeopleTracker(config)
    fps, v = 15.0, 300.0                                 # px/s each
    who, switches = {}, 0
    for k in range(30):
        t = k / fps
        xy, conf = frame(200 + v * t, 810 - v * t)      # 10 px apart at the closest
        order = [1, 0] if k % 2 else [0, 1]               # the detector's order means nothing
        got = dict(zip(order, tr.update(t, xy[order], conf[order])))
        for i in (0, 1):
            switches += who.setdefault(i, got[i]) != got[i]
            who[i] = got[i]
    assert tr.next_id == 2
    return switches


def test_two_people_crossing_keep_their_ids():
    # The line through each one's recent keyframes carries it through the crossing; matching
    # with the previous pose alone (a history of 1) swaps them.
    assert crossing_switches(TrackerConfig()) == 0
    assert crossing_switches(TrackerConfig(history=1)) == 2


def test_enter_leave_and_missed_frames():
    tr = PeopleTracker(TrackerConfig(max_missed=3))
    ids = tr.update(0.0, *frame(200))
    assert ids == [0]
    ids = tr.update(0.1, *frame(205, 600))               # someone enters
    assert ids == [0, 1]
    for k in range(2, 5):                                # person 1 missed for 3 frames: kept
        assert tr.update(k / 10, *frame(200 + 5 * k)) == [0]
    assert tr.update(0.5, *frame(225, 600)) == [0, 1]
    for k in range(6, 10):                               # missed for 4 frames: gone
        tr.update(k / 10, *frame(200 + 5 * k))
    assert tr.update(1.0, *frame(250, 600)) == [0, 2]    # a new id: ids are never reused
    assert tr.update(1.1, *frame()) == []


def test_a_far_jump_or_a_size_change_is_a_new_person():
    tr = PeopleTracker()
    assert tr.update(0.0, *frame(200)) == [0]
    assert tr.update(0.04, *frame(900)) == [1]           # 700 px in one frame: not person 0
    xy = np.stack([person(900, scale=2.5)])
    assert tr.update(0.08, xy, np.ones((1, 19))) == [2]  # same place, 2.5 x the size


def test_duplicate_detections_are_one_person():
    tr = PeopleTracker()
    xy = np.stack([person(300), person(301)])
    conf = np.ones((2, 19))
    conf[0] *= 0.6
    assert tr.update(0.0, xy, conf) == [None, 0]         # the more confident one is kept


def test_push_frame_makes_one_stream_per_person_and_camera_frames(backend):
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1, budget_ms=1000))
    t0 = 1000.0
    outs = []
    for k in range(20):
        t = t0 + k / 15
        xy, conf = frame(200 + 10 * k, 700 - 10 * k)
        r = engine.push_frame("cam1", t, xy[::-1] if k % 3 else xy, conf, layout="posetween19", now=t)
        assert sorted(s for s in r.streams if s) == ["cam1/0", "cam1/1"]
        outs += engine.poll(now=t + 0.01)
    assert sorted(engine.streams) == ["cam1/0", "cam1/1"]
    assert engine.snapshot()["restarts"] == 0
    frames = camera_frames(outs)
    assert frames and all(f.camera == "cam1" for f in frames)
    assert max(len(f.people) for f in frames) == 2
    assert all(len({p.stream for p in f.people}) == len(f.people) for f in frames)   # nobody twice
    # Stream 0 stays on the person moving right, stream 1 on the one moving left.
    for f in frames:
        for p in f.people:
            x = np.nanmean(p.xy[:, 0])
            expected = 200 + 150 * (p.time - t0) if p.stream == "cam1/0" else 700 - 150 * (p.time - t0)
            assert abs(x - expected) < 60, (p.stream, p.time, x, expected)


def test_push_frame_refuses_bad_frames_with_reasons(backend):
    engine = Engine(backend, EngineConfig())
    xy, conf = frame(200)
    assert engine.push_frame("cam/1", 1.0, xy, conf, "posetween19").results[0].reason == "bad_stream_id"
    assert engine.push_frame("cam1", 1.0, xy[0], conf, "posetween19").results[0].reason == "bad_joint_count"
    coco = np.zeros((1, 17, 2))
    r = engine.push_frame("cam1", 1.0, coco, np.ones((1, 17)))
    assert r.results[0].reason == "bad_joint_count" and "coco17 or h36m17" in r.results[0].detail
    for i, t in enumerate((0.0, 33.0, 67.0)):            # MediaPipe Tasks' milliseconds
        r = engine.push_frame("ms", t, xy, conf, "posetween19", now=i)
    assert r.results[0].reason == "out_of_range" and "t / 1000" in r.results[0].detail
    r = engine.push_frame("given", 1.0, *frame(100, 500), layout="posetween19", ids=[7, "keeper"])
    assert r.streams == ["given/7", "given/keeper"]
    # A frame with nobody in it (a detector's empty result) is a frame, not a bad message.
    for empty in ((np.zeros((0, 19, 2)), np.zeros((0, 19))), ([], [])):
        r = engine.push_frame("empty", 2.0, *empty, layout="posetween19")
        assert not any(getattr(x, "reason", None) for x in r.results), r.results


def test_frame_message_round_trip_and_errors():
    xy = np.random.default_rng(0).uniform(0, 500, (3, 17, 2))
    conf = np.full((3, 17), 0.9)
    for binary in (False, True):
        m = wire.decode_input(wire.encode_frame("cam1", 12.5, xy, conf, "coco17", seq=4, binary=binary))
        assert isinstance(m, wire.FrameMessage)
        assert (m.camera, m.time, m.layout, m.seq, m.ids) == ("cam1", 12.5, "coco17", 4, None)
        np.testing.assert_allclose(m.xy, xy, rtol=1e-6)
        np.testing.assert_allclose(m.conf, conf, rtol=1e-6)
    m = wire.decode_frame(wire.encode_frame("cam1", 1.0, xy, None, "coco17", ids=[3, 4, 5]))
    assert m.ids == [3, 4, 5] and (m.conf == 1).all()
    m = wire.decode_frame(wire.encode_frame("cam1", 1.0, np.zeros((0, 17, 2))))
    assert m.xy.shape[0] == 0
    import msgpack
    bad = {"v": 1, "camera": "cam1", "t": 1.0, "people": [{"xy": [1.0] * 34}, {"xy": [1.0] * 36}]}
    for body, reason in [(bad, "bad_joint_count"), ({**bad, "people": "x"}, "bad_field"),
                         ({**bad, "v": 2}, "bad_version"), ({**bad, "camera": "cam2"}, "bad_topic")]:
        with pytest.raises(InputError) as e:
            wire.decode_frame(b"frame/cam1\0" + msgpack.packb(body))
        assert e.value.reason == reason


def test_service_takes_frames_and_publishes_per_person_and_per_camera(backend):
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1, budget_ms=200))
    ctx = zmq.Context.instance()
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", switch_interval=None) as svc:
        cam = ctx.socket(zmq.SUB)
        cam.setsockopt(zmq.SUBSCRIBE, b"frame/cam1\0")
        cam.connect(svc.out_address)
        per = ctx.socket(zmq.SUB)
        per.setsockopt(zmq.SUBSCRIBE, b"pose/cam1/")
        per.connect(svc.out_address)
        pub = ctx.socket(zmq.PUB)
        pub.connect(svc.in_address)
        time.sleep(0.3)                                    # a PUB drops what it sends before it connects
        start = time.time()
        for k in range(30):
            t = start + k / 15
            time.sleep(max(0.0, t - time.time()))
            xy, conf = frame(200 + 10 * k, 700 - 10 * k)
            order = [1, 0] if k % 2 else [0, 1]
            pub.send(wire.encode_frame("cam1", t, xy[order], conf[order], "posetween19"))
        time.sleep(0.3)
        frames, streams = [], set()
        while cam.poll(0):
            frames.append(wire.decode_camera_frame(cam.recv()))
        while per.poll(0):
            streams.add(wire.decode_output(per.recv()).stream)
        for s in (cam, per, pub):
            s.close(0)
    assert streams == {"cam1/0", "cam1/1"}
    assert len(frames) > 60 and all(c == "cam1" for c, _ in frames)
    both = [poses for _, poses in frames if len(poses) == 2]
    assert len(both) > 0.8 * len(frames)
    assert all({p.stream for p in poses} == {"cam1/0", "cam1/1"} for poses in both)
    snap = engine.snapshot()
    assert snap["restarts"] == 0 and snap["drops"] == 0
