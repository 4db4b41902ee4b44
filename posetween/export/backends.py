"""Runtime backends: one small interface over plain PyTorch, TorchScript and onnxruntime.

A backend takes a batch of fixed-size windows (the streaming engine's ready streams) and
returns poses at the query times::

    backend = create_backend("auto")           # or "torch", "torchscript", "onnxruntime", ...
    poses = backend.run(key_xy, key_conf, key_time, query_time)

``key_xy (B, K, 19, 2)`` float (missing joints: conf 0, any value, NaN allowed), ``key_conf
(B, K, 19)``, ``key_time (B, K)`` seconds ascending with the newest keyframe in the last slot
(padding slots, conf 0, first), ``query_time (B, Q)`` seconds. Times may be absolute (Unix)
seconds: the backend makes them relative to the newest keyframe in float64 before the model's
float32, which would otherwise lose milliseconds. Returns ``(B, Q, 19, 2)`` float32 numpy.

Backends (``create_backend(name, model_path=None, **options)``):

==================  =========================================================================
``torch``           plain PyTorch eager, the reference. Options: ``device`` ("cpu", "cuda").
``torchscript``     a traced TorchScript module; ``model_path`` a .pt checkpoint (traced on
                    ``device`` at start) or an exported TorchScript file. Options: ``device``.
``onnxruntime``     onnxruntime on the CPU. ``model_path`` an .onnx file, or a .pt checkpoint
                    (or None: the default model) exported on the fly into a cache folder
                    (``$POSETWEEN_CACHE``, else ``~/.cache/posetween``) keyed by the model's hash.
                    Options: ``threads`` (intra-op threads, default 1), ``spin`` (default False:
                    no busy-waiting threads, for sharing cores with a pose estimator),
                    ``precision`` ("fp32" or "int8" when exporting), ``queries`` (default 5).
``onnxruntime-cuda`` onnxruntime's CUDAExecutionProvider with IO binding. Options:
                    ``device_id``, ``precision`` ("fp16" default, or "fp32"), ``cuda_graph``
                    (default True: the batch is padded to a bucket 1, 2, 4, ... and each bucket
                    replays a captured CUDA graph), ``queries``. Without a usable CUDA it logs a
                    warning and runs on the CPU (as ``onnxruntime``).
``auto``            ``onnxruntime-cuda`` when CUDA works, else ``onnxruntime`` on the CPU.
==================  =========================================================================

Every backend has ``.name``, ``.window`` (K), ``.queries`` (the fixed query count of its
exported graph, or None when any count works) and ``.device`` (a description).

torch is imported only by the backends and exports that need it: the runtime install
(``pip install posetween``: numpy, onnxruntime, pyzmq, msgpack) runs the onnxruntime backends
on the shipped ``models/default.onnx`` or any exported .onnx file.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posetween.core.skeleton import NUM_JOINTS
from posetween.export.model_files import (CHECKPOINT_FILE_SHA256, DEFAULT_QUERIES, TORCHSCRIPT_METADATA_FILE,
                                          file_sha256, open_onnx_session)
from posetween.shipped import MissingModelError, checkpoint_file

if TYPE_CHECKING:
    from posetween.core.model import PoseTween

log = logging.getLogger("posetween.backends")

BACKENDS = ("torch", "torchscript", "onnxruntime", "onnxruntime-cuda", "auto")


class Backend(ABC):
    name: str
    window: int
    queries: int | None = None
    device: str = "cpu"
    precision: str = "fp32"

    def run(self, key_xy, key_conf, key_time, query_time) -> np.ndarray:
        key_time = np.asarray(key_time, dtype=np.float64)
        query_time = np.asarray(query_time, dtype=np.float64)
        if key_time.ndim != 2 or key_time.shape[1] != self.window:
            raise ValueError(f"{self.name}: expected key_time of shape (B, {self.window}), got {key_time.shape}")
        if self.queries is not None and query_time.shape[1] != self.queries:
            raise ValueError(
                f"{self.name}: this graph was exported for {self.queries} queries per window, got "
                f"{query_time.shape[1]} (queries attend to each other, so they cannot be padded): "
                f"export with --queries {query_time.shape[1]} (or 0 for any count)")
        if len(key_time) == 0:
            return np.zeros((0, query_time.shape[1], NUM_JOINTS, 2), np.float32)
        t_ref = key_time[:, -1:]
        return self._run(np.ascontiguousarray(key_xy, np.float32),
                         np.ascontiguousarray(key_conf, np.float32),
                         (key_time - t_ref).astype(np.float32),
                         (query_time - t_ref).astype(np.float32))

    @abstractmethod
    def _run(self, key_xy: np.ndarray, key_conf: np.ndarray, key_time: np.ndarray,
             query_time: np.ndarray) -> np.ndarray:
        """Inputs as float32 with times relative to the newest keyframe."""

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} name={self.name} device={self.device!r} precision="
                f"{self.precision} window={self.window} queries={self.queries}>")


def _load_model(model_path):
    from posetween.core.model import load_model
    return load_model(model_path)


def _describe_torch_device(device) -> str:
    import torch
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


class TorchBackend(Backend):
    """Plain PyTorch eager: the reference every other backend is compared with."""

    name = "torch"

    def __init__(self, model: PoseTween | None = None, model_path=None, device: str = "cpu"):
        import torch
        self._device = torch.device(device)
        self.model = (model if model is not None else _load_model(model_path)).to(self._device).eval()
        self.device = _describe_torch_device(self._device)
        self.window = self.model.cfg.window

    def _run(self, key_xy, key_conf, key_time, query_time):
        return _run_torch_module(self.model, self._device, key_xy, key_conf, key_time, query_time)


def _run_torch_module(module, device, *arrays) -> np.ndarray:
    import torch
    with torch.inference_mode():
        out, _ = module(*(torch.from_numpy(a).to(device) for a in arrays))
    return out.float().cpu().numpy()


class TorchScriptBackend(Backend):
    """A traced TorchScript module (deprecated upstream; kept for LibTorch/C++ hosts)."""

    name = "torchscript"

    def __init__(self, model: PoseTween | None = None, model_path=None, device: str = "cpu",
                 queries: int | None = None):
        import torch

        from posetween.export import exporters

        self._device = torch.device(device)
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torchscript backend: device cuda asked for, but torch sees no CUDA")
        if model is None and model_path is not None and _is_torchscript_file(model_path):
            self.module, md = exporters.load_torchscript(model_path, map_location=self._device)
            traced_on = md.get("device", "cpu")
            if torch.device(traced_on).type != self._device.type:
                raise RuntimeError(
                    f"{model_path} was traced on {traced_on}; a trace bakes its device into some "
                    f"constants: export it again with --device {self._device.type}, or pass the .pt checkpoint")
            self.window = int(md.get("window", 8))
        else:
            m = model if model is not None else _load_model(model_path)
            self.module = exporters.trace_model(m, queries or DEFAULT_QUERIES, self._device)
            self.window = m.cfg.window
        self.device = _describe_torch_device(self._device)

    def _run(self, key_xy, key_conf, key_time, query_time):
        return _run_torch_module(self.module, self._device, key_xy, key_conf, key_time, query_time)


def _is_torchscript_file(path) -> bool:
    """An exported TorchScript archive (a zip holding code/ and our metadata), not a checkpoint."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or n.endswith("/code/__torch__.py") for n in names) or \
        any(n.endswith("extra/" + TORCHSCRIPT_METADATA_FILE) for n in names)


