"""Error metrics, in units of the sequence's mean 2D torso length (neck to mid-hip).

``pred`` and ``target`` are (N, J, 2) arrays of the same frames; joints with no ground truth
(NaN) do not count. Position errors are counted on the frames between keyframes (``between``);
the acceleration error is taken along the whole output sequence in frame order.
"""

from __future__ import annotations

import numpy as np


def position_errors(pred: np.ndarray, target: np.ndarray, torso: float) -> dict[str, np.ndarray]:
    """Per-joint errors for aggregation: distances, coordinate errors, and how many joints
    with ground truth the method gave no answer for (a baseline cannot place a joint that was
    missing in every keyframe it sees; the model always answers). Unanswered joints are left
    out of the errors, which favours the baselines, and counted in ``unanswered``."""
    diff = (pred - target) / torso
    has_truth = np.isfinite(target).all(-1)
    answered = has_truth & np.isfinite(pred).all(-1)
    return {"dist": np.linalg.norm(diff, axis=-1)[answered], "coord": diff[answered],
            "unanswered": int(has_truth.sum() - answered.sum())}


def acceleration_error(pred: np.ndarray, target: np.ndarray, torso: float) -> np.ndarray:
    """|second difference of pred - that of target| per joint and inner frame, torso/frame^2."""
    if len(pred) < 3:
        return np.zeros(0)
    acc = lambda x: x[2:] - 2 * x[1:-1] + x[:-2]
    err = np.linalg.norm(acc(pred) - acc(target), axis=-1) / torso
    return err[np.isfinite(err)]


def summarize(dists: list[np.ndarray], coords: list[np.ndarray], accels: list[np.ndarray],
              unanswered: int = 0) -> dict[str, float]:
    d = np.concatenate(dists) if dists else np.zeros(0)
    c = np.concatenate(coords) if coords else np.zeros((0, 2))
    a = np.concatenate(accels) if accels else np.zeros(0)
    return {
        "mpjpe": float(d.mean()),
        "pck@0.1": float((d <= 0.1).mean()),
        "accel": float(a.mean()) if a.size else float("nan"),
        "mse": float((c ** 2).mean()),
        "mae": float(np.abs(c).mean()),
        "max": float(np.abs(c).max()),
        "joints": int(d.size),
        "unanswered": int(unanswered),
    }
