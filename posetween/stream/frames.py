"""The values that flow through the streaming engine: keyframes in, output poses out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# What an output pose stands for.
KEYFRAME = "keyframe"          # the output frame nearest to a keyframe's capture time
INTERPOLATED = "interpolated"  # between two keyframes, from the model (lookahead >= 1)
PREDICTED = "predicted"        # past the newest keyframe: the model's prediction (lookahead 0),
                               # or the newest pose held while a keyframe is late
FALLBACK = "fallback"          # the model missed its budget: linear interpolation/extrapolation
KINDS = (KEYFRAME, INTERPOLATED, PREDICTED, FALLBACK)


@dataclass
class Keyframe:
    """One accepted input pose, already in the model's 19-joint layout (missing: conf 0, NaN)."""
    time: float          # capture time, the source's clock (seconds)
    xy: np.ndarray       # (19, 2) float64
    conf: np.ndarray     # (19,) float64 in [0, 1]
    seq: int | None = None
    arrival: float = 0.0  # local (engine clock) time it arrived


@dataclass(frozen=True)
class OutputPose:
    """One output frame of one stream.

    ``time`` is the capture-clock time the pose stands for; ``xy`` is ``(19, 2)`` in the
    input's units (pixels), ``conf`` ``(19,)`` (the sources' confidences interpolated to
    ``time``; a joint with confidence 0 was not seen around ``time`` and its position, when
    finite, is the model's guess). ``segment`` counts the stream's restarts: never
    interpolate between poses of different segments (a new person, or a long gap).
    """
    stream: str
    seq: int
    time: float
    kind: str
    xy: np.ndarray
    conf: np.ndarray
    segment: int = 0
    layout: str = "posetween19"
    published: float | None = None   # wall-clock time the service sent it (set by the wire)
