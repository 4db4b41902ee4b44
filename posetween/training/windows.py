"""Training windows: 3D motion capture -> random virtual camera -> what a live 2D stream sends.

Each sample is one window of K keyframes as a stream would deliver them (irregular capture
times at 3.5-30 fps, dropped frames, noise, missing joints, random left/right flip) and query
times in the interval the engine would ask about (lookahead 0, 1 or 2), with the clean 2D
ground truth at those times. Everything is vectorised over the batch in torch.

So that the model uses the body it sees rather than one it memorised, each sample also gets:

* **its own skeleton** (``vary_skeleton``): where mid-hip, hips, neck, head, hands and toes sit
  differs between capture systems and detectors (Bandai's Hips above the hip joints, CMU's
  pelvis, OpenPose's mean of the hips, COCO's lateral hip points, hand = wrist or knuckles), and
  bone lengths and proportions differ between people;
* **an input layout** (``apply_layout``): the joints a COCO-17, BODY_25, MediaPipe-33 or MPII-16
  detector never sends are missing from every keyframe, and neck and mid-hip are the means of
  the shoulders and hips, as the converters make them;
* **occlusion**: the torso, or one side of the body, hidden for a run of keyframes;
* **detector-like noise** in the noisy share: jitter correlated across keyframes, one limb's
  left and right swapped, outliers with low confidence, whole keyframes missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from posetween.core.skeleton import JOINT_INDEX, MID_HIP, MIRROR, NECK, NUM_JOINTS

_J = JOINT_INDEX
# The kinematic tree from mid-hip outwards, parents before children: (joint, parent, bone group).
# Bone groups share one length factor on both sides (a person's proportions), plus a little
# asymmetry per side.
TREE: tuple[tuple[str, str, str], ...] = (
    ("neck", "mid_hip", "spine"), ("right_hip", "mid_hip", "pelvis"), ("left_hip", "mid_hip", "pelvis"),
    ("nose", "neck", "head"), ("right_shoulder", "neck", "shoulder"), ("left_shoulder", "neck", "shoulder"),
    ("right_knee", "right_hip", "thigh"), ("left_knee", "left_hip", "thigh"),
    ("right_elbow", "right_shoulder", "upper_arm"), ("left_elbow", "left_shoulder", "upper_arm"),
    ("right_ankle", "right_knee", "shin"), ("left_ankle", "left_knee", "shin"),
    ("right_wrist", "right_elbow", "forearm"), ("left_wrist", "left_elbow", "forearm"),
    ("right_big_toe", "right_ankle", "foot"), ("left_big_toe", "left_ankle", "foot"),
    ("right_hand", "right_wrist", "hand"), ("left_hand", "left_wrist", "hand"),
)
BONE_GROUPS = tuple(dict.fromkeys(g for _, _, g in TREE))

# Input layouts as the converters in posetween.core.skeleton produce them: the joints each one
# lacks, and whether its neck and mid-hip are the means of the shoulders and hips.
LAYOUT_MISSING: dict[str, tuple[str, ...]] = {
    "posetween19": (),
    "body25": ("left_hand", "right_hand"),
    "coco17": ("left_hand", "right_hand", "left_big_toe", "right_big_toe"),
    "mediapipe33": (),
    "mpii16": ("nose", "left_hand", "right_hand", "left_big_toe", "right_big_toe"),
}
LAYOUT_DERIVED_TRUNK = {"coco17", "mediapipe33"}
_SIDE = {side: [j for n, j in JOINT_INDEX.items() if n.startswith(side)] for side in ("left_", "right_")}
_LIMBS = ((("left_elbow", "left_wrist", "left_hand"), ("right_elbow", "right_wrist", "right_hand")),
          (("left_knee", "left_ankle", "left_big_toe"), ("right_knee", "right_ankle", "right_big_toe")))


@dataclass
class AugmentConfig:
    min_fps: float = 3.5
    max_fps: float = 30.0
    # Tempo: each sample's clip played up to this many times faster or slower (log-uniform;
    # 1: as captured), so that the model learns how bodies move at any speed rather than the
    # speeds of the training actors.
    max_tempo: float = 1.0
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
    # Skeleton variation (vary_skeleton): share of samples, bone-length spread (log std).
    skeleton_share: float = 0.0
    bone_log_std: float = 0.12
    bone_side_log_std: float = 0.03
    # Input layouts (apply_layout): probabilities of posetween19, body25, coco17, mediapipe33, mpii16.
    layout_probs: tuple[float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 0.0)
    occlusion: float = 0.0           # share of samples with the torso or one side hidden for a run
    # Detector-like noise, in the noisy share.
    max_noise_correlation: float = 0.0   # keyframe-to-keyframe correlation of the jitter, up to this
    limb_swap: float = 0.0           # chance per keyframe that one limb's left and right are swapped
    missed_keyframe: float = 0.0     # chance that a keyframe has no joint at all


@dataclass
class MotionClips:
    """All clips of a split in one tensor, for fast batched gathering."""
    frames: Tensor    # (N, J, 3) metres, Y-up, NaN for joints the source lacks
    start: Tensor     # (C,) first frame of each clip
    length: Tensor    # (C,) frames
    fps: Tensor       # (C,)
    names: list[str]
    weight: Tensor    # (C,) how often each clip is drawn: frames x its source's weight

    @classmethod
    def from_motions(cls, motions, weights=None) -> "MotionClips":
        """motions: iterable of (name, fps, joints (T, J, 3)); weights: one per motion (default 1),
        multiplying its frame count in the draw."""
        names, arrays, fps = [], [], []
        for name, rate, joints in motions:
            names.append(name)
            arrays.append(torch.as_tensor(joints, dtype=torch.float32))
            fps.append(float(rate))
        if not arrays:
            raise ValueError("no motions to sample from (is the split empty?)")
        length = torch.tensor([len(a) for a in arrays])
        start = torch.cumsum(length, 0) - length
        weight = length.float() * (torch.ones(len(arrays)) if weights is None else torch.tensor(weights).float())
        return cls(torch.cat(arrays), start, length, torch.tensor(fps), names, weight)

    def to(self, device: torch.device | str) -> "MotionClips":
        """The same clips on ``device``: on a GPU, :func:`sample_windows` then draws whole batches
        there (with a generator on that device), so the data keeps up with the model."""
        return MotionClips(self.frames.to(device), self.start.to(device), self.length.to(device),
                           self.fps.to(device), self.names, self.weight.to(device))

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
    the clip's start), torso (B,) in pixels, lookahead (B,).

    Everything is made on the clips' device (``g`` must be a generator of that device): every
    tensor created below without a device lands there."""
    with torch.device(clips.frames.device):
        return _sample_windows(clips, batch, window, aug, g)


