import numpy as np
import pytest

from posetween.core.skeleton import (BODY_25, COCO_17, COCO_WHOLEBODY_133, H36M_17, HALPE_26, JOINT_INDEX,
                                     JOINT_NAMES, LAYOUTS, MEDIAPIPE_33, MIRROR, MPII_16, NUM_JOINTS, OPENPOSE_18,
                                     POSETWEEN19, get_layout, layout_for_joint_count)


def test_body25_keeps_joints_and_marks_missing():
    xy = np.arange(50, dtype=float).reshape(25, 2)
    conf = np.ones(25)
    conf[4] = 0            # right wrist not found
    out, c = BODY_25.to_model(xy, conf)
    assert out.shape == (NUM_JOINTS, 2)
    np.testing.assert_array_equal(out[JOINT_INDEX["neck"]], xy[1])
    np.testing.assert_array_equal(out[JOINT_INDEX["left_big_toe"]], xy[19])
    assert c[JOINT_INDEX["right_wrist"]] == 0 and np.isnan(out[JOINT_INDEX["right_wrist"]]).all()
    # BODY_25 has no hand centres: missing, never (0, 0).
    assert c[JOINT_INDEX["left_hand"]] == 0 and np.isnan(out[JOINT_INDEX["left_hand"]]).all()


def test_coco_neck_is_mean_of_shoulders_and_needs_both():
    xy = np.random.default_rng(0).uniform(0, 100, (2, 17, 2))
    conf = np.ones((2, 17))
    conf[1, 5] = 0   # left shoulder missing in the second frame
    out, c = COCO_17.to_model(xy, conf)
    np.testing.assert_allclose(out[0, JOINT_INDEX["neck"]], xy[0, [5, 6]].mean(0))
    assert c[1, JOINT_INDEX["neck"]] == 0 and c[1, JOINT_INDEX["left_shoulder"]] == 0
    assert c[1, JOINT_INDEX["right_shoulder"]] == 1


def test_mediapipe_hand_centre_and_confidence_is_minimum():
    xy = np.random.default_rng(1).uniform(0, 100, (33, 2))
    conf = np.linspace(0.2, 1.0, 33)
    out, c = MEDIAPIPE_33.to_model(xy, conf)
    np.testing.assert_allclose(out[JOINT_INDEX["left_hand"]], xy[[15, 17, 19]].mean(0))
    assert c[JOINT_INDEX["left_hand"]] == pytest.approx(conf[[15, 17, 19]].min())


def test_nan_coordinates_are_missing_even_with_confidence():
    xy = np.zeros((19, 2))
    xy[3] = np.nan
    _, c = POSETWEEN19.to_model(xy, np.ones(19))
    assert c[3] == 0 and c[2] == 1


def test_bad_shapes_and_names_give_clear_errors():
    with pytest.raises(ValueError, match="expects keypoints of shape"):
        BODY_25.to_model(np.zeros((24, 2)))
    with pytest.raises(ValueError, match="unknown joint layout 'openpose'"):
        get_layout("openpose")
    with pytest.raises(ValueError, match="no known joint layout has 20 joints"):
        layout_for_joint_count(20)
    assert layout_for_joint_count(33) is MEDIAPIPE_33


def test_mirror_swaps_left_and_right():
    assert MIRROR[JOINT_INDEX["left_wrist"]] == JOINT_INDEX["right_wrist"]
    assert MIRROR[JOINT_INDEX["nose"]] == JOINT_INDEX["nose"]
    assert sorted(MIRROR) == list(range(NUM_JOINTS))


def test_existing_layouts_unchanged():
    # A model trains against these: their tables must stay exactly as they were.
    assert COCO_17.sources[JOINT_INDEX["neck"]] == (5, 6) and COCO_17.sources[JOINT_INDEX["mid_hip"]] == (11, 12)
    assert BODY_25.sources == tuple((i,) for i in range(15)) + ((19,), (22,), (), ())
    assert MEDIAPIPE_33.sources[JOINT_INDEX["left_hand"]] == (15, 17, 19)
    assert POSETWEEN19.sources == tuple((i,) for i in range(19))


