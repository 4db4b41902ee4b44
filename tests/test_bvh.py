"""BVH reader and forward kinematics (posetween.training.bvh) and joint maps."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import CMU_01, need, read_bandai_members
from posetween.core.skeleton import JOINT_INDEX, NUM_JOINTS
from posetween.training.bvh import BvhError, euler_matrices, read_bvh
from posetween.training.joint_maps import (JointMap, JointMapError, builtin_joint_maps,
                                           detect_joint_map, load_joint_map)


# Root: 6 channels. Spine: 3 channels, order Z Y X. Arm: 6 channels (its position channels
# replace its OFFSET), order X Y Z. Leg: 3 channels, order X Y Z. Two End Sites.
SMALL_BVH = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Spine
\t{
\t\tOFFSET 0 10 0
\t\tCHANNELS 3 Zrotation Yrotation Xrotation
\t\tJOINT Arm
\t\t{
\t\t\tOFFSET 5 0 0
\t\t\tCHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
\t\t\tEnd Site
\t\t\t{
\t\t\t\tOFFSET 0 0 2
\t\t\t}
\t\t}
\t}
\tJOINT Leg
\t{
\t\tOFFSET 0 -4 0
\t\tCHANNELS 3 Xrotation Yrotation Zrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 -3 0
\t\t}
\t}
}
MOTION
Frames: 2
Frame Time: 0.04
1 2 3 0 0 0  0 0 0  7 0 0 0 0 0  0 0 0
1 2 3 90 0 0  0 90 0  5 1 0 90 0 0  90 90 0
"""

# Hand-worked forward kinematics. Rotations (column vectors):
#   Rz(90) = [[0,-1,0],[1,0,0],[0,0,1]]: (x, y, z) -> (-y, x, z)
#   Ry(90) = [[0,0,1],[0,1,0],[-1,0,0]]: (x, y, z) -> (z, y, -x)
#   Rx(90) = [[1,0,0],[0,0,-1],[0,1,0]]: (x, y, z) -> (x, -z, y)
# Frame 0: no rotation. Hips = (1,2,3); Spine = Hips + (0,10,0) = (1,12,3);
#   Arm = Spine + (7,0,0) (position channels replace OFFSET 5 0 0) = (8,12,3);
#   Arm_end = Arm + (0,0,2) = (8,12,5); Leg = Hips + (0,-4,0) = (1,-2,3);
#   Leg_end = Leg + (0,-3,0) = (1,-5,3).
# Frame 1: R_hips = Rz(90), Hips = (1,2,3).
#   Spine = Rz(90)(0,10,0) + Hips = (-10,0,0) + (1,2,3) = (-9,2,3);  R_spine = Rz Ry.
#   Arm local translation (5,1,0): Ry(90)(5,1,0) = (0,1,-5); Rz(90)(0,1,-5) = (-1,0,-5);
#     Arm = (-9,2,3) + (-1,0,-5) = (-10,2,-2);  R_arm = Rz Ry Rx.
#   Arm_end: Rx(90)(0,0,2) = (0,-2,0); Ry(90)(0,-2,0) = (0,-2,0); Rz(90)(0,-2,0) = (2,0,0);
#     Arm_end = (-10,2,-2) + (2,0,0) = (-8,2,-2).
#   Leg = Rz(90)(0,-4,0) + Hips = (4,0,0) + (1,2,3) = (5,2,3);  R_leg = Rz Rx Ry (channel
#     order X then Y: intrinsic, R = Rx @ Ry).
#   Leg_end: Ry(90)(0,-3,0) = (0,-3,0); Rx(90)(0,-3,0) = (0,0,-3); Rz(90)(0,0,-3) = (0,0,-3);
#     Leg_end = (5,2,3) + (0,0,-3) = (5,2,0).
#     (With the wrong order, Ry @ Rx, it would be Rz(Ry(0,0,-3)) = Rz(-3,0,0) = (0,-3,0) ->
#     (5,-1,3), so this checks the intrinsic convention.)
EXPECTED_NAMES = ["Hips", "Spine", "Arm", "Arm_end", "Leg", "Leg_end"]
EXPECTED = np.array([
    [[1, 2, 3], [1, 12, 3], [8, 12, 3], [8, 12, 5], [1, -2, 3], [1, -5, 3]],
    [[1, 2, 3], [-9, 2, 3], [-10, 2, -2], [-8, 2, -2], [5, 2, 3], [5, 2, 0]],
], dtype=float)


