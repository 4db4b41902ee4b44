"""Runtime backends against plain PyTorch: random hard windows (missing joints, padding slots,
NaN coordinates, absolute Unix times, empty and one-keyframe windows) and real Bandai Namco
windows; the CUDA-unavailable path; the interface the streaming engine relies on."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from posetween.cli import main
from posetween.core.model import save_model
from posetween.export import backends, bench
from posetween.export.backends import create_backend
from posetween.export.model_files import DEFAULT_QUERIES

from test_export import FP32_TOL, export_cache, model_path, tiny_model  # noqa: F401 -- shared model and cache

KEYS = ("key_xy", "key_conf", "key_time", "query_time")


@pytest.fixture(scope="module")
def random_set():
    return bench.random_windows(256, 8, DEFAULT_QUERIES, seed=7)


@pytest.fixture(scope="module")
def bandai_set(shared_data):
    try:
        return bench.real_windows(8, DEFAULT_QUERIES, archive=shared_data / bench.BANDAI_ARCHIVE, members=2)
    except FileNotFoundError as e:
        pytest.skip(f"{e}: real-data parity needs ../shared/data/{bench.BANDAI_ARCHIVE}")


@pytest.fixture(scope="module")
def torch_backend(model_path):
    return create_backend("torch", model_path=model_path)


def max_error(backend, ref_backend, w) -> float:
    out = bench.run_chunked(backend, w)
    ref = bench.run_chunked(ref_backend, w)
    assert out.shape == ref.shape == (len(w["key_xy"]), DEFAULT_QUERIES, 19, 2)
    assert np.isfinite(out).all()
    return float(bench.normalised_error(out, ref, bench.window_scale(w)).max())


FP32_BACKENDS = [("onnxruntime", {}), ("onnxruntime", {"threads": 2, "spin": True}),
                 ("torchscript", {})]


@pytest.mark.parametrize("name,options", FP32_BACKENDS)
def test_fp32_parity_on_random_windows(name, options, model_path, export_cache, torch_backend, random_set):
    backend = create_backend(name, model_path=model_path, **options)
    assert backend.name == name and backend.window == 8
    assert max_error(backend, torch_backend, random_set) < FP32_TOL


@pytest.mark.parametrize("name", ["onnxruntime", "torchscript"])
def test_fp32_parity_on_bandai_windows(name, model_path, export_cache, torch_backend, bandai_set):
    backend = create_backend(name, model_path=model_path)
    assert max_error(backend, torch_backend, bandai_set) < FP32_TOL


def test_reduced_precision_errors_are_measured(model_path, export_cache, torch_backend, random_set, capsys):
    errors = {}
    for precision in ("int8", "fp16"):
        backend = create_backend("onnxruntime", model_path=model_path, precision=precision)
        assert backend.precision == precision
        errors[precision] = max_error(backend, torch_backend, random_set)
    print(f"max abs error vs PyTorch on random windows, normalised units (random model): {errors}")
    assert errors["fp16"] < 1e-2 and errors["int8"] < 0.2


def test_interface(model_path, export_cache, torch_backend, random_set):
    ort_backend = create_backend("onnxruntime", model_path=model_path)
    assert ort_backend.queries == DEFAULT_QUERIES and torch_backend.queries is None
    assert ort_backend.device.startswith("cpu") and torch_backend.device == "cpu"
    assert ort_backend.path.suffix == ".onnx" and ort_backend.metadata["model_sha256"]
    # An .onnx path directly, the same file.
    direct = create_backend("onnxruntime", model_path=ort_backend.path)
    w = {k: v[:5] for k, v in random_set.items()}
    np.testing.assert_array_equal(direct.run(*(w[k] for k in KEYS)), ort_backend.run(*(w[k] for k in KEYS)))
    # Absolute Unix times and the same times made relative give the same poses.
    rel = dict(w, key_time=w["key_time"] - w["key_time"][:, -1:], query_time=w["query_time"] - w["key_time"][:, -1:])
    assert w["key_time"].min() > 1e9
    np.testing.assert_allclose(ort_backend.run(*(w[k] for k in KEYS)), ort_backend.run(*(rel[k] for k in KEYS)),
                               atol=1e-3)
    # No ready stream: an empty batch.
    assert ort_backend.run(*(v[:0] for v in (w[k] for k in KEYS))).shape == (0, DEFAULT_QUERIES, 19, 2)
    # A fixed-Q graph refuses another query count, clearly.
    with pytest.raises(ValueError, match="--queries 4"):
        ort_backend.run(w["key_xy"], w["key_conf"], w["key_time"], w["query_time"][:, :4])
    with pytest.raises(ValueError, match="unknown backend"):
        create_backend("tensorrt", model_path=model_path)


def test_cuda_unavailable_warns_and_falls_back_to_cpu(model_path, export_cache, torch_backend, random_set,
                                                      caplog, monkeypatch):
    w = {k: v[:16] for k, v in random_set.items()}
    ref = torch_backend.run(*(w[k] for k in KEYS))
    # 1. onnxruntime without a CUDA provider (the CPU package): told so, runs on the CPU.
    monkeypatch.setattr(backends, "_cuda_problem", lambda: "onnxruntime 1.x has no CUDAExecutionProvider")
    with caplog.at_level(logging.WARNING, logger="posetween.backends"):
        b = create_backend("onnxruntime-cuda", model_path=model_path)
    assert any("CUDA asked for but not usable" in r.getMessage() for r in caplog.records)
    assert b.device.startswith("cpu") and b.precision == "fp32" and b.fallback is not None
    assert float(bench.normalised_error(b.run(*(w[k] for k in KEYS)), ref, bench.window_scale(w)).max()) < FP32_TOL
    # 2. The provider is listed but the session silently ends up on the CPU (onnxruntime's own
    # fallback, e.g. no GPU or no CUDA libraries): caught through session.get_providers().
    caplog.clear()
    monkeypatch.setattr(backends, "_cuda_problem", lambda: None)
    real = backends.OnnxRuntimeCudaBackend._make_session

    def cpu_only(self, graph, batch=None):
        import onnxruntime as ort
        return ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
    monkeypatch.setattr(backends.OnnxRuntimeCudaBackend, "_make_session", cpu_only)
    with caplog.at_level(logging.WARNING, logger="posetween.backends"):
        b = create_backend("onnxruntime-cuda", model_path=model_path, precision="fp32")
    assert any("did not take the CUDAExecutionProvider" in r.getMessage() for r in caplog.records)
    assert b.device.startswith("cpu")
    assert float(bench.normalised_error(b.run(*(w[k] for k in KEYS)), ref, bench.window_scale(w)).max()) < FP32_TOL
    monkeypatch.setattr(backends.OnnxRuntimeCudaBackend, "_make_session", real)


def test_auto_picks_onnxruntime(model_path, export_cache):
    b = create_backend("auto", model_path=model_path)
    expected = "onnxruntime-cuda" if backends.cuda_usable() else "onnxruntime"
    assert b.name == expected


def _backend_file_and_torch(model: str, cache) -> tuple[str, bool]:
    """(the .onnx an onnxruntime backend for ``model`` runs, whether torch got imported), in a
    fresh interpreter (this one has torch loaded already)."""
    code = ("import sys; from posetween.export.backends import create_backend; "
            f"b = create_backend('onnxruntime', model_path={model!r}); print(b.path); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "POSETWEEN_CACHE": str(cache)}).stdout.split()
    return out[-2], out[-1] == "True"


def test_a_checkpoints_own_export_beside_it_runs_without_torch(tmp_path, export_cache):
    """The service runs a checkpoint through its sibling .onnx without importing torch, but only
    when that .onnx was exported from these very bytes: a retrained checkpoint is exported anew."""
    ckpt = tmp_path / "m.pt"
    save_model(tiny_model(seed=3), ckpt, {"step": 1})
    assert main(["export", "--model", str(ckpt), "--out", str(tmp_path / "m.onnx")]) == 0
    assert _backend_file_and_torch(str(ckpt), export_cache) == (str(tmp_path / "m.onnx"), False)

    save_model(tiny_model(seed=4), ckpt, {"step": 2})          # new weights, the old export beside them
    used, torch_loaded = _backend_file_and_torch(str(ckpt), export_cache)
    assert torch_loaded and used != str(tmp_path / "m.onnx")


def test_the_shipped_onnx_is_the_shipped_checkpoints_export(export_cache):
    """Shipping a new default.pt without exporting default.onnx from it fails here (the service
    would export at every start, with torch)."""
    for name in ("default", "open"):
        used, torch_loaded = _backend_file_and_torch(name, export_cache)
        assert used.endswith(f"models/{name}.onnx") and not torch_loaded, name
