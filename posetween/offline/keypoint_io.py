"""Reading and writing keypoint sequences for the offline tools.

A sequence is ``(xy (T, 19, 2), conf (T, 19), t (T,))`` in the project's layout: missing joints
have confidence 0 and NaN coordinates. Formats:

* **OpenPose JSON folder** -- one ``*_keypoints.json`` (or any ``*.json``) per frame, sorted by
  name; ``people[i].pose_keypoints_2d`` is a flat ``x, y, c`` list (BODY_25 or COCO-18).
  :func:`read_sequence` takes the largest person (bounding-box area of the seen joints); no
  person means every joint missing. :func:`read_openpose_people` keeps every person: one
  sequence per person, identities from OpenPose's ``person_id`` when it tracked, else from the
  streaming engine's tracker (``posetween.stream.people``). OpenPose writes a missing joint as
  ``0, 0, 0``.
* **npz** -- ``xy (T, N, 2)``, ``conf (T, N)``, optional ``layout`` (else from N), and ``fps``
  or ``t`` (seconds).
* **JSON lines** -- one object per frame: ``keypoints`` (``[[x, y, c], ...]`` or flat
  ``[x, y, c, ...]``) or ``xy`` + ``conf``; optional ``layout`` (else from the joint count) and
  ``t`` / ``time`` / ``timestamp`` (seconds; else ``--fps``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from posetween.core.skeleton import NUM_JOINTS, get_layout, layout_for_joint_count

OPENPOSE_LAYOUTS = {25: "body25", 18: "openpose18"}

# Our joint -> BODY_25 index (our 0-14 are BODY_25's 0-14; toes 19 and 22; no hand centre).
BODY25_FROM_OURS = {**{j: j for j in range(15)}, 15: 19, 16: 22}
OPENPOSE_VERSION = 1.3


# ----------------------------------------------------------------- OpenPose JSON

def _person_area(kp: np.ndarray) -> float:
    seen = kp[:, 2] > 0
    if not seen.any():
        return -1.0
    p = kp[seen, :2]
    extent = p.max(0) - p.min(0)
    return float(extent[0] * extent[1]) + 1e-6 * seen.sum()   # ties: more joints seen


def read_openpose_frame(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One OpenPose JSON file -> the largest person's (xy (19, 2), conf (19,)) in our layout."""
    data = json.loads(Path(path).read_text())
    best, best_area = None, -np.inf
    for person in data.get("people", []):
        flat = np.asarray(person.get("pose_keypoints_2d", []), dtype=np.float64)
        if flat.size == 0:
            continue
        if flat.size % 3:
            raise ValueError(f"{path}: pose_keypoints_2d has {flat.size} values, not a multiple of 3")
        kp = flat.reshape(-1, 3)
        if len(kp) not in OPENPOSE_LAYOUTS:
            raise ValueError(f"{path}: {len(kp)} joints per person; BODY_25 (25) and COCO-18 (18) are supported")
        area = _person_area(kp)
        if area > best_area:
            best, best_area = kp, area
    if best is None:
        return np.full((NUM_JOINTS, 2), np.nan), np.zeros(NUM_JOINTS)
    return _openpose_to_model(best)


