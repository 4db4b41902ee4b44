"""`posetween demo` on the shipped clip: the video it writes, the skeleton on the person, the
identity switch, publishing, and the command line (headless)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import clip_path
from posetween.core.skeleton import MID_HIP, NECK
from posetween.stream.sources import PoseSchedule, VideoSource

pytest.importorskip("mediapipe")

PANEL = 640



def demo_model(tmp_path_factory) -> Path:
    """The shipped default model; before it ships, a fresh model (heads at zero: it
    interpolates piecewise-linearly through the keyframes), so the plumbing is still tested."""
    from importlib.resources import files
    shipped = Path(str(files("posetween") / "models" / "default.pt"))
    if shipped.is_file():
        return shipped
    from posetween.core.model import ModelConfig, PoseTween, save_model
    path = tmp_path_factory.mktemp("model") / "fresh.pt"
    save_model(PoseTween(ModelConfig()), path)
    return path


def centre(xy, conf):
    seen = conf > 0
    return xy[MID_HIP] if seen[MID_HIP] else np.nanmean(xy[seen], 0)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """PyTorch eager with 2 threads on 2 busy cores is ~30x slower than with 1 (spinning)."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The whole demo once, headless, as `posetween demo` runs it (simulated clock), with a
    ZeroMQ subscriber on its publisher."""
    from posetween.export.backends import create_backend
    from posetween.stream.client import PoseSubscriber
    from posetween.stream.demo import Publisher, SimClock, VideoSink, make_engine, run_demo
    from posetween.stream.pose_estimator import MediaPipePose

    out = tmp_path_factory.mktemp("demo") / "demo.mp4"
    backend = create_backend("torch", model_path=demo_model(tmp_path_factory))
    engine = make_engine(backend, rate=60.0, lookahead=1, budget_ms=10.0, clock=SimClock())
    publisher = Publisher("tcp://127.0.0.1:*")
    sub = PoseSubscriber(publisher.address, streams=["demo"], stats=True)   # a client of `serve`
    time.sleep(0.3)                                     # let the subscription reach the publisher
    sink = VideoSink(out, 30.0)
    t0 = time.perf_counter()
    with VideoSource(clip_path()) as src, MediaPipePose() as est:
        res = run_demo(src, est, engine, PoseSchedule(fps=7.5), [sink], PANEL, publisher)
    sink.close()
    wall = time.perf_counter() - t0
    received = []
    while (msg := sub.recv(timeout=0.3)) is not None:
        received.append(msg)
    sub.close()
    publisher.close()
    return res, out, wall, received


def test_demo_writes_the_video_and_its_numbers(demo):
    res, out, wall, received = demo
    print(res.summary())
    assert wall < 240, f"the demo took {wall:.0f} s on the 7.7 s clip"
    assert res.frames == 230 and len(res.shown) == 230
    assert [s.index for s in res.shown] == list(range(230))           # every frame, in order
    assert res.keyframes == 58 and res.keyframes_with_person >= 45
    assert res.pose_rate == pytest.approx(7.5, rel=0.02)
    assert res.output_rate == pytest.approx(60.0, rel=0.05)
    assert res.delay_ms == pytest.approx(1000 / 7.5, abs=5.0)   # one interval
    assert res.fallbacks == 0                                           # simulated clock: deterministic
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 230
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 2 * PANEL
    cap.release()
    # It published what the engine output, in the service's wire format, and its counters.
    poses = [m for m in received if hasattr(m, "stream")]
    assert len(poses) == res.published >= 0.9 * res.output_rate * res.duration_s
    assert all(p.stream == "demo" and p.xy.shape == (19, 2) for p in poses)
    assert [m for m in received if not hasattr(m, "stream")][-1].data["keyframes_in"] == res.keyframes_with_person


def test_output_sits_on_the_person(demo):
    """Each shown frame carries the pose for its own time; at a keyframe's frame the output is
    the keyframe (up to the model's denoising); the drawn skeleton lies on MediaPipe's joints."""
    res, out, _, _ = demo
    by_index = {s.index: s for s in res.shown}
    with_pose = [s for s in res.shown if s.out_xy is not None]
    assert len(with_pose) > 150
    for s in with_pose:
        assert abs(s.out_time - s.time) <= 0.5 / 60 + 1e-6
    errors = []
    for index, t, xy, conf in res.keys:
        s = by_index[index]
        if s.out_xy is None or (conf > 0).sum() < 12 or conf[NECK] == 0 or conf[MID_HIP] == 0:
            continue
        torso = np.linalg.norm(xy[NECK] - xy[MID_HIP])
        both = (conf > 0) & np.isfinite(s.out_xy).all(-1)
        errors.append(np.median(np.linalg.norm(s.out_xy[both] - xy[both], axis=-1)) / torso)
    assert len(errors) >= 30
    assert np.median(errors) < 0.25, f"output at keyframe times is {np.median(errors):.2f} torso from the keyframe"

    # Pixels: in the right panel, posetween's green skeleton passes near MediaPipe's joints.
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    header = frames[0].shape[0] - int(round(994 * PANEL / 1768))
    scale = PANEL / 1768
    checked = 0
    for index, t, xy, conf in res.keys[4::6]:
        if (conf > 0).sum() < 12:
            continue
        img = frames[index][header:]
        px = img.astype(int)
        green = px[..., 1] - np.maximum(px[..., 0], px[..., 2]) > 70
        right, left = green[:, PANEL:], green[:, :PANEL]
        hits_r, hits_l, n = 0, 0, 0
        for p in xy[conf > 0] * scale:
            x, y = int(round(p[0])), int(round(p[1]))
            if 0 <= x < PANEL and 0 <= y < img.shape[0]:
                n += 1
                hits_r += right[max(0, y - 4):y + 5, max(0, x - 4):x + 5].any()
                hits_l += left[max(0, y - 4):y + 5, max(0, x - 4):x + 5].any()
        checked += 1
        assert hits_r >= 0.8 * n, f"frame {index}: skeleton near {hits_r} of {n} MediaPipe joints"
        assert hits_l <= 0.2 * n        # the left panel has no green skeleton: the check is not the grass
    assert checked >= 5


def test_identity_switch_restarts_the_stream(demo):
    """MediaPipe jumps from the rooftop person to the walker (and later to the first person, on
    the ground): the engine restarts the stream, and no output frame lies between the two."""
    res, _, _, _ = demo
    assert res.restarts.get("jump", 0) >= 1, f"no restart on the identity switch (restarts: {res.restarts})"
    people = [(t, xy, conf) for _, t, xy, conf in res.keys if (conf > 0).sum() >= 8]
    switches = []
    for (ta, xa, ca), (tb, xb, cb) in zip(people, people[1:]):
        torso = np.linalg.norm(xa[NECK] - xa[MID_HIP])
        ja, jb = centre(xa, ca), centre(xb, cb)
        if np.linalg.norm(jb - ja) > 3 * torso:
            switches.append((ta, ja, tb, jb, torso))
    assert switches, "the clip's identity switch was not seen"
    for ta, ja, tb, jb, torso in switches:
        between = [s for s in res.shown if ta <= s.time <= tb and s.out_xy is not None]
        for s in between:
            c = centre(s.out_xy, s.out_conf)
            near = min(np.linalg.norm(c - ja), np.linalg.norm(c - jb)) / torso
            assert near < 1.5, (f"t={s.time:.3f}: output centre {near:.1f} torso lengths from both people "
                                f"(switch {ta:.3f} -> {tb:.3f} s): interpolated across the switch")
        before = [s.out_segment for s in res.shown if s.out_xy is not None and s.time <= ta]
        after = [s.out_segment for s in res.shown if s.out_xy is not None and s.time >= tb]
        assert before and after and after[0] != before[-1]


def test_demo_command_headless(tmp_path, monkeypatch, capsys, tmp_path_factory):
    """`posetween demo` with no display and no --out writes out/demo.mp4 and says where."""
    from posetween import cli
    clip_path()
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    model = demo_model(tmp_path_factory)
    assert cli.main(["demo", "--max-frames", "24", "--backend", "torch", "--model", str(model),
                     "--panel-width", "320", "--pose-every", "4"]) == 0
    printed = capsys.readouterr().out
    video = tmp_path / "out" / "demo.mp4"
    assert video.is_file() and f"video: {video.resolve()}" in printed
    assert "24 frames" in printed and "6 keyframes" in printed
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 24


def live_demo_summary(model_path: str, clip: str) -> dict:
    """Runs the demo on a fake live camera (the clip's first 45 frames at their real pace) with
    the wall clock, and returns what the test checks."""
    from posetween.export.backends import create_backend
    from posetween.stream.demo import make_engine, run_demo
    from posetween.stream.pose_estimator import MediaPipePose
    from posetween.stream.sources import Frame, Source

    class FakeCamera(Source):
        live, fps, name = True, 30.0, "fake camera"

        def __iter__(self):
            with VideoSource(clip, max_frames=45) as video:
                start = time.time()
                for f in video:
                    # Frames come at the camera's pace, stamped with their capture time as a
                    # camera does (frames buffered while the estimator was busy keep theirs).
                    capture = start + f.index / self.fps
                    if capture > time.time():
                        time.sleep(capture - time.time())
                    yield Frame(f.index, capture, f.image)

    backend = create_backend("onnxruntime", model_path=model_path)   # the demo's default (auto)
    engine = make_engine(backend, rate=60.0, lookahead=1, budget_ms=50.0, clock=time.time)
    with MediaPipePose() as est:
        res = run_demo(FakeCamera(), est, engine, PoseSchedule(fps=7.5), [], 320)
    posed = [s for s in res.shown if s.out_xy is not None]
    indices = [s.index for s in posed]
    holes = (indices[-1] - indices[0] + 1 - len(indices)) if indices else 0
    return {"shown": [s.index for s in res.shown], "keyframes": res.keyframes, "posed": len(posed), "holes": holes,
            "on_time": all(abs(s.out_time - s.time) <= 0.5 / 60 * (1 + engine.cfg.max_lag_slew) + 1e-6 for s in posed),
            "delay_ms": res.delay_ms}


def test_live_source_runs_on_the_wall_clock(tmp_path_factory):
    """A live source (a camera) is timed by the wall clock: the demo still shows every frame,
    in order, with poses for their own times once the stream runs."""
    res = live_demo_summary(str(demo_model(tmp_path_factory)), str(clip_path()))
    assert res["shown"] == list(range(45))
    assert res["keyframes"] >= 10
    assert res["posed"] >= 15
    assert res["holes"] == 0     # once the output runs, every frame carries its pose
    assert res["on_time"]
    assert res["delay_ms"] >= 1000 / 7.5 * 0.9
