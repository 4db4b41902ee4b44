"""The engine's guard against a model that does worse than a curve on a stream.

The model was trained on some bodies, skeletons and detectors; a stream may show another. The
engine cannot see the truth, but each keyframe that arrives is a fresh measurement it has not
shown the model yet: before it goes into a window, the guard asks how far the previous window's
answer, continued to the keyframe's time at the velocity of its last segment (the lead), and
the linear fallback's constant-velocity continuation of the same keyframes were from it. The
keyframe's own noise adds to both errors alike, so which one is nearer, keyframe after keyframe,
says which path is better on this stream.

``trust`` (0 to 1) follows a running mean of log(model error / curve error): 1 while the model
is as good as the curve (or within ``TIE`` of it: the two can differ by rounding alone), falling
to 0 where the model is ``LOSS_FOR_ZERO_TRUST`` times worse. The engine shows ``curve + trust * (model - curve)`` for the stream's next windows (the
curve being the fallback's linear interpolation), so a stream the model does not fit leans on the
curve instead of on what the model invents, and comes back to the model when it wins again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SMOOTHING = 0.2                 # weight of the newest keyframe's comparison in the running mean
TIE = 1.1                       # model error / curve error still counted as a tie
LOSS_FOR_ZERO_TRUST = 2.0       # model error / curve error at which the curve takes over entirely
MIN_CONF = 0.5                  # joints of the new keyframe that count
MIN_JOINTS = 4


@dataclass
class Prediction:
    """What the previous window's answer and the curve said about the next keyframe."""
    segment: int
    times: np.ndarray       # (2,) the answer's last two sample times
    pair: np.ndarray        # (2, 2, 19, 2) the model's raw answer there, and the linear fallback's

    @property
    def model(self) -> np.ndarray:
        return self.pair[0]

    @property
    def curve(self) -> np.ndarray:
        return self.pair[1]


@dataclass
class Guard:
    score: float = 0.0      # running mean of log(model error / curve error)
    pending: Prediction | None = None

    @property
    def trust(self) -> float:
        lo, hi = math.log(TIE), math.log(LOSS_FOR_ZERO_TRUST)
        return float(min(1.0, max(0.0, 1.0 - (self.score - lo) / (hi - lo))))

    def expect(self, segment: int, times: np.ndarray, model: np.ndarray, curve: np.ndarray) -> None:
        """Remember a window's raw answer and its curve (their last two samples; ``curve`` may
        be only those two)."""
        self.pending = Prediction(segment, times[-2:].copy(), np.stack((model[-2:], curve[-2:])))

    def observe(self, segment: int, t: float, xy: np.ndarray, conf: np.ndarray) -> float | None:
        """A new keyframe of the stream: compare the two continuations with it; returns the log
        ratio it added (None: nothing to compare)."""
        p, self.pending = self.pending, None
        if p is None or p.segment != segment or not t > p.times[-1]:
            return None
        span = p.times[-1] - p.times[-2]
        if not span > 0:
            return None
        # Both continuations at once: (2, 19, 2), the model's first. (Few array operations: this
        # runs for every keyframe of every stream.)
        last, before = p.pair[:, -1], p.pair[:, -2]
        both = last + ((t - p.times[-1]) / span) * (last - before)
        ok = (conf >= MIN_CONF) & np.isfinite(both.sum(0) + xy).all(-1)
        if ok.sum() < MIN_JOINTS:
            return None
        seen = xy[ok]
        d = both[:, ok] - seen
        e_model, e_curve = np.sqrt((d * d).sum(-1)).mean(-1).tolist()
        floor = 1e-3 * (float((seen.max(0) - seen.min(0)).max()) + 1e-9)     # both on the keyframe: a tie
        ratio = min(max(math.log((e_model + floor) / (e_curve + floor)), -2.0), 2.0)
        self.score += SMOOTHING * (ratio - self.score)
        return ratio