# ----------------------------------------------------------------------------- onnxruntime

_export_lock = threading.Lock()


def onnx_for(model_path=None, *, model: PoseTween | None = None, precision: str = "fp32",
             queries: int | None = DEFAULT_QUERIES) -> Path:
    """An .onnx file for a checkpoint (None: the default model) or a model object: ``model_path``
    itself when it is an .onnx file; a sibling ``<stem>.onnx`` (e.g. the shipped
    ``models/default.onnx``) when its metadata matches; else an export cached by model hash in
    ``$POSETWEEN_CACHE`` (default ``~/.cache/posetween``). Without torch, only .onnx files and
    the shipped one (as it is) can be had."""
    if model is None and model_path is not None and str(model_path).endswith(".onnx"):
        return Path(model_path)
    if model is None and model_path is None and importlib.util.find_spec("torch") is None:
        return _shipped_onnx_as_is(precision, queries)
    checkpoint = None if model is not None else checkpoint_file(model_path)
    if checkpoint is not None and model_path is not None and not checkpoint.is_file():
        raise MissingModelError(model_path)
    sibling = None if checkpoint is None else checkpoint.with_suffix(".onnx")
    if sibling is not None and _exported_from(sibling, checkpoint, precision, queries):
        return sibling
    if importlib.util.find_spec("torch") is None:
        raise ModuleNotFoundError(f"{model_path} is a PyTorch checkpoint: running it needs torch "
                                  f"(or pass an exported .onnx file)", name="torch")
    from posetween.export import exporters

    m = model if model is not None else _load_model(model_path)
    digest = exporters.model_hash(m)
    if sibling is not None and sibling.is_file() and exporters.onnx_matches(sibling, digest, precision, queries):
        return sibling
    path = exporters.cache_path(digest, precision, queries)
    with _export_lock:
        if not (path.is_file() and exporters.onnx_matches(path, digest, precision, queries)):
            log.info("exporting the model to ONNX (%s; once, cached in %s)", precision, path.parent)
            src = model if model is not None else model_path
            exporters.export_onnx(m if src is None else src, path, precision=precision, queries=queries)
    return path


