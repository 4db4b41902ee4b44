import itertools

import numpy as np
import pytest
import torch

from posetween.core.model import (ModelConfig, PoseTween, hermite_weights, interpolation_weights, load_model,
                                  normalize_window, per_joint_curve_weights, roughness, save_model)
from posetween.core.skeleton import NUM_JOINTS


def random_model(window=4, seed=0) -> PoseTween:
    torch.manual_seed(seed)
    model = PoseTween(ModelConfig(window=window, encoder_layers=2, decoder_layers=2))
    with torch.no_grad():   # the heads start at zero; make every path matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def make_window(B, K, Q, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand((B, K, NUM_JOINTS, 2), generator=g) * 400 + 100
    conf = torch.rand((B, K, NUM_JOINTS), generator=g) * 0.7 + 0.3
    t = torch.arange(K, dtype=torch.float32).repeat(B, 1) / 7.5 + torch.rand((B, 1), generator=g)
    tq = t[:, -2:-1] + torch.rand((B, Q), generator=g) * 0.3 - 0.1
    return xy, conf, t, tq


def test_outputs_finite_for_every_keyframe_mask_pattern():
    """All 2^K patterns of present/absent keyframe slots (all-absent included), each also with
    NaN coordinates where joints are missing and with one keyframe only."""
    K, Q = 4, 5
    model = random_model(window=K)
    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=K)))     # (16, K)
    B = len(patterns)
    xy, conf, t, tq = make_window(B, K, Q)
    conf = conf * patterns[:, :, None]
    xy = torch.where(conf[..., None] > 0, xy, torch.full_like(xy, float("nan")))
    with torch.no_grad():
        out, keys = model(xy, conf, t, tq)
    assert torch.isfinite(out).all() and torch.isfinite(keys).all()


def test_outputs_finite_for_random_joint_masks_and_degenerate_inputs():
    K, Q, B = 8, 8, 64
    model = random_model(window=K, seed=1)
    xy, conf, t, tq = make_window(B, K, Q, seed=2)
    g = torch.Generator().manual_seed(3)
    conf = conf * (torch.rand(conf.shape, generator=g) < torch.rand((B, 1, 1), generator=g))
    conf[0] = 0                      # all joints missing everywhere
    conf[1, :-1] = 0                 # a single keyframe
    conf[2, :, 1] = 0                # the neck never seen: no torso, the box gives the scale
    conf[3, :, 8] = 0                # mid-hip never seen
    xy[4] = 123.0                    # all joints at one point: zero extent
    t[5] = t[5, -1]                  # all keyframes at the same time
    tq[6] = t[6, -1] + 100.0         # queries far in the future
    xy = torch.where(conf[..., None] > 0, xy, torch.full_like(xy, float("nan")))
    with torch.no_grad():
        out, keys = model(xy, conf, t, tq)
    assert torch.isfinite(out).all() and torch.isfinite(keys).all()
    # Gradients stay finite too (training sees these windows).
    model.train()
    out, keys = model(xy, conf, t, tq)
    (out.sum() + keys.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_interpolation_weights_linear_inside_constant_velocity_after_hold_before():
    time = torch.tensor([[0.0, 0.0, 1.0, 2.0, 4.0]])
    valid = torch.tensor([[False, True, True, True, True]])   # slot 0 is padding
    query = torch.tensor([[-1.0, 0.5, 2.0, 3.0, 5.0, 9.0]])
    w = interpolation_weights(time, valid, query, max_alpha=2.0)
    values = torch.tensor([[7.0, 10.0, 20.0, 30.0, 50.0]])
    got = (w @ values.unsqueeze(-1))[0, :, 0]
    # hold before the first, linear inside, at a keyframe exactly, extrapolate by the last
    # velocity (10 per second), capped at one interval beyond the newest (alpha <= 2).
    expected = torch.tensor([10.0, 15.0, 30.0, 40.0, 60.0, 70.0])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 6))


