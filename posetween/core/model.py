"""The motion model: a DETR-style encoder-decoder over a window of keyframes.

Follows the motion model of "Render In-between" (Yu et al., BMVC 2021), made for a stream:

* The **encoder** reads the K most recent keyframes (joints, confidences, capture times) and
  outputs a denoised, completed copy of each keyframe (a residual on the input).
* The **prior** is the piecewise-linear interpolation of the denoised keyframes at each query
  time (constant-velocity extrapolation past the newest keyframe): the original's "two-stage"
  prior, computed here for irregular times.
* The **decoder** answers queries at arbitrary times: each query token is its prior pose plus a
  sine encoding of its time; it attends to the other queries and to the encoder's memory.

Both heads output *interpolation kernels* rather than positions: for every query (or keyframe)
and joint, weights over the window's keyframes where that joint was seen, as the per-joint
linear-interpolation weights, moved by a learned amount towards a cubic Hermite curve's
(queries only: how much the path bends), plus a learned correction that sums to zero. The output is that
weighted sum of the observed keyframes. Untrained, the model is exactly linear interpolation;
trained, it bends the path (curvature) and smooths noise, and its error scales with the motion
instead of carrying the fixed noise floor of a regressed position (on clean input linear
interpolation is already within a few thousandths of a torso length). A joint not seen anywhere
in the window has no keyframes to weigh: it falls back to a position regressed from the rest
of the body (the original's residual on the two-stage prior).

Positions are encoded from timestamps in seconds (relative to the newest keyframe), not frame
indices, so irregular input and any output rate work. Whether the model interpolates
(lookahead >= 1) or predicts (lookahead 0) is only a question of where the query times lie.

The whole forward pass, normalisation included, is one exportable graph: keypoints in the
caller's units (pixels) go in, keypoints in the same units come out. Attention masks are
additive and finite and never mask a whole row, so outputs stay finite for any mask pattern,
for a window whose joints are all missing, and for a single keyframe (the original's NaN
losses came from fully masked rows of -inf).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .skeleton import JOINT_INDEX, MID_HIP, NECK, NUM_JOINTS

TORSO_SIDES = tuple((JOINT_INDEX[f"{side}_shoulder"], JOINT_INDEX[f"{side}_hip"]) for side in ("left", "right"))
MASKED = -1e4  # additive attention mask value: large but finite, so softmax never sees a row of -inf


@dataclass
class ModelConfig:
    window: int = 8            # K, keyframes per window
    d_model: int = 128
    heads: int = 8
    ff: int = 256
    encoder_layers: int = 4
    decoder_layers: int = 4
    dropout: float = 0.1
    max_extrapolation: float = 2.0  # prior: at most (alpha - 1) = 1 interval of constant velocity
    # At inference only (not while training): this share of each answer between two keyframes
    # where its joint was seen is the plain Hermite curve through them. Off its training data
    # (other people, skeletons, motion) the model's corrections to the curve are less sure than
    # on it, and the two errors are partly independent: a little of the curve lowers the error
    # on every held-out source (README, "Accuracy"). Not an architecture setting: any value loads
    # any weights.
    curve_blend: float = 0.0
    # ... and more of the curve at shorter intervals, unless the input is noisy: per halving of the
    # interval below curve_blend_interval_s, curve_blend_per_octave more (up to all of it). On
    # clean input the curve is nearly exact at 30 fps, where the model's corrections are worse
    # than none; noise is the curve's weakness (it passes through every noisy keyframe), so that
    # extra share fades out as the window's roughness (``roughness``) goes from
    # curve_noise_low to curve_noise_high torso lengths. Inference only, as curve_blend.
    curve_blend_interval_s: float = 2 / 15
    curve_blend_per_octave: float = 0.0
    curve_noise_low: float = 0.02
    curve_noise_high: float = 0.1

    def __post_init__(self) -> None:
        if not (0 <= self.curve_blend <= 1 and self.curve_blend_per_octave >= 0 and self.curve_blend_interval_s > 0
                and self.curve_noise_high > self.curve_noise_low >= 0):
            raise ValueError("invalid ModelConfig: need 0 <= curve_blend <= 1, curve_blend_per_octave >= 0, "
                             "curve_blend_interval_s > 0 and curve_noise_high > curve_noise_low >= 0 (got "
                             f"{self.curve_blend}, {self.curve_blend_per_octave}, {self.curve_blend_interval_s}, "
                             f"{self.curve_noise_low}, {self.curve_noise_high})")

    # Settings that change only how a trained model answers, not its weights.
    INFERENCE_ONLY = ("curve_blend", "curve_blend_interval_s", "curve_blend_per_octave", "curve_noise_low",
                      "curve_noise_high")

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- normalisation

@dataclass
class Window:
    """A window of keyframes in normalised units: root-centred, divided by the torso length,
    times in seconds relative to the newest valid keyframe."""
    xy: Tensor        # (B, K, J, 2), missing joints are 0
    present: Tensor   # (B, K, J) float, 1 where the joint was seen
    conf: Tensor      # (B, K, J)
    valid: Tensor     # (B, K) bool, keyframe slot holds at least one joint
    time: Tensor      # (B, K) seconds
    query_time: Tensor  # (B, Q) seconds
    center: Tensor    # (B, 2) in input units
    scale: Tensor     # (B,) input units per normalised unit


def normalize_window(key_xy: Tensor, key_conf: Tensor, key_time: Tensor, query_time: Tensor) -> Window:
    finite = torch.isfinite(key_xy).all(-1)
    present_b = (key_conf > 0) & finite
    present = present_b.float()
    present_xy = _repeat_last(present.unsqueeze(-1), 2) > 0                       # (B, K, J, 2)
    xy = torch.where(present_xy, key_xy, 0.0)
    valid = present_b.any(-1)

    # Centre: mean of all seen joints in the window (stable under a missing hip).
    count = present.sum((1, 2))
    center = xy.sum((1, 2)) / count.clamp(min=1).unsqueeze(-1)

    # Scale: the mean torso length over the keyframes that show one: neck to mid-hip where both
    # are seen, else the mean of the shoulder-to-hip lengths of the sides seen (about as long,
    # and still there when a COCO detector misses one hip or one shoulder); else a fraction of
    # the bounding box; else 1.
    def length(a: int, b: int) -> tuple[Tensor, Tensor]:
        return (xy[:, :, a] - xy[:, :, b]).norm(dim=-1), present[:, :, a] * present[:, :, b]
    torso, torso_seen = length(NECK, MID_HIP)
    sides = [length(*pair) for pair in TORSO_SIDES]
    side_seen = sum(seen for _, seen in sides)
    side_torso = sum(d * seen for d, seen in sides) / side_seen.clamp(min=1)
    torso = torch.where(torso_seen > 0, torso, side_torso)
    torso_seen = torch.maximum(torso_seen, (side_seen > 0).float())
    torso_scale = (torso * torso_seen).sum(1) / torso_seen.sum(1).clamp(min=1)
    big = 1e9
    lo = torch.where(present_xy, xy, big).amin(2)
    hi = torch.where(present_xy, xy, -big).amax(2)
    extent = torch.where(valid, (hi - lo).amax(-1), torch.zeros_like(hi[..., 0]))
    box_scale = 0.3 * extent.sum(1) / valid.float().sum(1).clamp(min=1)
    scale = torch.where(torso_seen.sum(1) > 0, torso_scale, box_scale)
    scale = torch.where(scale > 1e-6, scale, torch.ones_like(scale))

    xy = (xy - center[:, None, None].expand_as(xy)) * (present_xy.to(xy.dtype) / scale[:, None, None, None])

    # Times relative to the newest valid keyframe. A window with no valid slot keeps its times.
    t_ref = torch.where(valid, key_time, torch.full_like(key_time, -big)).amax(1)
    t_ref = torch.where(valid.any(1), t_ref, key_time.amax(1))
    return Window(xy, present, key_conf * present, valid, key_time - t_ref[:, None],
                  query_time - t_ref[:, None], center, scale)


# The exported graph's speed. onnxruntime's CPU kernels for elementwise ops are fast when both
# operands have one shape, or the smaller is a scalar, a per-row scalar or repeats rows of a few
# dozen values or more; broadcasting anything shorter ((R, 1, K) against (R, Q, K), (..., 1)
# against (..., 2)) is several times slower, as is torch.where on a broadcast condition. With up
# to 1,216 rows (64 windows x 19 joints) of 8 x 8 per-joint weights, those ops were a third of a
# window's cost, so the code below repeats short operands explicitly first (``_repeat_last``,
# ``expand``), and counts instead of searching (argmax) for the keyframes around a query.

def _repeat_last(x: Tensor, n: int) -> Tensor:
    """``x`` (..., 1) repeated ``n`` times along its last axis. Exported, a matmul with a row of
    ones (exact, and fast in onnxruntime, where an expand along the last axis is not); in PyTorch
    a free view."""
    if torch.onnx.is_in_onnx_export():
        return x @ torch.ones(1, n, dtype=x.dtype, device=x.device)
    return x.expand(*x.shape[:-1], n)


class Brackets(NamedTuple):
    """The seen keyframes around each query, for rows of keyframes (a window's, or one joint's
    in each window): the newest at or before the query (left), the oldest after it (right), the
    one before left (prev) and the one after right (next)."""
    # (R, Q, K) each keyframe's place among the seen ones, counted from the query's left one:
    # -1 prev, 0 left, 1 right, 2 next (any value where not seen)
    slot: Tensor
    seen: Tensor      # (R, Q, K) float, 1 where the keyframe was seen
    index: tuple      # (R, Q) int64 keyframe index of prev, left, right, next (K - 1 where none)
    exists: tuple     # (R, Q) bool, whether each of them exists


def _brackets(time: Tensor, valid: Tensor, query_time: Tensor) -> Brackets:
    """``Brackets`` of queries (R, Q) over keyframes (R, K) whose times ascend (as every window's
    do). The seen keyframes' order is then their time order, so the left keyframe is the n-th seen
    one, n counting the seen keyframes at or before the query, and the m-th seen one is at the
    index that counts the keyframes seen fewer than m times before: counts, not searches (argmax
    over masked times), which keeps every large op of the exported graph same-shaped. The times
    of keyframes not seen do not matter."""
    (R, K), Q = time.shape, query_time.shape[1]
    seen = valid.to(time.dtype).unsqueeze(1).expand(R, Q, K)
    at_or_before = (time.unsqueeze(1).expand(R, Q, K) - _repeat_last(query_time.unsqueeze(-1), K) <= 0).to(time.dtype)
    n_before = (at_or_before * seen).sum(-1)                                      # (R, Q)
    slot = seen.cumsum(-1) - _repeat_last(n_before.unsqueeze(-1), K)
    index = tuple((slot < s).to(time.dtype).sum(-1).clamp(max=K - 1).long() for s in (-1, 0, 1, 2))
    total = valid.to(time.dtype).sum(-1, keepdim=True)                           # (R, 1)
    return Brackets(slot, seen, index, (n_before >= 2, n_before >= 1, n_before < total, n_before + 1 < total))


def _slot_weights(brackets: Brackets, coefficients: tuple) -> Tensor:
    """Weights (R, Q, K) that put each coefficient (R, Q) on its keyframe, in the order prev, left,
    right, next (fewer: the rest are 0), and 0 on every other keyframe."""
    K = brackets.slot.shape[-1]
    w = sum(_repeat_last(c.unsqueeze(-1), K) * (brackets.slot == place).to(c.dtype)
            for place, c in zip((-1, 0, 1, 2), coefficients))
    return w * brackets.seen


def _linear_coefficients(time: Tensor, query_time: Tensor, b: Brackets, max_alpha: float) -> tuple:
    """Piecewise-linear interpolation as coefficients on prev, left and right (R, Q) each:
    between two seen keyframes, linear; after the newest, constant velocity from the last two
    (alpha capped at ``max_alpha``); before the oldest, or with one, hold."""
    t_prev, t_left, t_right = (torch.gather(time, 1, i) for i in b.index[:3])
    has_prev, has_left, has_right, _ = b.exists
    inside = has_left & has_right
    extrapolate = has_left & ~has_right & has_prev
    t_a, t_b = torch.where(inside, t_left, t_prev), torch.where(inside, t_right, t_left)
    denom = t_b - t_a
    safe = denom.abs() > 1e-6
    alpha = torch.where(safe, (query_time - t_a) / torch.where(safe, denom, torch.ones_like(denom)),
                        torch.ones_like(denom)).clamp(0.0, max_alpha)
    zero, one = torch.zeros_like(alpha), torch.ones_like(alpha)
    return (torch.where(extrapolate, 1 - alpha, zero),
            torch.where(inside, 1 - alpha, torch.where(extrapolate, alpha, torch.where(has_left, one, zero))),
            torch.where(inside, alpha, torch.where(has_left, zero, one)))


def interpolation_weights(time: Tensor, valid: Tensor, query_time: Tensor, max_alpha: float) -> Tensor:
    """Weights (B, Q, K) of piecewise-linear interpolation over the valid keyframes (times
    ascending): linear between two, constant velocity from the last two after the newest (alpha
    capped at ``max_alpha``), hold before the oldest or with one; all 0 with none."""
    b = _brackets(time, valid, query_time)
    return _slot_weights(b, _linear_coefficients(time, query_time, b, max_alpha))


def _hermite_coefficients(time: Tensor, query_time: Tensor, b: Brackets, linear: tuple) -> tuple:
    """The cubic Hermite curve's coefficients on prev, left, right, next for queries between two
    seen keyframes; elsewhere ``linear``'s (those of the same queries, none on next)."""
    t0, t1, t2, t3 = (torch.gather(time, 1, i) for i in b.index)
    has0, has1, has2, has3 = b.exists
    inside = has1 & has2

    def inv(x: Tensor) -> Tensor:      # 1/x, and 0 where x is ~0 (a branch where() discards)
        return 1.0 / torch.where(x.abs() > 1e-6, x, math.inf)

    def slope(ta, tb, tc, at):         # d/dt at `at` of the parabola through a, b, c: weights
        return ((2 * at - tb - tc) * inv((ta - tb) * (ta - tc)), (2 * at - ta - tc) * inv((tb - ta) * (tb - tc)),
                (2 * at - ta - tb) * inv((tc - ta) * (tc - tb)))

    h = t2 - t1
    s = ((query_time - t1) * inv(h)).clamp(0.0, 1.0)
    s2, s3 = s * s, s * s * s
    h00, h01 = 2 * s3 - 3 * s2 + 1, 3 * s2 - 2 * s3
    h10, h11 = (s3 - 2 * s2 + s) * h, (s3 - s2) * h    # tangent terms, times the interval
    zero = torch.zeros_like(h)

    def tangent(first: Tensor, second: Tensor, at: Tensor):
        """Weights on keyframes (0, 1, 2, 3) of the slope at ``at``: the parabola through 0, 1, 2
        where ``first`` says so, else the one through 1, 2, 3 where ``second``, else the chord."""
        l0, l1, l2 = slope(t0, t1, t2, at)
        m1, m2, m3 = slope(t1, t2, t3, at)
        pick = lambda x, y, z: torch.where(first, x, torch.where(second, y, z))
        return (pick(l0, zero, zero), pick(l1, m1, -inv(h)), pick(l2, m2, inv(h)), pick(zero, m3, zero))

    a = tangent(has0, has3, t1)        # at 1: prefer the keyframe before
    c = tangent(has0 & ~has3, has3, t2)   # at 2: prefer the keyframe after
    value = (zero, h00, h01, zero)
    linear = (*linear, zero)
    return tuple(torch.where(inside, value[n] + h10 * a[n] + h11 * c[n], linear[n]) for n in range(4))


