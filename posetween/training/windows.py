"""Training windows: 3D motion capture -> random virtual camera -> what a live 2D stream sends.

Each sample is one window of K keyframes as a stream would deliver them (irregular capture
times at 3.5-30 fps, dropped frames, noise, missing joints, random left/right flip) and query
times in the interval the engine would ask about (lookahead 0, 1 or 2), with the clean 2D
ground truth at those times. Everything is vectorised over the batch in torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from posetween.core.skeleton import MID_HIP, MIRROR, NECK, NUM_JOINTS


@dataclass
class AugmentConfig:
    min_fps: float = 3.5
    max_fps: float = 30.0
    time_jitter: float = 0.15        # keyframe interval jitter, fraction of the interval
    drop_keyframe: float = 0.1       # chance that a keyframe is lost (the interval doubles)
    lookahead_probs: tuple[float, float, float] = (0.25, 0.5, 0.25)  # lookahead 0, 1, 2
    queries: int = 8
    noisy_share: float = 0.7         # share of samples with keyframe noise and outliers
    max_noise: float = 0.06          # noise std, in torso lengths, drawn uniformly up to this
    outlier_rate: float = 0.01       # keyframe joints thrown far off (detector mistakes), noisy samples
    max_missing: float = 0.2         # missing-joint rate, drawn uniformly up to this
    flip: float = 0.5
    max_yaw: float = math.pi         # camera around the vertical axis
    max_pitch: float = 0.35
    max_roll: float = 0.1
    distance: tuple[float, float] = (3.0, 8.0)      # metres
    focal: tuple[float, float] = (500.0, 1500.0)    # pixels


@dataclass
class MotionClips:
    """All clips of a split in one tensor, for fast batched gathering."""
    frames: Tensor    # (N, J, 3) metres, Y-up, NaN for joints the source lacks
    start: Tensor     # (C,) first frame of each clip
    length: Tensor    # (C,) frames
    fps: Tensor       # (C,)
    names: list[str]

    @classmethod
    def from_motions(cls, motions) -> "MotionClips":
        """motions: iterable of (name, fps, joints (T, J, 3))."""
        names, arrays, fps = [], [], []
        for name, rate, joints in motions:
            names.append(name)
            arrays.append(torch.as_tensor(joints, dtype=torch.float32))
            fps.append(float(rate))
        if not arrays:
            raise ValueError("no motions to sample from (is the split empty?)")
        length = torch.tensor([len(a) for a in arrays])
        start = torch.cumsum(length, 0) - length
        return cls(torch.cat(arrays), start, length, torch.tensor(fps), names)

    def duration(self) -> Tensor:
        return (self.length - 1) / self.fps

    def at_times(self, clip: Tensor, t: Tensor) -> Tensor:
        """Joint positions of clips ``clip (B,)`` at times ``t (B, N)`` seconds (linear between
        frames, clamped to the clip) -> (B, N, J, 3)."""
        f = (t * self.fps[clip, None]).clamp(min=0)
        f = torch.minimum(f, (self.length[clip, None] - 1).float())
        i0 = f.floor().long()
        i1 = torch.minimum(i0 + 1, self.length[clip, None] - 1)
        a = (f - i0).unsqueeze(-1).unsqueeze(-1)
        base = self.start[clip, None]
        return self.frames[base + i0] * (1 - a) + self.frames[base + i1] * a


def rotation_matrices(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """(B,) angles -> (B, 3, 3): yaw about Y (up), then pitch about X, then roll about Z."""
    def rot(axis: int, angle: Tensor) -> Tensor:
        c, s = angle.cos(), angle.sin()
        m = torch.zeros(angle.shape + (3, 3))
        i, j = [(1, 2), (2, 0), (0, 1)][axis]
        m[:, axis, axis] = 1
        m[:, i, i], m[:, j, j], m[:, i, j], m[:, j, i] = c, c, -s, s
        return m
    return rot(2, roll) @ rot(0, pitch) @ rot(1, yaw)


@dataclass
class Camera:
    """A batch of pinhole cameras looking at the body's mean root position (all (B,) or (B, 2))."""
    yaw: Tensor
    pitch: Tensor
    roll: Tensor
    distance: Tensor   # metres from the root
    focal: Tensor      # pixels
    principal: Tensor  # (B, 2) pixels

    def project(self, world: Tensor) -> Tensor:
        """(B, N, J, 3) metres, Y-up -> (B, N, J, 2) pixels, y down."""
        root = torch.nanmean(world[:, :, MID_HIP], dim=1)
        R = rotation_matrices(self.yaw, self.pitch, self.roll)
        cam = torch.einsum("bij,bnkj->bnki", R, world - root[:, None, None])
        depth = (cam[..., 2] + self.distance[:, None, None]).clamp(min=0.5)
        f = self.focal[:, None, None]
        return torch.stack([f * cam[..., 0] / depth, -f * cam[..., 1] / depth], -1) + self.principal[:, None, None]


def torso_length(xy: Tensor) -> Tensor:
    """Mean 2D torso length (neck to mid-hip) over the frames of each sample: (B, N, J, 2) -> (B,)."""
    d = (xy[:, :, NECK] - xy[:, :, MID_HIP]).norm(dim=-1)
    return torch.nan_to_num(d, nan=0.0).sum(1) / torch.isfinite(d).sum(1).clamp(min=1)


