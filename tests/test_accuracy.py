"""The shipped model against linear interpolation on motion it never saw: CMU subject 131
(a capture system, skeleton and person absent from training), as `make eval` measures it."""

from __future__ import annotations

import pytest

from posetween.core.model import load_model
from posetween.training.build_data import build_dataset, load_motions
from posetween.training.evaluate import EvalSettings, evaluate
from conftest import MOCAP, need


@pytest.fixture(scope="module")
def cmu131(tmp_path_factory):
    need(MOCAP / "cmu-131")
    out = tmp_path_factory.mktemp("cmu131") / "cmu131.h5"
    report = build_dataset([MOCAP / "cmu-131"], out, progress=False)
    assert report.motions == 3, report.summary()
    return load_motions(out)


@pytest.mark.slow
@pytest.mark.parametrize("noisy", [False, True])
def test_shipped_model_beats_linear_on_cmu_131(cmu131, noisy):
    model = load_model()
    r = evaluate(model, cmu131, EvalSettings(input_fps=7.5, lookahead=1, noisy=noisy, views=2))
    assert r["model"]["mpjpe"] < r["linear"]["mpjpe"], (r["model"], r["linear"])
    # Near a clean keyframe the model must not move away from it.
    if not noisy:
        assert r["model"]["first"] <= r["linear"]["first"], (r["model"]["first"], r["linear"]["first"])
