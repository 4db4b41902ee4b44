"""Real 2D keypoints from video, for evaluation: SPEED21 climbing (MPII-16) and football penalty
kicks (CenterNet COCO-17, several people a frame, untracked). See ../shared/data/README.md.

There is no clean truth for these: ``posetween eval --keypoints`` keeps every n-th real frame as
a keyframe and compares each method with the real frames left out (noisy truth, the same for
every method).
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posetween.core.skeleton import get_layout

FOOTBALL_FPS = 25.0                 # broadcast video; the files do not say (SOURCE.txt)
FOOTBALL_FRAME = (1920.0, 1080.0)   # normalised coordinates -> pixels of a 16:9 frame
MIN_KEYPOINT_SCORE = 0.3            # CenterNet keypoint scores below this count as missing
MIN_IOU = 0.3                       # box overlap that links a detection to a track
MIN_TRACK_FRAMES = 40


@dataclass
class KeypointTrack:
    """One person's keypoints through a clip, in the model's 19-joint layout."""
    name: str
    fps: float
    xy: np.ndarray     # (T, 19, 2) pixels, NaN where missing
    conf: np.ndarray   # (T, 19), 0 where missing


def load_keypoints(path: str | Path) -> list[KeypointTrack]:
    """Tracks of a SPEED21 ``speed21_keypoints2d.npz`` or a football penalties folder or archive."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no keypoint file or folder {path}")
    if path.suffix == ".npz":
        return load_speed21(path)
    return load_football(path)


def load_speed21(path: Path) -> list[KeypointTrack]:
    d = np.load(path)
    mpii = get_layout("mpii16")
    tracks = []
    for name, start, length, fps in zip(d["seq_names"], d["seq_start"], d["seq_len"], d["fps"]):
        raw = d["keypoints"][start:start + length].astype(np.float64)
        xy, conf = mpii.to_model(raw, np.isfinite(raw).all(-1).astype(float))
        tracks.append(KeypointTrack(str(name), float(fps), xy, conf))
    return tracks


def _football_clips(path: Path):
    if path.is_dir():
        for f in sorted(path.rglob("*.json")):
            yield f.stem, json.loads(f.read_text())
        return
    with tarfile.open(path) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            if m.isfile() and m.name.endswith(".json") and "/penaltiesv1/" in f"/{m.name}":
                yield Path(m.name).stem, json.loads(tf.extractfile(m).read())


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    y0, x0 = max(a[0], b[0]), max(a[1], b[1])
    y1, x1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, y1 - y0) * max(0.0, x1 - x0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / max(area(a) + area(b) - inter, 1e-9)


def load_football(path: Path) -> list[KeypointTrack]:
    """Person tracks of every penalty clip. The detections are untracked: each is linked to the
    track whose box in the previous frame overlaps it most (IoU >= MIN_IOU, greedy, best first),
    a simple, stated rule for evaluation only; tracks shorter than MIN_TRACK_FRAMES are dropped."""
    coco = get_layout("coco17")
    scale = np.array(FOOTBALL_FRAME)
    tracks = []
    for clip, frames in _football_clips(path):
        keys = sorted(frames, key=int)
        T = len(keys)
        live: list[dict] = []     # open tracks: box, xy, conf arrays
        done: list[dict] = []
        for t, k in enumerate(keys):
            f = frames[k]
            people = [i for i, c in enumerate(f["detection_classes"]) if int(c) == 1]
            boxes = [np.array(f["detection_boxes"][i]) for i in people]
            pairs = sorted(((_iou(tr["box"], b), n, i) for n, tr in enumerate(live) for i, b in enumerate(boxes)),
                           reverse=True)
            used_tracks, used_dets = set(), set()
            for iou, n, i in pairs:
                if iou < MIN_IOU or n in used_tracks or i in used_dets:
                    continue
                used_tracks.add(n)
                used_dets.add(i)
                live[n]["box"], live[n]["frames"][t] = boxes[i], people[i]
            for n, tr in enumerate(live):
                if n not in used_tracks:
                    done.append(tr)
            live = [tr for n, tr in enumerate(live) if n in used_tracks]
            for i, b in enumerate(boxes):
                if i not in used_dets:
                    live.append({"box": b, "frames": {t: people[i]}})
        for n, tr in enumerate(done + live):
            if len(tr["frames"]) < MIN_TRACK_FRAMES:
                continue
            raw = np.full((T, 17, 2), np.nan)
            score = np.zeros((T, 17))
            for t, det in tr["frames"].items():
                f = frames[keys[t]]
                raw[t] = np.array(f["detection_keypoints"][det])[:, ::-1] * scale   # stored (y, x)
                score[t] = f["detection_keypoint_scores"][det]
            score[score < MIN_KEYPOINT_SCORE] = 0.0
            xy, conf = coco.to_model(raw, score)
            tracks.append(KeypointTrack(f"{clip}/{n}", FOOTBALL_FPS, xy, conf))
    return tracks