def _sample_windows(clips: MotionClips, batch: int, window: int, aug: AugmentConfig,
                    g: torch.Generator) -> dict[str, Tensor]:
    B, K, Q = batch, window, aug.queries
    # Clips drawn in proportion to their length (times their source's weight), so every frame
    # of a source counts the same.
    clip = torch.multinomial(clips.weight, B, replacement=True, generator=g)
    tempo = (torch.exp(uniform((B,), -math.log(aug.max_tempo), math.log(aug.max_tempo), g))
             if aug.max_tempo > 1 else torch.ones(B))      # (no draw when off: older recipes repeat exactly)
    duration = clips.duration()[clip] / tempo

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

    # 3D at all times, with this sample's skeleton, then a random camera.
    world = clips.at_times(clip, torch.cat([key_time.clamp(min=0), query_time], 1) * tempo[:, None])
    if aug.skeleton_share > 0:
        world = vary_skeleton(world, aug, g)
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
    layout = torch.multinomial(torch.tensor(aug.layout_probs), B, replacement=True, generator=g)
    xy, lacking = apply_layout(xy, layout)
    target_key, target_query = xy[:, :K], xy[:, K:]
    torso = torso_length(target_key)

    # What the detector sends: noise, outliers, missing joints, confidences.
    # The other samples are clean: exact keyframes (a perfect detector), so that the model
    # also learns how far to trust the curve through them.
    noisy = torch.rand((B, 1, 1, 1), generator=g) < aug.noisy_share
    sigma = uniform((B, 1, 1, 1), 0, aug.max_noise, g) * noisy
    noise = correlated_noise(B, K, uniform((B,), 0, aug.max_noise_correlation, g), g) * sigma
    outlier = (torch.rand((B, K, NUM_JOINTS, 1), generator=g) < aug.outlier_rate) & noisy
    noise = noise + outlier * torch.randn((B, K, NUM_JOINTS, 2), generator=g) * 0.5
    key_xy = target_key + noise * torso[:, None, None, None]
    if aug.limb_swap > 0:
        key_xy = swap_limbs(key_xy, (torch.rand((B, K), generator=g) < aug.limb_swap) & noisy[:, :, 0, 0], g)
    missing_rate = uniform((B, 1, 1), 0, aug.max_missing, g)
    missing = (torch.rand((B, K, NUM_JOINTS), generator=g) < missing_rate) | ~torch.isfinite(key_xy).all(-1)
    missing |= ~in_clip[:, :, None] | lacking[:, None, :]
    missing |= ((torch.rand((B, K), generator=g) < aug.missed_keyframe) & noisy[:, :, 0, 0])[:, :, None]
    if aug.occlusion > 0:
        missing |= occlusion_mask(B, K, aug.occlusion, g)
    # Confidences: a detector is less sure of its outliers.
    key_conf = torch.where(outlier[..., 0], uniform((B, K, NUM_JOINTS), 0.05, 0.4, g),
                           uniform((B, K, NUM_JOINTS), 0.3, 1.0, g))
    key_conf = torch.where(missing, torch.zeros(()), key_conf)
    key_xy = torch.where(missing[..., None], torch.full_like(key_xy, float("nan")), key_xy)
    return dict(key_xy=key_xy, key_conf=key_conf, key_time=key_time, query_time=query_time,
                target_key=target_key, target_query=target_query, key_in_clip=in_clip,
                torso=torso, lookahead=lookahead)


