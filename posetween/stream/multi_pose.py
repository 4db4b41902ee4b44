"""Several people with MediaPipe's one-person Pose: one call per person, on a crop around them.

MediaPipe 0.10.21's legacy ``solutions.pose`` (the model inside the wheel; nothing is downloaded)
finds one person per call, and on the whole 1768x994 frame of the shipped clip its detector
misses the smaller person on the rooftop on almost every frame. Run on a square crop where a
person fills a good part of the picture, it finds them. So each keyframe:

1. **Follow**: for each person found before (at most ``max_people``), a square crop around
   where they are expected (their last box moved on by its last motion, side ``crop_scale`` x
   the box's longer side), the other people's boxes greyed out; one MediaPipe call each.
2. **Discover** (while fewer than ``max_people`` are followed): one MediaPipe call on the next
   region of a fixed cycle -- the whole frame, then square tiles of the frame's height across
   its width -- with every person already found greyed out, so the detector sees someone new.
   The first keyframe runs the whole cycle.

A person is reported from their second sighting on (``confirm``), so that one stray detection
never becomes a stream; one not found for ``max_missed`` keyframes in a row is dropped, and one
found again near where a lost one was (a crop too small for a fast move) takes the lost one's
id. Each person found keeps the id of the crop that follows them (``ids``), and the demo passes
these ids to ``engine.push_frame``: the crops already track, and through the rooftop person's
jump on the shipped clip they keep one id where the engine's own tracker (``people.py``, which
matches poses, not crops) made six.

Measured on the shipped clip (docs/demo.md): OpenCV's HOG people detector costs 160-340 ms a
frame on this machine for boxes only; a MediaPipe call on a crop or tile is 20-60 ms, about
2.8 calls a keyframe here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from posetween.core.skeleton import NUM_JOINTS
from posetween.stream.pose_estimator import MediaPipeEstimator, mediapipe_pose

GREY = 127


@dataclass
class Region:
    """A person being followed: their last box (x0, y0, x1, y1) in frame pixels, its motion
    per keyframe, and how many keyframes in a row they were not found."""
    id: int
    box: np.ndarray
    motion: np.ndarray
    missed: int = 0
    hits: int = 1

    def expected(self) -> np.ndarray:
        return self.box + np.tile(self.motion, 2)


@dataclass
class Person:
    """One person of a keyframe: 33 MediaPipe landmarks (x, y pixels, visibility) and the
    region (id) that found them."""
    raw: np.ndarray
    region: int
    box: np.ndarray


def landmark_box(raw: np.ndarray, min_visibility: float = 0.3) -> np.ndarray:
    """The box of the landmarks seen (all 33 when fewer than four are)."""
    seen = raw[:, 2] >= min_visibility
    pts = raw[seen, :2] if seen.sum() >= 4 else raw[:, :2]
    return np.concatenate([pts.min(0), pts.max(0)])


def size_of(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1], 32.0))


def centre_of(box: np.ndarray) -> np.ndarray:
    return 0.5 * (box[:2] + box[2:])


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box: 1 when one box holds the other (a partial pose of
    a body inside a whole one)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / small if small > 0 else 0.0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def discovery_regions(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The discovery cycle: the whole frame, then squares of the shorter side across the
    longer one, overlapping by at least a quarter (x0, y0, x1, y1)."""
    side = min(width, height)
    regions = [(0, 0, width, height)]
    long = max(width, height)
    if long > side * 1.2:
        n = int(np.ceil((long - side) / (0.75 * side))) + 1
        for s in np.linspace(0, long - side, n).astype(int):
            regions.append((s, 0, s + side, side) if width >= height else (0, s, side, s + side))
    return regions


