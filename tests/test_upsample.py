"""`posetween upsample` and `posetween visualize`: OpenPose JSON round trip, missing joints,
npz input, rendering (every person kept: tests/test_offline_people.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posetween import cli
from posetween.core.model import ModelConfig, PoseTween, save_model
from posetween.core.skeleton import JOINT_INDEX, NUM_JOINTS
from posetween.offline import keypoint_io as kio
from posetween.offline.upsample import upsample

from test_export import export_cache  # noqa: F401 -- a per-session ONNX export cache

N, RATE, FPS = 10, 4, 7.5
ABSENT_BODY25 = [15, 16, 17, 18, 20, 21, 23, 24]   # eyes, ears, small toes, heels: not in our layout


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory):
    """A fresh model: its heads start at zero, so it outputs the piecewise-linear prior through
    the keyframes -- the offline plumbing (windows, times, lookahead) must then equal linear."""
    path = tmp_path_factory.mktemp("model") / "identity.pt"
    save_model(PoseTween(ModelConfig(window=4, d_model=32, heads=2, ff=32, encoder_layers=1, decoder_layers=1)), path)
    return path


def body25_frames(rng):
    """N frames of a moving BODY_25 person; some joints missing the OpenPose way (0, 0, 0)."""
    base = np.stack([rng.uniform(100, 500, 25), rng.uniform(100, 700, 25)], -1)
    frames = []
    for i in range(N):
        kp = np.concatenate([base + [8.0 * i, 3.0 * np.sin(i)], rng.uniform(0.5, 1.0, (25, 1))], -1)
        frames.append(kp)
    frames = np.stack(frames)
    frames[3:5, 4] = 0          # right wrist missing in keyframes 3 and 4 (both ends of interval 3)
    frames[6, 7] = 0            # left wrist missing in keyframe 6 only
    return frames


def write_input(folder, frames, empty=(8,)):
    folder.mkdir()
    for i, kp in enumerate(frames):
        people = [] if i in empty else [
            {"person_id": [-1], "pose_keypoints_2d": (kp * [0.3, 0.3, 1] + [5, 5, 0]).ravel().tolist()},  # small one
            {"person_id": [-1], "pose_keypoints_2d": kp.ravel().tolist()},                              # largest
        ]
        (folder / f"clip_{i:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))


LARGE = 1     # the tracker's id of the large person: the second detection of the first frame


def read_out(folder, person=LARGE):
    """Every output frame's BODY_25 keypoints of one person (zeros where absent)."""
    files = sorted(folder.glob("*_keypoints.json"))
    out = []
    for f in files:
        people = {p["person_id"][0]: p for p in json.loads(f.read_text())["people"]}
        assert set(people) <= {0, 1}
        out.append(np.asarray(people[person]["pose_keypoints_2d"]).reshape(25, 3) if person in people
                   else np.zeros((25, 3)))
    return files, np.stack(out)


