"""Export round trips: ONNX (dynamo) and TorchScript files that hold their metadata, keep a
dynamic batch, are single self-contained files, and match plain PyTorch.

One small random model; its float32 ONNX export (the slow part, 10-30 s) is cached by model
hash in a folder of this pytest session, which tests/test_backends.py shares."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from posetween.cli import main
from posetween.core.model import ModelConfig, PoseTween, save_model
from posetween.core.skeleton import JOINT_NAMES
from posetween.export import bench, exporters
from posetween.export.model_files import DEFAULT_QUERIES

FP32_TOL = 1e-4  # max abs error vs PyTorch, normalised units


def tiny_model(seed: int = 0) -> PoseTween:
    """A small random model with every parameter (the zero-initialised heads too) perturbed, so
    that parity is not trivially met by an identity network."""
    torch.manual_seed(seed)
    m = PoseTween(ModelConfig(d_model=32, heads=2, ff=64, encoder_layers=1, decoder_layers=1, dropout=0.0))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m.eval()


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    """A per-session export cache (shared by this module and test_backends.py)."""
    path = tmp_path_factory.getbasetemp() / "posetween-cache"
    old = os.environ.get("POSETWEEN_CACHE")
    os.environ["POSETWEEN_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("POSETWEEN_CACHE", None)
    else:
        os.environ["POSETWEEN_CACHE"] = old


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(tiny_model(), path, {"step": 123})
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, model_path, export_cache):
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert main(["export", "--model", str(model_path), "--format", "onnx", "--out", str(out)]) == 0
    return out


def windows(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    return bench.random_windows(n, 8, DEFAULT_QUERIES, seed=seed)


def reference(model_path, w) -> np.ndarray:
    from posetween.export.backends import TorchBackend
    return TorchBackend(model_path=model_path).run(*(w[k] for k in ("key_xy", "key_conf", "key_time", "query_time")))


def max_error(out, ref, w) -> float:
    return float(bench.normalised_error(out, ref, bench.window_scale(w)).max())


def check_metadata(md: dict, fmt: str, precision: str = "fp32") -> None:
    assert md["format"] == fmt
    assert md["precision"] == precision
    assert md["joint_layout"] == "posetween19"
    assert json.loads(md["joint_names"]) == list(JOINT_NAMES)
    assert md["window"] == "8" and md["queries"] == str(DEFAULT_QUERIES) and md["batch"] == "dynamic"
    assert "newest keyframe" in md["lookahead"]
    assert "scale" in md["normalisation"]
    cfg = json.loads(md["model_config"])
    assert cfg["d_model"] == 32 and cfg["encoder_layers"] == 1
    assert len(md["model_sha256"]) == 64
    assert json.loads(md["model_extra"]) == {"step": 123}
    assert md["posetween.version"]


def test_onnx_file_is_single_with_metadata_and_dynamic_batch(onnx_file):
    import onnx

    assert sorted(p.name for p in onnx_file.parent.iterdir()) == [onnx_file.name]  # no side files
    proto = onnx.load(str(onnx_file), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    for vi in list(proto.graph.input) + list(proto.graph.output):
        assert vi.type.tensor_type.shape.dim[0].dim_param, f"{vi.name}: batch dimension is not symbolic"
    assert [vi.name for vi in proto.graph.input] == list(exporters.INPUT_NAMES)
    assert [vi.name for vi in proto.graph.output][0] == "query_xy"
    md = exporters.read_metadata(onnx_file)
    check_metadata(md, "onnx")
    assert md["opset"] == "18"


def test_onnx_round_trip_batches(onnx_file, model_path):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    w = windows(64, seed=1)
    ref = reference(model_path, w)
    for b in (1, 3, 64):
        t_ref = w["key_time"][:b, -1:]
        feed = {"key_xy": w["key_xy"][:b], "key_conf": w["key_conf"][:b],
                "key_time": (w["key_time"][:b] - t_ref).astype(np.float32),
                "query_time": (w["query_time"][:b] - t_ref).astype(np.float32)}
        out, keys = sess.run(None, feed)
        assert out.shape == (b, DEFAULT_QUERIES, 19, 2) and keys.shape == (b, 8, 19, 2)
        assert np.isfinite(out).all()
        sub = {k: v[:b] for k, v in w.items()}
        assert max_error(out, ref[:b], sub) < FP32_TOL


def test_torchscript_round_trip(tmp_path, model_path):
    out = tmp_path / "tiny.ts"
    assert main(["export", "--model", str(model_path), "--format", "torchscript", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    module, md = exporters.load_torchscript(out)
    check_metadata(md, "torchscript")
    assert md["device"] == "cpu"
    assert exporters.read_metadata(out) == md
    w = windows(64, seed=2)
    ref = reference(model_path, w)
    for b in (1, 3, 64):
        t_ref = w["key_time"][:b, -1:]
        t = lambda a: torch.as_tensor(np.asarray(a, np.float32))
        with torch.no_grad():
            q, _ = module(t(w["key_xy"][:b]), t(w["key_conf"][:b]), t(w["key_time"][:b] - t_ref),
                          t(w["query_time"][:b] - t_ref))
        sub = {k: v[:b] for k, v in w.items()}
        assert q.shape == (b, DEFAULT_QUERIES, 19, 2)
        assert max_error(q.numpy(), ref[:b], sub) < FP32_TOL


def test_fp16_and_int8_exports(tmp_path, onnx_file, model_path, capsys):
    """Both convert the cached float32 export (seconds); their errors are measured, and bounded
    loosely here (this model is random; the trained model's numbers are in docs/runtime.md)."""
    import onnxruntime as ort

    w = windows(128, seed=3)
    ref = reference(model_path, w)
    t_ref = w["key_time"][:, -1:]
    feed = {"key_xy": w["key_xy"], "key_conf": w["key_conf"],
            "key_time": (w["key_time"] - t_ref).astype(np.float32),
            "query_time": (w["query_time"] - t_ref).astype(np.float32)}
    errors = {}
    for flag, precision, bound in (("--fp16", "fp16", 1e-2), ("--int8", "int8", 0.2)):
        out = tmp_path / f"tiny-{precision}.onnx"
        assert main(["export", "--model", str(model_path), "--out", str(out), flag]) == 0
        md = exporters.read_metadata(out)
        check_metadata(md, "onnx", precision)
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        inputs = {i.name: i.type for i in sess.get_inputs()}
        assert all(t == "tensor(float)" for t in inputs.values())      # float32 in and out
        assert sess.get_outputs()[0].type == "tensor(float)"
        q = sess.run(["query_xy"], feed)[0]
        errors[precision] = max_error(q, ref, w)
        assert errors[precision] < bound, errors
    assert errors["fp16"] > 0 and errors["int8"] > 0   # they did convert something
    print(f"max abs error, normalised units: {errors}")


def test_export_rejects_bad_combinations(tmp_path, model_path):
    with pytest.raises(SystemExit):
        main(["export", "--model", str(model_path), "--format", "torchscript", "--fp16",
              "--out", str(tmp_path / "x.ts")])
    with pytest.raises(SystemExit):
        main(["export", "--model", str(model_path), "--fp16", "--int8", "--out", str(tmp_path / "x.onnx")])


def test_shipped_onnx_is_the_export_of_the_shipped_model():
    """posetween/models/default.onnx must be re-exported whenever default.pt changes: else every
    `posetween serve` on a fresh machine exports afresh at start-up (tens of seconds)."""
    from importlib.resources import files

    from posetween.core.model import load_model
    models = files("posetween") / "models"
    if not (models / "default.pt").is_file():
        pytest.skip("no shipped default model")
    digest = exporters.model_hash(load_model())
    assert exporters.onnx_matches(models / "default.onnx", digest, "fp32", exporters.DEFAULT_QUERIES), (
        "default.onnx is stale: posetween export --out posetween/models/default.onnx")
