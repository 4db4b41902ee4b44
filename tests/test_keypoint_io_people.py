"""Multi-person recordings keep every person, each as a dense track over all frames (offline
tools, issue: not only the largest): OpenPose folders, tracked or not, and npz of several."""

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
    assert tracks.people == 2 and not tracks.tracked and tracks.ids.tolist() == [0, 1]
    assert tracks.xy.shape == (12, 2, 19, 2) and np.allclose(tracks.t, np.arange(12) / 10.0)
    shown = (tracks.conf > 0).any(-1)                    # (T, P)
    assert sorted(shown.sum(0).tolist()) == [11, 12]
    absent = ~shown                                      # b's missed frame: conf 0 and NaN, not a hole
    assert absent.sum() == 1 and (tracks.conf[absent] == 0).all() and np.isnan(tracks.xy[absent]).all()
    for p in range(2):
        x, t = tracks.xy[shown[:, p], p, 8, 0], tracks.t[shown[:, p]]   # mid-hip: one person, moving one way
        assert (np.diff(x) > 0).all() or (np.diff(x) < 0).all()
        assert np.allclose(np.diff(x) / np.diff(t), np.sign(x[1] - x[0]) * 80.0)


def test_openpose_person_ids_are_kept_when_it_tracked(tmp_path):
    for k in range(4):
        people = [{"person_id": [pid], "pose_keypoints_2d": body25(x)} for pid, x in ((7, 200), (3, 700))]
        if k == 2:
            people = people[:1]                              # person 3 out of view
        (tmp_path / f"clip_{k:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    tracks = kio.read_people(tmp_path, fps=5.0)
    assert tracks.tracked and tracks.ids.tolist() == [3, 7]
    assert np.allclose(tracks.xy[:, 1, 8, 0], 200.0) and (tracks.conf[2, 0] == 0).all()


def test_npz_of_several_people(tmp_path):
    xy = np.full((5, 2, 19, 2), np.nan)
    xy[:, 0] = standing_pose()
    xy[2:, 1] = standing_pose(centre=(300.0, 360.0))     # the second person enters at frame 2
    np.savez(tmp_path / "two.npz", xy=xy, conf=np.ones((5, 2, 19)), layout="posetween19", fps=10.0, ids=[4, 9])
    tracks = kio.read_people(tmp_path / "two.npz")
    assert tracks.ids.tolist() == [4, 9] and tracks.tracked and np.allclose(tracks.t, np.arange(5) / 10.0)
    assert (tracks.conf[:2, 1] == 0).all() and (tracks.conf[2:, 1] > 0).all()   # NaN: absent
    one = kio.read_people(tmp_path / "two.npz", fps=5.0)
    assert np.allclose(one.t, np.arange(5) / 5.0)         # a given rate overrides the file's
    np.savez(tmp_path / "single.npz", xy=xy[:, 0], fps=10.0)
    single = kio.read_people(tmp_path / "single.npz")
    assert single.ids is None and single.xy.shape == (5, 1, 19, 2)
