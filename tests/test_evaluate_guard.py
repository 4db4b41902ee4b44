"""`posetween eval`'s "guarded" method: the engine's guard run over the evaluation windows leans
a track whose model keeps losing to the linear curve on that curve, and leaves a model that
does not lose as it is."""

from __future__ import annotations

import numpy as np

from conftest import write_synthetic_dataset
from posetween.core.skeleton import JOINT_INDEX
from posetween.training.build_data import load_motions
from posetween.training.evaluate import EvalSettings, build_windows, guarded, run_method, score

HIPS = [JOINT_INDEX[n] for n in ("mid_hip", "left_hip", "right_hip")]


def windows(tmp_path):
    motions = load_motions(write_synthetic_dataset(tmp_path / "walk.h5", motions=2, frames=300))
    return build_windows(motions, 8, EvalSettings(input_fps=7.5, views=2))


def test_a_model_that_moves_the_hips_is_leaned_onto_the_curve(tmp_path):
    w = windows(tmp_path)
    linear = run_method("linear", None, w)
    moved = linear.copy()
    moved[:, :, HIPS] += w.torso[:, None, None, None]      # hips a torso length off
    model, shown = score(moved, w)["mpjpe"], score(guarded(moved, w), w)["mpjpe"]
    assert shown < 0.5 * model, (shown, model)


def test_a_model_as_good_as_the_curve_is_shown_as_it_is(tmp_path):
    w = windows(tmp_path)
    linear = run_method("linear", None, w)
    assert np.array_equal(guarded(linear, w), linear, equal_nan=True)