def test_small_bvh_forward_kinematics_by_hand():
    m = read_bvh(SMALL_BVH)
    assert m.names == EXPECTED_NAMES
    assert m.parents.tolist() == [-1, 0, 1, 2, 0, 4]
    assert m.fps == 25.0
    assert m.positions.shape == (2, 6, 3)
    np.testing.assert_allclose(m.positions, EXPECTED, atol=1e-9)


def test_accepts_bytes_path_and_crlf(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(SMALL_BVH)
    for source in (SMALL_BVH.encode(), path, str(path), SMALL_BVH.replace("\n", "\r\n")):
        np.testing.assert_allclose(read_bvh(source).positions, EXPECTED, atol=1e-9)


def test_euler_matrices_match_scipy_intrinsic():
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, (50, 3))
    for seq in ("ZXY", "ZYX", "XYZ", "YZX"):
        ref = Rotation.from_euler(seq, angles, degrees=True).as_matrix()
        np.testing.assert_allclose(euler_matrices(seq, angles), ref, atol=1e-12)
    ref = Rotation.from_euler("Y", angles[:, :1], degrees=True).as_matrix()
    np.testing.assert_allclose(euler_matrices("Y", angles[:, :1]), ref, atol=1e-12)


@pytest.mark.parametrize("text, message", [
    (SMALL_BVH.replace("1 2 3 90 0 0  0 90 0  5 1 0 90 0 0  90 90 0\n", ""),
     "declares 2 frames of 18 channels"),
    (SMALL_BVH.replace("Zrotation Yrotation Xrotation", "Zrotation Yrotation Wrotation"),
     "unknown channel"),
    (SMALL_BVH.replace("Frame Time", "Frame Tme"), "MOTION"),
    ("hello\nworld\n", "not a BVH file"),
    (SMALL_BVH.replace("Frames: 2", "Frames: 0"), "no frames"),
])
def test_malformed_bvh_raises_clear_error(text, message):
    with pytest.raises(BvhError, match=message):
        read_bvh(text)


# ----------------------------------------------------------------------------- joint maps

def test_builtin_maps_are_valid():
    maps = builtin_joint_maps()
    assert {"bandai", "cmu"} <= set(maps)
    assert maps["bandai"].units_to_metres == 0.01
    assert maps["cmu"].units_to_metres == pytest.approx(0.056444)


def test_joint_map_unknown_target_joint():
    with pytest.raises(JointMapError, match=r"unknown target joint 'left_wrst'.*left_wrist"):
        JointMap.from_dict({"units_to_metres": 1, "joints": {"left_wrst": "Hand_L"}})


def test_joint_map_missing_source_joint_lists_available():
    jm = JointMap.from_dict({"units_to_metres": 1, "joints": {"neck": "Nek", "mid_hip": "Hips"}})
    with pytest.raises(JointMapError, match=r"'Nek'.*not in the skeleton.*Hips, Spine"):
        jm.apply(EXPECTED_NAMES, np.zeros((2, 6, 3)))


def test_joint_map_bad_units_and_values(tmp_path):
    with pytest.raises(JointMapError, match="units_to_metres"):
        JointMap.from_dict({"joints": {"neck": "Neck"}})
    with pytest.raises(JointMapError, match="positive"):
        JointMap.from_dict({"units_to_metres": -1, "joints": {"neck": "Neck"}})
    with pytest.raises(JointMapError, match="non-empty list"):
        JointMap.from_dict({"units_to_metres": 1, "joints": {"neck": []}})
    with pytest.raises(JointMapError, match="no joint map file"):
        load_joint_map(tmp_path / "nope.yaml")


