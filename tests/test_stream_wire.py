"""The wire format: round trips, and every malformed message rejected with a reason that names it."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from posetween.core.skeleton import LAYOUTS
from posetween.stream import wire
from posetween.stream.frames import OutputPose
from posetween.stream.validate import InputError, to_model_pose


def body(**fields) -> dict:
    b = {"v": 1, "stream": "cam1", "t": 1700000000.25, "seq": 3, "layout": "coco17",
         "xy": list(np.arange(34.0)), "conf": [1.0] * 17}
    b.update(fields)
    return {k: v for k, v in b.items() if v is not ...}


def msg(topic=b"pose/cam1", **fields) -> bytes:
    return topic + b"\0" + msgpack.packb(body(**fields))


def reason(m: bytes) -> str:
    with pytest.raises(InputError) as e:
        k = wire.decode_keyframe(m)
        to_model_pose(k.xy, k.conf, k.layout)
    return e.value.reason


def test_keyframe_round_trip():
    xy = np.random.default_rng(0).uniform(0, 500, (25, 2))
    conf = np.linspace(0, 1, 25)
    xy[0] = np.nan          # a missing joint: confidence 0, NaN coordinates
    m = wire.encode_keyframe("cam-1", 1700000000.123456, xy, conf, "body25", seq=7)
    assert m.startswith(wire.pose_topic("cam-1"))
    k = wire.decode_keyframe(m)
    assert (k.stream, k.seq, k.layout) == ("cam-1", 7, "body25")
    assert k.time == 1700000000.123456      # float64 on the wire: microseconds survive
    xy19, conf19 = to_model_pose(k.xy, k.conf, k.layout)
    assert xy19.shape == (19, 2) and conf19[0] == 0 and np.isnan(xy19[0]).all()


def test_binary_float32_and_nested_joints_accepted():
    xy = np.arange(38, dtype="<f4")
    k = wire.decode_keyframe(msg(layout="posetween19", xy=xy.tobytes(), conf=np.ones(19, "<f4").tobytes()))
    assert to_model_pose(k.xy, k.conf, k.layout)[0][1].tolist() == [2.0, 3.0]
    k = wire.decode_keyframe(msg(xy=np.arange(50.0).reshape(25, 2).tolist(), layout=..., conf=...))
    xy19, conf19 = to_model_pose(k.xy, k.conf, k.layout)   # layout guessed from 25 joints, conf 1
    assert conf19[0] == 1.0


def test_seventeen_joints_without_a_layout_are_refused_naming_both_layouts():
    k = wire.decode_keyframe(msg(layout=...))
    with pytest.raises(InputError, match="coco17 or h36m17") as e:
        to_model_pose(k.xy, k.conf, k.layout)
    assert e.value.reason == "bad_joint_count"


def test_low_confidence_joints_are_missing():
    # YOLO-pose zeroes the coordinates of joints under 0.5 but keeps their confidence.
    xy = np.full((17, 2), 300.0)
    conf = np.full(17, 0.9)
    xy[10], conf[10] = 0.0, 0.25                    # right wrist: a guess at (0, 0)
    xy19, conf19 = to_model_pose(xy, conf, "coco17")
    wrist = 4   # posetween19 right wrist
    assert conf19[wrist] == 0 and np.isnan(xy19[wrist]).all()
    assert conf19[3] == pytest.approx(0.9)
    xy19, conf19 = to_model_pose(xy, conf, "coco17", min_conf=0.0)
    assert conf19[wrist] == pytest.approx(0.25) and (xy19[wrist] == 0).all()
    xy[10] = np.nan                                  # below the threshold, NaN is no error
    assert to_model_pose(xy, conf, "coco17")[1][wrist] == 0


def test_times_in_milliseconds_or_frame_indices_are_caught_with_the_fix(caplog):
    from posetween.stream.validate import TimeUnits, check_time
    with pytest.raises(InputError, match=r"milliseconds since 1970: send seconds \(t / 1e3\)"):
        check_time(1.7e12)
    units = TimeUnits()
    units.check("cam1", 0.0)
    units.check("cam1", 33.0)
    with pytest.raises(InputError, match=r"look like milliseconds; send seconds \(t / 1000\)") as e:
        units.check("cam1", 67.0)
    assert e.value.reason == "out_of_range"
    for t in (0.0, 0.04, 0.08, 0.12, 0.16):          # seconds at 25 fps: fine
        units.check("cam2", t)
    with caplog.at_level("WARNING", logger="posetween.stream"):
        for t in range(5):
            units.check("cam3", float(t))
    assert "frame indices" in caplog.text and "index / fps" in caplog.text


def test_stream_ids_may_name_a_camera_and_a_person():
    m = wire.encode_keyframe("cam1/3", 1.0, np.zeros((19, 2)))
    assert m.startswith(b"pose/cam1/") and wire.decode_keyframe(m).stream == "cam1/3"


def test_output_round_trip():
    p = OutputPose("cam1", 5, 1700000000.5, "interpolated", np.ones((19, 2), np.float32),
                   np.full(19, 0.5, np.float32), segment=2)
    q = wire.decode_output(wire.encode_pose(p, 1700000000.6))
    assert (q.stream, q.seq, q.time, q.kind, q.segment, q.published) == ("cam1", 5, 1700000000.5, "interpolated", 2, 1700000000.6)
    assert q.xy.shape == (19, 2) and q.conf.shape == (19,)
    s = wire.decode_output(wire.encode_stats({"frames_out": 3}, 1.0))
    assert s.data == {"frames_out": 3} and s.published == 1.0


def test_topic_prefix_selects_one_stream():
    # ZeroMQ SUB filtering is a byte-prefix match: the NUL keeps "cam1" from matching "cam10".
    assert not wire.encode_keyframe("cam10", 0.0, np.zeros((19, 2))).startswith(wire.pose_topic("cam1"))
    assert wire.encode_keyframe("cam1", 0.0, np.zeros((19, 2))).startswith(wire.pose_topic("cam1"))


@pytest.mark.parametrize("message, expected", [
    (b"no separator at all", "malformed"),
    (b"pose/cam1\0\xc1\xc1", "malformed"),
    (b"pose/cam1\0" + msgpack.packb([1, 2, 3]), "malformed"),
    (msg(v=2), "bad_version"),
    (msg(v=...), "bad_version"),
    (msg(topic=b"pose/cam2"), "bad_topic"),
    (msg(topic=b"other/cam1"), "bad_topic"),
    (msg(topic=b"pose/bad id", stream="bad id"), "bad_stream_id"),
    (msg(t=...), "bad_field"),
    (msg(t="now"), "bad_field"),
    (msg(xy=...), "bad_field"),
    (msg(xy={"a": 1}), "bad_field"),
    (msg(seq=-1), "bad_field"),
    (msg(layout="smpl24"), "unknown_layout"),
    (msg(layout="body25"), "bad_joint_count"),
    (msg(xy=list(range(20)), layout=..., conf=[1.0] * 10), "bad_joint_count"),
    (msg(conf=[1.0] * 16), "bad_joint_count"),
    (msg(t=math.inf), "non_finite"),
    (msg(t=math.nan), "non_finite"),
    (msg(xy=[math.nan] + [1.0] * 33), "non_finite"),
    (msg(xy=[math.inf] + [1.0] * 33), "non_finite"),
    (msg(conf=[math.nan] + [1.0] * 16), "non_finite"),
    (msg(conf=[-1.0] + [1.0] * 16), "out_of_range"),
    (msg(xy=[1e9] + [1.0] * 33), "out_of_range"),
    (b"pose/cam1\0" + b"\0" * (wire.MAX_MESSAGE_BYTES + 1), "oversized"),
])
def test_bad_messages_have_reasons(message, expected):
    assert reason(message) == expected


def test_nan_allowed_for_missing_joints():
    k = wire.decode_keyframe(msg(xy=[math.nan, math.nan] + [1.0] * 32, conf=[0.0] + [1.0] * 16))
    xy19, conf19 = to_model_pose(k.xy, k.conf, k.layout)
    assert conf19[0] == 0 and np.isfinite(xy19[1]).all()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_conversion_batched_and_per_pose_agree_with_its_definition(name):
    """One conversion (Layout.to_model) for the engine's single poses and for batches: each of
    our joints is the mean of its source joints, present only when all are, with their minimum
    confidence (written out here joint by joint)."""
    from posetween.core.skeleton import NUM_JOINTS, get_layout
    layout = get_layout(name)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1000, (20, layout.num_joints, 2))
    conf = rng.uniform(0, 1, (20, layout.num_joints)) * (rng.random((20, layout.num_joints)) > 0.2)
    xy[conf == 0] = np.where(rng.random() > 0.5, np.nan, 0.0)
    batch_xy, batch_conf = layout.to_model(xy, conf)
    for i in range(20):
        one_xy, one_conf = layout.to_model(xy[i], conf[i])
        assert np.array_equal(one_xy, batch_xy[i], equal_nan=True) and np.array_equal(one_conf, batch_conf[i])
        for j in range(NUM_JOINTS):
            src = list(layout.sources[j])
            ok = bool(src) and all(conf[i, k] > 0 and np.isfinite(xy[i, k]).all() for k in src)
            if ok:
                assert np.allclose(one_xy[j], xy[i, src].mean(0)) and one_conf[j] == conf[i, src].min()
            else:
                assert np.isnan(one_xy[j]).all() and one_conf[j] == 0
