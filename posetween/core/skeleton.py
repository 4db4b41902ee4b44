"""Joint layouts and converters into the model's 19-joint layout.

The model's layout is the one of "Render In-between": OpenPose BODY_25 joints 0-14, the two
big toes, and the two hand centres. Every converter returns ``(xy, conf)`` with ``xy`` of shape
``(..., 19, 2)`` and ``conf`` of shape ``(..., 19)``. A joint that the source layout lacks, or
that the detector did not find, is *missing*: confidence 0 and coordinates NaN. It is never a
zero coordinate, because (0, 0) is a real place on an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "mid_hip",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "left_big_toe", "right_big_toe",
    "left_hand", "right_hand",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
NECK, MID_HIP = JOINT_INDEX["neck"], JOINT_INDEX["mid_hip"]

# Bones for drawing (pairs of joint names).
BONES: tuple[tuple[str, str], ...] = (
    ("nose", "neck"), ("neck", "mid_hip"),
    ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("right_wrist", "right_hand"),
    ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("left_wrist", "left_hand"),
    ("mid_hip", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("right_ankle", "right_big_toe"),
    ("mid_hip", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("left_ankle", "left_big_toe"),
)
BONE_INDEX = np.array([[JOINT_INDEX[a], JOINT_INDEX[b]] for a, b in BONES])


def _mirror_permutation(names: tuple[str, ...]) -> np.ndarray:
    def swap(name: str) -> str:
        if name.startswith("left_"):
            return "right_" + name[5:]
        if name.startswith("right_"):
            return "left_" + name[6:]
        return name
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[swap(n)] for n in names])


# Index permutation that swaps left and right joints (for flip augmentation).
MIRROR = _mirror_permutation(JOINT_NAMES)


@dataclass(frozen=True)
class Layout:
    """A source keypoint layout: its joint count, and for each of our 19 joints the source
    joints whose mean gives it (an empty tuple means the layout lacks that joint)."""

    name: str
    num_joints: int
    sources: tuple[tuple[int, ...], ...]

    def to_model(self, xy: np.ndarray, conf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Convert ``xy (..., num_joints, 2)`` and ``conf (..., num_joints)`` to our layout.

        A joint made from several source joints (a mean) is present only when all of them are;
        its confidence is their minimum.
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim < 2 or xy.shape[-2:] != (self.num_joints, 2):
            raise ValueError(
                f"layout {self.name!r} expects keypoints of shape (..., {self.num_joints}, 2), "
                f"got {xy.shape}")
        if conf is None:
            conf = np.ones(xy.shape[:-1])
        conf = np.asarray(conf, dtype=np.float64)
        if conf.shape != xy.shape[:-1]:
            raise ValueError(
                f"layout {self.name!r}: confidences of shape {conf.shape} do not match "
                f"keypoints of shape {xy.shape}")
        idx, used, has, count = self._tables
        present = (conf > 0) & np.isfinite(xy).all(-1)
        ok = has & (present[..., idx] | ~used).all(-1)
        mean = np.where(used[..., None], np.nan_to_num(xy)[..., idx, :], 0.0).sum(-2) / count[:, None]
        out_xy = np.where(ok[..., None], mean, np.nan)
        out_conf = np.where(ok, np.where(used, conf[..., idx], np.inf).min(-1), 0.0)
        return out_xy, out_conf

    @cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Index tables that make the conversion a few array operations (the streaming engine
        converts every keyframe): for each of our joints, its source joints ``idx`` padded to
        one width, which of them are ``used``, whether it ``has`` any, and how many (``count``)."""
        width = max(max(len(src) for src in self.sources), 1)
        idx = np.zeros((NUM_JOINTS, width), dtype=np.intp)
        used = np.zeros((NUM_JOINTS, width), dtype=bool)
        for j, src in enumerate(self.sources):
            idx[j, :len(src)], used[j, :len(src)] = src, True
        return idx, used, used.any(1), np.maximum(used.sum(1), 1)