def test_joint_map_mean_units_missing_and_z_up(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("name: small\nunits_to_metres: 0.5\nup_axis: z\n"
                    "joints:\n  mid_hip: Hips\n  neck: [Spine, Arm]\n")
    jm = load_joint_map(path)
    assert jm.name == "small"
    out = jm.apply(EXPECTED_NAMES, EXPECTED)
    assert out.shape == (2, NUM_JOINTS, 3) and out.dtype == np.float32
    # Frame 0: mean(Spine, Arm) = (4.5, 12, 3) * 0.5 = (2.25, 6, 1.5); Z-up -> (x, z, -y).
    np.testing.assert_allclose(out[0, JOINT_INDEX["neck"]], [2.25, 1.5, -6.0])
    np.testing.assert_allclose(out[0, JOINT_INDEX["mid_hip"]], [0.5, 1.5, -1.0])
    assert np.isnan(out[:, JOINT_INDEX["nose"]]).all()


def test_detect_joint_map():
    bandai_names = ["joint_Root", "Hips", "Spine", "UpperArm_L", "UpperArm_R", "LowerLeg_L",
                    "LowerLeg_R"]
    assert detect_joint_map(bandai_names).name == "bandai"
    with pytest.raises(JointMapError, match="no joint map recognises"):
        detect_joint_map(EXPECTED_NAMES)


# ----------------------------------------------------------------------------- real files

# Bones between mapped joints that are rigid in the source skeletons (each a parent-child
# chain whose in-between joints have no translation channels of their own that change).
RIGID = [("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
         ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("mid_hip", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
         ("right_ankle", "right_big_toe"),
         ("mid_hip", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
         ("left_ankle", "left_big_toe")]


def check_plausible_person(joints: np.ndarray, extra_rigid=()) -> None:
    for a, b in RIGID + list(extra_rigid):
        length = np.linalg.norm(joints[:, JOINT_INDEX[a]] - joints[:, JOINT_INDEX[b]], axis=-1)
        assert length.mean() > 0.03, (a, b, length.mean())
        assert length.std() / length.mean() < 1e-4, (a, b, length.std() / length.mean())
    y = joints[..., 1]
    head = np.nanmax(y[:, JOINT_INDEX["nose"]])
    assert 1.2 < head < 2.1, head                                   # metres, Y-up
    assert 0.6 < np.median(y[:, JOINT_INDEX["mid_hip"]]) < 1.2
    assert -0.1 < np.nanmin(y[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]]) < 0.3
    # Not mirrored: the right hip is on the right of the walking/facing direction.
    toe = joints[:, [JOINT_INDEX["left_big_toe"], JOINT_INDEX["right_big_toe"]]].mean(1)
    ankle = joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]].mean(1)
    forward = toe - ankle
    forward[:, 1] = 0
    right = np.cross(forward, [0.0, 1.0, 0.0])
    side = joints[:, JOINT_INDEX["right_hip"]] - joints[:, JOINT_INDEX["left_hip"]]
    assert np.mean(np.sum(side * right, -1) > 0) > 0.9


def test_bandai_files_from_archive():
    from posetween.training.build_data import bvh_to_joints
    for name, data in read_bandai_members(2):
        m = read_bvh(data)
        assert m.fps == 30.0, name
        assert "Hips" in m.names and "Toes_L_end" in m.names
        joints, fps, jm = bvh_to_joints(data)
        assert jm.name == "bandai" and fps == 30.0
        assert joints.shape == (m.num_frames, NUM_JOINTS, 3)
        assert np.isfinite(joints).all()
        check_plausible_person(joints)


def test_cmu_file():
    need(CMU_01)
    from posetween.training.build_data import bvh_to_joints
    m = read_bvh(CMU_01)
    assert m.fps == 120.0
    assert m.num_frames == 994
    assert len(m.names) == 38  # 31 joints + 7 End Sites
    joints, fps, jm = bvh_to_joints(CMU_01)
    assert jm.name == "cmu" and fps == 120.0
    assert np.isfinite(joints).all()
    thigh = np.linalg.norm(joints[:, JOINT_INDEX["left_hip"]] - joints[:, JOINT_INDEX["left_knee"]],
                           axis=-1)
    assert 0.35 < thigh.mean() < 0.5
    check_plausible_person(joints, extra_rigid=[("left_wrist", "left_hand"),
                                                ("right_wrist", "right_hand")])
