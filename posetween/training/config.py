"""Training configuration: typed dataclasses read from a YAML file (configs/default.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import yaml

from posetween.core.model import ModelConfig
from posetween.training.windows import AugmentConfig


@dataclass
class SplitConfig:
    """How motions are split. ``by: take`` hashes each motion's name into train/validation/test
    (stable across runs and machines); ``by: subset`` assigns whole subsets by name."""
    by: str = "take"
    validation: float = 0.05
    test: float = 0.10
    validation_subsets: list[str] = field(default_factory=list)
    test_subsets: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    path: str = "data/bandai.h5"
    split: SplitConfig = field(default_factory=SplitConfig)
    # Only these subsets (sources) of the file, e.g. those whose licence allows commercial use
    # (the `open` model); empty: every subset.
    subsets: list[str] = field(default_factory=list)
    # Sampling weight per subset (the first name prefix that matches; default 1): clips are drawn
    # in proportion to their frame count times this, so that small sources are not drowned out.
    subset_weights: dict[str, float] = field(default_factory=dict)


@dataclass
class OptimConfig:
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500
    steps: int = 20000
    batch_size: int = 64
    grad_clip: float = 1.0
    key_loss_weight: float = 0.5
    # Share of the query loss measured per window relative to linear interpolation's error
    # (train.relative_mpjpe), the rest plain MPJPE; and the floor, in torso lengths, under
    # linear's error there (so that windows where linear is exact do not blow up).
    relative_loss_weight: float = 0.0
    relative_floor: float = 0.01


@dataclass
class LogConfig:
    every: int = 50
    validate_every: int = 500
    checkpoint_every: int = 250
    validation_windows: int = 2048


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0


def _build(cls, values: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown config key(s) in {where}: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if is_dataclass(default):
            value = _build(type(default), value or {}, f"{where}.{name}")
        elif isinstance(default, tuple):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path) -> TrainConfig:
    with open(path) as f:
        return _build(TrainConfig, yaml.safe_load(f) or {}, Path(path).name)


def override(cfg: TrainConfig, assignment: str) -> None:
    """Apply one ``section.key=value`` (value in YAML) to ``cfg``, as ``train --set`` does:
    ``model.encoder_layers=5``, ``augment.lookahead_probs=[0.2, 0.6, 0.2]``."""
    key, sep, text = assignment.partition("=")
    *path, name = key.strip().split(".")
    if not sep or not name:
        raise ValueError(f"--set {assignment!r}: expected section.key=value")
    obj = cfg
    for part in path:
        if not hasattr(obj, part) or not is_dataclass(getattr(obj, part)):
            raise ValueError(f"--set {assignment!r}: no config section {part!r}")
        obj = getattr(obj, part)
    known = {f.name for f in fields(obj)}
    if name not in known:
        raise ValueError(f"--set {assignment!r}: unknown key {name!r}; known: {', '.join(sorted(known))}")
    value = yaml.safe_load(text)
    setattr(obj, name, tuple(value) if isinstance(getattr(obj, name), tuple) else value)


def to_dict(obj) -> dict:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = to_dict(v) if is_dataclass(v) else (list(v) if isinstance(v, tuple) else v)
    return out
