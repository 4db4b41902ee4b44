"""Adapters: the results of the pose estimators people run, as one frame of several people.

Each function takes what the estimator returns and gives a :class:`People`: ``xy (N, J, 2)``
pixels, ``conf (N, J)`` (0: missing), the joint ``layout`` and, when the result carries one, the
capture ``time`` in seconds. Push it with ``people.push(engine, "cam1", t)`` (or
``engine.push_frame("cam1", t, p.xy, p.conf, p.layout)``); each person becomes the stream
``cam1/<person>``. None of these imports its estimator: they read the documented fields.

=====================================  ==========================================  ============
estimator                              function                                    layout
=====================================  ==========================================  ============
MediaPipe Tasks PoseLandmarker         :func:`from_mediapipe_tasks`                mediapipe33
MediaPipe legacy ``solutions.pose``    :func:`from_mediapipe_legacy`               mediapipe33
ultralytics YOLO-pose                  :func:`from_ultralytics`                    coco17
rtmlib (Body, BodyWithFeet, Wholebody) :func:`from_rtmlib`                         by joint count
OpenPose ``--write_json``              :func:`read_openpose_json`                  body25 / openpose18
COCO keypoint results (``.json``)      :func:`read_coco_results`                   coco17 / wholebody133
=====================================  ==========================================  ============
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posetween.core.skeleton import get_layout


@dataclass
class People:
    """One frame's people: ``xy (N, J, 2)`` pixels, ``conf (N, J)`` in the joint ``layout``."""
    xy: np.ndarray
    conf: np.ndarray
    layout: str
    time: float | None = None     # capture time, seconds, when the result says it
    ids: list | None = None       # the estimator's own identities (a tracker's), when it has them

    def __len__(self) -> int:
        return len(self.xy)

    def push(self, engine, camera: str, t: float | None = None, now: float | None = None):
        """``engine.push_frame`` with this frame (``t``: capture time, seconds; default ``time``)."""
        t = self.time if t is None else t
        if t is None:
            raise ValueError("this result has no capture time: pass t (seconds)")
        return engine.push_frame(camera, t, self.xy, self.conf, self.layout, self.ids, now=now)


def _people(xy, conf, layout: str, time=None, ids=None) -> People:
    J = get_layout(layout).num_joints
    xy = np.asarray(xy, np.float64).reshape(-1, J, 2)
    conf = np.asarray(conf, np.float64).reshape(-1, J)
    return People(xy, conf, layout, time, ids)


