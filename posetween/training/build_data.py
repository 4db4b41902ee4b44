"""``posetween data build``: import motion capture into the training HDF5.

Inputs: BVH files, folders of them (recursive), ``.tar.xz``/``.tar.gz``/``.tar.bz2``/``.tar``
/``.zip`` archives of BVH (streamed, never unpacked to disk), the original Render-In-between
AMASS HDF5 (``/<sub-dataset>/<motion>/joints``, ``(T, 52, 3)`` SMPL-H joints, Z-up, 60 fps),
the "Dance with Melody" ballroom positions (``music2dance_positions.npz``), and files written
by this command (copied, to merge datasets). ``--source-fps`` overrides the frame rate BVH
headers state (cgspeed's CMU salsa files say 120 fps but are 60).

Output layout (that of the Render-In-between file, in our 19-joint layout)::

    /<subset>/<motion>/joints   float32 (T, 19, 3), metres, Y-up, missing joints NaN
    root attrs:    joint_layout="posetween19", joint_names, units="m", up_axis="y",
                   format_version=1
    motion attrs:  fps, source (path, or "archive:member"), skeleton (the joint map used, or
                   "smplh52"), labels (the Bandai label JSON text, when the file has one),
                   source_fps (only when --fps-out resampled the motion)

``subset`` is the archive's stem (``bandai-namco-1``), the folder's name, the BVH file's
folder name, or the AMASS sub-dataset; ``motion`` is the file stem. A file that cannot be
imported is reported and skipped; the command fails only when nothing was imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import h5py
import numpy as np
from scipy.interpolate import CubicSpline
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from posetween.core.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from posetween.training.bvh import read_bvh
from posetween.training.joint_maps import JointMap, detect_joint_map, load_joint_map, to_y_up

__all__ = ["Motion", "BuildReport", "build_dataset", "load_motions", "bvh_to_joints",
           "amass_to_joints", "resample", "register", "FORMAT_VERSION", "AMASS_FPS"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
JOINT_LAYOUT = "posetween19"
AMASS_FPS = 60.0
_ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".txz", ".tar", ".zip")
_H5_SUFFIXES = (".h5", ".hdf5")

# SMPL-H joint order (52): 0 pelvis, 1 L_hip, 2 R_hip, 3 spine1, 4 L_knee, 5 R_knee, 6 spine2,
# 7 L_ankle, 8 R_ankle, 9 spine3, 10 L_foot, 11 R_foot, 12 neck, 13 L_collar, 14 R_collar,
# 15 head, 16 L_shoulder, 17 R_shoulder, 18 L_elbow, 19 R_elbow, 20 L_wrist, 21 R_wrist,
# 22-36 left hand fingers, 37-51 right hand fingers. As in Render-In-between: nose = head,
# big toe = foot (ball of the foot), hand centre = mean of that hand's 15 finger joints.
SMPLH_SOURCES: dict[str, tuple[int, ...]] = {
    "nose": (15,), "neck": (12,),
    "right_shoulder": (17,), "right_elbow": (19,), "right_wrist": (21,),
    "left_shoulder": (16,), "left_elbow": (18,), "left_wrist": (20,),
    "mid_hip": (0,),
    "right_hip": (2,), "right_knee": (5,), "right_ankle": (8,),
    "left_hip": (1,), "left_knee": (4,), "left_ankle": (7,),
    "left_big_toe": (10,), "right_big_toe": (11,),
    "left_hand": tuple(range(22, 37)), "right_hand": tuple(range(37, 52)),
}


class Motion(NamedTuple):
    """One motion of a built dataset: ``joints`` is ``(T, 19, 3)`` float32, metres, Y-up."""

    subset: str
    name: str
    fps: float
    joints: np.ndarray


@dataclass
class BuildReport:
    out: Path
    motions: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    subsets: dict[str, list[int]] = field(default_factory=dict)    # subset -> [motions, frames]

    def summary(self) -> str:
        lines = [f"imported {self.motions} motions, {self.frames} frames into {self.out} "
                 f"in {self.seconds:.1f} s; {len(self.failures)} file(s) skipped"]
        for subset, (m, f) in sorted(self.subsets.items()):
            lines.append(f"  {subset}: {m} motions, {f} frames")
        for source, reason in self.failures:
            lines.append(f"  skipped {source}: {reason}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- conversions

def resample(joints: np.ndarray, fps_in: float, fps_out: float | None) -> np.ndarray:
    """Linearly resample ``(T, ...)`` frames from ``fps_in`` to ``fps_out`` (``None``: keep).
    Output frames fall on ``k / fps_out`` seconds from the first frame, up to the last frame;
    where they coincide with a source frame (e.g. 120 -> 30 fps) that frame is copied."""
    if fps_out is None or abs(fps_in - fps_out) < 1e-9:
        return joints
    if not fps_out > 0:
        raise ValueError(f"fps_out must be positive, got {fps_out}")
    T = len(joints)
    n = int(np.floor((T - 1) * fps_out / fps_in + 1e-6)) + 1
    t = np.arange(n) * (fps_in / fps_out)
    i0 = np.clip(np.floor(t + 1e-6).astype(np.int64), 0, T - 1)
    frac = t - i0
    frac[np.abs(frac) < 1e-6] = 0.0
    i1 = np.minimum(i0 + 1, T - 1)
    w = frac.reshape((-1,) + (1,) * (joints.ndim - 1))
    out = np.where(w == 0, joints[i0], joints[i0] * (1 - w) + joints[i1] * w)
    return out.astype(joints.dtype)


def amass_to_joints(joints52: np.ndarray, up_axis: str = "z") -> np.ndarray:
    """SMPL-H joints ``(T, 52, 3)`` in metres (AMASS: Z-up) -> ``(T, 19, 3)`` float32, Y-up."""
    joints52 = np.asarray(joints52, dtype=np.float64)
    if joints52.ndim != 3 or joints52.shape[1:] != (52, 3):
        raise ValueError(f"expected SMPL-H joints of shape (T, 52, 3), got {joints52.shape}")
    out = np.empty((len(joints52), NUM_JOINTS, 3))
    for name, src in SMPLH_SOURCES.items():
        out[:, JOINT_INDEX[name]] = joints52[:, list(src)].mean(1)
    return to_y_up(out, up_axis).astype(np.float32)


def _check_plausible(joints: np.ndarray) -> None:
    """Catch a wrong unit scale: the neck-to-mid-hip distance of a person is 0.2-0.7 m."""
    finite = np.isfinite(joints).all(-1)
    if not finite.any(0).any():
        raise ValueError("no joint has a position")
    mapped = finite.any(0)
    if not (finite[:, mapped]).all():
        raise ValueError("some frames hold non-finite joint positions")
    a, b = joints[:, JOINT_INDEX["neck"]], joints[:, JOINT_INDEX["mid_hip"]]
    if np.isfinite(a).all() and np.isfinite(b).all():
        torso = float(np.median(np.linalg.norm(a - b, axis=-1)))
        if not 0.1 <= torso <= 1.5:
            raise ValueError(f"implausible body size: neck to mid-hip is {torso:.3g} m "
                             "(wrong units_to_metres in the joint map?)")


def bvh_to_joints(source: str | bytes | os.PathLike, joint_map: JointMap | None = None,
                  _cache: dict | None = None) -> tuple[np.ndarray, float, JointMap]:
    """Read a BVH (path or contents) and map it: ``(joints (T, 19, 3) float32 metres Y-up,
    fps, the joint map used)``. Without ``joint_map`` the map is detected from the joint
    names."""
    motion = read_bvh(source)
    jm = joint_map
    if jm is None:
        key = tuple(motion.names)
        if _cache is not None and key in _cache:
            jm = _cache[key]
        else:
            jm = detect_joint_map(motion.names)
            if _cache is not None:
                _cache[key] = jm
    joints = jm.apply(motion.names, motion.positions)
    _check_plausible(joints)
    return joints, motion.fps, jm


# ----------------------------------------------------------------------------- writing

class _Writer:
    def __init__(self, h5: h5py.File, report: BuildReport, fps_out: float | None):
        self.h5 = h5
        self.report = report
        self.fps_out = fps_out
        self.written: dict[str, h5py.Group] = {}  # label key -> motion group
        self.labels: dict[str, str] = {}           # label key -> JSON text, motion not yet seen

    def add(self, subset: str, name: str, joints: np.ndarray, fps: float, source: str,
            skeleton: str | None = None, label_key: str | None = None) -> h5py.Group:
        _check_plausible(joints)
        group = self.h5.require_group(subset)
        unique, k = name, 1
        while unique in group:
            k += 1
            unique = f"{name}_{k}"
        if unique != name:
            log.warning("%s: motion %s/%s exists already; stored as %s", source, subset, name,
                        unique)
        out_joints = resample(joints, fps, self.fps_out)
        g = group.create_group(unique)
        g.create_dataset("joints", data=np.asarray(out_joints, dtype=np.float32))
        g.attrs["fps"] = float(self.fps_out if self.fps_out is not None else fps)
        if self.fps_out is not None and abs(self.fps_out - fps) > 1e-9:
            g.attrs["source_fps"] = float(fps)
        g.attrs["source"] = source
        if skeleton is not None:
            g.attrs["skeleton"] = skeleton
        if label_key is not None:
            self.written[label_key] = g
            if label_key in self.labels:
                g.attrs["labels"] = self.labels.pop(label_key)
        counts = self.report.subsets.setdefault(subset, [0, 0])
        counts[0] += 1
        counts[1] += len(out_joints)
        self.report.motions += 1
        self.report.frames += len(out_joints)
        return g

    def add_labels(self, label_key: str, data: bytes, source: str) -> None:
        try:
            text = json.dumps(json.loads(data.decode("utf-8")), ensure_ascii=False)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            log.warning("%s: label file is not valid JSON (%s); labels skipped", source, e)
            return
        if label_key in self.written:
            self.written[label_key].attrs["labels"] = text
        else:
            self.labels[label_key] = text

    def fail(self, source: str, reason: BaseException | str) -> None:
        reason = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        self.report.failures.append((source, reason))
        log.warning("skipped %s: %s", source, reason)


def _strip_archive_suffix(name: str) -> str:
    lower = name.lower()
    for suf in _ARCHIVE_SUFFIXES:
        if lower.endswith(suf):
            return name[:-len(suf)]
    return Path(name).stem


def _is_hidden(member: str) -> bool:
    parts = member.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._")


def _iter_archive(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(member name, reader) for each regular file, streamed in archive order."""
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, (lambda info=info: zf.read(info))
    else:
        with tarfile.open(path, "r|*") as tf:  # stream: one pass, no random access
            for member in tf:
                if member.isfile():
                    f = tf.extractfile(member)
                    yield member.name, (lambda f=f: f.read())


