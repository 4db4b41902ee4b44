"""Reading and writing keypoint recordings for the offline tools (``upsample``, ``visualize``,
``replay``).

Every reader returns :class:`Tracks`: every person of the recording as a dense track over all
its frames, in the project's layout, ``xy (T, P, 19, 2)``, ``conf (T, P, 19)``, ``t (T,)``.
A missing joint has confidence 0 and NaN coordinates, and so has every joint of a person on a
frame that does not show them: tools that treat a track as one person's sequence then treat an
absent person as they treat a frame with nobody in it. A one-person recording is one track.
Formats:

* **OpenPose JSON folder** -- one ``*_keypoints.json`` (or any ``*.json``) per frame, sorted by
  name, times frame index / fps; ``people[i].pose_keypoints_2d`` is a flat ``x, y, c`` list
  (BODY_25 or COCO-18; OpenPose writes a missing joint as ``0, 0, 0``). Every person is kept;
  identities are OpenPose's ``person_id`` when it tracked (every person of every frame has a
  distinct id >= 0), else the streaming engine's tracker's (``posetween.stream.people``).
* **npz, one person** -- ``xy (T, J, 2)``, ``conf (T, J)`` (optional, else 1), optional
  ``layout`` (else from J), and ``t`` (seconds) or ``fps``.
* **npz, several people** -- ``xy (T, P, J, 2)``, ``conf (T, P, J)``, optional ``ids (P,)``
  (integers, else 0 .. P - 1), the rest as for one person; a person absent from a frame has NaN
  coordinates or confidence 0 there.
* **JSON lines, one person** -- one object per frame: ``keypoints`` (``[[x, y, c], ...]`` or
  flat ``[x, y, c, ...]``) or ``xy`` + ``conf``; optional ``layout`` (else from the joint count)
  and ``t`` / ``time`` / ``timestamp`` (seconds; else ``fps``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posetween.core.skeleton import NUM_JOINTS, get_layout, layout_for_joint_count

OPENPOSE_LAYOUTS = {25: "body25", 18: "openpose18"}

# Our joint -> BODY_25 index (our 0-14 are BODY_25's 0-14; toes 19 and 22; no hand centre).
BODY25_FROM_OURS = {**{j: j for j in range(15)}, 15: 19, 16: 22}
OPENPOSE_VERSION = 1.3


class MissingTimes(ValueError):
    """A recording without times and no frame rate given: the caller picks a default rate."""


@dataclass
class Tracks:
    """Every person of a recording, each over all of its frames (absent: conf 0, NaN)."""
    xy: np.ndarray            # (T, P, 19, 2)
    conf: np.ndarray          # (T, P, 19)
    t: np.ndarray             # (T,) seconds
    ids: np.ndarray | None    # (P,) ints; None: a one-person format (P = 1), written back as one
    tracked: bool = False     # the ids are the recording's own (OpenPose person_id, an npz's ids)

    @property
    def people(self) -> int:
        return self.xy.shape[1]


def _single(xy: np.ndarray, conf: np.ndarray, t: np.ndarray) -> Tracks:
    """A one-person recording as one track."""
    return Tracks(xy[:, None], conf[:, None], t, None)


# ----------------------------------------------------------------- OpenPose JSON

def _openpose_to_model(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    conf = kp[..., 2].copy()
    xy = np.where((conf > 0)[..., None], kp[..., :2], np.nan)   # OpenPose's 0,0,0 means missing
    return get_layout(OPENPOSE_LAYOUTS[kp.shape[-2]]).to_model(xy, conf)


def _read_openpose_file(path: Path):
    """One file's people (``adapters.People``); a malformed file names itself."""
    from posetween.adapters import read_openpose_json
    try:
        return read_openpose_json(path)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def read_openpose_people(folder: Path, fps: float | None) -> Tracks:
    """Every person of an OpenPose folder as a dense track (times: frame index / fps). People
    with no joint seen are left out; ids are OpenPose's when it tracked every frame (mixing its
    ids with the tracker's would give two people one id), else the tracker's."""
    from posetween.stream.people import PeopleTracker
    files = openpose_files(folder)
    t = _times(len(files), None, fps, str(folder))
    frames = []
    for path in files:
        people = _read_openpose_file(path)
        if not len(people):
            frames.append((np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS)), []))
            continue
        xy, conf = _openpose_to_model(np.concatenate([people.xy, people.conf[..., None]], -1))
        seen = (conf > 0).any(-1)
        ids = None if people.ids is None else [people.ids[i] for i in np.flatnonzero(seen)]
        frames.append((xy[seen], conf[seen], ids))
    with_people = [f for f in frames if len(f[0])]
    tracked = bool(with_people) and all(ids is not None for _, _, ids in with_people)
    if not tracked:
        tracker = PeopleTracker()
        frames = [(xy, conf, tracker.update(tk, xy, conf)) for tk, (xy, conf, _) in zip(t, frames)]
    return _dense(frames, t, tracked)


