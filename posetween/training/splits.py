"""Train/validation/test assignment of motions, stable across runs and machines."""

from __future__ import annotations

import zlib

from posetween.training.config import SplitConfig

SPLITS = ("train", "validation", "test")


def split_of(subset: str, motion: str, cfg: SplitConfig) -> str:
    """The split of a motion. Subsets named in ``test_subsets`` or ``validation_subsets`` go there
    whole, in either mode (a source kept out of training entirely); the others are assigned
    by ``cfg.by``."""
    if subset in cfg.test_subsets:
        return "test"
    if subset in cfg.validation_subsets:
        return "validation"
    if cfg.by == "subset":
        return "train"
    if cfg.by == "take":
        u = (zlib.crc32(f"{subset}/{motion}".encode()) % 100_000) / 100_000
        if u < cfg.test:
            return "test"
        if u < cfg.test + cfg.validation:
            return "validation"
        return "train"
    raise ValueError(f"unknown split mode {cfg.by!r}: use 'take' or 'subset'")