def _numpy(x) -> np.ndarray:
    """A torch tensor (any device) or array-like as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, np.float64)


# ---------------------------------------------------------------- MediaPipe

def from_mediapipe_tasks(result, width: int, height: int, timestamp_ms: float | None = None) -> People:
    """A ``PoseLandmarkerResult`` (``mediapipe.tasks.python.vision``, ``num_poses`` >= 1):
    ``pose_landmarks`` is one list of 33 normalised landmarks per person. Coordinates are scaled
    to pixels; confidence is the landmark's ``visibility``. ``timestamp_ms``: the value given to
    ``detect_for_video`` / ``detect_async``, in milliseconds; ``time`` is it in seconds (the
    engine wants seconds: milliseconds would read as 33-second gaps)."""
    poses = result.pose_landmarks or []
    xy = [[(lm.x * width, lm.y * height) for lm in pose] for pose in poses]
    conf = [[lm.visibility if lm.visibility is not None else 1.0 for lm in pose] for pose in poses]
    return _people(xy, conf, "mediapipe33", None if timestamp_ms is None else timestamp_ms / 1000.0)


def from_mediapipe_legacy(results, width: int, height: int) -> People:
    """The result of ``mediapipe.solutions.pose.Pose().process(rgb)`` (one person at most):
    ``pose_landmarks.landmark``, 33 normalised landmarks with ``visibility``."""
    if results.pose_landmarks is None:
        return _people(np.zeros((0, 33, 2)), np.zeros((0, 33)), "mediapipe33")
    lm = results.pose_landmarks.landmark
    return _people([[(p.x * width, p.y * height) for p in lm]], [[p.visibility for p in lm]], "mediapipe33")


# ---------------------------------------------------------------- ultralytics, rtmlib

YOLO_ZEROED_BELOW = 0.5   # ultralytics' Keypoints zeroes x, y of joints below this confidence


def from_ultralytics(result) -> People:
    """One ``ultralytics.engine.results.Results`` of a YOLO-pose model (``model(img)[0]``), or
    its ``keypoints.data`` array ``(N, 17, 3)``. ultralytics sets the coordinates of joints whose
    confidence is under 0.5 to (0, 0) but keeps the confidence: those joints are missing here.
    The ids of ``model.track()`` (``result.boxes.id``) are kept when present."""
    ids = None
    if hasattr(result, "keypoints"):
        boxes = getattr(result, "boxes", None)
        if boxes is not None and getattr(boxes, "id", None) is not None:
            ids = [int(i) for i in _numpy(boxes.id)]
        kp = result.keypoints
        data = _numpy(kp.data) if kp is not None else np.zeros((0, 17, 3))
    else:
        data = _numpy(result)
    if data.ndim == 2:
        data = data[None]
    if data.shape[-1] == 2:                       # a model without keypoint confidences
        data = np.concatenate([data, np.ones(data.shape[:-1] + (1,))], -1)
    conf = np.where(data[..., 2] >= YOLO_ZEROED_BELOW, data[..., 2], 0.0)
    return _people(data[..., :2], conf, "coco17", ids=ids)


RTMLIB_LAYOUTS = {17: "coco17", 26: "halpe26", 133: "wholebody133", 18: "openpose18"}


def from_rtmlib(keypoints, scores, layout: str | None = None) -> People:
    """rtmlib's ``keypoints, scores = model(img)``: ``(N, K, 2)`` pixels and ``(N, K)``. The
    layout follows K: ``Body`` (RTMPose, YOLOX + RTMPose) 17 = COCO-17, ``BodyWithFeet`` 26 =
    Halpe-26, ``Wholebody`` (DWPose, RTMW) 133 = COCO-WholeBody, ``to_openpose=True`` 18 =
    OpenPose COCO-18. RTMPose scores are SimCC peak values, above 1 for sure joints (clipped
    to 1 by the engine)."""
    kp, sc = _numpy(keypoints), _numpy(scores)
    if kp.ndim == 2:
        kp, sc = kp[None], sc[None]
    if layout is None:
        try:
            layout = RTMLIB_LAYOUTS[kp.shape[1]]
        except KeyError:
            raise ValueError(f"rtmlib output with {kp.shape[1]} joints: pass layout=") from None
    return _people(kp, sc, layout)


# ---------------------------------------------------------------- files

OPENPOSE_LAYOUTS = {25: "body25", 18: "openpose18"}


def read_openpose_json(source) -> People:
    """One OpenPose ``--write_json`` file (a path, or its parsed dict): every person of
    ``people[i].pose_keypoints_2d`` (flat x, y, c; BODY_25 or COCO-18, from the count). OpenPose
    writes a missing joint as 0, 0, 0. ``person_id`` (-1 unless OpenPose tracked) becomes ids."""
    data = source if isinstance(source, dict) else json.loads(Path(source).read_text())
    rows, ids = [], []
    for person in data.get("people", []):
        flat = np.asarray(person.get("pose_keypoints_2d", []), np.float64)
        if flat.size:
            rows.append(flat.reshape(-1, 3))
            pid = person.get("person_id", [-1])
            ids.append(pid[0] if isinstance(pid, list) and pid else pid)
    if not rows:
        return _people(np.zeros((0, 25, 2)), np.zeros((0, 25)), "body25")
    counts = {len(r) for r in rows}
    if len(counts) != 1 or (J := counts.pop()) not in OPENPOSE_LAYOUTS:
        raise ValueError(f"OpenPose JSON with {sorted({len(r) for r in rows})} joints per person; "
                         "BODY_25 (25) and COCO (18) are supported")
    kp = np.stack(rows)
    tracked = all(isinstance(i, int) and i >= 0 for i in ids) and len(set(ids)) == len(ids)
    return _people(kp[..., :2], kp[..., 2], OPENPOSE_LAYOUTS[J], ids=ids if tracked else None)


def read_coco_results(source, min_score: float = 0.0) -> dict[int, People]:
    """COCO keypoint detection results (the format of the COCO challenge, mmpose's
    ``--dump`` and many tools): a list of ``{"image_id", "category_id", "keypoints": [x, y, v] * K,
    "score"}``; -> ``{image_id: People}`` in image id order. K = 17 (COCO-17) or 133
    (COCO-WholeBody). Detections scoring below ``min_score`` are left out. Images with nobody
    are absent: times come from the caller (image id / fps, or the images' own times)."""
    data = source if isinstance(source, list) else json.loads(Path(source).read_text())
    by_image: dict[int, list[np.ndarray]] = defaultdict(list)
    for det in data:
        if det.get("score", 1.0) < min_score:
            continue
        by_image[det["image_id"]].append(np.asarray(det["keypoints"], np.float64).reshape(-1, 3))
    out = {}
    for image_id in sorted(by_image):
        kp = np.stack(by_image[image_id])
        layout = {17: "coco17", 133: "wholebody133"}.get(kp.shape[1])
        if layout is None:
            raise ValueError(f"image {image_id}: {kp.shape[1]} keypoints per detection (17 or 133 expected)")
        out[image_id] = _people(kp[..., :2], kp[..., 2], layout)
    return out