def _layout(name: str, num_joints: int, table: dict[str, tuple[int, ...]]) -> Layout:
    unknown = set(table) - set(JOINT_NAMES)
    assert not unknown, unknown
    return Layout(name, num_joints, tuple(tuple(table.get(n, ())) for n in JOINT_NAMES))


# Our own layout (identity).
POSETWEEN19 = _layout("posetween19", NUM_JOINTS, {n: (i,) for i, n in enumerate(JOINT_NAMES)})

# OpenPose BODY_25: 0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8 mid-hip, 9-11 right leg,
# 12-14 left leg, 15-18 eyes/ears, 19 LBigToe, 20 LSmallToe, 21 LHeel, 22 RBigToe, ...
BODY_25 = _layout("body25", 25, {
    **{n: (i,) for i, n in enumerate(JOINT_NAMES[:15])},
    "left_big_toe": (19,), "right_big_toe": (22,),
})

# COCO-17: 0 nose, 1-2 eyes, 3-4 ears, 5 l-shoulder, 6 r-shoulder, 7 l-elbow, 8 r-elbow,
# 9 l-wrist, 10 r-wrist, 11 l-hip, 12 r-hip, 13 l-knee, 14 r-knee, 15 l-ankle, 16 r-ankle.
# Neck and mid-hip are means of the shoulders and hips, as OpenPose defines them.
COCO_17 = _layout("coco17", 17, {
    "nose": (0,), "neck": (5, 6),
    "right_shoulder": (6,), "right_elbow": (8,), "right_wrist": (10,),
    "left_shoulder": (5,), "left_elbow": (7,), "left_wrist": (9,),
    "mid_hip": (11, 12),
    "right_hip": (12,), "right_knee": (14,), "right_ankle": (16,),
    "left_hip": (11,), "left_knee": (13,), "left_ankle": (15,),
})

# MediaPipe Pose, 33 landmarks: 0 nose, 11/12 l/r shoulder, 13/14 elbows, 15/16 wrists,
# 17/18 pinkies, 19/20 index fingers, 21/22 thumbs, 23/24 hips, 25/26 knees, 27/28 ankles,
# 29/30 heels, 31/32 foot index (the toe tip, closest to the big toe).
MEDIAPIPE_33 = _layout("mediapipe33", 33, {
    "nose": (0,), "neck": (11, 12),
    "right_shoulder": (12,), "right_elbow": (14,), "right_wrist": (16,),
    "left_shoulder": (11,), "left_elbow": (13,), "left_wrist": (15,),
    "mid_hip": (23, 24),
    "right_hip": (24,), "right_knee": (26,), "right_ankle": (28,),
    "left_hip": (23,), "left_knee": (25,), "left_ankle": (27,),
    "left_big_toe": (31,), "right_big_toe": (32,),
    "left_hand": (15, 17, 19), "right_hand": (16, 18, 20),
})

# Halpe-26 (AlphaPose, rtmlib ``BodyWithFeet``): COCO-17's 0-16, then 17 head top, 18 neck,
# 19 hip (the mid-hip), 20/21 l/r big toe, 22/23 l/r small toe, 24/25 l/r heel. The layout's own
# neck and mid-hip are used: the detector saw them.
HALPE_26 = _layout("halpe26", 26, {
    "nose": (0,), "neck": (18,),
    "right_shoulder": (6,), "right_elbow": (8,), "right_wrist": (10,),
    "left_shoulder": (5,), "left_elbow": (7,), "left_wrist": (9,),
    "mid_hip": (19,),
    "right_hip": (12,), "right_knee": (14,), "right_ankle": (16,),
    "left_hip": (11,), "left_knee": (13,), "left_ankle": (15,),
    "left_big_toe": (20,), "right_big_toe": (21,),
})

