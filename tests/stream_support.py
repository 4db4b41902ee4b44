"""Helpers for the tests of posetween.stream (imported by tests/test_stream_*.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from posetween.core.model import ModelConfig, PoseTween, save_model
from posetween.export.backends import create_backend

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEFAULT_MODEL = REPO / "posetween" / "models" / "default.pt"


def tiny_model_file(tmp_path: Path, seed: int = 0) -> Path:
    """A small random-init model (1 + 1 layers) saved as tmp_path/tiny.pt; its path."""
    torch.manual_seed(seed)
    path = tmp_path / "tiny.pt"
    save_model(PoseTween(ModelConfig(encoder_layers=1, decoder_layers=1)), path)
    return path


def tiny_backend(tmp_path: Path, seed: int = 0):
    """:func:`tiny_model_file` behind the real backend factory."""
    torch.set_num_threads(1)
    return create_backend("torch", model_path=tiny_model_file(tmp_path, seed))


def trained_model_path() -> Path:
    """POSETWEEN_TEST_MODEL when set (development), else the shipped default model; skip if neither."""
    env = os.environ.get("POSETWEEN_TEST_MODEL")
    if env:
        if not Path(env).is_file():
            pytest.fail(f"POSETWEEN_TEST_MODEL={env} is not a file")
        return Path(env)
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    pytest.skip("needs a trained model: posetween/models/default.pt is not shipped yet "
                "(set POSETWEEN_TEST_MODEL=path/to/model.pt to run this test)")


class ServeProcess:
    """`posetween serve` in a subprocess (the real command, its own interpreter and GIL), started
    with ``args`` and ready once it logs "serving"; ``log`` collects its stderr lines. A context
    manager: leaving it stops the process as Ctrl-C would, and ``returncode`` is then its exit status."""

    def __init__(self, *args: str, ready_timeout: float = 60.0, **popen):
        self.proc = subprocess.Popen([sys.executable, "-m", "posetween.cli", "serve", *args], cwd=REPO,
                                     stderr=subprocess.PIPE, text=True, **popen)
        self.log: list[str] = []
        self._reader = threading.Thread(target=lambda: self.log.extend(iter(self.proc.stderr.readline, "")),
                                        daemon=True)
        self._reader.start()
        deadline = time.time() + ready_timeout
        while not any("serving" in line for line in self.log):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise AssertionError("posetween serve did not start:\n" + "".join(self.log))
            time.sleep(0.05)
        self.ready = time.time()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=20)
        self._reader.join(5)
        return self.proc.returncode

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def stderr(self) -> str:
        return "".join(self.log)

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_tcp_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


class Collector:
    """Receives from a PoseSubscriber in a thread, stamping each message with its arrival time."""

    def __init__(self, subscriber):
        self.sub = subscriber
        self.items: list[tuple[float, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            m = self.sub.recv(timeout=0.05)
            if m is not None:
                self.items.append((time.time(), m))

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sub.close()

    def poses(self, stream: str | None = None):
        return [m for _, m in self.items if hasattr(m, "kind") and (stream is None or m.stream == stream)]

    def stats(self):
        return [m for _, m in self.items if not hasattr(m, "kind")]


def standing_pose(rng: np.random.Generator | None = None, centre=(640.0, 360.0), torso: float = 80.0) -> np.ndarray:
    """A plausible 19-joint pose in pixels (neck above mid-hip by ``torso``)."""
    from posetween.core.skeleton import JOINT_INDEX as J
    p = np.zeros((19, 2))
    layout = {"nose": (0, -1.35), "neck": (0, -1.0), "right_shoulder": (-0.45, -1.0), "right_elbow": (-0.55, -0.55),
              "right_wrist": (-0.6, -0.1), "left_shoulder": (0.45, -1.0), "left_elbow": (0.55, -0.55),
              "left_wrist": (0.6, -0.1), "mid_hip": (0, 0), "right_hip": (-0.25, 0), "right_knee": (-0.27, 0.65),
              "right_ankle": (-0.28, 1.3), "left_hip": (0.25, 0), "left_knee": (0.27, 0.65), "left_ankle": (0.28, 1.3),
              "left_big_toe": (0.35, 1.4), "right_big_toe": (-0.35, 1.4), "left_hand": (0.62, 0.05),
              "right_hand": (-0.62, 0.05)}
    for name, (x, y) in layout.items():
        p[J[name]] = (x, y)
    p = np.asarray(centre) + torso * p
    if rng is not None:
        p += rng.normal(0, 1.0, p.shape)
    return p


def moving_pose(t: float, speed: float = 40.0) -> np.ndarray:
    """A pose whose arms swing and whose body walks to the right (pixels, t in seconds)."""
    p = standing_pose()
    p[:, 0] += speed * t
    swing = 30.0 * np.sin(2 * np.pi * 0.8 * t)
    for j in (3, 4, 18):      # right arm
        p[j, 1] += swing
    for j in (6, 7, 17):      # left arm
        p[j, 1] -= swing
    return p


class LivePublisher:
    """Publishes one stream at ``fps`` in a thread, as a live detector: keyframe k is sent at
    wall-clock ``start + k / fps`` stamped with capture time ``that + shift`` (``shift``: the
    source clock's offset from this machine's, changed at any time to simulate a clock jump).
    ``sent`` records (wall time sent, capture time, seq)."""

    def __init__(self, address: str, stream: str = "live", fps: float = 15.0, *, wait: bool = True):
        from posetween.stream.client import PosePublisher
        self.pub = PosePublisher(address, wait=2.0 if wait else 0)
        self.stream, self.fps, self.shift = stream, fps, 0.0
        self.sent: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "LivePublisher":
        self._thread.start()
        return self

    def _run(self):
        start, k = time.time(), 0
        while not self._stop.is_set():
            wall = start + k / self.fps
            time.sleep(max(0.0, wall - time.time()))
            capture = wall + self.shift
            self.pub.send(self.stream, capture, moving_pose(k / self.fps), np.ones(19), seq=k)
            self.sent.append((time.time(), capture, k))
            k += 1

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.pub.close()


def delays(poses, shift: float = 0.0) -> np.ndarray:
    """Publish time minus the capture time each pose stands for (seconds), for a source whose
    clock ran ``shift`` ahead of this machine's."""
    return np.array([p.published - (p.time - shift) for p in poses])