def vary_skeleton(world: Tensor, aug: AugmentConfig, g: torch.Generator) -> Tensor:
    """A new skeleton for a share of the samples: joint placements, then bone lengths.

    world (B, N, J, 3) -> (B, N, J, 3). Placements: mid-hip between the mean of the hip joints
    (OpenPose) and above it (Bandai, CMU; up to 40 % of the way to the shoulders), hips up to
    1.5 x further apart (COCO's lateral hip points), neck between the shoulders' midpoint and the
    neck joint, the head point nearer or further, hand between the wrist and the knuckles (or
    past the wrist along the forearm), toes nearer or further. Bone lengths: one
    factor per bone group (log-normal) and a little per side, applied down the tree.
    """
    B = world.shape[0]
    on = (torch.rand(B, generator=g) < aug.skeleton_share)[:, None, None, None]
    w = world.clone()

    def between(base: Tensor, point: Tensor, lo: float, hi: float) -> Tensor:
        u = uniform((B,), lo, hi, g).view(B, *([1] * (point.dim() - 1)))
        return base + u * (point - base)

    def either(a: Tensor, b: Tensor) -> Tensor:    # per sample, a or b with even odds
        pick = torch.rand(B, generator=g) < 0.5
        return torch.where(pick.view(B, *([1] * (a.dim() - 1))), a, b)

    hips = w[:, :, [_J["left_hip"], _J["right_hip"]]]
    hip_mid = hips.mean(2, keepdim=True)
    shoulders = w[:, :, [_J["left_shoulder"], _J["right_shoulder"]]].mean(2)
    w[:, :, [_J["left_hip"], _J["right_hip"]]] = between(hip_mid, hips, 0.9, 1.5)
    # Mid-hip near the source's own placement, or anywhere from the hips' midpoint up to 40 % of
    # the way to the shoulders: a pelvis or lower-spine point sits that high in some systems
    # (CMU 131's root about 20 %, the ballroom set's pelvis point 35 %; Bandai's Hips 5 %).
    w[:, :, MID_HIP] = either(between(hip_mid[:, :, 0], w[:, :, MID_HIP], 0.0, 1.4),
                              between(hip_mid[:, :, 0], shoulders, 0.0, 0.4))
    w[:, :, NECK] = between(shoulders, w[:, :, NECK], 0.0, 1.3)
    w[:, :, _J["nose"]] = between(w[:, :, NECK], w[:, :, _J["nose"]], 0.8, 1.25)
    for side in ("left", "right"):
        elbow, wrist, hand = _J[f"{side}_elbow"], _J[f"{side}_wrist"], _J[f"{side}_hand"]
        # Near the source's hand point, or on the forearm's line from the wrist up to 40 % of a
        # forearm further (Bandai's hand point is the wrist itself: relative scaling alone
        # would never move it).
        past_wrist = 2 * w[:, :, wrist] - w[:, :, elbow]
        w[:, :, hand] = either(between(w[:, :, wrist], w[:, :, hand], 0.0, 1.4),
                               between(w[:, :, wrist], past_wrist, 0.0, 0.4))
        ankle, toe = _J[f"{side}_ankle"], _J[f"{side}_big_toe"]
        w[:, :, toe] = between(w[:, :, ankle], w[:, :, toe], 0.6, 1.4)

    group_scale = torch.exp(torch.randn((B, len(BONE_GROUPS)), generator=g) * aug.bone_log_std)
    out = w.clone()
    for joint, parent, group in TREE:
        j, p = _J[joint], _J[parent]
        factor = group_scale[:, BONE_GROUPS.index(group)] * torch.exp(
            torch.randn(B, generator=g) * aug.bone_side_log_std)
        out[:, :, j] = out[:, :, p] + factor[:, None, None] * (w[:, :, j] - w[:, :, p])
    return torch.where(on, out, world)