def uniform(shape, lo: float, hi: float, g: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def sample_windows(clips: MotionClips, batch: int, window: int, aug: AugmentConfig,
                   g: torch.Generator) -> dict[str, Tensor]:
    """Draw ``batch`` training windows. Returns key_xy (B,K,J,2) with NaN for missing joints,
    key_conf, key_time (B,K) seconds, query_time (B,Q), and the clean targets target_key
    (B,K,J,2), target_query (B,Q,J,2), key_in_clip (B,K) (False for padding slots before
    the clip's start), torso (B,) in pixels, lookahead (B,)."""
    B, K, Q = batch, window, aug.queries
    # Clips drawn in proportion to their length, so every frame counts the same.
    clip = torch.multinomial(clips.length.float(), B, replacement=True, generator=g)
    duration = clips.duration()[clip]

    # Capture times: irregular intervals at a log-uniform rate, some frames lost.
    fps = torch.exp(uniform((B, 1), math.log(aug.min_fps), math.log(aug.max_fps), g))
    dt = 1.0 / fps
    gaps = dt * (1 + uniform((B, K), -aug.time_jitter, aug.time_jitter, g))
    gaps = gaps * (1 + (torch.rand((B, K), generator=g) < aug.drop_keyframe).float())
    lookahead = torch.multinomial(torch.tensor(aug.lookahead_probs), B, replacement=True, generator=g)
    # Newest keyframe time: leave room for one interval after it (lookahead 0 predicts there).
    t_last = uniform((B,), 0.0, 1.0, g) * (duration - dt[:, 0]).clamp(min=0)
    offsets = torch.cumsum(gaps.flip(1), 1).flip(1) - gaps  # time back from the newest, >= 0
    key_time = t_last[:, None] - offsets
    in_clip = key_time >= 0   # slots before the clip's start are padding (start of a stream)

    # Query interval: [t_{K-1-L}, t_{K-L}] for L >= 1; for L = 0 one interval past the newest.
    idx = (K - lookahead).clamp(max=K - 1)
    right = torch.where(lookahead > 0, key_time.gather(1, idx[:, None])[:, 0], t_last + dt[:, 0])
    left = torch.where(lookahead > 0, key_time.gather(1, (idx - 1).clamp(min=0)[:, None])[:, 0], t_last)
    left = torch.maximum(left, torch.zeros_like(left))
    query_time = left[:, None] + (right - left)[:, None] * torch.rand((B, Q), generator=g)

    # 3D at all times, then a random camera.
    world = clips.at_times(clip, torch.cat([key_time.clamp(min=0), query_time], 1))
    camera = Camera(yaw=uniform((B,), -aug.max_yaw, aug.max_yaw, g),
                    pitch=uniform((B,), -aug.max_pitch, aug.max_pitch, g),
                    roll=uniform((B,), -aug.max_roll, aug.max_roll, g),
                    distance=uniform((B,), *aug.distance, g), focal=uniform((B,), *aug.focal, g),
                    principal=uniform((B, 2), -300, 300, g) + torch.tensor([640.0, 360.0]))
    xy = camera.project(world)
    if aug.flip > 0:
        flip = torch.rand(B, generator=g) < aug.flip
        mirrored = xy[:, :, MIRROR] * torch.tensor([-1.0, 1.0]) + torch.tensor([2 * 640.0, 0.0])
        xy = torch.where(flip[:, None, None, None], mirrored, xy)
    target_key, target_query = xy[:, :K], xy[:, K:]
    torso = torso_length(target_key)

    # What the detector sends: noise, outliers, missing joints, confidences.
    # The other samples are clean: exact keyframes (a perfect detector), so that the model
    # also learns how far to trust the curve through them.
    noisy = torch.rand((B, 1, 1, 1), generator=g) < aug.noisy_share
    sigma = uniform((B, 1, 1, 1), 0, aug.max_noise, g) * noisy
    noise = torch.randn((B, K, NUM_JOINTS, 2), generator=g) * sigma
    outlier = (torch.rand((B, K, NUM_JOINTS, 1), generator=g) < aug.outlier_rate) & noisy
    noise = noise + outlier * torch.randn((B, K, NUM_JOINTS, 2), generator=g) * 0.5
    key_xy = target_key + noise * torso[:, None, None, None]
    missing_rate = uniform((B, 1, 1), 0, aug.max_missing, g)
    missing = (torch.rand((B, K, NUM_JOINTS), generator=g) < missing_rate) | ~torch.isfinite(key_xy).all(-1)
    missing |= ~in_clip[:, :, None]
    key_conf = torch.where(missing, torch.zeros(()), uniform((B, K, NUM_JOINTS), 0.3, 1.0, g))
    key_xy = torch.where(missing[..., None], torch.full_like(key_xy, float("nan")), key_xy)
    return dict(key_xy=key_xy, key_conf=key_conf, key_time=key_time, query_time=query_time,
                target_key=target_key, target_query=target_query, key_in_clip=in_clip,
                torso=torso, lookahead=lookahead)