# "Dance with Melody" (music2dance_positions.npz): 23 unnamed points, names as inferred in the
# archive's SOURCE.txt. 0 head back/top, 1 head front, 2 pelvis (16 cm above the hip joints'
# midpoint), 3/12 R/L shoulder, 4/13 elbow, 6/15 wrist, 7/16 hip, 8/17 knee, 9/18 ankle, 11/20
# toe. No neck point: the shoulders' midpoint. Hand points: SOURCE.txt names 22/21 R/L hand, but
# only 22 is one (5 cm past the right wrist, on the forearm's line); 21 sits rigidly 12 cm from
# the left elbow, 7 cm off the forearm, half-way to the wrist (a forearm marker), so the left
# hand has no point of its own. Both hand points are the wrists (Bandai's placement), which
# keeps the two sides alike. Units cm, Y-up, root-relative plus a root track.
MUSIC2DANCE_SOURCES: dict[str, tuple[int, ...]] = {
    "nose": (1,), "neck": (3, 12),
    "right_shoulder": (3,), "right_elbow": (4,), "right_wrist": (6,),
    "left_shoulder": (12,), "left_elbow": (13,), "left_wrist": (15,),
    "mid_hip": (2,),
    "right_hip": (7,), "right_knee": (8,), "right_ankle": (9,),
    "left_hip": (16,), "left_knee": (17,), "left_ankle": (18,),
    "left_big_toe": (20,), "right_big_toe": (11,),
    "left_hand": (15,), "right_hand": (6,),
}

