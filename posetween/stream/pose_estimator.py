"""MediaPipe Pose as the demo's keyframe source.

MediaPipe 0.10.21's legacy ``solutions.pose`` (``model_complexity=1``: the model inside the
wheel) gives 33 landmarks, normalised to the image; we scale them to pixels and convert them
to the project's 19 joints with the landmark *visibility* as confidence. A landmark whose
visibility is below ``min_visibility`` is treated as missing (conf 0, NaN), as is every joint
when no person is found.

MediaPipe tracks one person: it looks for the person near where it saw one last, and may jump
to another person when that one is lost. The streaming engine restarts a stream on such jumps.
For several people, ``multi_pose.MultiPersonPose`` runs MediaPipe once per person on a crop.
Its own landmark smoothing assumes 30 fps calls; the demo calls it at a few frames a second, so
smoothing is off by default (the model denoises the keyframes itself).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from posetween.core.skeleton import NUM_JOINTS, get_layout

MEDIAPIPE = get_layout("mediapipe33")


def mediapipe_pose(**options):
    """MediaPipe's legacy ``solutions.pose.Pose(**options)``, or a RuntimeError saying what to install."""
    try:
        import mediapipe as mp
    except ImportError as e:   # pragma: no cover - a dependency of the demo extra
        raise RuntimeError("MediaPipe is not installed (pip install 'posetween[demo]')") from e
    if not hasattr(getattr(mp, "solutions", None), "pose"):
        raise RuntimeError("this MediaPipe has no legacy solutions.pose; install mediapipe==0.10.21")
    return mp.solutions.pose.Pose(**options)


class MediaPipeEstimator:
    """What the one-person and the several-people estimators share: the landmarks -> joints
    conversion, the timing (``times``, seconds per call of ``estimate``), closing."""

    min_visibility: float
    times: list[float]
    _pose = None

    def landmarks_to_model(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """33 landmarks (x, y pixels, visibility) -> the project's 19 joints; landmarks less
        visible than ``min_visibility`` are missing (conf 0, NaN)."""
        vis = np.clip(raw[:, 2], 0.0, 1.0)
        conf = np.where(vis >= self.min_visibility, vis, 0.0)
        xy = np.where((conf > 0)[:, None], raw[:, :2], np.nan)
        return MEDIAPIPE.to_model(xy, conf)

    @property
    def mean_ms(self) -> float:
        return 1000.0 * float(np.mean(self.times)) if self.times else float("nan")

    def close(self) -> None:
        self._pose.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MediaPipePose(MediaPipeEstimator):
    """``estimate(bgr_image) -> (xy (19, 2) pixels, conf (19,))``; timing in ``times``."""

    def __init__(self, min_visibility: float = 0.5, model_complexity: int = 1, smooth: bool = False,
                 static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        self.min_visibility = float(min_visibility)
        self._pose = mediapipe_pose(
            static_image_mode=static_image_mode, model_complexity=model_complexity,
            smooth_landmarks=smooth, enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)
        self.times: list[float] = []      # seconds per call
        self.found = 0
        self.last_raw: np.ndarray | None = None   # (33, 3) x, y pixels, visibility

    def estimate_raw(self, image: np.ndarray) -> np.ndarray | None:
        """33 landmarks ``(33, 3)``: x, y in pixels and visibility; None when no person."""
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        result = self._pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        self.times.append(time.perf_counter() - t0)
        if result.pose_landmarks is None:
            self.last_raw = None
            return None
        lm = result.pose_landmarks.landmark
        raw = np.array([[p.x * w, p.y * h, p.visibility] for p in lm], dtype=np.float64)
        self.found += 1
        self.last_raw = raw
        return raw

    def estimate(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = self.estimate_raw(image)
        return self.to_model(raw)

    def to_model(self, raw: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if raw is None:
            return np.full((NUM_JOINTS, 2), np.nan), np.zeros(NUM_JOINTS)
        return self.landmarks_to_model(raw)