# For each new layout: the source index of some of our joints, from the layout's documentation
# (AlphaPose's Halpe-26, COCO-WholeBody's keypoint list, OpenPose's COCO model, MPII, VideoPose3D's H36M).
NEW_LAYOUTS = {
    "halpe26": {"nose": 0, "neck": 18, "mid_hip": 19, "right_wrist": 10, "left_ankle": 15,
                "left_big_toe": 20, "right_big_toe": 21},
    "wholebody133": {"nose": 0, "right_wrist": 10, "left_knee": 13, "left_big_toe": 17, "right_big_toe": 20},
    "openpose18": {"nose": 0, "neck": 1, "right_wrist": 4, "left_shoulder": 5, "right_hip": 8, "left_ankle": 13},
    "mpii16": {"right_ankle": 0, "left_hip": 3, "mid_hip": 6, "neck": 7, "right_wrist": 10, "left_wrist": 15},
    "h36m17": {"mid_hip": 0, "right_ankle": 3, "left_hip": 4, "neck": 8, "nose": 9, "left_wrist": 13,
               "right_shoulder": 14},
}


@pytest.mark.parametrize("name", sorted(NEW_LAYOUTS))
def test_new_layouts_put_joints_where_their_documentation_says(name):
    layout = get_layout(name)
    xy = np.random.default_rng(2).uniform(0, 1000, (layout.num_joints, 2))
    out, c = layout.to_model(xy, np.ones(layout.num_joints))
    for joint, src in NEW_LAYOUTS[name].items():
        np.testing.assert_array_equal(out[JOINT_INDEX[joint]], xy[src], err_msg=joint)
        assert c[JOINT_INDEX[joint]] == 1


def test_derived_joints_of_new_layouts():
    xy = np.random.default_rng(3).uniform(0, 1000, (133, 2))
    out, _ = COCO_WHOLEBODY_133.to_model(xy)
    np.testing.assert_allclose(out[JOINT_INDEX["neck"]], xy[[5, 6]].mean(0))
    np.testing.assert_allclose(out[JOINT_INDEX["left_hand"]], xy[[91, 96, 108]].mean(0))
    np.testing.assert_allclose(out[JOINT_INDEX["right_hand"]], xy[[112, 117, 129]].mean(0))
    out, c = OPENPOSE_18.to_model(xy[:18])
    np.testing.assert_allclose(out[JOINT_INDEX["mid_hip"]], xy[[8, 11]].mean(0))
    assert c[JOINT_INDEX["left_big_toe"]] == 0                 # COCO-18 has no feet
    out, c = MPII_16.to_model(xy[:16])
    assert c[JOINT_INDEX["nose"]] == 0 and np.isnan(out[JOINT_INDEX["nose"]]).all()   # head top is no nose
    out, c = HALPE_26.to_model(xy[:26])
    assert c[JOINT_INDEX["left_hand"]] == 0


def test_every_layout_has_a_unique_name_and_covers_the_torso():
    for layout in LAYOUTS.values():
        assert len(layout.sources) == len(JOINT_NAMES)
        for joint in ("neck", "mid_hip", "left_shoulder", "right_hip", "left_knee"):
            assert layout.sources[JOINT_INDEX[joint]], (layout.name, joint)
        assert all(0 <= i < layout.num_joints for src in layout.sources for i in src)


def test_a_shared_joint_count_names_every_layout_that_has_it():
    with pytest.raises(ValueError, match="17 joints could be coco17 or h36m17"):
        layout_for_joint_count(17)
    assert layout_for_joint_count(26) is HALPE_26 and layout_for_joint_count(133) is COCO_WHOLEBODY_133
    assert layout_for_joint_count(18) is OPENPOSE_18 and layout_for_joint_count(16) is MPII_16
    assert H36M_17.num_joints == COCO_17.num_joints
