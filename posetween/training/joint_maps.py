"""Joint maps: from a motion-capture skeleton's joints to the model's 19 joints.

A joint map is a small YAML file (the built-in ones are in ``posetween/configs/joint_maps/``)::

    name: bandai              # stored as the `skeleton` attribute of imported motions
    units_to_metres: 0.01     # factor from the file's length unit to metres (required)
    up_axis: y                # the file's up axis: y (default) or z; output is always Y-up
    detect: [Hips, UpperArm_L]  # joints that identify the skeleton, for auto-detection
    joints:                   # our joint -> a source joint, or a list whose mean is used
      neck: Neck
      left_hand: [LeftHandIndex1, LeftHandPinky1]

Target names are those of :data:`posetween.core.skeleton.JOINT_NAMES`; targets left out are
missing (NaN). BVH End Sites are named ``<parent>_end`` (see :mod:`posetween.training.bvh`).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import yaml

from posetween.core.skeleton import JOINT_NAMES, NUM_JOINTS

__all__ = ["JointMap", "JointMapError", "BUILTIN_DIR", "builtin_joint_maps", "load_joint_map",
           "detect_joint_map", "to_y_up"]

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "configs" / "joint_maps"
_KNOWN_KEYS = {"name", "units_to_metres", "up_axis", "detect", "joints", "description"}


class JointMapError(ValueError):
    """A joint map that is malformed, or that does not fit a skeleton."""


def to_y_up(points: np.ndarray, up_axis: str) -> np.ndarray:
    """Rotate ``(..., 3)`` points so that ``up_axis`` becomes +Y (right-handed, a rotation:
    Z-up ``(x, y, z)`` becomes ``(x, z, -y)``)."""
    if up_axis == "y":
        return points
    if up_axis == "z":
        return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)
    raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")


@dataclass(frozen=True)
class JointMap:
    name: str
    units_to_metres: float
    sources: dict[str, tuple[str, ...]]  # our joint name -> source joint names (mean)
    up_axis: str = "y"
    detect: tuple[str, ...] = ()
    path: str | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "<joint map>") -> "JointMap":
        """Build and validate a map from its YAML contents; ``origin`` names it in errors."""
        if not isinstance(data, dict):
            raise JointMapError(f"{origin}: a joint map must be a YAML mapping, got "
                                f"{type(data).__name__}")
        unknown_keys = set(data) - _KNOWN_KEYS
        if unknown_keys:
            raise JointMapError(f"{origin}: unknown key(s) {sorted(unknown_keys)}; "
                                f"expected {sorted(_KNOWN_KEYS)}")
        name = data.get("name") or (Path(origin).stem if origin != "<joint map>" else "custom")
        if "units_to_metres" not in data:
            raise JointMapError(f"{origin}: missing 'units_to_metres' (the factor from the "
                                "file's length unit to metres, e.g. 0.01 for cm)")
        units = data["units_to_metres"]
        if isinstance(units, bool) or not isinstance(units, (int, float)) or not units > 0:
            raise JointMapError(f"{origin}: 'units_to_metres' must be a positive number, "
                                f"got {units!r}")
        up = str(data.get("up_axis", "y")).lower()
        if up not in ("y", "z"):
            raise JointMapError(f"{origin}: 'up_axis' must be y or z, got {data['up_axis']!r}")
        detect = data.get("detect") or []
        if isinstance(detect, str) or not all(isinstance(d, str) for d in detect):
            raise JointMapError(f"{origin}: 'detect' must be a list of joint names")
        joints = data.get("joints")
        if not isinstance(joints, dict) or not joints:
            raise JointMapError(f"{origin}: 'joints' must be a non-empty mapping from our joint "
                                f"names to source joint names")
        sources: dict[str, tuple[str, ...]] = {}
        for target, src in joints.items():
            if target not in JOINT_NAMES:
                close = difflib.get_close_matches(str(target), JOINT_NAMES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise JointMapError(f"{origin}: unknown target joint {target!r}{hint}; our "
                                    f"joints are: {', '.join(JOINT_NAMES)}")
            if isinstance(src, str):
                src = [src]
            if (not isinstance(src, list) or not src
                    or not all(isinstance(s, str) and s for s in src)):
                raise JointMapError(f"{origin}: joint {target!r} must map to a source joint "
                                    f"name or a non-empty list of names, got {src!r}")
            sources[target] = tuple(src)
        return cls(name=str(name), units_to_metres=float(units), sources=sources, up_axis=up,
                   detect=tuple(detect), path=None if origin == "<joint map>" else origin)

    @property
    def source_joints(self) -> set[str]:
        return {s for srcs in self.sources.values() for s in srcs}

    def matches(self, joint_names: Iterable[str]) -> bool:
        """Whether a skeleton with these joints is one this map is meant for (auto-detection:
        all ``detect`` joints present, or all source joints when ``detect`` is empty)."""
        names = set(joint_names)
        needed = set(self.detect) or self.source_joints
        return needed <= names

    def check(self, joint_names: Sequence[str]) -> None:
        """Raise :class:`JointMapError` naming each source joint missing from the skeleton."""
        names = set(joint_names)
        missing = sorted(self.source_joints - names)
        if missing:
            details = []
            for m in missing:
                close = difflib.get_close_matches(m, list(joint_names), n=1)
                details.append(f"{m!r}" + (f" (closest: {close[0]!r})" if close else ""))
            raise JointMapError(
                f"joint map {self.name!r}: source joint(s) {', '.join(details)} not in the "
                f"skeleton; available joints: {', '.join(joint_names)}")

    def apply(self, names: Sequence[str], positions: np.ndarray) -> np.ndarray:
        """Map source positions ``(T, J, 3)`` (file units and axes) to ``(T, 19, 3)`` float32
        in metres, Y-up; joints the map leaves out are NaN."""
        self.check(names)
        index = {n: i for i, n in enumerate(names)}
        positions = np.asarray(positions, dtype=np.float64)
        out = np.full(positions.shape[:-2] + (NUM_JOINTS, 3), np.nan)
        for j, target in enumerate(JOINT_NAMES):
            srcs = self.sources.get(target)
            if srcs:
                out[..., j, :] = positions[..., [index[s] for s in srcs], :].mean(-2)
        out = to_y_up(out * self.units_to_metres, self.up_axis)
        return out.astype(np.float32)


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise JointMapError(f"{path}: not valid YAML: {e}") from None


def builtin_joint_maps() -> dict[str, JointMap]:
    """The maps shipped in ``posetween/configs/joint_maps``, by name."""
    maps = {}
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        jm = JointMap.from_dict(_read_yaml(path), str(path))
        maps[jm.name] = jm
    return maps


def load_joint_map(name_or_path: str | os.PathLike) -> JointMap:
    """A built-in map by name (``"bandai"``, ``"cmu"``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.is_file():
        return JointMap.from_dict(_read_yaml(path), str(path))
    builtins = builtin_joint_maps()
    if str(name_or_path) in builtins:
        return builtins[str(name_or_path)]
    raise JointMapError(f"no joint map file {str(name_or_path)!r}, and no built-in map of that "
                        f"name (built-in: {', '.join(builtins)})")


def detect_joint_map(joint_names: Sequence[str],
                     candidates: Iterable[JointMap] | None = None) -> JointMap:
    """The (first) map whose ``detect`` joints are all in ``joint_names``."""
    candidates = list(builtin_joint_maps().values() if candidates is None else candidates)
    for jm in candidates:
        if jm.matches(joint_names):
            return jm
    raise JointMapError(
        f"no joint map recognises this skeleton (joints: {', '.join(joint_names)}); tried "
        f"{', '.join(jm.name for jm in candidates) or 'none'}. Write a joint map YAML (see "
        f"{BUILTIN_DIR}) and pass it with --joint-map")