def _exported_from(onnx_path: Path, checkpoint: Path, precision: str, queries: int | None) -> bool:
    """Whether ``onnx_path`` is an export of these very checkpoint bytes, in this precision and
    query count: told without torch."""
    if not (onnx_path.is_file() and checkpoint.is_file()):
        return False
    try:
        md = _onnx_metadata(onnx_path)
    except Exception:  # noqa: BLE001 -- unreadable: not a match
        return False
    return (md.get(CHECKPOINT_FILE_SHA256), md.get("precision"), md.get("queries")) == \
        (file_sha256(checkpoint), precision, _queries_label(queries))


def _onnx_metadata(path: Path) -> dict[str, str]:
    return _ort().InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map


def _queries_label(queries: int | None) -> str:
    """How an export's metadata names its query count."""
    return str(queries) if queries else "dynamic"


def _shipped_onnx() -> Path:
    from importlib.resources import files
    return Path(str(files("posetween") / "models" / "default.onnx"))


def _shipped_onnx_as_is(precision: str, queries: int | None) -> Path:
    """The shipped .onnx when it is what was asked for; another query count or precision would
    need an export, and exporting needs torch."""
    path = _shipped_onnx()
    md = _onnx_metadata(path)
    want = _queries_label(queries)
    if (md.get("queries"), md.get("precision")) != (want, precision):
        raise ModuleNotFoundError(
            f"the shipped {path.name} takes {md.get('queries')} queries per window in {md.get('precision')}; "
            f"{want} queries in {precision} need an export, which needs torch", name="torch")
    return path


def _ort():
    import onnxruntime as ort
    return ort


def _cpu_session_options(threads: int, spin: bool):
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
    so.log_severity_level = 3
    return so


class OnnxRuntimeBackend(Backend):
    """onnxruntime on the CPU."""

    name = "onnxruntime"

    def __init__(self, model: PoseTween | None = None, model_path=None, threads: int = 1,
                 spin: bool = False, precision: str = "fp32", queries: int | None = DEFAULT_QUERIES,
                 session_options=None):
        self.path = onnx_for(model_path, model=model, precision=precision, queries=queries)
        self.session = open_onnx_session(self.path, session_options or _cpu_session_options(threads, spin),
                                         providers=["CPUExecutionProvider"])
        self._init_from_session(f"cpu ({threads} thread{'s' if threads != 1 else ''})")

    def _init_from_session(self, device: str) -> None:
        md = self.session.get_modelmeta().custom_metadata_map
        shape = self.session.get_inputs()[0].shape            # [batch, K, 19, 2]
        self.window = int(md.get("window", shape[1]))
        q = self.session.get_inputs()[3].shape[1]
        self.queries = q if isinstance(q, int) else None
        self.precision = md.get("precision", "fp32")
        self.metadata = dict(md)
        self.device = device
        self._inputs = [i.name for i in self.session.get_inputs()]

    def _run(self, key_xy, key_conf, key_time, query_time):
        feed = dict(zip(self._inputs, (key_xy, key_conf, key_time, query_time)))
        return self.session.run(["query_xy"], feed)[0]


def _cuda_problem() -> str | None:
    """Why onnxruntime cannot use CUDA here, or None when the provider is available."""
    ort = _ort()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (providers: "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu instead of onnxruntime")
    return None


