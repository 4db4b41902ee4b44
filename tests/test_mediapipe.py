"""MediaPipe Pose on real frames of the shipped clip, and the frame sources."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import clip_path
from posetween.core.skeleton import MID_HIP, NECK, NUM_JOINTS
from posetween.stream.sources import Frame, ImageFolderSource, PoseSchedule, VideoSource, default_clip




def test_mediapipe_finds_a_plausible_pose_on_the_clip():
    pytest.importorskip("mediapipe")
    from posetween.stream.pose_estimator import MediaPipePose

    path = clip_path()
    with VideoSource(path, max_frames=40) as src, MediaPipePose() as est:
        assert src.fps == pytest.approx(30.0) and src.frame_count == 230
        found = []
        for frame in src:
            if frame.index % 8 == 4:                        # frames 4, 12, 20, 28, 36 (7.5 fps / 2)
                xy, conf = est.estimate(frame.image)
                h, w = frame.image.shape[:2]
                assert xy.shape == (NUM_JOINTS, 2) and conf.shape == (NUM_JOINTS,)
                seen = conf > 0
                assert np.isnan(xy[~seen]).all()           # missing = NaN, never 0
                if seen.sum() >= 12:
                    found.append((xy, conf, w, h))
    assert len(found) >= 4, "MediaPipe found no person on most frames of the clip"
    for xy, conf, w, h in found:
        p = xy[conf > 0]
        assert (p[:, 0] > -0.05 * w).all() and (p[:, 0] < 1.05 * w).all()
        assert (p[:, 1] > -0.05 * h).all() and (p[:, 1] < 1.05 * h).all()
        assert conf[NECK] > 0 and conf[MID_HIP] > 0
        torso = np.linalg.norm(xy[NECK] - xy[MID_HIP])
        assert 40 < torso < 0.6 * h
        assert xy[MID_HIP, 1] > xy[NECK, 1]                # upright: hips below the neck
    assert est.mean_ms > 0


def test_video_source_times_and_schedule():
    path = clip_path()
    with VideoSource(path, max_frames=30) as src:
        frames = list(src)
    t = np.array([f.time for f in frames])
    assert len(frames) == 30 and np.allclose(t, np.arange(30) / 30.0, atol=2e-3)
    sched = PoseSchedule(fps=7.5)
    taken = [f.index for f in frames if sched(f)]
    assert taken == [0, 4, 8, 12, 16, 20, 24, 28]
    every = PoseSchedule(every=3)
    assert [f.index for f in frames if every(f)] == list(range(0, 30, 3))


def test_schedule_irregular_times():
    sched = PoseSchedule(fps=10)
    t = np.cumsum(np.full(300, 1 / 24.0))                  # a 24 fps source, 12.5 s
    taken = sum(sched(Frame(i, ti, None)) for i, ti in enumerate(t))
    assert abs(taken - 10 * t[-1]) <= 2


def test_image_folder_source(tmp_path):
    import cv2
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(ImageFolderSource(tmp_path, fps=10))
    assert [f.index for f in frames] == [0, 1, 2]
    assert np.allclose([f.time for f in frames], [0, 0.1, 0.2]) and frames[2].image[0, 0, 0] == 100


def test_default_clip_is_the_shipped_one():
    assert default_clip().name == "walk-outdoor.mp4"


def test_multi_person_pose_finds_both_people_and_is_bounded():
    """MediaPipe per crop (multi_pose.py) on frames of the clip where both people are in the
    picture: the rooftop person (upper left, whom MediaPipe on the whole frame misses) and the
    walker (bottom); each keeps their id from frame to frame; --max-people bounds the calls."""
    pytest.importorskip("mediapipe")
    from posetween.stream.multi_pose import MultiPersonPose

    wanted = (92, 96, 100, 104)
    with VideoSource(clip_path(), max_frames=105) as src:
        images = [f.image for f in src if f.index in wanted]
    with MultiPersonPose(max_people=4) as est:
        answers = [est.estimate(img) for img in images]
        calls = list(est.calls)
    assert len(answers[0][0]) == 0                   # the first sighting only confirms nobody yet
    for xy, conf, ids in answers[1:]:
        assert xy.shape == (2, NUM_JOINTS, 2) and conf.shape == (2, NUM_JOINTS)
        assert np.isnan(xy[conf == 0]).all()          # missing = NaN, never 0
        centres = {i: np.nanmean(p[c > 0], 0) for i, p, c in zip(ids, xy, conf)}
        roof, walker = sorted(centres, key=lambda i: centres[i][1])
        assert centres[roof][1] < 400 and 450 < centres[roof][0] < 850
        assert centres[walker][1] > 600 and 900 < centres[walker][0] < 1150
    assert [sorted(a[2]) for a in answers[1:]] == [sorted(answers[1][2])] * 3     # stable ids
    assert calls[0] >= 3 and all(c <= 3 for c in calls[1:])   # two crops and one discovery call

    with MultiPersonPose(max_people=1) as est:
        one = [est.estimate(img) for img in images]
        assert all(len(xy) <= 1 for xy, _, _ in one) and len(one[-1][0]) == 1
        assert all(c == 1 for c in est.calls[1:])              # one crop, no discovery