def _dense(frames: list[tuple[np.ndarray, np.ndarray, list]], t: np.ndarray, tracked: bool) -> Tracks:
    """Per-frame people with ids -> one column per id (sorted), conf 0 and NaN where absent.
    An id of None (a duplicate detection the tracker dropped) is left out."""
    ids = sorted({pid for _, _, frame_ids in frames for pid in frame_ids if pid is not None})
    column = {pid: p for p, pid in enumerate(ids)}
    xy = np.full((len(t), len(ids), NUM_JOINTS, 2), np.nan)
    conf = np.zeros((len(t), len(ids), NUM_JOINTS))
    for k, (fxy, fconf, frame_ids) in enumerate(frames):
        for i, pid in enumerate(frame_ids):
            if pid is not None:
                xy[k, column[pid]], conf[k, column[pid]] = fxy[i], fconf[i]
    return Tracks(xy, conf, t, np.asarray(ids, dtype=np.int64), tracked)


def openpose_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder of OpenPose JSON: {folder}")
    files = sorted(folder.glob("*_keypoints.json")) or sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no OpenPose JSON files (*_keypoints.json) in {folder}")
    return files


def to_body25(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """(19, 2), (19,) in our layout -> (25, 3) OpenPose BODY_25, missing joints 0, 0, 0."""
    out = np.zeros((25, 3))
    for ours, theirs in BODY25_FROM_OURS.items():
        if conf[ours] > 0 and np.isfinite(xy[ours]).all():
            out[theirs] = (xy[ours, 0], xy[ours, 1], conf[ours])
    return out


def write_openpose_frame(path: Path, xy: np.ndarray, conf: np.ndarray, ids) -> None:
    """Write one frame as OpenPose JSON: ``xy (P, 19, 2)``, ``conf (P, 19)``; every person with
    a joint seen, ``person_id`` their id."""
    people = []
    for p, pid in enumerate(ids):
        kp = to_body25(xy[p], conf[p])
        if (kp[:, 2] > 0).any():
            people.append({"person_id": [int(pid)], "pose_keypoints_2d": [round(float(v), 3) for v in kp.ravel()],
                           "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
                           "hand_right_keypoints_2d": [], "pose_keypoints_3d": [], "face_keypoints_3d": [],
                           "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []})
    Path(path).write_text(json.dumps({"version": OPENPOSE_VERSION, "people": people}))


def write_openpose_folder(folder: Path, xy: np.ndarray, conf: np.ndarray, ids, prefix: str = "frame") -> list[Path]:
    """``xy (M, P, 19, 2)``, ``conf (M, P, 19)``, ``ids (P,)`` -> one file per frame."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(xy)):
        p = folder / f"{prefix}_{i:012d}_keypoints.json"
        write_openpose_frame(p, xy[i], conf[i], ids)
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
        raise MissingTimes(f"{source}: no times (`t`) and no frame rate (`fps`)")
    return np.arange(n) / float(fps)


def _convert(xy: np.ndarray, conf: np.ndarray, layout: str | None) -> tuple[np.ndarray, np.ndarray]:
    lay = get_layout(layout) if layout else layout_for_joint_count(xy.shape[-2])
    conf = np.where(np.isfinite(xy).all(-1), conf, 0.0)
    return lay.to_model(xy, conf)


def read_npz(path: Path, fps: float | None = None) -> Tracks:
    """One person (``xy (T, J, 2)``) or several (``xy (T, P, J, 2)``, optional ``ids``)."""
    with np.load(path, allow_pickle=False) as d:
        if "xy" not in d:
            raise ValueError(f"{path}: an npz of keypoints needs `xy` (T, J, 2) or (T, P, J, 2) (and `conf`)")
        xy = np.asarray(d["xy"], dtype=np.float64)
        conf = np.asarray(d["conf"], dtype=np.float64) if "conf" in d else np.ones(xy.shape[:-1])
        layout = str(d["layout"]) if "layout" in d else None
        file_fps = float(d["fps"]) if "fps" in d else None
        t = d["t"] if "t" in d else None
        ids = np.asarray(d["ids"]).astype(np.int64) if "ids" in d else None
    if xy.ndim not in (3, 4) or xy.shape[-1] != 2 or conf.shape != xy.shape[:-1]:
        raise ValueError(f"{path}: `xy` must be (T, J, 2) or (T, P, J, 2) and `conf` its first dimensions; "
                         f"got xy {xy.shape}, conf {conf.shape}")
    t = _times(len(xy), t, fps or file_fps, str(path))
    xy, conf = _convert(xy, conf, layout)
    if xy.ndim == 3:
        return _single(xy, conf, t)
    if ids is not None and ids.shape != (xy.shape[1],):
        raise ValueError(f"{path}: `ids` must have one id per person ({xy.shape[1]}), got {ids.shape}")
    return Tracks(xy, conf, t, np.arange(xy.shape[1]) if ids is None else ids, ids is not None)


def read_jsonl(path: Path, fps: float | None = None) -> Tracks:
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
    return _single(xy, conf, _times(len(xy), t, fps, str(path)))


def read_people(path: Path, fps: float | None = None) -> Tracks:
    """Any supported recording -> :class:`Tracks`. A folder is OpenPose JSON (times from
    ``fps``); ``fps`` also serves files without times and overrides an npz's ``fps``."""
    path = Path(path)
    if path.is_dir():
        return read_openpose_people(path, fps)
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