MUSIC2DANCE_FPS_OUT = 30.0


class _Importer:
    def __init__(self, writer: _Writer, joint_map: JointMap | None, progress: bool,
                 source_fps: float | None = None):
        self.w = writer
        self.joint_map = joint_map
        self.progress = progress
        self.source_fps = source_fps
        self.map_cache: dict = {}

    def _bar(self, desc: str, total: int | None) -> tqdm:
        return tqdm(total=total, desc=desc, unit="file", disable=not self.progress,
                    dynamic_ncols=True, leave=True)

    def bvh(self, subset: str, name: str, data: bytes | Path, source: str,
            label_key: str | None) -> None:
        try:
            joints, fps, jm = bvh_to_joints(data, self.joint_map, self.map_cache)
            fps = self.source_fps or fps
            self.w.add(subset, name, joints, fps, source, skeleton=jm.name, label_key=label_key)
        except Exception as e:  # a bad file is reported and skipped, whatever is wrong with it
            self.w.fail(source, e)

    def run(self, inp: Path) -> None:
        name = inp.name.lower()
        if inp.is_dir():
            self.folder(inp)
        elif not inp.exists():
            self.w.fail(str(inp), "no such file or folder")
        elif name.endswith(_ARCHIVE_SUFFIXES):
            self.archive(inp)
        elif name.endswith(_H5_SUFFIXES):
            self.hdf5(inp)
        elif name.endswith(".npz"):
            self.music2dance(inp)
        elif name.endswith(".bvh"):
            with self._bar(inp.name, 1) as bar:
                self.bvh(inp.resolve().parent.name, inp.stem, inp, str(inp), None)
                bar.update()
        else:
            self.w.fail(str(inp), "not a BVH file, folder, archive (.tar.xz, .tar.gz, .zip), "
                                  "HDF5 file or music2dance .npz")

    def folder(self, folder: Path) -> None:
        subset = folder.resolve().name
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() == ".bvh" and not _is_hidden(str(p)))
        if not files:
            self.w.fail(str(folder), "no .bvh files in this folder")
            return
        with self._bar(subset, len(files)) as bar:
            for p in files:
                label = p.with_suffix(".json")
                key = str(p.with_suffix(""))
                self.bvh(subset, p.stem, p, str(p), key)
                if label.is_file() and key in self.w.written:
                    self.w.add_labels(key, label.read_bytes(), str(label))
                bar.update()

    def archive(self, path: Path) -> None:
        subset = _strip_archive_suffix(path.name)
        found = 0
        try:
            with self._bar(subset, None) as bar:
                for member, read in _iter_archive(path):
                    lower = member.lower()
                    if _is_hidden(member) or not lower.endswith((".bvh", ".json")):
                        continue
                    source = f"{path}:{member}"
                    key = f"{path}:{member.rsplit('.', 1)[0]}"
                    try:
                        data = read()
                    except Exception as e:
                        self.w.fail(source, e)
                        continue
                    if lower.endswith(".json"):
                        self.w.add_labels(key, data, source)
                        continue
                    found += 1
                    self.bvh(subset, Path(member).stem, data, source, key)
                    bar.update()
        except Exception as e:  # corrupt or truncated archive: keep what was read before
            self.w.fail(str(path), f"cannot read archive: {type(e).__name__}: {e}")
            return
        if not found:
            self.w.fail(str(path), "no .bvh files in this archive")

    def music2dance(self, path: Path) -> None:
        try:
            d = np.load(path)
            points = d["skeletons"].astype(np.float64) + d["center"][:, None].astype(np.float64)
            names, starts, lengths, fps = d["seq_names"], d["seq_start"], d["seq_len"], float(d["fps"])
        except Exception as e:
            self.w.fail(str(path), f"not a music2dance positions file: {type(e).__name__}: {e}")
            return
        mapped = np.full(points.shape[:1] + (NUM_JOINTS, 3), np.nan)
        for target, src in MUSIC2DANCE_SOURCES.items():
            mapped[:, JOINT_INDEX[target]] = points[:, list(src)].mean(1)
        mapped = mapped * 0.01
        subset = path.parent.name if path.parent.name else path.stem
        with self._bar(subset, len(names)) as bar:
            for name, start, length in zip(names, starts, lengths):
                source = f"{path}:{name}"
                try:
                    # 25 fps gives no integer frame stride for 7.5 or 15 fps keyframes: resample
                    # to 30 fps with a cubic spline (smooth, and not biased towards linear
                    # interpolation, which the evaluation compares against).
                    joints = mapped[start:start + length]
                    t = np.arange(length) / fps
                    t_out = np.arange(0.0, t[-1] + 1e-9, 1.0 / MUSIC2DANCE_FPS_OUT)
                    joints = CubicSpline(t, joints, axis=0)(t_out).astype(np.float32)
                    self.w.add(subset, str(name), joints, MUSIC2DANCE_FPS_OUT, source,
                               skeleton="music2dance23")
                except Exception as e:
                    self.w.fail(source, e)
                bar.update()

    def hdf5(self, path: Path) -> None:
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            self.w.fail(str(path), f"cannot open HDF5: {e}")
            return
        with f:
            ours = f.attrs.get("joint_layout") == JOINT_LAYOUT
            items = [(s, m) for s in sorted(f) if isinstance(f[s], h5py.Group)
                     for m in sorted(f[s]) if isinstance(f[s][m], h5py.Group)]
            if not items:
                self.w.fail(str(path), "no /<subset>/<motion>/joints groups in this HDF5")
                return
            if self.joint_map is not None and not ours:
                log.info("%s: --joint-map does not apply to AMASS SMPL-H joints", path)
            up = str(f.attrs.get("up_axis", "y" if ours else "z"))
            with self._bar(path.stem, len(items)) as bar:
                for subset, motion in items:
                    g = f[subset][motion]
                    source = f"{path}:/{subset}/{motion}"
                    try:
                        if "joints" not in g:
                            raise ValueError("no 'joints' dataset")
                        data = g["joints"][()]
                        if ours:
                            fps = float(g.attrs["fps"])
                            joints = np.asarray(data, dtype=np.float32)
                            if joints.shape[1:] != (NUM_JOINTS, 3):
                                raise ValueError(f"joints of shape {joints.shape}, expected "
                                                 f"(T, {NUM_JOINTS}, 3)")
                            skeleton = g.attrs.get("skeleton")
                            src = str(g.attrs.get("source", source))
                        else:
                            fps = float(g.attrs.get("fps", g.attrs.get("mocap_framerate",
                                                                       AMASS_FPS)))
                            joints = amass_to_joints(data, up)
                            skeleton, src = "smplh52", source
                        new = self.w.add(subset, motion, joints, fps, src, skeleton=skeleton)
                        if ours and "labels" in g.attrs:
                            new.attrs["labels"] = g.attrs["labels"]
                    except Exception as e:
                        self.w.fail(source, e)
                    bar.update()


