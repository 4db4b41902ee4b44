"""Classical baselines the model must beat, on the same keyframes it sees.

All take a window as the model does: key_xy (B, K, J, 2) with missing joints marked by
key_conf == 0 (or NaN coordinates), key_time (B, K) seconds ascending, query_time (B, Q).
Each joint is interpolated through the keyframes where it was seen.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.interpolate import CubicSpline
from torch import Tensor

from .model import joint_weighted_sum, per_joint_curve_weights, per_joint_weights


def _per_joint(key_xy: Tensor, key_conf: Tensor, key_time: Tensor, query_time: Tensor, weights) -> Tensor:
    """Each joint through the keyframes where it was seen, with ``weights(time, seen,
    query_time) -> (B, J, Q, K)``; NaN for a joint seen nowhere in the window."""
    seen = (key_conf > 0) & torch.isfinite(key_xy).all(-1)                      # (B, K, J)
    xy = torch.where(seen.unsqueeze(-1), key_xy, torch.zeros_like(key_xy))
    out = joint_weighted_sum(weights(key_time, seen, query_time), xy)
    never_seen = ~seen.any(1)                                                   # (B, J)
    return torch.where(never_seen[:, None, :, None], torch.full_like(out, float("nan")), out)


def _linear_weights(max_alpha: float):
    return lambda time, seen, query_time: per_joint_weights(time, seen, query_time, max_alpha)


def linear(key_xy: Tensor, key_conf: Tensor, key_time: Tensor, query_time: Tensor) -> Tensor:
    """Linear interpolation; holds the newest value past the newest keyframe."""
    return _per_joint(key_xy, key_conf, key_time, query_time, _linear_weights(1.0))


def constant_velocity(key_xy: Tensor, key_conf: Tensor, key_time: Tensor, query_time: Tensor) -> Tensor:
    """Linear interpolation, and past the newest keyframe constant-velocity extrapolation
    from the last two (the baseline for lookahead 0)."""
    return _per_joint(key_xy, key_conf, key_time, query_time, _linear_weights(math.inf))


def curve(key_xy: Tensor, key_conf: Tensor, key_time: Tensor, query_time: Tensor) -> Tensor:
    """The model's curve prior alone: the cubic Hermite curve of ``model.hermite_weights``
    (between the newest two keyframes, the parabola through the newest three); hold outside."""
    return _per_joint(key_xy, key_conf, key_time, query_time,
                      lambda time, seen, q: per_joint_curve_weights(time, seen, q, 1.0)[1])


def cubic(key_xy: np.ndarray, key_conf: np.ndarray, key_time: np.ndarray, query_time: np.ndarray) -> np.ndarray:
    """Cubic spline (scipy, not-a-knot) per joint through the keyframes where it was seen;
    linear where only two are, hold where one is."""
    key_xy, key_conf = np.asarray(key_xy, np.float64), np.asarray(key_conf)
    key_time, query_time = np.asarray(key_time, np.float64), np.asarray(query_time, np.float64)
    B, K, J, _ = key_xy.shape
    out = np.full((B, query_time.shape[1], J, 2), np.nan)
    seen = (key_conf > 0) & np.isfinite(key_xy).all(-1)
    for b in range(B):
        all_seen = seen[b].all(0)
        groups = [(np.flatnonzero(all_seen), np.ones(K, bool))] if all_seen.any() else []
        groups += [([j], seen[b, :, j]) for j in np.flatnonzero(~all_seen)]
        for joints, rows in groups:
            t, y = key_time[b, rows], key_xy[b][rows][:, joints]
            if len(t) >= 3:
                out[b, :, joints] = CubicSpline(t, y, axis=0)(query_time[b]).transpose(1, 0, 2)
            elif len(t) == 2:
                a = np.clip((query_time[b] - t[0]) / (t[1] - t[0]), 0, 1)[:, None, None]
                out[b, :, joints] = ((1 - a) * y[0] + a * y[1]).transpose(1, 0, 2)
            elif len(t) == 1:
                out[b, :, joints] = y[0][None].repeat(query_time.shape[1], 0).transpose(1, 0, 2)
    return out


class OneEuroFilter:
    """The One-Euro filter (Casiez et al., CHI 2012) over irregular timestamps, vectorised
    over joints. A missing value leaves the state as it was."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = self.t = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, t: float, x: np.ndarray, seen: np.ndarray) -> np.ndarray:
        x = np.where(seen[..., None], x, np.nan)
        if self.x is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return self.x.copy()
        dt = max(t - self.t, 1e-6)
        self.t = t
        first = np.isnan(self.x) & ~np.isnan(x)
        self.x[first] = x[first]
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        dx_hat = np.where(np.isnan(dx), self.dx, a_d * dx + (1 - a_d) * self.dx)
        speed = np.linalg.norm(dx_hat, axis=-1, keepdims=True)
        a = self._alpha(self.min_cutoff + self.beta * speed, dt)
        x_hat = np.where(np.isnan(x), self.x, a * x + (1 - a) * self.x)
        self.x, self.dx = x_hat, dx_hat
        return x_hat.copy()