class MultiPersonPose(MediaPipeEstimator):
    """``estimate(bgr_image) -> (xy (N, 19, 2) pixels, conf (N, 19), ids (N,))`` for up to
    ``max_people`` people; seconds per keyframe (all its calls) in ``times``, calls in ``calls``."""

    def __init__(self, max_people: int = 4, min_visibility: float = 0.5, model_complexity: int = 1,
                 crop_scale: float = 1.7, max_missed: int = 3, min_landmarks: int = 8, confirm: int = 2,
                 min_detection_confidence: float = 0.5):
        if max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {max_people}")
        self.max_people = int(max_people)
        self.min_visibility = float(min_visibility)
        self.crop_scale = float(crop_scale)
        self.max_missed = int(max_missed)
        self.min_landmarks = int(min_landmarks)
        self.confirm = int(confirm)
        # Every call is a fresh detection in its own crop: static mode (MediaPipe's tracking
        # mode assumes consecutive frames of one picture).
        self._pose = mediapipe_pose(
            static_image_mode=True, model_complexity=model_complexity, smooth_landmarks=False,
            enable_segmentation=False, min_detection_confidence=min_detection_confidence)
        self.regions: list[Region] = []
        self.next_id = 0
        self._cycle: list[tuple[int, int, int, int]] | None = None
        self._next_discovery = 0
        self.times: list[float] = []          # seconds per keyframe (every call of it)
        self.calls: list[int] = []            # MediaPipe calls per keyframe
        self.found: dict[int, int] = {}       # region id -> keyframes it was found in
        self.last_people: list[Person] = []

    # ------------------------------------------------------------ one MediaPipe call

    def _detect(self, image: np.ndarray, box, hide: list[np.ndarray]) -> np.ndarray | None:
        """MediaPipe on ``image[box]`` with the ``hide`` boxes greyed out: 33 landmarks in frame
        pixels (x, y, visibility), or None when nobody (or too little of a body) is found."""
        x0, y0, x1, y1 = (int(v) for v in box)
        crop = image[y0:y1, x0:x1]
        if hide:
            crop = crop.copy()
            for h in hide:
                a0, b0 = max(int(h[0]) - x0, 0), max(int(h[1]) - y0, 0)
                a1, b1 = min(int(np.ceil(h[2])) - x0, x1 - x0), min(int(np.ceil(h[3])) - y0, y1 - y0)
                if a1 > a0 and b1 > b0:
                    crop[b0:b1, a0:a1] = GREY
        result = self._pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        self._n_calls += 1
        if result.pose_landmarks is None:
            return None
        h, w = crop.shape[:2]
        raw = np.array([[p.x * w + x0, p.y * h + y0, p.visibility] for p in result.pose_landmarks.landmark])
        if (raw[:, 2] >= self.min_visibility).sum() < self.min_landmarks:
            return None
        return raw

    def _crop_around(self, box: np.ndarray, width: int, height: int, missed: int = 0) -> tuple[int, int, int, int]:
        """A square of ``crop_scale`` x the box's longer side around its centre (half as large
        again for each keyframe the person was missed), moved (not cut) to lie inside the
        frame; at most the frame's shorter side."""
        c = 0.5 * (box[:2] + box[2:])
        side = self.crop_scale * (1 + 0.5 * missed) * size_of(box)
        side = int(min(side, width, height))
        x0 = int(np.clip(c[0] - side / 2, 0, width - side))
        y0 = int(np.clip(c[1] - side / 2, 0, height - side))
        return x0, y0, x0 + side, y0 + side

    @staticmethod
    def _grow(box: np.ndarray, by: float = 0.1) -> np.ndarray:
        d = by * np.array([box[2] - box[0], box[3] - box[1]])
        return np.concatenate([box[:2] - d, box[2:] + d])

    # ------------------------------------------------------------ one keyframe

    def _follow(self, image: np.ndarray) -> list[Person]:
        """Step 1: each followed person looked for in a crop around where they are expected."""
        height, width = image.shape[:2]
        people: list[Person] = []
        expected = {r.id: r.expected() for r in self.regions}
        for region in list(self.regions):
            box = expected[region.id]
            # Grey out the people found already and where the others are expected, unless
            # they overlap this one so much that hiding them would hide this person too.
            hide = [self._grow(p.box) for p in people if iou(p.box, box) < 0.3]
            hide += [self._grow(b) for rid, b in expected.items()
                     if rid != region.id and rid not in {p.region for p in people} and iou(b, box) < 0.3]
            raw = self._detect(image, self._crop_around(box, width, height, region.missed), hide)
            found = None
            if raw is not None:
                found_box = landmark_box(raw)
                if all(overlap(found_box, p.box) < 0.5 for p in people):     # not someone found already
                    found = Person(raw, region.id, found_box)
            if found is None:
                region.missed += 1
                if region.missed > self.max_missed:
                    self.regions.remove(region)
                continue
            older = self._lost_near(found.box, older_than=region.id)
            if older is not None:      # a person an older crop lost, found by a newer one: one person
                self.regions.remove(region)
                region, found.region = older, older.id
            region.motion = (centre_of(found.box) - centre_of(region.box)) / (1 + region.missed)   # per keyframe
            region.box, region.missed, region.hits = found.box, 0, region.hits + 1
            people.append(found)
        return people

    def _discover(self, image: np.ndarray, people: list[Person], whole_cycle: bool) -> list[Person]:
        """Step 2: the next discovery region (or all of them), everyone known greyed out."""
        height, width = image.shape[:2]
        if self._cycle is None:
            self._cycle = discovery_regions(width, height)
        new: list[Person] = []
        for _ in range(len(self._cycle) if whole_cycle else 1):
            if len(self.regions) >= self.max_people:
                break
            region_box = self._cycle[self._next_discovery % len(self._cycle)]
            self._next_discovery += 1
            hide = [self._grow(p.box, 0.15) for p in people + new]
            raw = self._detect(image, region_box, hide)
            if raw is None:
                continue
            box = landmark_box(raw)
            if any(overlap(box, p.box) >= 0.3 for p in people + new):
                continue
            region = self._lost_near(box)
            if region is None:
                region = Region(self.next_id, box, np.zeros(2))
                self.next_id += 1
                self.regions.append(region)
            else:                      # a person the crops lost (moving fast): found again
                region.motion = np.zeros(2)
                region.box, region.missed, region.hits = box, 0, region.hits + 1
            new.append(Person(raw, region.id, box))
        return new

    def _lost_near(self, box: np.ndarray, older_than: int | None = None) -> Region | None:
        """The missed person (of a region older than ``older_than``) nearest ``box``, if it is
        within half their size per keyframe since they were last found (counting this one)."""
        best, best_d = None, np.inf
        for r in self.regions:
            if r.missed == 0 or (older_than is not None and r.id >= older_than):
                continue
            d = np.linalg.norm(centre_of(box) - centre_of(r.box)) / size_of(r.box)
            if d <= 0.5 * (1 + r.missed) and d < best_d:
                best, best_d = r, d
        return best

    def estimate_people(self, image: np.ndarray) -> list[Person]:
        """The people of one keyframe (each with its 33 landmarks in pixels and its region id)."""
        t0 = time.perf_counter()
        self._n_calls = 0
        first = self._cycle is None
        people = self._follow(image)
        people += self._discover(image, people, whole_cycle=first)
        # A person is reported from their ``confirm``-th sighting on: one stray detection (a
        # part of a body, a shape in the trees) never becomes a stream.
        hits = {r.id: r.hits for r in self.regions}
        people = [p for p in people if hits.get(p.region, 0) >= self.confirm]
        self.times.append(time.perf_counter() - t0)
        self.calls.append(self._n_calls)
        for p in people:
            self.found[p.region] = self.found.get(p.region, 0) + 1
        self.last_people = people
        return people

    def estimate(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
        people = self.estimate_people(image)
        if not people:
            return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS)), []
        pairs = [self.landmarks_to_model(p.raw) for p in people]
        return (np.stack([xy for xy, _ in pairs]), np.stack([c for _, c in pairs]),
                [p.region for p in people])

    @property
    def mean_calls(self) -> float:
        return float(np.mean(self.calls)) if self.calls else float("nan")
