"""Training and evaluation, end to end on a small synthetic dataset (no real data needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from posetween.cli import main
from posetween.core.model import ModelConfig, PoseTween, load_model, save_model
from posetween.core.skeleton import NUM_JOINTS

TINY = {
    "model": {"window": 4, "d_model": 32, "heads": 2, "ff": 64, "encoder_layers": 1, "decoder_layers": 1},
    "optim": {"steps": 20, "warmup_steps": 5, "batch_size": 16},
    "log": {"every": 5, "validate_every": 10, "checkpoint_every": 5, "validation_windows": 256},
    "data": {"split": {"by": "take", "validation": 0.3, "test": 0.0}},
}


@pytest.fixture
def tiny_config(tmp_path, synthetic_h5) -> Path:
    cfg = {**TINY, "data": {**TINY["data"], "path": str(synthetic_h5)}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_cli(config, runs, name, *extra):
    return main(["train", "--config", str(config), "--runs", str(runs), "--name", name, *extra])


def test_resume_continues_exactly(tiny_config, tmp_path):
    torch.set_num_threads(1)
    runs = tmp_path / "runs"
    assert train_cli(tiny_config, runs, "straight") == 0
    assert train_cli(tiny_config, runs, "pieces", "--until", "7") == 0
    first = torch.load(runs / "pieces" / "last.pt", weights_only=False)
    assert first["step"] == 7
    assert train_cli(tiny_config, runs, "pieces", "--resume") == 0
    a = torch.load(runs / "straight" / "last.pt", weights_only=False)
    b = torch.load(runs / "pieces" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 20
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])
    assert (runs / "pieces" / "model.pt").exists() and any((runs / "pieces" / "tb").iterdir())


def test_init_starts_a_new_run_from_a_model_file(tiny_config, tmp_path):
    torch.set_num_threads(1)
    runs = tmp_path / "runs"
    assert train_cli(tiny_config, runs, "first") == 0
    start = torch.load(runs / "first" / "model.pt", weights_only=False)
    # --until 0: the new run saves its starting point, which must be the given weights.
    assert train_cli(tiny_config, runs, "more", "--init", str(runs / "first" / "model.pt"), "--until", "0") == 0
    begun = torch.load(runs / "more" / "last.pt", weights_only=False)
    assert begun["step"] == 0 and begun["before"]["steps"] == start["step"]
    for k, v in start["state_dict"].items():
        assert torch.equal(v, begun["state_dict"][k]), k
    assert train_cli(tiny_config, runs, "more", "--resume") == 0
    best = torch.load(runs / "more" / "model.pt", weights_only=False)
    # The model file counts the steps and time of the weights it started from.
    assert start["step"] < best["step"] <= start["step"] + 20
    assert best["train_seconds"] > start["train_seconds"]

    other = tmp_path / "other.pt"
    save_model(PoseTween(ModelConfig(window=4, d_model=16, heads=2, ff=32, encoder_layers=1, decoder_layers=1)), other)
    with pytest.raises(ValueError, match="model config"):
        train_cli(tiny_config, runs, "mismatch", "--init", str(other))
    # curve_blend acts at inference only: a file with another share starts a run all the same.
    blended = tmp_path / "blended.pt"
    save_model(PoseTween(ModelConfig(**{**start["config"], "curve_blend": 0.25})), blended)
    assert train_cli(tiny_config, runs, "from-blended", "--init", str(blended), "--until", "0") == 0


def test_init_may_deepen_the_model_without_changing_its_outputs(tiny_config, tmp_path):
    torch.set_num_threads(1)
    runs = tmp_path / "runs"
    assert train_cli(tiny_config, runs, "shallow") == 0
    deeper = ("--set", "model.encoder_layers=3", "--set", "model.decoder_layers=2")
    assert train_cli(tiny_config, runs, "deep", "--init", str(runs / "shallow" / "model.pt"), *deeper, "--until", "0") == 0
    saved = yaml.safe_load((runs / "deep" / "config.yaml").read_text())["model"]
    assert (saved["encoder_layers"], saved["decoder_layers"]) == (3, 2)

    shallow = load_model(runs / "shallow" / "model.pt")
    deep = PoseTween(ModelConfig(**saved))
    deep.load_state_dict(torch.load(runs / "deep" / "last.pt", weights_only=False)["state_dict"])
    deep.eval()
    g = torch.Generator().manual_seed(0)
    key_xy = 300 + 50 * torch.randn((3, 4, NUM_JOINTS, 2), generator=g)
    key_conf = (torch.rand((3, 4, NUM_JOINTS), generator=g) > 0.2).float()
    key_time = torch.tensor([-0.3, -0.2, -0.1, 0.0]).repeat(3, 1)
    query_time = torch.rand((3, 5), generator=g) * 0.2 - 0.15
    with torch.no_grad():
        before, after = shallow(key_xy, key_conf, key_time, query_time), deep(key_xy, key_conf, key_time, query_time)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b)
    # The added layers are trainable: a few steps move them off the identity.
    assert train_cli(tiny_config, runs, "deep", "--resume", "--until", "5") == 0
    trained = torch.load(runs / "deep" / "last.pt", weights_only=False)["state_dict"]
    assert trained["encoder.2.ff.3.weight"].abs().sum() > 0

    with pytest.raises(ValueError, match="only the numbers of encoder and decoder layers"):
        train_cli(tiny_config, runs, "wider", "--init", str(runs / "shallow" / "model.pt"), "--set", "model.ff=128")


def test_init_may_make_the_model_shallower_from_evenly_spaced_layers(tiny_config, tmp_path):
    """A 3 + 3 file into a 2 + 1 model: encoder layers 0 and 2 of the file, its last decoder
    layer; every other weight as in the file; and the smaller model trains on from there."""
    from posetween.core.model import kept_layers
    assert kept_layers(7, 4) == [0, 2, 4, 6] and kept_layers(7, 5) == [0, 2, 3, 4, 6] and kept_layers(3, 3) == [0, 1, 2]
    torch.set_num_threads(1)
    runs = tmp_path / "runs"
    deep = ("--set", "model.encoder_layers=3", "--set", "model.decoder_layers=3")
    assert train_cli(tiny_config, runs, "deep", *deep) == 0
    shallow = ("--set", "model.encoder_layers=2", "--set", "model.decoder_layers=1")
    assert train_cli(tiny_config, runs, "small", "--init", str(runs / "deep" / "model.pt"), *shallow, "--until", "0") == 0
    file = torch.load(runs / "deep" / "model.pt", weights_only=True)["state_dict"]
    small = torch.load(runs / "small" / "last.pt", weights_only=False)["state_dict"]
    renamed = {"encoder.0.": "encoder.0.", "encoder.1.": "encoder.2.", "decoder.0.": "decoder.2."}
    assert not any(k.startswith(("encoder.2.", "decoder.1.")) for k in small)
    for key, value in small.items():
        prefix = next((p for p in renamed if key.startswith(p)), "")
        torch.testing.assert_close(value, file[renamed.get(prefix, "") + key[len(prefix):]])
    assert train_cli(tiny_config, runs, "small", "--resume", "--until", "3") == 0


def test_set_names_what_it_cannot_override(tiny_config, tmp_path):
    with pytest.raises(ValueError, match="unknown key 'layers'"):
        train_cli(tiny_config, tmp_path, "x", "--set", "model.layers=3")
    with pytest.raises(ValueError, match="no config section 'modle'"):
        train_cli(tiny_config, tmp_path, "x", "--set", "modle.ff=3")
    with pytest.raises(ValueError, match="expected section.key=value"):
        train_cli(tiny_config, tmp_path, "x", "--set", "model.ff")


def test_relative_loss_weighs_every_window_alike():
    """Two windows, linear 0.01 and 0.1 torso lengths off; the model adds 0.01 to the first.
    Plain MPJPE barely notices (the fast window rules it); the relative loss doubles the first
    window's share, and equals linear's error where the model is linear."""
    from posetween.training.train import mpjpe, relative_mpjpe
    target = torch.zeros(2, 3, NUM_JOINTS, 2)
    torso = torch.ones(2)
    linear = target.clone()
    linear[0, ..., 0], linear[1, ..., 0] = 0.01, 0.1
    worse = linear.clone()
    worse[0, ..., 0] += 0.01
    assert relative_mpjpe(linear, linear, target, torso, floor=0.0).item() == pytest.approx(0.055)
    plain_growth = (mpjpe(worse, target, torso) / mpjpe(linear, target, torso)).item()
    relative_growth = (relative_mpjpe(worse, linear, target, torso, floor=0.0)
                       / relative_mpjpe(linear, linear, target, torso, floor=0.0)).item()
    assert plain_growth == pytest.approx(1.0909, abs=1e-3)
    assert relative_growth == pytest.approx(1.5)
    # Joints linear cannot answer (seen in no keyframe) do not count.
    linear[:, :, 3] = float("nan")
    assert relative_mpjpe(linear, linear, target, torso, floor=0.0).item() == pytest.approx(0.055)


def test_tempo_plays_each_clip_faster_or_slower_within_its_range():
    """With max_tempo, a sample's clip is read at its capture times times a tempo of 1/2 to 2
    (some faster, some slower), inside the clip; off (1), at the capture times themselves."""
    from posetween.training.windows import AugmentConfig, MotionClips, sample_windows

    class Recorded(MotionClips):
        def at_times(self, clip, t):
            self.read = t
            return super().at_times(clip, t)

    walk = torch.linspace(0, 1, 300)[:, None, None] * torch.ones(300, NUM_JOINTS, 3)
    clips = Recorded.from_motions([("walk", 30.0, walk.numpy())])
    for max_tempo in (1.0, 2.0):
        g = torch.Generator().manual_seed(0)
        w = sample_windows(clips, 512, 4, AugmentConfig(max_tempo=max_tempo), g)
        times = torch.cat([w["key_time"].clamp(min=0), w["query_time"]], 1)
        ratio = (clips.read / times)[times > 0.05]
        assert clips.read.max() <= clips.duration()[0] + 1e-4
        if max_tempo == 1.0:
            assert torch.allclose(ratio, torch.ones_like(ratio))
        else:
            assert 0.5 - 1e-4 <= ratio.min() < 0.6 and 1.7 < ratio.max() <= 2.0 + 1e-4


def test_training_with_the_relative_loss_runs(tiny_config, tmp_path):
    assert main(["train", "--config", str(tiny_config), "--runs", str(tmp_path), "--name", "rel",
                 "--set", "optim.relative_loss_weight=0.5", "--steps", "10"]) == 0
    assert (tmp_path / "rel" / "model.pt").exists()


def test_resume_without_checkpoint_is_a_clear_error(tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_cli(tiny_config, tmp_path, "nothing", "--resume")


def test_unknown_config_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {learning_rate: 0.1}\n")
    with pytest.raises(ValueError, match="learning_rate"):
        train_cli(bad, tmp_path, "bad")


def test_torchrun_two_processes_on_cpu(tiny_config, tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "posetween.cli", "train", "--config", str(tiny_config), "--runs", str(runs),
           "--name", "ddp", "--steps", "6"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(runs / "ddp" / "last.pt", weights_only=False)
    assert ckpt["step"] == 6
    assert len(ckpt["rng"]["sampler"]) == 2   # each rank's random stream is kept for --resume


def test_eval_reports_all_methods_and_untrained_model_equals_linear(synthetic_h5, tmp_path):
    """An untrained model (zero-initialised heads) is exactly the linear-interpolation prior,
    so on clean input its errors must equal linear interpolation's: a check of the whole
    evaluation path. The trained model's numbers are in the model card."""
    torch.manual_seed(0)
    model_path = tmp_path / "untrained.pt"
    save_model(PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1)), model_path)
    out = tmp_path / "eval.json"
    assert main(["eval", "--data", str(synthetic_h5), "--split", "all", "--input-fps", "7.5", "15",
                 "--output-fps", "30", "--views", "1", "--model", str(model_path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"model", "linear", "cubic", "curve", "one_euro", "settings", "by_input_fps"}
    for method in ("model", "linear", "cubic", "curve", "one_euro"):
        assert set(result[method]) >= {"mpjpe", "pck@0.1", "accel", "mse", "mae", "max"}
    assert result["model"]["mpjpe"] == pytest.approx(result["linear"]["mpjpe"], rel=1e-3)
    # Smooth synthetic motion: the spline beats straight lines, and a higher rate helps.
    assert result["cubic"]["mpjpe"] < result["linear"]["mpjpe"]
    assert result["curve"]["mpjpe"] < result["linear"]["mpjpe"]
    assert result["by_input_fps"]["15"]["linear"]["mpjpe"] < result["linear"]["mpjpe"]
    assert result["settings"]["input_fps"] == 7.5 and result["settings"]["output_fps"] == 30
    report = out.with_suffix(".md")
    assert "## 7.5 fps in" in report.read_text() and out.with_suffix(".png").exists()


def test_eval_curve_blend_one_is_the_curve_and_is_recorded(synthetic_h5, tmp_path):
    torch.manual_seed(0)
    model_path = tmp_path / "untrained.pt"
    save_model(PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1)), model_path)
    out = tmp_path / "eval.json"
    common = ["eval", "--data", str(synthetic_h5), "--split", "all", "--output-fps", "30", "--views", "1",
              "--model", str(model_path), "--no-tune-one-euro", "--json", str(out)]
    assert main([*common, "--curve-blend", "1"]) == 0
    result = json.loads(out.read_text())
    assert result["model"]["mpjpe"] == pytest.approx(result["curve"]["mpjpe"], rel=1e-3)
    assert result["model"]["mpjpe"] != pytest.approx(result["linear"]["mpjpe"], rel=1e-2)
    assert result["settings"]["curve_blend"] == 1.0
    with pytest.raises(ValueError, match="--curve-blend 2.0: a share"):
        main([*common, "--curve-blend", "2"])


