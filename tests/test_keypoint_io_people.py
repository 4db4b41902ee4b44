"""Multi-person OpenPose folders keep every person (offline tools, issue: not only the largest)."""

from __future__ import annotations

import json

import numpy as np

from posetween.offline import keypoint_io as kio

from stream_support import standing_pose


def body25(mid_x: float) -> list[float]:
    """A BODY_25 person (x, y, c flat) whose mid-hip is at mid_x; feet and eyes missing (0, 0, 0)."""
    p = standing_pose() - standing_pose()[8] + [mid_x, 300.0]
    kp = np.zeros((25, 3))
    kp[:15, :2], kp[:15, 2] = p[:15], 0.8
    return kp.ravel().tolist()


def test_every_person_of_a_folder_is_kept_with_stable_ids(tmp_path):
    for k in range(12):
        a, b = 200 + 8 * k, 700 - 8 * k                  # two people, small one first half the time
        people = [{"person_id": [-1], "pose_keypoints_2d": body25(x)} for x in ((a, b) if k % 2 else (b, a))]
        if k == 5:
            people = people[:1] if people[0]["pose_keypoints_2d"][0] < 400 else people[1:]   # b missed once
        (tmp_path / f"clip_{k:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    tracks = kio.read_openpose_people(tmp_path, fps=10.0)
    assert len(tracks) == 2
    lengths = sorted(len(t) for _, _, t in tracks.values())
    assert lengths == [11, 12]
    for xy, conf, t in tracks.values():
        x = xy[:, 8, 0]                                  # mid-hip: one person, moving one way
        assert (np.diff(x) > 0).all() or (np.diff(x) < 0).all()
        assert np.allclose(np.diff(x) / np.diff(t), np.sign(x[1] - x[0]) * 80.0)
    # The single-sequence reader still takes the largest person of each frame.
    xy, conf, _ = kio.read_openpose_folder(tmp_path)
    assert xy.shape == (12, 19, 2)
