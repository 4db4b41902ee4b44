"""Identity switches of the multi-person tracker on real, untracked detections.

    python benchmarks/people_tracking.py [--data DIR] [--json OUT.json]

Data: the football penalty keypoints (../shared/data/keypoints2d/football-penalties-centernet-
2d.tar.xz, unpacked: a folder of penaltiesv1/<clip>.json): CenterNet COCO-17 detections, every
person of every frame, (y, x) normalised, no identities, broadcast video at about 25 fps.

Trackers compared, all with the same gate (1 body size), the same end of a track (5 missed
frames) and the same duplicate removal, so that only the matching differs:

* ``tracker``: ``posetween.stream.people.PeopleTracker`` (a line through each person's three
  newest keyframes predicts it; Hungarian assignment);
* ``hungarian-last-pose``: the same with a history of one keyframe (matching the previous pose);
* ``nearest-previous-pose``: greedy: each detection, most confident first, takes the free track
  whose previous pose is nearest.

Two measures. (1) The clips as they are: mostly the kicker alone (84 of 16,536 frames show two
people or more), so few chances to switch. The rule for an identity switch (no ground truth
exists): a stream whose detection box at one
keyframe overlaps its box at its previous keyframe with IoU < 0.3 changed person (at 25 fps a
person's own box moves a few pixels; the kicker's run-up moves it about 2 % of its width per
frame). Switches are counted per 100 frames, over all frames and over the frames with two or
more people (where a switch is possible at all). A new track for a person already tracked
(fragmentation) is counted separately: tracks started minus people in the clip's first frame.

(2) Crossings with known identities: the single-person frames of clip i and clip i+1, the second
mirrored left-right (x -> width - x), overlaid in one frame sequence: two real run-ups towards
each other, crossing. Each detection's identity is its clip, so a switch is exact: a stream
that gets a detection of the other clip than its previous one. Run at 25 fps and at every 2nd
and 4th frame (12.5 and 6.25 fps: posetween's inputs are slow).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from pathlib import Path

import numpy as np

from posetween.core.skeleton import get_layout
from posetween.stream.people import PeopleTracker, TrackerConfig, body_size

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "data" / "src" / "football-penalties-centernet-2d" / "penaltiesv1"
FPS = 25.0
WIDTH, HEIGHT = 1280.0, 720.0     # TV footage is 16:9; the coordinates are normalised
IOU_SWITCH = 0.3


def load_clip(path: Path):
    """-> list of (t, xy (N, 19, 2) pixels, conf (N, 19), boxes (N, 4) x0 y0 x1 y1 pixels)."""
    data = json.loads(path.read_text())
    coco = get_layout("coco17")
    frames = []
    for key in sorted(data, key=int):
        d = data[key]
        cls = np.asarray(d["detection_classes"])
        person = cls == 1
        kp = np.asarray(d["detection_keypoints"], np.float64).reshape(-1, 17, 2)[person]
        sc = np.asarray(d["detection_keypoint_scores"], np.float64).reshape(-1, 17)[person]
        bx = np.asarray(d["detection_boxes"], np.float64).reshape(-1, 4)[person]
        xy = np.stack([kp[..., 1] * WIDTH, kp[..., 0] * HEIGHT], -1)      # (y, x) -> (x, y) pixels
        sc = np.where(sc >= 0.3, sc, 0.0)                                 # the engine's min_conf
        xy19, conf19 = coco.to_model(xy, sc) if len(xy) else (np.zeros((0, 19, 2)), np.zeros((0, 19)))
        boxes = np.stack([bx[:, 1] * WIDTH, bx[:, 0] * HEIGHT, bx[:, 3] * WIDTH, bx[:, 2] * HEIGHT], -1)
        keep = (conf19 > 0).sum(-1) >= 3
        frames.append((int(key) / FPS, xy19[keep], conf19[keep], boxes[keep]))
    return frames


class NearestPreviousPose:
    """Greedy matching to the nearest previous pose (the usual quick fix, for comparison)."""

    def __init__(self, cfg: TrackerConfig):
        self.cfg = cfg
        self.helper = PeopleTracker(cfg)          # its duplicate removal, so only matching differs
        self.tracks: list[dict] = []
        self.next_id = 0

    def update(self, t, xy, conf):
        ids = [None] * len(xy)
        keep = self.helper._dedupe(xy, conf) if len(xy) > 1 else list(range(len(xy)))
        keep.sort(key=lambda i: -conf[i].sum())
        free = list(self.tracks)
        for i in keep:
            seen = conf[i] > 0
            size = body_size(xy[i], seen)
            best, best_d = None, self.cfg.gate
            for tr in free:
                common = seen & np.isfinite(tr["xy"]).all(-1)
                if common.sum() < 3:
                    continue
                d = np.linalg.norm(tr["xy"][common] - xy[i][common], axis=-1).mean() / max(size, tr["size"], 1e-6)
                if d <= best_d:
                    best, best_d = tr, d
            if best is None:
                best = {"id": self.next_id, "missed": 0}
                self.next_id += 1
                self.tracks.append(best)
            else:
                free.remove(best)
            best.update(xy=np.where(seen[:, None], xy[i], np.nan), size=size, missed=0)
            ids[i] = best["id"]
        for tr in free:
            tr["missed"] += 1
        self.tracks = [tr for tr in self.tracks if tr["missed"] <= self.cfg.max_missed]
        return ids


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def run(frames, make_tracker) -> dict:
    tr = make_tracker()
    last_box: dict[int, np.ndarray] = {}
    switches = multi_switches = multi_frames = 0
    two_in_one = 0
    events = []
    for k, (t, xy, conf, boxes) in enumerate(frames):
        ids = tr.update(t, xy, conf)
        given = [i for i in ids if i is not None]
        two_in_one += len(given) - len(set(given))               # a stream given two people at once
        multi = len(xy) >= 2
        multi_frames += int(multi)
        for i, pid in enumerate(ids):
            if pid is None:
                continue
            if pid in last_box and iou(last_box[pid], boxes[i]) < IOU_SWITCH:
                switches += 1
                multi_switches += int(multi)
                events.append((k, pid))
            last_box[pid] = boxes[i]
    first = len(frames[0][1]) if frames else 0
    return {"frames": len(frames), "multi_frames": multi_frames, "switches": switches,
            "multi_switches": multi_switches, "tracks": tr.next_id, "fragments": max(0, tr.next_id - first),
            "two_in_one": two_in_one, "events": events}


def single_person(frames):
    """{frame time: (xy (19, 2), conf (19,))} of the frames with exactly one person."""
    return {round(t * FPS): (xy[0], conf[0]) for t, xy, conf, _ in frames if len(xy) == 1}


def crossing(a: dict, b: dict, step: int):
    """Frames of person a and person b (mirrored), where both are seen, every ``step``th."""
    out = []
    for k in sorted(set(a) & set(b))[::step]:
        xb = b[k][0].copy()
        xb[:, 0] = WIDTH - xb[:, 0]
        out.append((k / FPS, np.stack([a[k][0], xb]), np.stack([a[k][1], b[k][1]])))
    return out


def run_crossing(frames, make_tracker) -> dict:
    tr = make_tracker()
    owner: dict[int, int] = {}
    switches = 0
    for t, xy, conf in frames:
        order = np.random.default_rng(int(t * FPS)).permutation(2)    # detections come unordered
        ids = tr.update(t, xy[order], conf[order])
        for pid, src in zip(ids, order.tolist()):
            if pid is None:
                continue
            switches += int(owner.get(pid, src) != src)
            owner[pid] = src
    return {"frames": len(frames), "switches": switches, "tracks": tr.next_id}


TRACKERS = {
    "tracker": lambda: PeopleTracker(TrackerConfig()),
    "hungarian-last-pose": lambda: PeopleTracker(TrackerConfig(history=1)),
    "nearest-previous-pose": lambda: NearestPreviousPose(TrackerConfig()),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of penaltiesv1/<clip>.json")
    ap.add_argument("--json", type=Path, help="write the per-clip results here")
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    if not files:
        print(f"no clips in {args.data}: unpack football-penalties-centernet-2d.tar.xz", file=sys.stderr)
        return 1
    totals = {name: {} for name in TRACKERS}
    per_clip = {}
    for f in files:
        frames = load_clip(f)
        per_clip[f.stem] = {}
        for name, make in TRACKERS.items():
            r = run(frames, make)
            per_clip[f.stem][name] = r
            for key, v in r.items():
                if key != "events":
                    totals[name][key] = totals[name].get(key, 0) + v
    print(f"{len(files)} clips, {totals['tracker']['frames']} frames, {totals['tracker']['multi_frames']} "
          f"with 2+ people; identity switch: a stream's box IoU < {IOU_SWITCH} between its keyframes")
    print(f"| matching | switches / 100 frames | switches / 100 frames with 2+ people | new tracks "
          f"beyond the first frame's / clip | a stream given two people in one frame |")
    print("|---|---|---|---|---|")
    for name, tot in totals.items():
        print(f"| {name} | {100 * tot['switches'] / tot['frames']:.3f} | "
              f"{100 * tot['multi_switches'] / max(tot['multi_frames'], 1):.2f} | "
              f"{tot['fragments'] / len(files):.2f} | {tot['two_in_one']} |")
    worst = sorted(per_clip, key=lambda c: -per_clip[c]["nearest-previous-pose"]["switches"])[:5]
    print("clips with most switches (nearest-previous-pose / tracker):",
          ", ".join(f"{c} ({per_clip[c]['nearest-previous-pose']['switches']}/{per_clip[c]['tracker']['switches']})"
                    for c in worst))
    singles = [single_person(load_clip(f)) for f in files]
    cross = {}
    print("\ncrossings: clip i's kicker and clip i+1's mirrored, overlaid (identities known)")
    print("| matching | input fps | frames | identity switches / 100 frames | tracks per pair (2 ideal) |")
    print("|---|---|---|---|---|")
    for step in (1, 2, 4):
        pairs = [crossing(singles[i], singles[i + 1], step) for i in range(0, len(singles) - 1, 2)]
        pairs = [p for p in pairs if len(p) >= 10]
        for name, make in TRACKERS.items():
            rs = [run_crossing(p, make) for p in pairs]
            n, sw = sum(r["frames"] for r in rs), sum(r["switches"] for r in rs)
            cross[f"{name}@{FPS / step:g}"] = {"frames": n, "switches": sw, "pairs": len(rs),
                                               "tracks": sum(r["tracks"] for r in rs)}
            print(f"| {name} | {FPS / step:g} | {n} | {100 * sw / max(n, 1):.2f} | "
                  f"{sum(r['tracks'] for r in rs) / max(len(rs), 1):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"totals": totals, "clips": per_clip, "crossings": cross}, indent=1, default=int))
    return 0


if __name__ == "__main__":
    sys.exit(main())
