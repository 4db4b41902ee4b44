"""The output track: the curve it draws through the model's samples (posetween.stream.track)."""

from __future__ import annotations

import numpy as np

from posetween.stream.track import Track, evaluate


def poses(x: np.ndarray) -> np.ndarray:
    """(n, 19, 2) poses whose every joint sits at (x, -x) for the n values of x."""
    return np.repeat(np.stack([x, -x], -1)[:, None, :], 19, axis=1)


def render(track: Track, times) -> np.ndarray:
    """The track's poses at ``times`` (each rendered in turn, as the output clock does)."""
    out = []
    for t in times:
        b = track.locate(t, hold_s=10.0, key_tolerance=0.0)
        xy, _ = evaluate([b])
        track.shown(b, xy[0], np.ones(19))
        out.append(xy[0])
    return np.array(out)


def answer(track: Track, times: np.ndarray, x: np.ndarray, seg: int = 0) -> None:
    track.merge(times, poses(x), np.ones((len(times), 19)), "interpolated", seg, blend_s=0.0)


def test_five_samples_of_a_curved_path_render_it_between_them():
    # A parabola sampled 5 times: the three-point tangents are exact for it, so the curve is the
    # parabola itself; linear interpolation of the same samples is off by up to h^2 / 4.
    track = Track()
    ts = np.linspace(0.0, 0.1, 5)
    answer(track, ts, 50 * ts**2)
    t = np.linspace(0.0, 0.1, 41)
    got = render(track, t)[:, 3, 0]
    assert np.abs(got - 50 * t**2).max() < 1e-9
    linear = np.interp(t, ts, 50 * ts**2)
    assert np.abs(linear - 50 * t**2).max() > 1e-4
    # Velocity is continuous at the samples inside an answer, on any path (here 3 Hz): linear
    # interpolation of the same samples turns a corner of about 9 units/s at each.
    path = lambda t: np.sin(2 * np.pi * 3 * t)
    dt = 1e-4
    for s in ts[1:-1]:
        track = Track()
        answer(track, ts, path(ts))
        x = render(track, [s - dt, s, s + dt])[:, 3, 0]
        assert abs((x[2] - x[1]) - (x[1] - x[0])) / dt < 0.1


def test_samples_on_a_line_render_the_line_across_answers():
    # Two answers (two intervals' samples) on one line: the line, and no step where they meet.
    track = Track()
    first, second = np.linspace(0.0, 0.1, 5), np.linspace(0.1, 0.2, 5)
    answer(track, first, 3 * first)
    answer(track, second, 3 * second)
    t = np.linspace(0.0, 0.2, 81)
    assert np.abs(render(track, t)[:, 0, 0] - 3 * t).max() < 1e-12


def test_a_joint_missing_at_a_neighbour_or_a_side_still_renders():
    track = Track()
    ts = np.linspace(0.0, 0.1, 5)
    xy = poses(ts)
    xy[0, 5] = np.nan          # missing at the first sample: the chord is its tangent after it
    xy[3:, 7] = np.nan         # missing after 0.05: that value is held
    track.merge(ts, xy, np.ones((5, 19)), "interpolated", 0, blend_s=0.0)
    got = render(track, [0.03, 0.06])
    assert np.isfinite(got[:, [0, 5, 7]]).all()
    assert np.allclose(got[:, 5, 0], [0.03, 0.06])       # on the line through the samples seen
    assert np.allclose(got[:, 7, 0], [0.03, 0.05])