class OnnxRuntimeCudaBackend(Backend):
    """onnxruntime's CUDAExecutionProvider with IO binding and, for fixed shapes, CUDA graphs.

    With ``cuda_graph`` each call's batch is padded (with copies of its first window) to the
    next bucket of ``buckets``; each bucket has its own session whose inputs and output live
    at fixed device addresses, so the first call of a bucket captures a graph and the later
    ones replay it. Batches past the largest bucket run in chunks.
    """

    name = "onnxruntime-cuda"
    BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

    def __init__(self, model: PoseTween | None = None, model_path=None, device_id: int = 0,
                 precision: str = "fp16", cuda_graph: bool = True, queries: int | None = DEFAULT_QUERIES,
                 buckets=BUCKETS, threads: int = 1, spin: bool = False, _fallback: bool = True):
        ort = _ort()
        if queries is None and cuda_graph:
            log.info("onnxruntime-cuda: a dynamic query count rules CUDA graphs out")
            cuda_graph = False
        self.device_id = int(device_id)
        self.cuda_graph = bool(cuda_graph)
        self.buckets = tuple(sorted(buckets))
        problem = _cuda_problem()
        if problem is None and hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu >= 1.21 can load CUDA/cuDNN from the nvidia-* pip packages that the
            # CUDA build of torch brings (when torch is imported already, its copies come first).
            try:
                ort.preload_dlls()
            except Exception as e:  # noqa: BLE001 -- the session start below tells what is missing
                log.debug("onnxruntime.preload_dlls: %s", e)
        self.path = onnx_for(model_path, model=model, precision=precision if not problem else "fp32",
                             queries=queries)
        self._sessions: dict[int, tuple] = {}
        self.fallback = None
        if problem is None:
            try:
                sess = self._make_session(graph=False)
                if "CUDAExecutionProvider" not in sess.get_providers():
                    problem = (f"onnxruntime did not take the CUDAExecutionProvider (session providers: "
                               f"{sess.get_providers()}): CUDA/cuDNN libraries missing or no GPU?")
                else:
                    self.session = sess
            except Exception as e:  # noqa: BLE001 -- e.g. CUDA libraries missing
                problem = f"onnxruntime could not start a CUDA session: {type(e).__name__}: {e}"
        if problem is not None:
            if not _fallback:
                raise RuntimeError(problem)
            log.warning("CUDA asked for but not usable: %s. Going on with onnxruntime on the CPU.", problem)
            self.fallback = OnnxRuntimeBackend(model=model, model_path=model_path, threads=threads, spin=spin,
                                               precision="fp32" if precision == "fp16" else precision,
                                               queries=queries)
            self.session = self.fallback.session
            self.window, self.queries = self.fallback.window, self.fallback.queries
            self.precision, self.device = self.fallback.precision, self.fallback.device
            self.metadata = self.fallback.metadata
            self.cuda_graph = False
            return
        md = self.session.get_modelmeta().custom_metadata_map
        self.window = int(md.get("window", self.session.get_inputs()[0].shape[1]))
        q = self.session.get_inputs()[3].shape[1]
        self.queries = q if isinstance(q, int) else None
        self.precision = md.get("precision", precision)
        self.metadata = dict(md)
        self._inputs = [i.name for i in self.session.get_inputs()]
        try:
            import torch
            name = torch.cuda.get_device_name(self.device_id) if torch.cuda.is_available() else "GPU"
        except Exception:  # noqa: BLE001 -- no torch, or it sees another GPU set: the name is cosmetic
            name = "GPU"
        self.device = f"cuda:{self.device_id} ({name}){', CUDA graphs' if self.cuda_graph else ''}"

    def _make_session(self, graph: bool, batch: int | None = None):
        ort = _ort()
        so = ort.SessionOptions()
        if batch is not None:   # a static batch: shape computations fold away
            so.add_free_dimension_override_by_name("batch", int(batch))
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        cuda = {"device_id": str(self.device_id), "do_copy_in_default_stream": "1",
                "cudnn_conv_algo_search": "HEURISTIC"}
        if graph:
            cuda["enable_cuda_graph"] = "1"
        return open_onnx_session(self.path, so, providers=[("CUDAExecutionProvider", cuda), "CPUExecutionProvider"])

    def _run(self, key_xy, key_conf, key_time, query_time):
        if self.fallback is not None:
            return self.fallback._run(key_xy, key_conf, key_time, query_time)
        arrays = (key_xy, key_conf, key_time, query_time)
        if self.cuda_graph:
            B = len(key_xy)
            top = self.buckets[-1]
            if B > top:
                return np.concatenate([self._run(*(a[i:i + top] for a in arrays)) for i in range(0, B, top)])
            bucket = next(b for b in self.buckets if b >= B)
            if bucket != B:
                pad = lambda a: np.concatenate([a, np.repeat(a[:1], bucket - B, 0)])
                arrays = tuple(pad(a) for a in arrays)
            try:
                return self._run_graph(bucket, arrays)[:B]
            except Exception as e:  # noqa: BLE001 -- e.g. a node the CUDA provider left on the CPU
                log.warning("onnxruntime-cuda: CUDA graphs failed (%s: %s); going on without them",
                            type(e).__name__, e)
                self.cuda_graph = False
                self._sessions.clear()
                self.device = self.device.replace(", CUDA graphs", "")
                arrays = tuple(a[:B] for a in arrays)
        io = self.session.io_binding()
        for name, a in zip(self._inputs, arrays):
            io.bind_cpu_input(name, a)
        io.bind_output("query_xy", "cuda", self.device_id)
        self.session.run_with_iobinding(io)
        return io.copy_outputs_to_cpu()[0]

    def _run_graph(self, bucket: int, arrays) -> np.ndarray:
        ort = _ort()
        if bucket not in self._sessions:
            sess = self._make_session(graph=True, batch=bucket)
            ins = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), "cuda", self.device_id)
                   for a in arrays]
            Q = arrays[3].shape[1]
            out = ort.OrtValue.ortvalue_from_shape_and_type((bucket, Q, NUM_JOINTS, 2), np.float32,
                                                            "cuda", self.device_id)
            io = sess.io_binding()
            for name, v in zip(self._inputs, ins):
                io.bind_ortvalue_input(name, v)
            io.bind_ortvalue_output("query_xy", out)
            # The other output must have a fixed place too for a replayable graph.
            other = ort.OrtValue.ortvalue_from_shape_and_type((bucket, self.window, NUM_JOINTS, 2),
                                                              np.float32, "cuda", self.device_id)
            io.bind_ortvalue_output("key_denoised", other)
            self._sessions[bucket] = (sess, io, ins, out, other)
            sess.run_with_iobinding(io)   # the first run captures the graph
        sess, io, ins, out, _ = self._sessions[bucket]
        for v, a in zip(ins, arrays):
            v.update_inplace(np.ascontiguousarray(a))
        sess.run_with_iobinding(io)
        return out.numpy()