def hermite_weights(time: Tensor, valid: Tensor, query_time: Tensor, max_alpha: float) -> Tensor:
    """Weights (B, Q, K) of a cubic Hermite curve through the valid keyframes (times ascending),
    for queries between two of them; elsewhere ``interpolation_weights``'.

    Between keyframes 1 and 2 (with 0 before and 3 after, where they exist), each end's tangent
    is the slope of a parabola through three of them: 0, 1, 2 at keyframe 1 and 1, 2, 3 at
    keyframe 2 where both exist (for the newest keyframe, as in live interpolation, 0, 1, 2),
    else the chord 1-2.
    With irregular times too, the curve is then exact for any quadratic motion. Every step is
    linear in the keyframes, so the curve is a kernel like the linear one: weights summing to one.
    """
    b = _brackets(time, valid, query_time)
    linear = _linear_coefficients(time, query_time, b, max_alpha)
    return _slot_weights(b, _hermite_coefficients(time, query_time, b, linear))


def interpolate(weights: Tensor, key_xy: Tensor) -> Tensor:
    """Apply (B, Q, K) weights to keyframes (B, K, J, 2) -> (B, Q, J, 2)."""
    B, K, J, C = key_xy.shape
    return (weights @ key_xy.reshape(B, K, J * C)).view(B, -1, J, C)