def build_dataset(inputs: Sequence[str | os.PathLike], out: str | os.PathLike,
                  joint_map: str | os.PathLike | JointMap | None = None,
                  fps_out: float | None = None, progress: bool = True,
                  source_fps: float | None = None) -> BuildReport:
    """Import ``inputs`` (BVH files, folders, archives, AMASS/posetween HDF5) into the HDF5
    file ``out`` (replaced only when at least one motion was imported).

    ``joint_map``: a :class:`JointMap`, a built-in map name or a YAML path, used for every BVH;
    ``None`` detects the map from each skeleton's joint names. ``fps_out``: resample every
    motion to this frame rate (``None``: keep each motion's own). ``source_fps``: the true frame
    rate of every BVH input, where their headers are wrong (``None``: trust the headers).
    Returns a :class:`BuildReport`; a bad joint map raises :class:`JointMapError` at once.
    """
    start = time.perf_counter()
    out = Path(out)
    jm = load_joint_map(joint_map) if isinstance(joint_map, (str, os.PathLike)) else joint_map
    if fps_out is not None and not fps_out > 0:
        raise ValueError(f"fps_out must be positive, got {fps_out}")
    report = BuildReport(out=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["joint_layout"] = JOINT_LAYOUT
            h5.attrs["joint_names"] = np.array(JOINT_NAMES, dtype=h5py.string_dtype())
            h5.attrs["units"] = "m"
            h5.attrs["up_axis"] = "y"
            h5.attrs["format_version"] = FORMAT_VERSION
            h5.attrs["inputs"] = np.array([str(p) for p in inputs], dtype=h5py.string_dtype())
            importer = _Importer(_Writer(h5, report, fps_out), jm, progress, source_fps)
            with logging_redirect_tqdm():
                for inp in inputs:
                    importer.run(Path(inp))
        if report.motions:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    report.seconds = time.perf_counter() - start
    return report


def load_motions(h5_path: str | os.PathLike, subsets: Iterable[str] | None = None,
                 min_frames: int = 1) -> list[Motion]:
    """All motions of a file written by :func:`build_dataset` (optionally only some subsets,
    and only those with at least ``min_frames`` frames), as :class:`Motion` tuples
    ``(subset, name, fps, joints (T, 19, 3) float32)`` in file order."""
    with h5py.File(h5_path, "r") as f:
        layout = f.attrs.get("joint_layout")
        if layout != JOINT_LAYOUT:
            raise ValueError(
                f"{h5_path} is not a posetween dataset (joint_layout={layout!r}); convert it "
                f"first: posetween data build {h5_path} --out DATASET.h5")
        version = int(f.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ValueError(f"{h5_path} has format_version {version}; this posetween reads "
                             f"up to {FORMAT_VERSION}")
        wanted = set(subsets) if subsets is not None else None
        if wanted is not None and not wanted <= set(f):
            raise ValueError(f"{h5_path} has no subset(s) {sorted(wanted - set(f))}; "
                             f"it has {sorted(f)}")
        motions = []
        for subset in f:
            if wanted is not None and subset not in wanted:
                continue
            for name, g in f[subset].items():
                joints = g["joints"][()]
                if len(joints) >= min_frames:
                    motions.append(Motion(subset, name, float(g.attrs["fps"]), joints))
        return motions


# ----------------------------------------------------------------------------- CLI

def _run_build(args: argparse.Namespace) -> int:
    from posetween.training.joint_maps import JointMapError
    try:
        report = build_dataset(args.inputs, args.out, joint_map=args.joint_map,
                               fps_out=args.fps_out, progress=not args.no_progress,
                               source_fps=args.source_fps)
    except JointMapError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    if not report.motions:
        print("error: nothing was imported", file=sys.stderr)
        return 1
    return 0
