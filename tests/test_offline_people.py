"""The offline tools keep every person of a multi-person recording (issue 19, point 6): real
football keypoints (CenterNet COCO-17, ../shared/data/keypoints2d) written as an untracked
OpenPose folder of two people, one entering late, through `posetween upsample`, `posetween
visualize` and `posetween replay` to a real service on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time

import cv2
import numpy as np
import pytest

from posetween import cli
from posetween.core.skeleton import get_layout
from posetween.offline import keypoint_io as kio
from posetween.stream.demo_video import PERSON_COLORS

from stream_support import SHARED_DATA, Collector, tiny_backend

FOOTBALL = SHARED_DATA / "keypoints2d" / "football-penalties-centernet-2d.tar.xz"
CLIPS = ("223.json", "240.json")    # the archive's first two clips: one kicker each, every frame
WIDTH, HEIGHT = 1280.0, 720.0       # the coordinates are normalised; TV footage is 16:9
FPS, KEYS, ENTERS, RATE = 12.5, 30, 10, 4   # every 2nd frame of 25 fps; B shows from keyframe 10 on


def kicker(frame: dict) -> tuple[np.ndarray, np.ndarray]:
    """The most confident person of one CenterNet frame in our layout, pixels; joints scoring
    under 0.3 (the engine's min_conf) missing."""
    person = np.asarray(frame["detection_classes"]) == 1
    kp = np.asarray(frame["detection_keypoints"], np.float64).reshape(-1, 17, 2)[person]
    sc = np.asarray(frame["detection_keypoint_scores"], np.float64).reshape(-1, 17)[person]
    best = int(np.argmax(sc.sum(-1)))
    xy = np.stack([kp[best, :, 1] * WIDTH, kp[best, :, 0] * HEIGHT], -1)        # (y, x) -> (x, y)
    return get_layout("coco17").to_model(xy, np.where(sc[best] >= 0.3, sc[best], 0.0))


@pytest.fixture(scope="module")
def people():
    """Two real run-ups, ``xy (KEYS, 2, 19, 2)``, ``conf (KEYS, 2, 19)``: clip 223's kicker
    throughout, clip 240's mirrored left-right (running the other way) from keyframe ENTERS on."""
    if not FOOTBALL.is_file():
        pytest.skip(f"needs the football keypoints: {FOOTBALL} is absent")
    clips = {}
    with tarfile.open(FOOTBALL) as tar:
        for member in tar:
            if member.name.rpartition("/")[2] in CLIPS:
                clips[member.name.rpartition("/")[2]] = json.load(tar.extractfile(member))
            if len(clips) == len(CLIPS):
                break
    xy = np.full((KEYS, 2, 19, 2), np.nan)
    conf = np.zeros((KEYS, 2, 19))
    for p, name in enumerate(CLIPS):
        frames = [clips[name][k] for k in sorted(clips[name], key=int)][::2]
        for k in range(ENTERS if p else 0, KEYS):
            xy[k, p], conf[k, p] = kicker(frames[k])
    xy[:, 1, :, 0] = WIDTH - xy[:, 1, :, 0]
    return xy, conf


def write_openpose(folder, xy, conf) -> None:
    """An untracked OpenPose folder (person_id -1, as OpenPose writes without tracking), the
    people of a frame in an order that swaps every frame."""
    folder.mkdir()
    for k in range(len(xy)):
        order = np.arange(xy.shape[1])[::-1 if k % 2 else 1]
        people = [{"person_id": [-1], "pose_keypoints_2d": kio.to_body25(xy[k, p], conf[k, p]).ravel().tolist()}
                  for p in order if (conf[k, p] > 0).any()]
        (folder / f"pk_{k:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))


def read_written(folder) -> list[dict[int, np.ndarray]]:
    """Each written frame's people: person_id -> BODY_25 keypoints (25, 3)."""
    return [{p["person_id"][0]: np.reshape(p["pose_keypoints_2d"], (25, 3)) for p in json.loads(f.read_text())["people"]}
            for f in sorted(folder.glob("*_keypoints.json"))]


@pytest.fixture(scope="module")
def upsampled(people, tmp_path_factory):
    """`posetween upsample` of the two-person folder, of the first person alone, and of the
    two people as an npz, with the shipped default model."""
    xy, conf = people
    root = tmp_path_factory.mktemp("people")
    write_openpose(root / "both", xy, conf)
    write_openpose(root / "alone", xy[:, :1], conf[:, :1])
    np.savez(root / "both.npz", xy=xy, conf=conf, layout="posetween19", fps=FPS, ids=[5, 8])
    args = ["--upsample-rate", str(RATE), "--fps", str(FPS), "--model", "default"]
    for name, source in (("both", "--pose-dir"), ("alone", "--pose-dir"), ("both.npz", "--input")):
        assert cli.main(["upsample", source, str(root / name), "--save-dir", str(root / f"out-{name}"), *args]) == 0
    return root


def test_reader_tells_the_two_people_apart(people, upsampled):
    xy, conf = people
    tracks = kio.read_people(upsampled / "both", FPS)
    assert tracks.people == 2 and tracks.ids.tolist() == [0, 1] and not tracks.tracked
    shown = (tracks.conf > 0).any(-1)
    assert shown[:, 0].all() and not shown[:ENTERS, 1].any() and shown[ENTERS:, 1].all()
    # Identities: each track is one kicker on every frame (BODY_25 round trip: 3 decimals).
    seen = conf > 0
    np.testing.assert_allclose(tracks.xy[seen], xy[seen], atol=2e-3)


def test_upsample_writes_every_person_with_their_id(people, upsampled):
    xy, conf = people
    for method in ("model", "linear"):
        frames = read_written(upsampled / "out-both" / method)
        assert len(frames) == (KEYS - 1) * RATE + 1
        # B is absent before keyframe ENTERS - 1 and fades in over the interval before ENTERS.
        assert all(set(f) == {0} for f in frames[:(ENTERS - 1) * RATE + 1])
        assert all(set(f) == {0, 1} for f in frames[(ENTERS - 1) * RATE + 1:])
        # Keyframes come back on the person they belong to (linear: where they were; the model denoises).
        for k in (0, ENTERS, KEYS - 1):
            for p in (0, 1) if k >= ENTERS else (0,):
                ours = kio.to_body25(xy[k, p], conf[k, p])
                keep = ours[:, 2] > 0
                err = np.abs(frames[k * RATE][p][keep, :2] - ours[keep, :2]).max()
                assert err < (2e-3 if method == "linear" else 30.0), (method, k, p, err)
        # A person never lends another their keyframes: A alone upsamples to the same numbers.
        alone = read_written(upsampled / "out-alone" / method)
        assert all(set(f) <= {0} for f in alone)
        np.testing.assert_array_equal(np.stack([f[0] for f in frames]), np.stack([f[0] for f in alone]))
    # An npz of the two people: (M, P, 19, 2) and its ids, the same numbers as the folder's.
    with np.load(upsampled / "out-both.npz" / "model.npz") as d:
        assert d["xy"].shape == ((KEYS - 1) * RATE + 1, 2, 19, 2) and d["ids"].tolist() == [5, 8]
        folder = kio.read_openpose_people(upsampled / "out-both" / "model", FPS * RATE)
        shown = folder.conf > 0
        np.testing.assert_allclose(d["xy"][shown], folder.xy[shown], atol=2e-3)


def test_visualize_draws_both_people(upsampled):
    gif, mp4 = upsampled / "both.gif", upsampled / "both.mp4"
    inputs = [f"keys={upsampled / 'both'}@{FPS}", f"model={upsampled / 'out-both' / 'model'}@{FPS * RATE}"]
    assert cli.main(["visualize", *inputs, "--out", str(gif), "--size", "200"]) == 0
    assert cli.main(["visualize", *inputs, "--out", str(mp4), "--size", "200", "--overlay"]) == 0
    import imageio.v2 as imageio
    frames = imageio.mimread(gif)
    assert len(frames) == (KEYS - 1) * RATE + 1 and frames[0].shape[:2] == (200, 400)

    def painted(img, bgr) -> int:
        return int((np.abs(img[..., :3].astype(int) - bgr[::-1]).max(-1) < 40).sum())
    # A colour per person (the demo's, by id): only person 0 before B enters, both at the end.
    assert painted(frames[0], PERSON_COLORS[0]) > 50 and painted(frames[0], PERSON_COLORS[1]) == 0
    assert painted(frames[-1], PERSON_COLORS[0]) > 50 and painted(frames[-1], PERSON_COLORS[1]) > 50
    # The mp4 is H.264 (the demo's writer), every frame.
    cap = cv2.VideoCapture(str(mp4))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace").lower()
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert fourcc in ("h264", "avc1") and count == (KEYS - 1) * RATE + 1


def test_replay_sends_every_person_to_the_service(people, upsampled):
    """`posetween replay` of the folder (25 fps from 12.5: each person between their own frames)
    as frame messages: the service's tracker gives each kicker a stream of their own."""
    from posetween.stream.client import PoseSubscriber
    from posetween.stream.engine import Engine, EngineConfig
    from posetween.stream.service import Service

    xy, conf = people
    engine = Engine(tiny_backend(upsampled), EngineConfig(rate=60, lookahead=1, budget_ms=300))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", switch_interval=None) as svc:
        out = Collector(PoseSubscriber(svc.out_address))
        time.sleep(0.3)                                     # the subscription reaches the service
        res = subprocess.run([sys.executable, "-m", "posetween.cli", "replay", str(upsampled / "both"),
                              "--fps", "25", "--source-fps", str(FPS), "--stream", "pk", "--to", svc.in_address],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        time.sleep(0.5)
        out.stop()
    poses = out.poses()
    streams = {p.stream for p in poses}
    assert streams == {"pk/0", "pk/1"}, streams
    a, b = ([p for p in poses if p.stream == s and p.kind == "interpolated"] for s in ("pk/0", "pk/1"))
    assert len(a) > 60 and len(b) > 40
    assert min(p.time for p in b) - min(p.time for p in a) > (ENTERS - 1) / FPS     # B enters late
    # Each stream follows its kicker: mid-hips on A's side of the picture, or B's (mirrored).
    hip_a, hip_b = np.nanmean(xy[:, 0, 8, 0]), np.nanmean(xy[ENTERS:, 1, 8, 0])
    for stream, hip in ((a, hip_a), (b, hip_b)):
        x = np.nanmean([p.xy[8, 0] for p in stream])
        assert abs(x - hip) < abs(hip_a - hip_b) / 2, (x, hip_a, hip_b)
    assert engine.snapshot()["drops"] == 0
