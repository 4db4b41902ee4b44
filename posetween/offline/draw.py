"""Drawing skeletons with OpenCV (BGR images), shared by the demo and ``posetween visualize``."""

from __future__ import annotations

import cv2
import numpy as np

from posetween.core.skeleton import BONE_INDEX

# BGR colours for methods / panels.
COLORS = {
    "keyframes": (0, 140, 255),    # orange
    "keys": (0, 140, 255),
    "estimator": (0, 140, 255),
    "posetween": (60, 220, 60),    # green
    "model": (60, 220, 60),
    "linear": (255, 140, 0),       # blue
    "ground_truth": (40, 40, 40),  # near black
    "gt": (40, 40, 40),
}
PALETTE = [(60, 220, 60), (255, 140, 0), (0, 140, 255), (200, 60, 200), (0, 200, 220), (40, 40, 40)]


def color_for(name: str, i: int) -> tuple[int, int, int]:
    return COLORS.get(name.lower(), PALETTE[i % len(PALETTE)])


def draw_skeleton(img: np.ndarray, xy: np.ndarray, conf: np.ndarray | None, color, thickness: int = 3,
                  radius: int | None = None, min_conf: float = 0.0, offset=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """Draw bones and joints in place; joints with conf <= min_conf or NaN are skipped."""
    if xy is None:
        return img
    xy = np.asarray(xy, np.float64) * scale + np.asarray(offset, np.float64)
    ok = np.isfinite(xy).all(-1)
    if conf is not None:
        ok &= np.asarray(conf) > min_conf
    radius = radius if radius is not None else thickness + 1
    shift = 4                                  # sub-pixel drawing
    p = np.where(ok[:, None], xy, 0) * (1 << shift)
    p = np.clip(p, -1e7, 1e7).astype(np.int64)
    for a, b in BONE_INDEX:
        if ok[a] and ok[b]:
            cv2.line(img, (int(p[a, 0]), int(p[a, 1])), (int(p[b, 0]), int(p[b, 1])), color, thickness,
                     cv2.LINE_AA, shift)
    for j in np.flatnonzero(ok):
        cv2.circle(img, (int(p[j, 0]), int(p[j, 1])), radius << shift, color, -1, cv2.LINE_AA, shift)
    return img


def put_text(img: np.ndarray, text: str, org, scale: float = 0.7, color=(255, 255, 255), thickness: int = 2) -> None:
    """Text with a dark outline, readable on any background."""
    x, y = int(org[0]), int(org[1])
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
