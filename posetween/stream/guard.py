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
        p = self.take(segment, t)
        return None if p is None else score_many([(self, p, t, xy, conf)])[0]

    def take(self, segment: int, t: float) -> Prediction | None:
        """The prediction a new keyframe of the stream at ``t`` is compared with (None: none
        to compare), taken: :func:`score_many` then compares it, with many others at once."""
        p, self.pending = self.pending, None
        if p is None or p.segment != segment or not t > p.times[-1] or not p.times[-1] > p.times[-2]:
            return None
        return p


def score_many(observations: list[tuple[Guard, Prediction, float, np.ndarray, np.ndarray]]) -> list[float | None]:
    """Each guard's comparison of its prediction with the keyframe ``(t, xy (19, 2), conf (19,))``
    that followed it, for many streams at once (the engine compares a burst's keyframes in one
    go: a few array operations per keyframe would cost the input more than the rest of a push).
    Updates each guard's score; returns the log ratios added (None: too few joints seen)."""
    guards, preds, t, xy, conf = zip(*observations)
    times = np.array([p.times for p in preds])                 # (N, 2)
    pair = np.stack([p.pair for p in preds])                   # (N, 2, 2, 19, 2)
    xy, conf = np.stack(xy), np.stack(conf)
    last, before = pair[:, :, -1], pair[:, :, -2]              # (N, 2, 19, 2)
    step = (np.array(t) - times[:, 1]) / (times[:, 1] - times[:, 0])
    both = last + step[:, None, None, None] * (last - before)  # both continuations at t, the model's first
    ok = (conf >= MIN_CONF) & np.isfinite(both.sum(1) + xy).all(-1)          # (N, 19)
    n = ok.sum(-1)
    d = both - xy[:, None]
    err = np.where(ok[:, None], np.sqrt((d * d).sum(-1)), 0.0).sum(-1) / np.maximum(n, 1)[:, None]   # (N, 2)
    extent = (np.where(ok[..., None], xy, -np.inf).max(1) - np.where(ok[..., None], xy, np.inf).min(1)).max(-1)
    with np.errstate(invalid="ignore"):     # (rows with no joint seen: not counted below)
        floor = 1e-3 * (extent + 1e-9)      # both on the keyframe: a tie
        ratio = np.clip(np.log((err[:, 0] + floor) / (err[:, 1] + floor)), -2.0, 2.0)
    out = []
    for g, r, seen in zip(guards, ratio.tolist(), n.tolist()):
        if seen < MIN_JOINTS:
            out.append(None)
            continue
        g.score += SMOOTHING * (r - g.score)
        out.append(r)
    return out