def _per_joint_rows(time: Tensor, present: Tensor, query_time: Tensor):
    """One row per window and joint: time (B*J, K), valid (B*J, K), query_time (B*J, Q)."""
    B, K, J = present.shape
    return (time.repeat_interleave(J, 0), present.permute(0, 2, 1).reshape(B * J, K),
            query_time.repeat_interleave(J, 0))


def per_joint_weights(time: Tensor, present: Tensor, query_time: Tensor, max_alpha: float) -> Tensor:
    """Linear interpolation weights of each joint over the keyframes where it was seen:
    time (B, K), present (B, K, J) bool, query_time (B, Q) -> (B, J, Q, K)."""
    B, K, J = present.shape
    return interpolation_weights(*_per_joint_rows(time, present, query_time), max_alpha).view(B, J, -1, K)


def per_joint_curve_weights(time: Tensor, present: Tensor, query_time: Tensor,
                            max_alpha: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The linear and the Hermite curve weights of each joint (as ``per_joint_weights``), from
    one search for the keyframes around each query: two (B, J, Q, K); (B, J, Q) whether the
    query lies between two keyframes of that joint (elsewhere the curve's weights are linear's);
    and (B, J, Q) the time between those two keyframes (meaningless elsewhere)."""
    B, K, J = present.shape
    rows_time, rows_valid, rows_query = _per_joint_rows(time, present, query_time)
    b = _brackets(rows_time, rows_valid, rows_query)
    linear = _linear_coefficients(rows_time, rows_query, b, max_alpha)
    curve = _hermite_coefficients(rows_time, rows_query, b, linear)
    _, left, right, _ = b.index
    _, has_left, has_right, _ = b.exists
    gap = torch.gather(rows_time, 1, right) - torch.gather(rows_time, 1, left)
    return (_slot_weights(b, linear).view(B, J, -1, K), _slot_weights(b, curve).view(B, J, -1, K),
            (has_left & has_right).view(B, J, -1), gap.view(B, J, -1))


def roughness(w: Window, cap: float = 0.3) -> Tensor:
    """How far each keyframe lies from the chord of its neighbours (twice the distance: the
    second difference, for even times), averaged over the joints seen in three keyframes in a
    row, each capped at ``cap``: (B,) torso lengths. Noise of s torso lengths per coordinate
    gives about 3 s whatever the rate; smooth motion gives less the shorter the intervals
    (CMU 131 at 30 fps: median 0.02 clean, 0.12 with 4 % noise; at 7.5 fps, 0.15 and 0.18)."""
    t, x, p = w.time, w.xy, w.present
    before = ((t[:, 2:] - t[:, 1:-1]) / (t[:, 2:] - t[:, :-2]).clamp(min=1e-6))[..., None, None]
    chord = before * x[:, :-2] + (1 - before) * x[:, 2:]
    seen = p[:, :-2] * p[:, 1:-1] * p[:, 2:]                                  # (B, K-2, J)
    dev = (2 * (x[:, 1:-1] - chord).norm(dim=-1)).clamp(max=cap)
    dev = torch.where(seen > 0, dev, torch.zeros_like(dev))
    return dev.sum((1, 2)) / seen.sum((1, 2)).clamp(min=1)


def apply_kernel(base: Tensor, delta: Tensor, present: Tensor, xy: Tensor) -> Tensor:
    """Weighted sum of observed keyframes with weights ``base + delta``, where the learned
    ``delta (B, J, Q, K)`` is restricted to the keyframes where each joint was seen and made
    to sum to zero there (so weights keep summing to one: translation stays exact).
    base (B, J, Q, K), present (B, K, J) float, xy (B, K, J, 2) -> (B, Q, J, 2)."""
    seen = present.permute(0, 2, 1).unsqueeze(2).expand_as(delta)             # (B, J, Q, K)
    mean = (delta * seen).sum(-1, keepdim=True) / seen.sum(-1, keepdim=True).clamp(min=1)
    weights = base + (delta - _repeat_last(mean, delta.shape[-1])) * seen
    return joint_weighted_sum(weights, xy)


def joint_weighted_sum(weights: Tensor, xy: Tensor) -> Tensor:
    """Each joint's own keyframes weighted: weights (B, J, Q, K), xy (B, K, J, 2) -> (B, Q, J, 2)."""
    return (weights @ xy.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)


# ---------------------------------------------------------------- building blocks

class TimeEncoding(nn.Module):
    """Sine/cosine encoding of continuous time in seconds (periods from ~20 ms to ~20 s)."""

    def __init__(self, d_model: int, min_period: float = 0.02, max_period: float = 20.0):
        super().__init__()
        n = d_model // 2
        periods = torch.exp(torch.linspace(math.log(min_period), math.log(max_period), n))
        self.register_buffer("freq", 2 * math.pi / periods, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        phase = t.unsqueeze(-1) * self.freq
        return torch.cat([phase.sin(), phase.cos()], dim=-1)


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """mask: additive, (B, heads, Lq, Lk) (or anything that broadcasts to it), finite."""
        B, Lq, D = q.shape
        h = self.heads
        q = self.q(_tokens(q)).view(B, Lq, h, D // h).transpose(1, 2)
        k = self.k(_tokens(k)).view(B, -1, h, D // h).transpose(1, 2)
        v = self.v(_tokens(v)).view(B, -1, h, D // h).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D // h))
        if mask is not None:
            att = att + mask
        att = F.dropout(att.softmax(-1), self.dropout, self.training)
        return self.out((att @ v).transpose(1, 2).reshape(B * Lq, D)).view(B, Lq, D)


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ff: int, dropout: float):
        super().__init__(nn.Linear(d_model, ff), Gelu(), nn.Dropout(dropout), nn.Linear(ff, d_model))

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_tokens(x)).view(x.shape)


class Gelu(nn.Module):
    """nn.GELU (exact, erf). Exported, it is written out in the order onnxruntime fuses into one
    Gelu kernel (the exporter's own order, ... * 0.5 * x, stays five separate passes)."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            return x * (1 + torch.erf(x / math.sqrt(2))) * 0.5
        return F.gelu(x)


def _tokens(x: Tensor) -> Tensor:
    """(B, L, D) -> (B * L, D) for a linear layer: onnxruntime fuses a 2-D matmul and its bias
    into one Gemm, but adds the bias of a 3-D one in a separate pass."""
    return x.reshape(-1, x.shape[-1])


class EncoderLayer(nn.Module):
    """Pre-norm self-attention over keyframes; the time encoding is added to queries and keys."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.heads, cfg.dropout)
        self.ff = FeedForward(cfg.d_model, cfg.ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn(h + pos, h + pos, h, mask))
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-norm self-attention over queries, cross-attention to the keyframes, feed-forward."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.self_attn = Attention(cfg.d_model, cfg.heads, cfg.dropout)
        self.cross_attn = Attention(cfg.d_model, cfg.heads, cfg.dropout)
        self.ff = FeedForward(cfg.d_model, cfg.ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor,
                memory_mask: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h + query_pos, h + query_pos, h))
        h = self.norm2(x)
        x = x + self.drop(self.cross_attn(h + query_pos, memory + memory_pos, memory, memory_mask))
        return x + self.drop(self.ff(self.norm3(x)))


# ---------------------------------------------------------------- the model

class PoseTween(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        J, D = NUM_JOINTS, cfg.d_model
        self.time_encoding = TimeEncoding(D)
        self.key_embed = nn.Linear(J * 4, D)     # x, y, seen, confidence per joint
        self.query_embed = nn.Linear(J * 2, D)   # prior pose
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(D), nn.LayerNorm(D)
        K = cfg.window
        self.denoise_head = nn.Linear(D, J * 2)       # positions, for joints unseen in the window
        self.refine_head = nn.Linear(D, J * 2)
        self.key_kernel_head = nn.Linear(D, K * J)    # kernel corrections, for seen joints
        self.query_kernel_head = nn.Linear(D, K * J)
        self.curve_head = nn.Linear(D, J)             # per query and joint: linear -> Hermite curve
        # A kernel only mixes a joint's own observations; this correction comes from the whole
        # body (what the other joints say about a noisy one: its rigid neighbours, the shared motion).
        self.body_residual_head = nn.Linear(D, J * 2)
        # Start as the identity (denoised = input, output = linear interpolation).
        for name in self.ZERO_INIT_HEADS:
            nn.init.zeros_(getattr(self, name).weight)
            nn.init.zeros_(getattr(self, name).bias)

    # Heads that start at zero: a model file without one of them (made before it existed)
    # behaves exactly as with it at zero, so such files still load (``load_weights``).
    ZERO_INIT_HEADS = ("denoise_head", "refine_head", "key_kernel_head", "query_kernel_head", "curve_head",
                       "body_residual_head")

    def forward_normalized(self, w: Window) -> tuple[Tensor, Tensor]:
        """Normalised window -> (query poses (B, Q, J, 2), denoised keyframes (B, K, J, 2))."""
        B, K, J, _ = w.xy.shape
        # Key padding mask. A window with no valid slot attends to all of them, and its prior
        # interpolates all of them (finite, and the output is then regressed from nothing): no
        # row is ever fully masked.
        attend = w.valid | ~w.valid.any(1, keepdim=True)
        mask = torch.where(attend, torch.zeros_like(w.time), torch.full_like(w.time, MASKED))[:, None, None, :]
        # Expanded to the scores' shape once: onnxruntime adds a (B, 1, 1, K) mask to every
        # layer's (B, heads, L, K) scores several times slower than one of the same shape.
        Q, heads = w.query_time.shape[1], self.cfg.heads
        key_mask, query_mask = mask.expand(B, heads, K, K), mask.expand(B, heads, Q, K)

        feats = torch.cat([w.xy, w.present.unsqueeze(-1), w.conf.unsqueeze(-1)], -1).reshape(B, K, J * 4)
        x = self.key_embed(feats)
        pos = self.time_encoding(w.time)
        for layer in self.encoder:
            x = layer(x, pos, key_mask)
        memory = self.encoder_norm(x)

        # Joints seen somewhere in the window are kernel outputs; others are regressed positions.
        seen_xy = _repeat_last(w.present.unsqueeze(-1), 2)                       # (B, K, J, 2)
        seen_in_window = seen_xy.amax(1, keepdim=True) > 0                       # (B, 1, J, 2)
        # Denoised keyframes: a missing joint (0 in w.xy) starts from its mean over the window
        # (or the centre), and the head corrects it.
        joint_mean = w.xy.sum(1, keepdim=True) / seen_xy.sum(1, keepdim=True).clamp(min=1)
        base = w.xy + (1 - seen_xy) * joint_mean
        key_regressed = base + self.denoise_head(memory).view(B, K, J, 2)
        present_b = w.present > 0
        key_kernel = apply_kernel(per_joint_weights(w.time, present_b, w.time, self.cfg.max_extrapolation),
                                  self.key_kernel_head(memory).view(B, K, K, J).permute(0, 3, 1, 2),
                                  w.present, w.xy)
        key_out = torch.where(seen_in_window, key_kernel, key_regressed)

        weights = interpolation_weights(w.time, attend, w.query_time, self.cfg.max_extrapolation)
        prior = interpolate(weights, key_out)
        Q = prior.shape[1]
        q = self.query_embed(prior.reshape(B, Q, J * 2))
        query_pos = self.time_encoding(w.query_time)
        for layer in self.decoder:
            q = layer(q, query_pos, memory, pos, query_mask)
        q = self.decoder_norm(q)
        regressed = prior + self.refine_head(q).view(B, Q, J, 2)
        # The query kernel starts from a mix of the linear and the Hermite curve weights (the
        # model picks how much curve, per query and joint) plus a free correction.
        linear, curve, inside, gap = per_joint_curve_weights(w.time, present_b, w.query_time,
                                                             self.cfg.max_extrapolation)
        mix = _repeat_last(self.curve_head(q).permute(0, 2, 1).unsqueeze(-1), K)   # (B, J, Q, K)
        kernel = apply_kernel(linear + mix * (curve - linear),
                              self.query_kernel_head(q).view(B, Q, K, J).permute(0, 3, 1, 2),
                              w.present, w.xy) + self.body_residual_head(q).view(B, Q, J, 2)
        if (self.cfg.curve_blend > 0 or self.cfg.curve_blend_per_octave > 0) and not self.training:
            along_curve = joint_weighted_sum(curve, w.xy)
            share = self.curve_share(gap, roughness(w)) * inside.to(kernel.dtype)    # (B, J, Q)
            kernel = kernel + _repeat_last(share.permute(0, 2, 1).unsqueeze(-1), 2) * (along_curve - kernel)
        return torch.where(seen_in_window, kernel, regressed), key_out

    def curve_share(self, gap: Tensor, rough: Tensor) -> Tensor:
        """The share of the plain curve in answers between two keyframes ``gap`` (B, J, Q)
        seconds apart, in windows of roughness ``rough`` (B,): ``curve_blend``, plus
        ``curve_blend_per_octave`` per halving of the gap below ``curve_blend_interval_s`` (at
        most all of the curve) as long as the window is smooth, none of that extra once it is
        as rough as noise."""
        cfg = self.cfg
        octaves = torch.log2(cfg.curve_blend_interval_s / gap.clamp(min=1e-4)).clamp(min=0)
        extra = (cfg.curve_blend_per_octave * octaves).clamp(max=1 - cfg.curve_blend)
        smooth = ((cfg.curve_noise_high - rough) / (cfg.curve_noise_high - cfg.curve_noise_low)).clamp(0, 1)
        return cfg.curve_blend + extra * smooth[:, None, None]

    def forward(self, key_xy: Tensor, key_conf: Tensor, key_time: Tensor, query_time: Tensor) -> tuple[Tensor, Tensor]:
        """key_xy (B, K, J, 2) in any units (missing joints: conf 0, any value, NaN allowed),
        key_conf (B, K, J), key_time (B, K) seconds ascending, query_time (B, Q) seconds.
        Returns poses at the query times (B, Q, J, 2) and the denoised keyframes (B, K, J, 2),
        in the units of key_xy."""
        w = normalize_window(key_xy, key_conf, key_time, query_time)
        out, key_out = self.forward_normalized(w)
        s = w.scale[:, None, None, None]
        c = w.center[:, None, None]
        return out * s + c.expand_as(out), key_out * s + c.expand_as(key_out)


def save_model(model: PoseTween, path, extra: dict | None = None) -> None:
    # CPU tensors, whatever the model trained on: the file loads anywhere with plain torch.load.
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    torch.save({"config": model.cfg.to_dict(), "state_dict": state, **(extra or {})}, path)


def load_model(path=None, map_location="cpu") -> PoseTween:
    """Load a model file; with no path, the default model shipped in the package; a shipped
    model's name (``default``, ``open``) loads that one."""
    from posetween.shipped import resolve_model
    path = resolve_model(path)
    if path is None:
        from importlib.resources import files
        path = files("posetween") / "models" / "default.pt"
    # weights_only: a model file is tensors and plain values; unpickling anything else could
    # run code from the file.
    how = "use the shipped model (no --model), or a model.pt written by posetween train"
    try:
        with warnings.catch_warnings():   # torch warns about the pickle protocol of files it then refuses
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as e:
        from posetween.shipped import MissingModelError
        raise MissingModelError(path) from e
    except Exception as e:  # noqa: BLE001 -- UnpicklingError, RuntimeError (not a zip), EOFError ...
        raise ValueError(f"{path} is not a posetween model file (torch.load: {type(e).__name__}); {how}") from e
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict) and "state_dict" in ckpt):
        raise ValueError(f"{path} is a PyTorch file, but not a posetween model (no config and state_dict); {how}")
    try:
        model = PoseTween(ModelConfig(**ckpt["config"]))
    except TypeError as e:
        raise ValueError(f"{path}: a model config this version cannot read ({e}); {how}") from e
    load_weights(model, ckpt["state_dict"], str(path))
    return model.eval()


def kept_layers(in_file: int, wanted: int) -> list[int]:
    """Which of a file's ``in_file`` layers a shallower model keeps: ``wanted`` of them, evenly
    spaced, the first and the last among them (the ends of a pre-norm stack matter most: the
    first reads the embedding, the last writes what the heads read)."""
    if wanted >= in_file:
        return list(range(in_file))
    if wanted == 1:
        return [in_file - 1]
    return [round(i * (in_file - 1) / (wanted - 1)) for i in range(wanted)]


def load_weights(model: PoseTween, state_dict: dict, source: str, any_depth: bool = False) -> None:
    """Load weights; a zero-initialised head the file lacks stays at zero (same outputs).

    With ``any_depth``, the file may also have fewer encoder or decoder layers than the model: the
    extra layers (after the file's) start as the identity, so the deeper model computes exactly
    what the file's did and training goes on from there with more capacity (``train --init``).
    It may have more, too: the model then starts from evenly spaced layers of the file
    (:func:`kept_layers`), a smaller and cheaper model that training brings back towards the
    file's accuracy.
    """
    layers_in_file = {part: 1 + max((int(k.split(".")[1]) for k in state_dict if k.startswith(part + ".")),
                                    default=-1) for part in ("encoder", "decoder")}
    if any_depth:
        for part, layers in (("encoder", model.encoder), ("decoder", model.decoder)):
            if layers_in_file[part] > len(layers):
                new_index = {str(old): str(new) for new, old in enumerate(kept_layers(layers_in_file[part], len(layers)))}
                renamed = {}
                for key, value in state_dict.items():
                    name, index, rest = (key.split(".", 2) + ["", ""])[:3]
                    if name != part:
                        renamed[key] = value
                    elif index in new_index:          # a layer kept, under its new number
                        renamed[f"{part}.{new_index[index]}.{rest}"] = value
                state_dict = renamed
                layers_in_file[part] = len(layers)
    new_layer = lambda key: (any_depth and key.split(".")[0] in layers_in_file
                             and int(key.split(".")[1]) >= layers_in_file[key.split(".")[0]])
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    bad = [k for k in missing if k.split(".")[0] not in PoseTween.ZERO_INIT_HEADS and not new_layer(k)]
    if bad or unexpected:
        raise ValueError(f"{source}: not weights of this model (missing {bad}, unexpected {unexpected})")
    if any_depth:
        # A pre-norm block adds its sublayers' outputs to its input: with their output
        # projections at zero it passes the input through unchanged.
        new = [layer for part, layers in (("encoder", model.encoder), ("decoder", model.decoder))
               for layer in list(layers)[layers_in_file[part]:]]
        for layer in new:
            for name, sub in layer.named_modules():
                if name.endswith("attn.out") or sub is layer.ff[-1]:
                    nn.init.zeros_(sub.weight)
                    nn.init.zeros_(sub.bias)