def test_interpolation_weights_match_numpy_interp_and_ignore_unseen_keyframes_times():
    """Between the seen keyframes, each row's weights are numpy's piecewise-linear interpolation
    through them; the times of keyframes not seen do not matter; a row with none seen weighs
    nothing."""
    g = torch.Generator().manual_seed(1)
    R, K, Q = 500, 8, 10
    time = torch.sort(torch.rand(R, K, generator=g, dtype=torch.float64), 1).values
    valid = torch.rand(R, K, generator=g) > 0.4
    valid[0] = False
    query = torch.rand(R, Q, generator=g, dtype=torch.float64) * 1.2 - 0.1
    values = torch.randn(R, K, generator=g, dtype=torch.float64)
    w = interpolation_weights(time, valid, query, 2.0)
    scrambled = torch.where(valid, time, torch.randn(R, K, generator=g, dtype=torch.float64) * 5)
    assert torch.equal(w, interpolation_weights(scrambled, valid, query, 2.0))
    assert (w[0] == 0).all()
    got = (w @ values.unsqueeze(-1)).squeeze(-1)
    checked = 0
    for r in range(1, R):
        t, v = time[r][valid[r]].numpy(), values[r][valid[r]].numpy()
        between = (query[r] >= t[0]) & (query[r] <= t[-1]) if len(t) else torch.zeros(Q, dtype=torch.bool)
        expected = np.interp(query[r][between].numpy(), t, v) if len(t) else []
        np.testing.assert_allclose(got[r][between].numpy(), expected, atol=1e-9)
        checked += int(between.sum())
    assert checked > R * Q // 2


def test_hermite_weights_follow_any_quadratic_and_are_linear_outside():
    # Irregular times, random missing keyframes: between two valid keyframes with a third on
    # either side, the curve is exact for quadratic motion (linear interpolation is not).
    g = torch.Generator().manual_seed(0)
    B, K, Q = 256, 8, 12
    time = torch.sort(torch.rand(B, K, generator=g, dtype=torch.float64) * 2, 1).values
    valid = torch.rand(B, K, generator=g) > 0.3
    query = torch.rand(B, Q, generator=g, dtype=torch.float64) * 2.6 - 0.3
    linear = interpolation_weights(time, valid, query, 2.0)
    w = hermite_weights(time, valid, query, 2.0)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, Q, dtype=torch.float64))
    assert (w[~valid.unsqueeze(1).expand_as(w)] == 0).all()
    c = torch.randn(B, 3, 1, generator=g, dtype=torch.float64)
    motion = lambda t: c[:, 0] + c[:, 1] * t + c[:, 2] * t * t
    before = (valid.unsqueeze(1) & (time.unsqueeze(1) <= query.unsqueeze(2))).sum(-1)
    after = (valid.unsqueeze(1) & (time.unsqueeze(1) > query.unsqueeze(2))).sum(-1)
    between = (before >= 1) & (after >= 1) & (before + after >= 3)
    err = (w @ motion(time).unsqueeze(-1)).squeeze(-1) - motion(query)
    lin_err = (linear @ motion(time).unsqueeze(-1)).squeeze(-1) - motion(query)
    assert between.float().mean() > 0.5
    assert err[between].abs().max() < 1e-9 < lin_err[between].abs().max()
    outside = (before == 0) | (after == 0)
    torch.testing.assert_close(w[outside], linear[outside])


def test_model_file_without_a_newer_zero_head_loads(tmp_path):
    model = PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1))
    path = tmp_path / "old.pt"
    save_model(model, path)
    ckpt = torch.load(path, weights_only=False)
    del ckpt["state_dict"]["curve_head.weight"], ckpt["state_dict"]["curve_head.bias"]
    torch.save(ckpt, path)
    assert (load_model(path).curve_head.weight == 0).all()
    del ckpt["state_dict"]["key_embed.weight"]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="key_embed.weight"):
        load_model(path)


def test_untrained_model_is_the_linear_prior_and_units_round_trip():
    """Zero-initialised heads: denoised keyframes are the input, queries the linear prior, in
    the caller's units (normalisation is undone exactly)."""
    torch.manual_seed(0)
    model = PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1)).eval()
    xy, conf, t, tq = make_window(3, 4, 6)
    with torch.no_grad():
        out, keys = model(xy, conf, t, tq)
    torch.testing.assert_close(keys, xy, atol=1e-3, rtol=0)
    w = interpolation_weights(t, torch.ones_like(t, dtype=torch.bool), tq, 2.0)
    torch.testing.assert_close(out, torch.einsum("bqk,bkjc->bqjc", w, xy), atol=1e-3, rtol=0)


def test_curve_blend_mixes_the_hermite_curve_in_between_keyframes_at_inference_only():
    """curve_blend = b: between two keyframes, b of each answer is the Hermite curve through
    them; past the newest keyframe (lookahead 0) and while training, the answer is the model's."""
    xy, conf, t, tq = make_window(3, 4, 9)
    plain = random_model(window=4, seed=2)
    blended = PoseTween(ModelConfig(**{**plain.cfg.to_dict(), "curve_blend": 0.25, "dropout": 0.0}))
    blended.load_state_dict(plain.state_dict())
    with torch.no_grad():
        model_out, _ = plain(xy, conf, t, tq)
        out, _ = blended.eval()(xy, conf, t, tq)
        training_out, _ = blended.train()(xy, conf, t, tq)
    present = torch.ones(3, 4, NUM_JOINTS, dtype=torch.bool)
    _, curve_w, inside, _ = per_joint_curve_weights(t, present, tq, 2.0)
    curve = torch.einsum("bjqk,bkjc->bqjc", curve_w, xy)
    inside = inside.permute(0, 2, 1).unsqueeze(-1)
    assert inside.any() and not inside.all()      # the window has queries of both kinds
    expected = torch.where(inside, model_out + 0.25 * (curve - model_out), model_out)
    torch.testing.assert_close(out, expected, atol=1e-2, rtol=0)    # pixels, torso ~600 px
    assert (out - model_out).abs().max() > 1.0                       # and it did move them
    torch.testing.assert_close(training_out, model_out, atol=1e-3, rtol=0)