# COCO-WholeBody-133 (RTMW, DWPose): COCO-17's 0-16; feet 17 l-big toe, 18 l-small toe, 19 l-heel,
# 20 r-big toe, 21 r-small toe, 22 r-heel; 23-90 face; 91-111 left hand, 112-132 right hand (each:
# 0 wrist, 5 index knuckle, 17 little-finger knuckle). The hand centre is the mean of the hand's
# wrist and those two knuckles, as for MediaPipe's wrist, index and pinky.
COCO_WHOLEBODY_133 = _layout("wholebody133", 133, {
    **{n: COCO_17.sources[i] for i, n in enumerate(JOINT_NAMES) if COCO_17.sources[i]},
    "left_big_toe": (17,), "right_big_toe": (20,),
    "left_hand": (91, 96, 108), "right_hand": (112, 117, 129),
})

# OpenPose COCO-18 (OpenPose's COCO model, rtmlib ``to_openpose``): 0 nose, 1 neck, 2-4 right arm,
# 5-7 left arm, 8-10 right leg, 11-13 left leg, 14/15 r/l eye, 16/17 r/l ear.
OPENPOSE_18 = _layout("openpose18", 18, {
    "nose": (0,), "neck": (1,),
    "right_shoulder": (2,), "right_elbow": (3,), "right_wrist": (4,),
    "left_shoulder": (5,), "left_elbow": (6,), "left_wrist": (7,),
    "mid_hip": (8, 11),
    "right_hip": (8,), "right_knee": (9,), "right_ankle": (10,),
    "left_hip": (11,), "left_knee": (12,), "left_ankle": (13,),
})

# MPII-16: 0-2 r-ankle, r-knee, r-hip, 3-5 l-hip, l-knee, l-ankle, 6 pelvis, 7 thorax, 8 upper neck,
# 9 head top, 10-12 r-wrist, r-elbow, r-shoulder, 13-15 l-shoulder, l-elbow, l-wrist. No nose (the
# head top is not one); the thorax sits between the shoulders, where OpenPose puts the neck.
MPII_16 = _layout("mpii16", 16, {
    "neck": (7,),
    "right_shoulder": (12,), "right_elbow": (11,), "right_wrist": (10,),
    "left_shoulder": (13,), "left_elbow": (14,), "left_wrist": (15,),
    "mid_hip": (6,),
    "right_hip": (2,), "right_knee": (1,), "right_ankle": (0,),
    "left_hip": (3,), "left_knee": (4,), "left_ankle": (5,),
})

# Human3.6M-17 (VideoPose3D's order; 17 joints like COCO-17, so never guessed from the count):
# 0 pelvis, 1-3 r-hip, r-knee, r-foot (the ankle), 4-6 left leg, 7 spine, 8 thorax, 9 neck/nose,
# 10 head, 11-13 left arm, 14-16 right arm.
H36M_17 = _layout("h36m17", 17, {
    "nose": (9,), "neck": (8,),
    "right_shoulder": (14,), "right_elbow": (15,), "right_wrist": (16,),
    "left_shoulder": (11,), "left_elbow": (12,), "left_wrist": (13,),
    "mid_hip": (0,),
    "right_hip": (1,), "right_knee": (2,), "right_ankle": (3,),
    "left_hip": (4,), "left_knee": (5,), "left_ankle": (6,),
})

LAYOUTS: dict[str, Layout] = {l.name: l for l in (POSETWEEN19, BODY_25, COCO_17, MEDIAPIPE_33, HALPE_26,
                                                   COCO_WHOLEBODY_133, OPENPOSE_18, MPII_16, H36M_17)}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {', '.join(LAYOUTS)}") from None


def layout_for_joint_count(num_joints: int) -> Layout:
    """The layout with this many joints. When several layouts share the count (17: COCO-17 and
    Human3.6M-17), guessing would silently put joints in the wrong places: an error names them."""
    matches = [l for l in LAYOUTS.values() if l.num_joints == num_joints]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = " or ".join(l.name for l in matches)
        raise ValueError(f"{num_joints} joints could be {names}: the joint count alone cannot tell; "
                         f"name the layout (layout={matches[0].name!r})")
    raise ValueError(f"no known joint layout has {num_joints} joints "
                     f"(known: {', '.join(f'{l.name}={l.num_joints}' for l in LAYOUTS.values())})")