# ----------------------------------------------------------------------------- factory

def cuda_usable() -> bool:
    """True when onnxruntime has a CUDA provider and a CUDA session starts on it."""
    return _cuda_problem() is None


def create_backend(name: str = "auto", model_path=None, **options) -> Backend:
    """A backend by name (see the module's docstring for names and options). ``model`` (a
    PoseTween object) may be given in options instead of ``model_path``; a shipped model's name
    (``default``, ``open``) is that model."""
    from posetween.shipped import resolve_model
    model_path = resolve_model(model_path)
    if name == "torch":
        return TorchBackend(model_path=model_path, **options)
    if name == "torchscript":
        return TorchScriptBackend(model_path=model_path, **options)
    if name in ("onnxruntime", "onnxruntime-cpu", "ort"):
        return OnnxRuntimeBackend(model_path=model_path, **options)
    if name in ("onnxruntime-cuda", "ort-cuda"):
        return OnnxRuntimeCudaBackend(model_path=model_path, **options)
    if name == "auto":
        if cuda_usable():
            try:
                return OnnxRuntimeCudaBackend(model_path=model_path, _fallback=False, **options)
            except Exception as e:  # noqa: BLE001
                log.info("auto: CUDA onnxruntime not usable (%s); onnxruntime on the CPU", e)
        cpu_options = {k: v for k, v in options.items() if k in ("model", "threads", "spin", "queries")}
        if options.get("precision") in ("fp32", "int8"):
            cpu_options["precision"] = options["precision"]
        return OnnxRuntimeBackend(model_path=model_path, **cpu_options)
    raise ValueError(f"unknown backend {name!r} (one of {', '.join(BACKENDS)})")