def test_openpose_round_trip_keeps_missing_joints_missing(tmp_path, identity_model):
    rng = np.random.default_rng(0)
    frames = body25_frames(rng)
    write_input(tmp_path / "poses", frames)
    assert cli.main(["upsample", "--pose-dir", str(tmp_path / "poses"), "--save-dir", str(tmp_path / "out"),
                     "--upsample-rate", str(RATE), "--fps", str(FPS), "--model", str(identity_model)]) == 0
    for method in ("model", "linear"):
        files, out = read_out(tmp_path / "out" / method)
        assert len(files) == (N - 1) * RATE + 1
        assert files[0].name == "clip_000000000000_keypoints.json"
        # Keyframes come back where they were (the large person; the small one is the other id), BODY_25 order.
        for i in range(N):
            if i == 8:
                continue
            keep = frames[i, :, 2] > 0
            keep[ABSENT_BODY25] = False
            np.testing.assert_allclose(out[i * RATE, keep, :2], frames[i, keep, :2], atol=0.02)
            np.testing.assert_allclose(out[i * RATE, keep, 2], frames[i, keep, 2], atol=1e-3)
        # Joints our layout lacks are written as OpenPose writes a missing joint.
        assert (out[:, ABSENT_BODY25] == 0).all()
        # Right wrist missing at keyframes 3 and 4: missing all through interval 3.
        assert (out[3 * RATE:4 * RATE + 1, 4] == 0).all()
        assert (out[2 * RATE + 1:3 * RATE, 4, 2] > 0).all() and (out[4 * RATE + 1:5 * RATE, 4, 2] > 0).all()
        # Left wrist missing at keyframe 6 only: missing at its own time, present around it.
        assert (out[6 * RATE, 7] == 0).all()
        assert (out[6 * RATE - 1, 7, 2] > 0) and (out[6 * RATE + 1, 7, 2] > 0)
        # No person at keyframe 8: that frame has no person, the frames next to it fade out.
        assert (out[8 * RATE] == 0).all()
        assert (out[7 * RATE + 1:8 * RATE, :15, 2] < frames[7, :15, 2]).all()
        # The small person is written too, scaled as it was given.
        _, small = read_out(tmp_path / "out" / method, person=0)
        np.testing.assert_allclose(small[0, :15, :2], frames[0, :15, :2] * 0.3 + 5, atol=0.02)
    # The identity model interpolates linearly: the same answer as the linear baseline where
    # both keyframes around an interval saw the joint (elsewhere it guesses the joint).
    _, model = read_out(tmp_path / "out" / "model")
    _, linear = read_out(tmp_path / "out" / "linear")
    seen = frames[:, :, 2] > 0
    seen[8] = False
    both = np.repeat(seen[:-1] & seen[1:], RATE, 0)                  # (frames - 1, 25) per interval
    both = np.concatenate([both, seen[-1:]], 0)
    np.testing.assert_allclose(model[both], linear[both], atol=0.05)
    # Read back through the reader: our layout, missing = conf 0 and NaN; the ids written are read as OpenPose's.
    tracks = kio.read_openpose_people(tmp_path / "out" / "model", FPS * RATE)
    assert tracks.tracked and tracks.ids.tolist() == [0, 1]
    xy, conf = tracks.xy[:, LARGE], tracks.conf[:, LARGE]
    wrist = JOINT_INDEX["right_wrist"]
    assert (conf[3 * RATE:4 * RATE + 1, wrist] == 0).all() and np.isnan(xy[3 * RATE:4 * RATE + 1, wrist]).all()
    assert (conf[:, JOINT_INDEX["left_hand"]] == 0).all()      # BODY_25 has no hand centre


def test_upsample_times_and_lookahead(identity_model):
    from posetween.export.backends import create_backend
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.1, 0.2, 7))                 # irregular keyframe times
    xy = rng.uniform(0, 100, (7, NUM_JOINTS, 2))
    conf = np.ones((7, NUM_JOINTS))
    backend = create_backend("torch", model_path=identity_model)
    for lookahead in (1, 3):
        up = upsample(xy, conf, t, 5, backend, lookahead=lookahead)
        assert len(up.t) == 6 * 5 + 1 and np.allclose(up.t[up.is_key], t)
        np.testing.assert_allclose(up.model, up.linear, atol=1e-3)
    with pytest.raises(ValueError):
        upsample(xy, conf, t, 5, backend, lookahead=0)


