"""Shared fixtures: the real data beside the project, and small synthetic datasets."""

from __future__ import annotations

import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from posetween.core.skeleton import JOINT_NAMES

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MOCAP = SHARED_DATA / "mocap"
BANDAI_1 = MOCAP / "bandai-namco-1.tar.xz"
CMU_01 = MOCAP / "cmu-131" / "131_01.bvh"


def need(path: Path) -> None:
    """Skip the calling test when a file of the shared data is absent."""
    if not path.exists():
        pytest.skip(f"shared mocap data not found at {path} (expected ../shared/data beside "
                    "the repository)")


def read_bandai_members(count: int = 2) -> list[tuple[str, bytes]]:
    """The first ``count`` BVH members of bandai-namco-1.tar.xz, streamed (no full unpack)."""
    need(BANDAI_1)
    out = []
    with tarfile.open(BANDAI_1, "r|xz") as tf:
        for member in tf:
            if member.isfile() and member.name.endswith(".bvh"):
                out.append((member.name, tf.extractfile(member).read()))
                if len(out) == count:
                    break
    return out


def clip_path() -> Path:
    """The demo clip: shipped in the package, else ../shared/data/video; skip when neither."""
    from posetween.stream.sources import default_clip
    shared_clip = SHARED_DATA / "video" / "walk-outdoor.mp4"
    for path in (default_clip(), shared_clip):
        if path.is_file():
            return path
    pytest.skip(f"the demo clip walk-outdoor.mp4 is neither in the package ({default_clip()}) "
                f"nor at {shared_clip}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (the shared data beside the checkout: "
                    "README.md, first section)")
    return SHARED_DATA


def write_synthetic_dataset(path: Path, motions: int = 6, frames: int = 150, seed: int = 0) -> Path:
    """A small dataset in the data builder's layout: a body-shaped point set that walks and
    swings its limbs, 30 fps, metres, Y-up."""
    rng = np.random.default_rng(seed)
    rest = np.array([[0, 1.6, 0.1], [0, 1.45, 0], [-0.2, 1.45, 0], [-0.25, 1.15, 0], [-0.27, 0.9, 0],
                     [0.2, 1.45, 0], [0.25, 1.15, 0], [0.27, 0.9, 0], [0, 0.95, 0], [-0.1, 0.95, 0],
                     [-0.1, 0.5, 0], [-0.1, 0.08, 0], [0.1, 0.95, 0], [0.1, 0.5, 0], [0.1, 0.08, 0],
                     [0.1, 0.0, 0.15], [-0.1, 0.0, 0.15], [0.28, 0.82, 0], [-0.28, 0.82, 0]])
    with h5py.File(path, "w") as f:
        f.attrs.update(joint_layout="posetween19", joint_names=list(JOINT_NAMES), units="m",
                       up_axis="y", format_version=1)
        for m in range(motions):
            t = np.arange(frames)[:, None] / 30.0
            phase = rng.uniform(0, 2 * np.pi, (1, 19, 3))
            freq = rng.uniform(0.5, 2.0)
            swing = 0.1 * np.sin(2 * np.pi * freq * t[..., None] + phase)
            travel = np.concatenate([t * rng.uniform(-1, 1), 0 * t, t * rng.uniform(-1, 1)], 1)[:, None]
            g = f.create_group(f"synthetic/take_{m:03d}")
            g.create_dataset("joints", data=(rest[None] + swing + travel).astype(np.float32))
            g.attrs.update(fps=30.0, source="synthetic")
    return path


@pytest.fixture(scope="session")
def synthetic_h5(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic.h5")