def test_set_inference_writes_the_curve_rule_into_an_older_file_and_keeps_its_weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "old.pt"
    save_model(PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1)), path, {"step": 123})
    ckpt = torch.load(path, weights_only=True)
    for key in ("curve_blend_per_octave", "curve_noise_low", "curve_noise_high"):   # as written before they existed
        del ckpt["config"][key]
    torch.save(ckpt, path)
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  window: 4\n  curve_blend: 0.25\n  curve_blend_per_octave: 0.3\n"
                      "  curve_noise_low: 0.02\n  curve_noise_high: 0.1\n")
    done = subprocess.run([sys.executable, str(SCRIPTS / "set_inference.py"), str(path), str(config)],
                          capture_output=True, text=True, check=True)
    assert "curve_blend_per_octave = 0.3" in done.stdout
    after = torch.load(path, weights_only=True)
    assert after["step"] == 123
    assert {k: after["config"][k] for k in ("curve_blend", "curve_blend_per_octave", "curve_noise_low",
                                            "curve_noise_high")} == {"curve_blend": 0.25, "curve_blend_per_octave": 0.3,
                                                                     "curve_noise_low": 0.02, "curve_noise_high": 0.1}
    assert after["config"]["encoder_layers"] == 1          # not an inference setting: kept
    assert all(torch.equal(after["state_dict"][k], v) for k, v in ckpt["state_dict"].items())
    assert load_model(path).cfg.curve_blend_per_octave == 0.3
    for model, message in ((tmp_path / "missing.pt", "not a readable model file"), (config, "not a readable model file")):
        bad = subprocess.run([sys.executable, str(SCRIPTS / "set_inference.py"), str(model), str(config)],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr


def test_eval_lookahead0_compares_constant_velocity_and_noisy(synthetic_h5, tmp_path):
    torch.manual_seed(0)
    model_path = tmp_path / "untrained.pt"
    save_model(PoseTween(ModelConfig(window=4, encoder_layers=1, decoder_layers=1)), model_path)
    out = tmp_path / "eval0.json"
    assert main(["eval", "--data", str(synthetic_h5), "--split", "all", "--input-fps", "7.5", "--views", "1",
                 "--lookahead", "0", "--noisy", "--model", str(model_path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"model", "constant_velocity", "linear", "one_euro"} <= set(result)
    assert result["settings"]["noisy"] and result["settings"]["lookahead"] == 0
    # The untrained model extrapolates like constant velocity (but from all joints together,
    # missing ones filled from the window), so it is close to, not equal to, the baseline.
    assert result["model"]["mpjpe"] == pytest.approx(result["constant_velocity"]["mpjpe"], rel=0.3)


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_gpu_data_pack_keeps_training_motions_to_half_a_millimetre(synthetic_h5, tmp_path):
    from posetween.training.build_data import load_motions
    from posetween.training.config import load_config
    from posetween.training.splits import split_of
    config = tmp_path / "split.yaml"
    config.write_text(yaml.safe_dump({"data": {"split": {"by": "take", "validation": 0.2, "test": 0.4}}}))
    packed, unpacked = tmp_path / "train.pack", tmp_path / "train.h5"
    for args in (["pack", "--data", str(synthetic_h5), "--config", str(config), "--out", str(packed)],
                 ["unpack", str(packed), "--out", str(unpacked)]):
        subprocess.run([sys.executable, str(SCRIPTS / "gpu_data.py"), *args], check=True, capture_output=True)
    split = load_config(config).data.split
    original = {(m.subset, m.name): m for m in load_motions(synthetic_h5)}
    kept = {k for k in original if split_of(*k, split) != "test"}
    assert 0 < len(kept) < len(original)     # some motions are test motions, and they stay behind
    back = {(m.subset, m.name): m for m in load_motions(unpacked)}
    assert set(back) == kept
    for k in kept:
        assert back[k].fps == original[k].fps
        assert np.abs(back[k].joints - original[k].joints).max() <= 0.00025 + 1e-6   # float32 rounding at a few metres
    foreign = tmp_path / "foreign.pack"
    foreign.write_text("not a pack")
    done = subprocess.run([sys.executable, str(SCRIPTS / "gpu_data.py"), "unpack", str(foreign), "--out",
                           str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert done.returncode == 2 and f"{foreign}: " in done.stderr and "Traceback" not in done.stderr


def test_gpu_training_script_sizes_its_runs_to_the_deadline(tiny_config, synthetic_h5, tmp_path):
    """scripts/train_gpu.sh end to end on the CPU: probe, runs sized to the time left, the best
    model of each copied out; the device tool runs the same script on a GPU."""
    packed = tmp_path / "train.pack"
    subprocess.run([sys.executable, str(SCRIPTS / "gpu_data.py"), "pack", "--data", str(synthetic_h5),
                    "--config", str(tiny_config), "--out", str(packed)], check=True, capture_output=True)
    out = tmp_path / "out"
    env = {**os.environ, "PY": sys.executable, "CONFIG": str(tiny_config), "PACK": str(packed),
           "NAMES": "scratch-4x4", "BATCH": "8", "PROBE": "8", "DEADLINE": "45", "OUT": str(out),
           "RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(SCRIPTS / "train_gpu.sh")], env=env, cwd=SCRIPTS.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "steps/s in the probe" in done.stdout
    model = torch.load(out / "scratch-4x4.pt", weights_only=True)
    assert model["config"]["encoder_layers"] == 4 and model["step"] > 0
    last = torch.load(tmp_path / "runs" / "scratch-4x4" / "last.pt", weights_only=True)
    assert last["step"] == last["config"]["optim"]["steps"]   # its schedule ran to the end


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_windows_are_drawn_on_the_clips_device(synthetic_h5):
    from posetween.training.build_data import load_motions
    from posetween.training.windows import AugmentConfig, MotionClips, sample_windows
    clips = MotionClips.from_motions([(m.name, m.fps, m.joints) for m in load_motions(synthetic_h5)]).to("cuda")
    w = sample_windows(clips, 64, 8, AugmentConfig(skeleton_share=0.5, occlusion=0.5, limb_swap=0.5),
                       torch.Generator("cuda").manual_seed(0))
    assert all(v.device.type == "cuda" for v in w.values())