def _openpose_to_model(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    conf = kp[..., 2].copy()
    xy = np.where((conf > 0)[..., None], kp[..., :2], np.nan)   # OpenPose's 0,0,0 means missing
    return get_layout(OPENPOSE_LAYOUTS[kp.shape[-2]]).to_model(xy, conf)


def read_openpose_people(folder: Path, fps: float) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every person of a multi-person OpenPose folder: ``{person id: (xy (T, 19, 2), conf (T,
    19), t (T,))}``, each over the frames that show that person (times: frame index / fps)."""
    from posetween.adapters import read_openpose_json
    from posetween.stream.people import PeopleTracker
    tracker = PeopleTracker()
    tracks: dict[str, list[tuple[float, np.ndarray, np.ndarray]]] = {}
    for k, path in enumerate(openpose_files(folder)):
        t = k / float(fps)
        people = read_openpose_json(path)
        if not len(people):
            tracker.update(t, np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS)))
            continue
        kp = np.concatenate([people.xy, people.conf[..., None]], -1)
        xy, conf = _openpose_to_model(kp)
        ids = people.ids if people.ids is not None else tracker.update(t, xy, conf)
        for i, pid in enumerate(ids):
            if pid is not None and (conf[i] > 0).any():
                tracks.setdefault(str(pid), []).append((t, xy[i], conf[i]))
    return {pid: (np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows]), np.array([r[0] for r in rows]))
            for pid, rows in tracks.items()}


def openpose_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder of OpenPose JSON: {folder}")
    files = sorted(folder.glob("*_keypoints.json")) or sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no OpenPose JSON files (*_keypoints.json) in {folder}")
    return files


def read_openpose_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    files = openpose_files(folder)
    frames = [read_openpose_frame(f) for f in files]
    return np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]), files


def to_body25(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """(19, 2), (19,) in our layout -> (25, 3) OpenPose BODY_25, missing joints 0, 0, 0."""
    out = np.zeros((25, 3))
    for ours, theirs in BODY25_FROM_OURS.items():
        if conf[ours] > 0 and np.isfinite(xy[ours]).all():
            out[theirs] = (xy[ours, 0], xy[ours, 1], conf[ours])
    return out


def write_openpose_frame(path: Path, xy: np.ndarray, conf: np.ndarray) -> None:
    """Write one frame as OpenPose JSON: one person, or no person when nothing was seen."""
    kp = to_body25(xy, conf)
    people = []
    if (kp[:, 2] > 0).any():
        people.append({"person_id": [-1], "pose_keypoints_2d": [round(float(v), 3) for v in kp.ravel()],
                       "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
                       "hand_right_keypoints_2d": [], "pose_keypoints_3d": [], "face_keypoints_3d": [],
                       "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []})
    Path(path).write_text(json.dumps({"version": OPENPOSE_VERSION, "people": people}))


def write_openpose_folder(folder: Path, xy: np.ndarray, conf: np.ndarray, prefix: str = "frame") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(xy)):
        p = folder / f"{prefix}_{i:012d}_keypoints.json"
        write_openpose_frame(p, xy[i], conf[i])
        paths.append(p)
    return paths


# ----------------------------------------------------------------- npz and JSON lines

def _times(n: int, t, fps: float | None, source: str) -> np.ndarray:
    if t is not None:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if len(t) != n:
            raise ValueError(f"{source}: {len(t)} times for {n} frames")
        if n > 1 and not (np.diff(t) > 0).all():
            raise ValueError(f"{source}: times must increase")
        return t
    if not fps or fps <= 0:
        raise ValueError(f"{source}: no times (`t`) and no frame rate: pass --fps")
    return np.arange(n) / float(fps)


def _convert(xy: np.ndarray, conf: np.ndarray, layout: str | None) -> tuple[np.ndarray, np.ndarray]:
    lay = get_layout(layout) if layout else layout_for_joint_count(xy.shape[-2])
    conf = np.where(np.isfinite(xy).all(-1), conf, 0.0)
    return lay.to_model(xy, conf)


def read_npz(path: Path, fps: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        if "xy" not in d:
            raise ValueError(f"{path}: an npz of keypoints needs `xy` (T, N, 2) (and `conf`)")
        xy = np.asarray(d["xy"], dtype=np.float64)
        conf = np.asarray(d["conf"], dtype=np.float64) if "conf" in d else np.ones(xy.shape[:-1])
        layout = str(d["layout"]) if "layout" in d else None
        file_fps = float(d["fps"]) if "fps" in d else None
        t = d["t"] if "t" in d else None
    xy, conf = _convert(xy, conf, layout)
    return xy, conf, _times(len(xy), t, fps or file_fps, str(path))


def read_jsonl(path: Path, fps: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xys, confs, times, layout = [], [], [], None
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if "keypoints" in rec:
            kp = np.asarray(rec["keypoints"], dtype=np.float64)
            kp = kp.reshape(-1, 3) if kp.ndim == 1 else kp
            if kp.ndim != 2 or kp.shape[1] != 3:
                raise ValueError(f"{path}:{n}: `keypoints` must be [[x, y, c], ...] or flat x, y, c")
            xy, conf = kp[:, :2], kp[:, 2]
        elif "xy" in rec:
            xy = np.asarray(rec["xy"], dtype=np.float64).reshape(-1, 2)
            conf = np.asarray(rec.get("conf", np.ones(len(xy))), dtype=np.float64)
        else:
            raise ValueError(f"{path}:{n}: a line needs `keypoints` or `xy`")
        if xys and len(xy) != len(xys[0]):
            raise ValueError(f"{path}:{n}: {len(xy)} joints, earlier lines had {len(xys[0])}")
        layout = rec.get("layout", layout)
        xys.append(xy)
        confs.append(conf)
        t = next((rec[k] for k in ("t", "time", "timestamp") if k in rec), None)
        times.append(t)
    if not xys:
        raise ValueError(f"{path}: no keypoints")
    xy, conf = _convert(np.stack(xys), np.stack(confs), layout)
    t = None if any(v is None for v in times) else times
    return xy, conf, _times(len(xy), t, fps, str(path))


def read_sequence(path: Path, fps: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Any supported input -> (xy (T, 19, 2), conf (T, 19), t (T,)). A folder is OpenPose JSON."""
    path = Path(path)
    if path.is_dir():
        xy, conf, _ = read_openpose_folder(path)
        return xy, conf, _times(len(xy), None, fps, str(path))
    if path.suffix == ".npz":
        return read_npz(path, fps)
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        return read_jsonl(path, fps)
    raise ValueError(f"{path}: unknown keypoint format (a folder of OpenPose JSON, .npz or .jsonl)")


def write_npz(path: Path, xy: np.ndarray, conf: np.ndarray, t: np.ndarray, **extra) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fps = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    np.savez_compressed(path, xy=xy.astype(np.float32), conf=conf.astype(np.float32),
                        t=np.asarray(t, np.float64), fps=np.float64(fps), layout="posetween19", **extra)