def test_npz_and_jsonl_input_and_visualize(tmp_path, identity_model):
    rng = np.random.default_rng(2)
    coco = rng.uniform(50, 400, (6, 17, 2))
    np.savez(tmp_path / "coco.npz", xy=coco, conf=np.ones((6, 17)), layout="coco17", fps=5.0)
    assert cli.main(["upsample", "--input", str(tmp_path / "coco.npz"), "--save-dir", str(tmp_path / "out"),
                     "--upsample-rate", "3", "--model", str(identity_model)]) == 0
    with np.load(tmp_path / "out" / "model.npz") as d:
        assert d["xy"].shape == (16, NUM_JOINTS, 2) and float(d["fps"]) == pytest.approx(15.0)
        assert (d["conf"][:, JOINT_INDEX["left_big_toe"]] == 0).all()   # COCO has no toes
        assert d["is_key"].sum() == 6
    # 17 joints alone could be COCO or Human3.6M: the lines name their layout.
    lines = [json.dumps({"t": i / 5.0, "layout": "coco17", "keypoints": np.c_[coco[i], np.ones(17)].tolist()})
             for i in range(6)]
    (tmp_path / "coco.jsonl").write_text("\n".join(lines))
    tracks = kio.read_people(tmp_path / "coco.jsonl")
    assert tracks.xy.shape == (6, 1, NUM_JOINTS, 2) and np.allclose(tracks.t, np.arange(6) / 5.0)

    gif = tmp_path / "cmp.gif"
    assert cli.main(["visualize", f"keys={tmp_path / 'coco.npz'}", str(tmp_path / "out" / "model.npz"),
                     str(tmp_path / "out" / "linear.npz"), "--out", str(gif), "--size", "96"]) == 0
    import imageio.v2 as imageio
    frames = imageio.mimread(gif)
    assert len(frames) == 16 and frames[0].shape[1] == 3 * 96
    mp4 = tmp_path / "cmp.mp4"
    assert cli.main(["visualize", str(tmp_path / "out" / "model.npz"), "--overlay", "--out", str(mp4), "--size", "96"]) == 0
    assert mp4.stat().st_size > 1000


@pytest.fixture(scope="module")
def walking_sequence():
    """24 keyframes at 10 fps of a body-sized point set that moves and swings its limbs, in
    pixels, with joints missing (conf 0, NaN) here and there and one wrist gone for 4 frames."""
    rng = np.random.default_rng(5)
    t = np.arange(24) / 10.0
    rest = np.stack([rng.uniform(250, 350, NUM_JOINTS), np.linspace(100, 500, NUM_JOINTS)], -1)
    swing = 40 * np.sin(2 * np.pi * 0.8 * t[:, None, None] + rng.uniform(0, 6, (1, NUM_JOINTS, 2)))
    xy = rest[None] + swing + np.stack([60 * t, 5 * t], -1)[:, None]
    conf = rng.uniform(0.5, 1.0, (len(t), NUM_JOINTS))
    conf[rng.random(conf.shape) < 0.1] = 0
    conf[8:12, JOINT_INDEX["right_wrist"]] = 0
    xy[conf == 0] = np.nan
    return xy, conf, t


@pytest.mark.slow
def test_onnxruntime_upsamples_as_torch_does(walking_sequence, export_cache):
    """Offline output must not depend on the backend: every interval's rate + 1 queries go to
    the model in one call (they attend to each other), whatever graph the backend runs."""
    from posetween.core.skeleton import MID_HIP, NECK
    from posetween.export.backends import create_backend
    from posetween.offline.upsample import backend_options, model_upsample

    from test_export import tiny_model

    model = tiny_model()
    torch_backend = create_backend("torch", model=model)
    ort_backend = create_backend("onnxruntime", model=model, **backend_options("onnxruntime"))
    xy, conf, t = walking_sequence
    torso = float(np.nanmedian(np.linalg.norm(xy[:, NECK] - xy[:, MID_HIP], axis=-1)))
    for rate in (4, 7, 8, 16):
        ref = model_upsample(torch_backend, xy, conf, t, rate)
        out = model_upsample(ort_backend, xy, conf, t, rate)
        assert ref.shape == out.shape == ((len(t) - 1) * rate + 1, NUM_JOINTS, 2)
        worst = float(np.abs(out - ref).max())
        print(f"x{rate}: max difference {worst:.2e} px = {worst / torso:.2e} torso lengths")
        assert worst / torso < 1e-4, (rate, worst, torso)
        # The model did more than interpolate, so the comparison can tell backends apart.
        assert np.abs(ref - model_upsample(create_backend("torch", model=tiny_model(1)), xy, conf, t, rate)).max() > 1

    # A graph with a fixed query count serves the one rate it fits (7x: 8 queries) and refuses the others.
    fixed = create_backend("onnxruntime", model=model, queries=8)
    worst = float(np.abs(model_upsample(fixed, xy, conf, t, 7) - model_upsample(torch_backend, xy, conf, t, 7)).max())
    assert worst / torso < 1e-4
    with pytest.raises(ValueError, match="--queries 9"):
        model_upsample(fixed, xy, conf, t, 8)