def apply_layout(xy: Tensor, layout: Tensor) -> tuple[Tensor, Tensor]:
    """What a detector of each sample's layout (an index into LAYOUT_MISSING) sends.

    xy (B, N, J, 2) -> (xy with neck and mid-hip made the means of the shoulders and hips where
    the layout derives them, lacking (B, J) bool: the joints the layout never has)."""
    # One row per layout, looked up per sample (no data-dependent indexing: on a GPU that
    # would wait for the device).
    lacks = torch.tensor([[n in LAYOUT_MISSING[name] for n in JOINT_INDEX] for name in LAYOUT_MISSING])
    derives = torch.tensor([name in LAYOUT_DERIVED_TRUNK for name in LAYOUT_MISSING])
    lacking, derived = lacks[layout], derives[layout]
    out = xy.clone()
    out[:, :, NECK] = xy[:, :, [_J["left_shoulder"], _J["right_shoulder"]]].mean(2)
    out[:, :, MID_HIP] = xy[:, :, [_J["left_hip"], _J["right_hip"]]].mean(2)
    return torch.where(derived[:, None, None, None], out, xy), lacking


def correlated_noise(B: int, K: int, rho: Tensor, g: torch.Generator) -> Tensor:
    """Unit Gaussian noise (B, K, J, 2) whose keyframe-to-keyframe correlation is ``rho (B,)``
    (an AR(1) process: a detector's error drifts rather than jumping every frame)."""
    eps = torch.randn((B, K, NUM_JOINTS, 2), generator=g)
    r = rho[:, None, None]
    out = [eps[:, 0]]
    for k in range(1, K):
        out.append(r * out[-1] + (1 - r * r).sqrt() * eps[:, k])
    return torch.stack(out, 1)


def swap_limbs(key_xy: Tensor, where: Tensor, g: torch.Generator) -> Tensor:
    """Swap the left and right arm (elbow, wrist, hand) or leg (knee, ankle, toe) in the keyframes
    marked by ``where (B, K)``: the detector's commonest mistake on a side view."""
    out = key_xy.clone()
    leg = torch.rand(where.shape, generator=g) < 0.5
    for limb, pick in zip(_LIMBS, (~leg, leg)):
        left, right = [_J[n] for n in limb[0]], [_J[n] for n in limb[1]]
        m = (where & pick)[:, :, None, None]
        out[:, :, left] = torch.where(m, key_xy[:, :, right], key_xy[:, :, left])
        out[:, :, right] = torch.where(m, key_xy[:, :, left], key_xy[:, :, right])
    return out


def occlusion_mask(B: int, K: int, share: float, g: torch.Generator) -> Tensor:
    """(B, K, J) True where a joint is hidden: in ``share`` of the samples, for a run of 2 to K
    keyframes, the torso (both shoulders and neck, or both hips and mid-hip) or one whole side
    of the body (a side view)."""
    on = torch.rand(B, generator=g) < share
    length = torch.randint(2, K + 1, (B,), generator=g)
    start = (torch.rand(B, generator=g) * (K - length + 1)).long()
    k = torch.arange(K)
    run = on[:, None] & (k >= start[:, None]) & (k < (start + length)[:, None])
    parts = [[_J["left_shoulder"], _J["right_shoulder"], NECK], [_J["left_hip"], _J["right_hip"], MID_HIP],
             _SIDE["left_"], _SIDE["right_"]]
    kind = torch.randint(0, len(parts), (B,), generator=g)
    hides = torch.tensor([[j in joints for j in range(NUM_JOINTS)] for joints in parts])
    return run[:, :, None] & hides[kind][:, None, :]
