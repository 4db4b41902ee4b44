import numpy as np
import pytest

from posetween.core.skeleton import (BODY_25, COCO_17, JOINT_INDEX, MEDIAPIPE_33, MIRROR, NUM_JOINTS,
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
