"""Adapters from estimators' results to frames of several people, each pushed through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posetween import adapters
from posetween.core.skeleton import JOINT_INDEX, get_layout
from posetween.stream import Engine, EngineConfig

from stream_support import tiny_backend

CLIP = Path(__file__).resolve().parents[1] / "posetween" / "assets" / "walk-outdoor.mp4"


@pytest.fixture(scope="module")
def engine_factory(tmp_path_factory):
    backend = tiny_backend(tmp_path_factory.mktemp("model"))
    return lambda: Engine(backend, EngineConfig(rate=60, budget_ms=1000))


def test_mediapipe_tasks_result_several_poses_in_milliseconds(engine_factory):
    from mediapipe.tasks.python.components.containers.landmark import Landmark, NormalizedLandmark
    from mediapipe.tasks.python.vision import PoseLandmarkerResult
    rng = np.random.default_rng(0)
    engine = engine_factory()
    base = [rng.uniform(0.1, 0.3, (33, 2)), rng.uniform(0.6, 0.8, (33, 2))]
    for k in range(6):
        ts_ms = k * 33                                   # what detect_for_video is given
        poses = [[NormalizedLandmark(x=float(x) + 0.005 * k, y=float(y), z=0.0, visibility=0.9, presence=0.9)
                  for x, y in b] for b in base]
        world = [[Landmark(x=0.0, y=0.0, z=0.0) for _ in range(33)] for _ in base]
        result = PoseLandmarkerResult(pose_landmarks=poses, pose_world_landmarks=world)
        people = adapters.from_mediapipe_tasks(result, 640, 480, timestamp_ms=ts_ms)
        assert people.layout == "mediapipe33" and people.xy.shape == (2, 33, 2)
        assert people.time == pytest.approx(ts_ms / 1000)
        assert people.xy[0, 0, 0] == pytest.approx((base[0][0, 0] + 0.005 * k) * 640)
        r = people.push(engine, "cam1", now=people.time)
        assert all(x.accepted for x in r.results), r.results
    assert sorted(engine.streams) == ["cam1/0", "cam1/1"]
    assert engine.snapshot()["restarts"] == 0


def test_mediapipe_legacy_on_the_shipped_clip():
    mp = pytest.importorskip("mediapipe")
    cv2 = pytest.importorskip("cv2")
    if not CLIP.is_file():
        pytest.skip(f"{CLIP} missing")
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 90)                # the walker, mid-clip
    ok, bgr = cap.read()
    cap.release()
    assert ok
    h, w = bgr.shape[:2]
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        result = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    people = adapters.from_mediapipe_legacy(result, w, h)
    assert len(people) == 1 and people.layout == "mediapipe33"
    seen = people.conf[0] > 0.5
    assert seen.sum() > 10
    assert (people.xy[0, seen] >= -0.1 * w).all() and (people.xy[0, seen, 0] <= 1.1 * w).all()


def test_ultralytics_zeroed_joints_are_missing(engine_factory):
    # keypoints.data as ultralytics gives it: (N, 17, 3), x and y set to 0 where conf < 0.5.
    rng = np.random.default_rng(1)
    data = np.concatenate([rng.uniform(100, 500, (2, 17, 2)), np.full((2, 17, 1), 0.9)], -1)
    data[0, 10] = (0.0, 0.0, 0.42)                       # right wrist: a guess, zeroed
    people = adapters.from_ultralytics(data)
    assert people.layout == "coco17" and people.conf[0, 10] == 0 and people.conf[0, 9] == pytest.approx(0.9)
    engine = engine_factory()
    r = people.push(engine, "yolo", t=1.0, now=1.0)
    assert all(x.accepted for x in r.results)


def test_ultralytics_results_object():
    torch = pytest.importorskip("torch")
    results = pytest.importorskip("ultralytics.engine.results")
    kp = torch.rand(2, 17, 3) * torch.tensor([640.0, 480.0, 1.0])
    res = results.Results(np.zeros((480, 640, 3), np.uint8), path="x.jpg", names={0: "person"}, keypoints=kp)
    people = adapters.from_ultralytics(res)
    assert people.xy.shape == (2, 17, 2)
    low = kp[..., 2].numpy() < 0.5
    assert (people.conf[low] == 0).all() and (people.conf[~low] > 0).all()


@pytest.mark.parametrize("joints, layout", [(17, "coco17"), (26, "halpe26"), (133, "wholebody133"),
                                            (18, "openpose18")])
def test_rtmlib_outputs_by_joint_count(joints, layout):
    # rtmlib: keypoints, scores = Body(...)(img) -> (N, K, 2) pixels, (N, K) SimCC scores.
    rng = np.random.default_rng(joints)
    kp, sc = rng.uniform(0, 640, (3, joints, 2)), rng.uniform(0, 3, (3, joints))
    people = adapters.from_rtmlib(kp, sc)
    assert people.layout == layout and people.xy.shape == (3, joints, 2)
    with pytest.raises(ValueError, match="pass layout"):
        adapters.from_rtmlib(kp[:, :16], sc[:, :16])


def openpose_person(rng, joints, pid=-1):
    kp = np.concatenate([rng.uniform(0, 600, (joints, 2)), rng.uniform(0.4, 1, (joints, 1))], -1)
    kp[3] = 0                                            # OpenPose's missing joint: 0, 0, 0
    return {"person_id": [pid], "pose_keypoints_2d": kp.ravel().tolist(), "face_keypoints_2d": [],
            "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}


def test_openpose_json_keeps_every_person(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "video_000000000000_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": [openpose_person(rng, 25), openpose_person(rng, 25)]}))
    people = adapters.read_openpose_json(path)
    assert people.layout == "body25" and len(people) == 2 and people.ids is None
    assert (people.conf[:, 3] == 0).all()
    coco = {"version": 1.3, "people": [openpose_person(rng, 18, 4), openpose_person(rng, 18, 9)]}
    people = adapters.read_openpose_json(coco)
    assert people.layout == "openpose18" and people.ids == [4, 9]
    assert len(adapters.read_openpose_json({"people": []})) == 0


def test_coco_results_json_groups_people_by_image(tmp_path):
    rng = np.random.default_rng(3)
    dets = []
    for image_id, n in ((2, 1), (1, 3)):
        for _ in range(n):
            kp = np.concatenate([rng.uniform(0, 600, (17, 2)), rng.uniform(0, 1, (17, 1))], -1)
            dets.append({"image_id": image_id, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.8})
    dets.append({"image_id": 2, "category_id": 1, "keypoints": [0.0] * 51, "score": 0.05})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(dets))
    frames = adapters.read_coco_results(path, min_score=0.1)
    assert list(frames) == [1, 2] and [len(frames[i]) for i in frames] == [3, 1]
    assert frames[1].layout == "coco17"
    np.testing.assert_allclose(frames[2].xy[0], np.asarray(dets[0]["keypoints"]).reshape(17, 3)[:, :2])
    xy19, _ = get_layout("coco17").to_model(frames[1].xy, frames[1].conf)
    assert np.isfinite(xy19[:, JOINT_INDEX["nose"]]).all()
