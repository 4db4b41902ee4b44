"""`posetween replay` sources (HDF5 through the evaluation's camera, npz, OpenPose JSON) and its
real-time schedule (several people to a real service: tests/test_offline_people.py)."""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pytest
import torch

from posetween.core.skeleton import JOINT_NAMES
from posetween.stream.replay import load_sequence, project_motion, replay
from posetween.training.build_data import Motion
from posetween.training.evaluate import camera_for


class Recorder:
    def __init__(self):
        self.sent = []
        self.frames = []

    def send(self, stream_id, timestamp, joints, conf=None, layout="posetween19", seq=None, check=True):
        self.sent.append((time.time(), stream_id, timestamp, np.array(joints), np.array(conf), layout, seq))

    def send_frame(self, camera, timestamp, joints, conf=None, layout=None, ids=None, seq=None):
        self.frames.append((time.time(), camera, timestamp, np.array(joints), np.array(conf), layout, ids))


def test_h5_motion_projected_through_the_evaluation_camera(tmp_path):
    rng = np.random.default_rng(0)
    joints = (rng.normal(0, 0.3, (40, 19, 3)) + [0, 1, 0]).astype(np.float32)
    joints[:, JOINT_NAMES.index("left_hand")] = np.nan          # a joint the source lacks
    path = tmp_path / "mocap.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(joint_layout="posetween19", format_version=1, units="m", up_axis="y")
        g = f.create_group("subset/take_01")
        g.create_dataset("joints", data=joints)
        g.attrs["fps"] = 30.0
    seq = load_sequence(path, motion="take_01", view=2)
    m = Motion("subset", "take_01", 30.0, joints)
    cam = camera_for("subset/take_01", 2, 0)
    expected = cam.project(torch.as_tensor(joints)[None])[0].double().numpy()
    assert np.allclose(seq.xy, expected, equal_nan=True) and np.allclose(project_motion(m, 2), expected, equal_nan=True)
    assert seq.layout == "posetween19" and seq.times[1] == pytest.approx(1 / 30)
    assert (seq.conf[:, JOINT_NAMES.index("left_hand")] == 0).all() and seq.conf[:, 0].all()
    with pytest.raises(ValueError, match="no motion"):
        load_sequence(path, motion="nope")


def test_npz_and_interpolation(tmp_path):
    xy = np.zeros((3, 17, 2))
    xy[:, :, 0] = [[0.0], [10.0], [20.0]]
    conf = np.ones((3, 17))
    conf[1, 10] = 0                                              # COCO's right wrist
    np.savez(tmp_path / "a.npz", xy=xy, conf=conf, t=np.array([5.0, 5.1, 5.2]))
    with pytest.raises(ValueError, match="coco17 or h36m17"):    # 17 joints: name the layout
        load_sequence(tmp_path / "a.npz")
    np.savez(tmp_path / "a.npz", xy=xy, conf=conf, t=np.array([5.0, 5.1, 5.2]), layout="coco17")
    seq = load_sequence(tmp_path / "a.npz")                      # read in the model's 19 joints
    assert not seq.people and seq.layout == "posetween19" and seq.times.tolist() == pytest.approx([0, 0.1, 0.2])
    p, c = seq.at(0.05)
    wrist = JOINT_NAMES.index("right_wrist")
    assert p[0, 0] == pytest.approx(5.0) and c[wrist] == 0 and np.isnan(p[wrist]).all()
    np.savez(tmp_path / "b.npz", xy=xy)
    with pytest.raises(ValueError, match="fps"):
        load_sequence(tmp_path / "b.npz")


def test_openpose_folder(tmp_path):
    for i in range(3):
        person = [v for j in range(25) for v in (10.0 * i + j, 5.0 + 3 * j, 0.9)]   # joints apart, nose at 10 i
        people = [{"pose_keypoints_2d": [0.0] * 75},                      # an empty detection
                  {"pose_keypoints_2d": person}]
        (tmp_path / f"clip_{i:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    (tmp_path / "clip_000000000003_keypoints.json").write_text(json.dumps({"version": 1.3, "people": []}))
    seq = load_sequence(tmp_path, source_fps=25)
    assert seq.people and seq.ids is None                              # OpenPose did not track: the service will
    assert seq.xy.shape == (4, 1, 19, 2) and seq.times[1] == pytest.approx(0.04)
    assert seq.xy[2, 0, 0, 0] == 20.0 and (seq.conf[3] == 0).all()
    rec = Recorder()
    replay(seq, rec, fps=25, stream_id="cam", start=time.time())
    assert [len(s[3]) for s in rec.frames] == [1, 1, 1, 0]             # every frame, the empty one too
    assert all(s[1] == "cam" and s[6] is None for s in rec.frames) and not rec.sent
    looped = Recorder()
    replay(seq, looped, fps=25, stream_id="cam", start=time.time(), loop=True, max_keyframes=6)
    assert [len(s[3]) for s in looped.frames] == [1, 1, 1, 0, 1, 1]   # --loop: from the start again


def test_replay_schedule_and_stamps():
    seq_t = np.arange(30) / 30
    from posetween.stream.replay import Sequence
    seq = Sequence(np.tile(seq_t[:, None, None], (1, 19, 2)), np.ones((30, 19)), seq_t, "posetween19", "ramp")
    rec = Recorder()
    start = time.time() + 0.05
    sent = replay(seq, rec, fps=50, stream_id="r", start=start)
    assert len(sent) == 49          # 29/30 s of recording at 50 fps: keyframes 0..48
    stamps = np.array([s[2] for s in rec.sent])
    assert np.allclose(stamps, start + np.arange(len(stamps)) / 50)        # capture times exact
    lateness = np.array([s[0] for s in rec.sent]) - stamps
    assert lateness.min() >= 0 and np.median(lateness) < 0.005            # sent when stamped
    assert [s[6] for s in rec.sent] == list(range(len(stamps)))
    assert rec.sent[10][3][0, 0] == pytest.approx(10 / 50)                 # the pose at k / fps
