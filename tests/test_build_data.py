"""`posetween data build` end to end, the AMASS conversion, resampling and load_motions."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import CMU_01, need, read_bandai_members
from posetween.core.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from posetween.training import cli as training_cli
from posetween.training.build_data import (Motion, amass_to_joints, build_dataset,
                                           load_motions, resample)


# A valid BVH whose skeleton no built-in joint map knows.
SMALL_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  End Site
  {
    OFFSET 0 1 0
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 0 0 0 0 0
0 0 0 0 0 0
"""


def run_cli(*argv: str) -> int:
    """Run `posetween data build ...` through the command's own parser."""
    parser = argparse.ArgumentParser(prog="posetween")
    training_cli.register_data(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def make_bandai_archive(tmp_path: Path, suffix: str = ".tar.xz") -> tuple[Path, list[str]]:
    """A tiny archive with 2 real Bandai BVH, a label JSON for the second one only (stored
    *before* its BVH, as the real archives may), and a broken BVH."""
    members = read_bandai_members(2)
    stems = [Path(name).stem for name, _ in members]
    files = [("mini/data/" + stems[1] + ".json", json.dumps({"content": 6, "style": 11}).encode())]
    files += [("mini/data/" + Path(name).name, data) for name, data in members]
    files += [("mini/data/broken.bvh", b"HIERARCHY\nROOT Hips\n{\n OFFSET 0 0\n"),
              ("mini/README.md", b"not motion")]
    path = tmp_path / f"bandai-mini{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files:
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:xz" if suffix == ".tar.xz" else "w:gz") as tf:
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path, stems


def test_build_from_archive_and_folder(tmp_path, capsys):
    need(CMU_01)
    archive, stems = make_bandai_archive(tmp_path)
    folder = tmp_path / "cmu-mini" / "nested"
    folder.mkdir(parents=True)
    shutil.copy(CMU_01, folder / "131_01.bvh")
    out = tmp_path / "out" / "data.h5"

    assert run_cli("data", "build", str(archive), str(tmp_path / "cmu-mini"), "--out", str(out),
                   "--no-progress") == 0
    printed = capsys.readouterr()
    assert "imported 3 motions" in printed.out
    assert "broken.bvh" in printed.out and "1 file(s) skipped" in printed.out

    with h5py.File(out, "r") as f:
        assert f.attrs["joint_layout"] == "posetween19"
        assert list(f.attrs["joint_names"]) == list(JOINT_NAMES)
        assert f.attrs["units"] == "m" and f.attrs["up_axis"] == "y"
        assert f.attrs["format_version"] == 1
        assert sorted(f) == ["bandai-mini", "cmu-mini"]
        assert sorted(f["bandai-mini"]) == sorted(stems)
        for stem in stems:
            g = f["bandai-mini"][stem]
            assert g["joints"].dtype == np.float32
            assert g["joints"].shape[1:] == (NUM_JOINTS, 3)
            assert g.attrs["fps"] == 30.0
            assert g.attrs["skeleton"] == "bandai"
            assert g.attrs["source"] == f"{archive}:mini/data/{stem}.bvh"
        assert "labels" not in f["bandai-mini"][stems[0]].attrs
        assert json.loads(f["bandai-mini"][stems[1]].attrs["labels"]) == {"content": 6,
                                                                          "style": 11}
        g = f["cmu-mini"]["131_01"]
        assert g["joints"].shape == (994, NUM_JOINTS, 3)
        assert g.attrs["fps"] == 120.0 and g.attrs["skeleton"] == "cmu"
        assert g.attrs["source"] == str(folder / "131_01.bvh")

    motions = load_motions(out)
    assert len(motions) == 3 and all(isinstance(m, Motion) for m in motions)
    subset, name, fps, joints = motions[-1]
    assert (subset, name, fps) == ("cmu-mini", "131_01", 120.0)
    assert joints.shape == (994, NUM_JOINTS, 3) and np.isfinite(joints).all()
    assert [m.name for m in load_motions(out, subsets=["cmu-mini"])] == ["131_01"]


def test_build_zip_with_fps_out_and_explicit_map(tmp_path):
    archive, stems = make_bandai_archive(tmp_path, ".zip")
    out = tmp_path / "data.h5"
    report = build_dataset([archive], out, joint_map="bandai", fps_out=10, progress=False)
    assert report.motions == 2 and len(report.failures) == 1
    with h5py.File(out, "r") as f:
        g = f["bandai-mini"][stems[1]]
        assert g.attrs["fps"] == 10.0 and g.attrs["source_fps"] == 30.0
        assert "labels" in g.attrs
    full = build_dataset([archive], tmp_path / "full.h5", progress=False)
    for (_, _, _, a), (_, _, _, b) in zip(load_motions(out), load_motions(full.out)):
        np.testing.assert_array_equal(a, b[::3])  # 30 -> 10 fps keeps every third frame


def test_build_synthetic_amass(tmp_path):
    T = 6
    rng = np.random.default_rng(1)
    j52 = rng.normal(0, 0.05, (T, 52, 3))
    j52[:, 0] = [0.1, 0.2, 0.9]     # pelvis, Z-up
    j52[:, 12] = [0.1, 0.25, 1.4]   # neck
    j52[:, 15] = [0.1, 0.3, 1.6]    # head
    j52[:, 22:37] = np.arange(15)[None, :, None] * [0.01, 0.0, 0.0] + [0.5, 0.0, 1.0]
    path = tmp_path / "AMASS_3D_joints.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("CMU/01_01_poses.npz/joints", data=j52)
        f.create_dataset("KIT/bad_motion/joints", data=np.zeros((T, 24, 3)))
    out = tmp_path / "amass.h5"
    assert run_cli("data", "build", str(path), "--out", str(out), "--no-progress") == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["joint_layout"] == "posetween19"
        assert list(f) == ["CMU"]
        g = f["CMU"]["01_01_poses.npz"]
        assert g.attrs["fps"] == 60.0 and g.attrs["skeleton"] == "smplh52"
        assert g.attrs["source"] == f"{path}:/CMU/01_01_poses.npz"
        joints = g["joints"][()]
    assert joints.shape == (T, NUM_JOINTS, 3)
    # Z-up (x, y, z) -> Y-up (x, z, -y).
    np.testing.assert_allclose(joints[:, JOINT_INDEX["mid_hip"]], [[0.1, 0.9, -0.2]] * T,
                               atol=1e-6)
    np.testing.assert_allclose(joints[:, JOINT_INDEX["neck"]], [[0.1, 1.4, -0.25]] * T, atol=1e-6)
    np.testing.assert_allclose(joints[:, JOINT_INDEX["nose"]], [[0.1, 1.6, -0.3]] * T, atol=1e-6)
    # Left hand = mean of the 15 left finger joints: x = 0.5 + 0.07.
    np.testing.assert_allclose(joints[:, JOINT_INDEX["left_hand"]], [[0.57, 1.0, 0.0]] * T,
                               atol=1e-6)
    np.testing.assert_allclose(joints[:, JOINT_INDEX["left_big_toe"]],
                               amass_to_joints(j52)[:, JOINT_INDEX["left_big_toe"]])
    # Merging a built file copies it.
    again = tmp_path / "again.h5"
    assert build_dataset([out], again, progress=False).motions == 1
    np.testing.assert_array_equal(load_motions(again)[0].joints, joints)


def test_nothing_imported_fails_and_keeps_no_file(tmp_path, capsys):
    bad = tmp_path / "bad.bvh"
    bad.write_text(SMALL_BVH.replace("Frames: 2", "Frames: 7"))
    out = tmp_path / "none.h5"
    assert run_cli("data", "build", str(bad), str(tmp_path / "missing"), "--out", str(out),
                   "--no-progress") == 1
    captured = capsys.readouterr()
    assert "nothing was imported" in captured.err
    assert "bad.bvh" in captured.out and "missing" in captured.out
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_unrecognised_skeleton_is_reported(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(SMALL_BVH)
    report = build_dataset([path], tmp_path / "x.h5", progress=False)
    assert report.motions == 0
    assert "no joint map recognises" in report.failures[0][1]


def test_bad_joint_map_cli_errors(tmp_path, capsys):
    need(CMU_01)
    bad = tmp_path / "bad.yaml"
    bad.write_text("units_to_metres: 0.01\njoints:\n  left_wrst: Hand_L\n")
    assert run_cli("data", "build", str(CMU_01), "--out", str(tmp_path / "a.h5"),
                   "--joint-map", str(bad), "--no-progress") == 2
    err = capsys.readouterr().err
    assert "unknown target joint 'left_wrst'" in err and "left_wrist" in err

    # A valid map whose source joint is not in the file: the file is skipped, naming the joint
    # and the joints that exist.
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: wrong\nunits_to_metres: 0.01\njoints:\n  neck: Neck\n"
                     "  left_wrist: Hand_L\n")
    assert run_cli("data", "build", str(CMU_01), "--out", str(tmp_path / "b.h5"),
                   "--joint-map", str(wrong), "--no-progress") == 1
    out = capsys.readouterr().out
    assert "'Hand_L'" in out and "not in the skeleton" in out and "LeftWrist" in out


def test_resample():
    x = np.arange(9, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    np.testing.assert_array_equal(resample(x, 120, 30), x[::4])
    np.testing.assert_array_equal(resample(x, 30, None), x)
    up = resample(x, 30, 60)
    assert len(up) == 17
    np.testing.assert_allclose(up[:, 0, 0], np.arange(17) / 2)
    np.testing.assert_allclose(resample(x, 60, 25)[:, 0, 0], np.arange(4) * 2.4, rtol=1e-6)


def test_posetween_cli_main(tmp_path):
    """The real `posetween` entry point (skipped while other commands are not importable)."""
    need(CMU_01)
    try:
        from posetween.cli import main
        main(["--help"])
    except SystemExit:
        pass
    except ImportError as e:
        pytest.skip(f"posetween.cli cannot import every command yet: {e}")
    out = tmp_path / "cli.h5"
    assert main(["data", "build", str(CMU_01), "--out", str(out), "--no-progress"]) == 0
    assert load_motions(out)[0].joints.shape == (994, NUM_JOINTS, 3)


# Bones whose left and right lengths a body has alike: a joint map that names the wrong point
# (one side's hand point a forearm marker, say) shows as a difference between the sides.
SIDE_BONES = (("hand", "wrist"), ("wrist", "elbow"), ("elbow", "shoulder"), ("big_toe", "ankle"),
              ("ankle", "knee"), ("knee", "hip"))


@pytest.mark.parametrize("source", ["mocap/music2dance-ballroom-25fps.tar.xz", "mocap/cmu-131"])
def test_joint_maps_give_left_and_right_alike(shared_data, tmp_path, source):
    """Each source's joint map, on its real data: every bone as long on the left as on the right
    (medians within 20 %), so no point stands for a different body part on one side."""
    path = shared_data / source
    if path.name.endswith(".tar.xz"):
        with tarfile.open(path) as tf:
            tf.extractall(tmp_path, filter="data")
        path = next(tmp_path.rglob("*.npz"))
    build_dataset([path], tmp_path / "out.h5", progress=False)
    joints = np.concatenate([m.joints for m in load_motions(tmp_path / "out.h5")])
    length = lambda a, b: np.median(np.linalg.norm(joints[:, JOINT_INDEX[a]] - joints[:, JOINT_INDEX[b]], axis=-1))
    for child, parent in SIDE_BONES:
        left, right = length(f"left_{child}", f"left_{parent}"), length(f"right_{child}", f"right_{parent}")
        assert abs(left - right) <= 0.2 * max(left, right) + 1e-3, (source, child, parent, left, right)
