"""The engine's guard (stream/guard.py): a stream whose model keeps losing to the curve on the
stream's own new keyframes leans on the curve, counted in the stats; a model as good as the
curve keeps full trust. A real model behind the real backend; the 'bad' one is that model with
its answer moved towards another skeleton's hips (what the issue saw off the training data)."""

from __future__ import annotations

import numpy as np
import pytest

from posetween.core.skeleton import JOINT_INDEX
from posetween.stream import Engine, EngineConfig
from posetween.stream.guard import Guard

from stream_support import moving_pose, tiny_backend
from test_stream_engine import T0, simulate

HIPS = [JOINT_INDEX[n] for n in ("mid_hip", "left_hip", "right_hip")]


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return tiny_backend(tmp_path_factory.mktemp("model"))   # heads at zero: exactly linear


class MovesTheHips:
    """The real backend, its answer's hips moved 25 px down: a model that pulls the keyframes it
    is given towards the skeleton it learnt."""

    def __init__(self, inner):
        self.inner, self.window, self.name = inner, inner.window, "moves-the-hips"

    def run(self, *args):
        out = np.array(self.inner.run(*args))
        out[..., HIPS, 1] += 25.0
        return out


def hip_error(out, since: float) -> float:
    late = [p for p in out if p.time - T0 > since]
    return float(np.mean([np.abs(p.xy[HIPS] - moving_pose(p.time - T0)[HIPS]).max() for p in late]))


@pytest.mark.parametrize("guard", [True, False])
def test_a_model_that_loses_to_the_curve_is_leaned_off(backend, guard):
    engine = Engine(MovesTheHips(backend), EngineConfig(rate=60, lookahead=1, budget_ms=300, guard=guard))
    out = simulate(engine, moving_pose, fps=10, duration=4.0)
    err = hip_error(out, since=2.0)
    if guard:
        assert engine.snapshot()["guarded_windows"] > 10
        assert err < 5.0, err               # the curve's path, not the model's 25 px
    else:
        assert engine.snapshot()["guarded_windows"] == 0
        assert err > 15.0, err


def test_a_model_as_good_as_the_curve_keeps_full_trust(backend):
    engine = Engine(backend, EngineConfig(rate=60, lookahead=1, budget_ms=300))
    simulate(engine, moving_pose, fps=10, duration=3.0)
    assert engine.snapshot()["guarded_windows"] == 0


def test_trust_follows_which_continuation_is_nearer():
    g = Guard()
    times = np.array([0.0, 0.1])
    truth = lambda t: np.tile([[100.0 + 50 * t, 200.0]], (19, 1))
    curve = np.stack([truth(0.0), truth(0.1)])
    for k in range(10):                       # the model 10 px off, the curve exact
        g.expect(0, times + k, curve + 10.0, curve + 0 * k)
        g.observe(0, 0.2 + k, truth(0.2), np.ones(19))
    assert g.trust < 0.1
    for k in range(20):                       # now the model is the nearer one
        g.expect(0, times, curve, curve + 10.0)
        g.observe(0, 0.2, truth(0.2), np.ones(19))
    assert g.trust == 1.0
    g.expect(0, times, curve + 10, curve)
    assert g.observe(1, 0.2, truth(0.2), np.ones(19)) is None   # another segment: nothing to compare