def test_curve_share_grows_at_short_intervals_on_smooth_input_only():
    """curve_blend at 7.5 fps and slower; curve_blend_per_octave more per halving of the interval
    (at most all of the curve), but only on smooth input: none of that extra from a roughness of
    curve_noise_high, all of it below curve_noise_low."""
    model = PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1, curve_blend=0.25,
                                  curve_blend_per_octave=0.3, curve_noise_low=0.02, curve_noise_high=0.1))
    gaps = torch.tensor([[[1 / 3.75, 1 / 7.5, 1 / 15, 1 / 30, 1 / 240]]])          # (1, 1, 5) seconds
    share = lambda rough: model.curve_share(gaps, torch.tensor([rough]))[0, 0]
    torch.testing.assert_close(share(0.0), torch.tensor([0.25, 0.25, 0.55, 0.85, 1.0]))
    torch.testing.assert_close(share(0.06), torch.tensor([0.25, 0.25, 0.40, 0.55, 0.625]))
    torch.testing.assert_close(share(0.3), torch.full((5,), 0.25))


def test_roughness_is_zero_for_steady_motion_and_measures_noise():
    """The keyframes' distance from the chord of their neighbours: none for motion at constant
    velocity, even at irregular times; about 3 sigma (sigma per coordinate, torso lengths) for
    noise; joints not seen in three keyframes in a row do not count."""
    g = torch.Generator().manual_seed(3)
    B, K = 64, 8
    t = torch.cumsum(torch.rand((B, K), generator=g) * 0.1 + 0.03, 1)          # irregular times
    velocity = torch.randn((B, 1, NUM_JOINTS, 2), generator=g) * 200
    start = torch.rand((B, 1, NUM_JOINTS, 2), generator=g) * 400
    xy = start + velocity * t[:, :, None, None]
    xy[:, :, 8] = xy[:, :, 1] + torch.tensor([0.0, 100.0])                     # a torso of 100 px
    conf = torch.ones(B, K, NUM_JOINTS)
    tq = t[:, -1:]
    assert roughness(normalize_window(xy, conf, t, tq)).abs().max() < 1e-4
    noisy = xy + torch.randn(xy.shape, generator=g) * 3.0                      # 0.03 torso lengths
    rough = roughness(normalize_window(noisy, conf, t, tq))
    assert 0.06 < float(rough.mean()) < 0.12
    wild = noisy.clone()
    wild[:, 1::2, 4] += 500.0                 # one joint jumping about, in every other keyframe ...
    conf[:, 1::2, 4] = 0.0                    # ... and not seen there: not counted
    torch.testing.assert_close(roughness(normalize_window(wild, conf, t, tq)).mean(), rough.mean(), atol=0.01, rtol=0)


def test_model_is_invariant_to_translation_scale_and_time_offset():
    model = random_model(window=6, seed=4)
    xy, conf, t, tq = make_window(4, 6, 7, seed=5)
    with torch.no_grad():
        out, _ = model(xy, conf, t, tq)
        out2, _ = model(xy * 3.0 + 50.0, conf, t + 10.0, tq + 10.0)
    # Only relative times matter. (Absolute Unix times would lose float32 precision: the
    # runtime backends subtract the newest keyframe's time in float64 first.)
    # Outputs are in pixels with a torso of ~600 px here: 0.2 px is 3e-4 torso lengths.
    torch.testing.assert_close(out2, out * 3.0 + 50.0, atol=0.2, rtol=0)


def test_normalisation_uses_torso_length():
    xy = torch.zeros(1, 2, NUM_JOINTS, 2)
    xy[..., 1, 1] = 0.0      # neck
    xy[..., 8, 1] = 50.0     # mid-hip, 50 px below
    conf = torch.ones(1, 2, NUM_JOINTS)
    w = normalize_window(xy, conf, torch.tensor([[0.0, 0.1]]), torch.tensor([[0.05]]))
    assert float(w.scale) == 50.0
    np.testing.assert_allclose(w.time.numpy(), [[-0.1, 0.0]], atol=1e-7)
