"""Export the motion model to ONNX (preferred) or TorchScript, with its metadata inside the file.

Both formats take the model's whole forward pass, normalisation included: keypoints in the
caller's units (pixels) go in, keypoints in the same units come out::

    inputs   key_xy (B, K, 19, 2) float32, key_conf (B, K, 19) float32,
             key_time (B, K) float32 s, query_time (B, Q) float32 s
    outputs  query_xy (B, Q, 19, 2) float32, key_denoised (B, K, 19, 2) float32

The batch B is dynamic; the window K is the model's; the query count Q is fixed at export
(``queries``, default 5: the streaming engine asks 5 evenly spaced times per interval), or
dynamic with ``queries=0``. Queries attend to each other, so a call's outputs depend on the
whole set of query times: a fixed-Q file cannot serve another Q by padding.

Precisions (ONNX only):

* ``fp32``: the reference; matches PyTorch to ~1e-6 in normalised units.
* ``fp16``: for GPUs. The transformer (embeddings, encoder, decoder, heads) runs in float16;
  the normalisation, the time encoding's phases, the interpolation prior and the
  de-normalisation stay in float32, as do the inputs and outputs (pixel sums and 1e9 sentinels
  overflow float16, and a float16 phase ``t * 2 pi / 20 ms`` would be off by a tenth of a
  radian). A region conversion with one Cast at each crossing (node-wise converters such as
  onnxconverter-common's store every tensor in float16 and overflow).
* ``int8``: for CPUs. onnxruntime dynamic quantisation of the weight MatMuls of the encoder and
  decoder layers only (per-channel QUInt8 weights, activations quantised per call), the
  embeddings, heads and attention products left in float32 (see :func:`convert_int8`).

Metadata (ONNX ``metadata_props``; TorchScript ``_extra_files["posetween_metadata.json"]``),
all strings: see :func:`build_metadata`; an ONNX export of a checkpoint file also carries
``checkpoint_file_sha256``, which lets the runtime use it for that file without torch
(``backends.onnx_for``). Read back with :func:`read_metadata`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

import posetween
from posetween.core.model import PoseTween, load_model
from posetween.core.skeleton import JOINT_NAMES, NUM_JOINTS
from posetween.export.model_files import (CHECKPOINT_FILE_SHA256, DEFAULT_OPSET, DEFAULT_QUERIES,  # noqa: F401
                                          FORMAT_VERSION, INPUT_NAMES, OUTPUT_NAMES, PRECISIONS,
                                          TORCHSCRIPT_METADATA_FILE, file_sha256)
from posetween.shipped import checkpoint_file

log = logging.getLogger("posetween.export")



def fp16_modules(model: PoseTween) -> tuple[str, ...]:
    """The model's modules that --fp16 runs in float16: every top-level child (embeddings,
    encoder, decoder, norms, heads) but the time encoding, whose phases need float32. The
    functional code between them (normalisation, interpolation weights and prior, kernels,
    de-normalisation) stays float32."""
    from posetween.core.model import TimeEncoding
    return tuple(n for n, c in model.named_children() if not isinstance(c, TimeEncoding))


def int8_modules(model: PoseTween) -> tuple[str, ...]:
    """The modules whose weight MatMuls --int8 quantises: the encoder and decoder layers (the
    first layers, embeddings, and the last ones, heads, stay float)."""
    return tuple(n for n, c in model.named_children() if isinstance(c, torch.nn.ModuleList))


LOOKAHEAD_SEMANTICS = (
    "The model has no lookahead parameter: only where the query times lie matters. Times are "
    "seconds; the backends make them relative to the newest keyframe (the last slot). Query "
    "times at or before the newest keyframe interpolate between keyframes (lookahead >= 1: the "
    "engine waits for that many keyframes past the interval it fills); query times after it "
    "extrapolate (lookahead 0: prediction, constant velocity prior capped at one interval).")
NORMALISATION = (
    "Inside the graph: keypoints in the caller's units (pixels) in and out. Missing joints "
    "(conf 0 or non-finite xy) are ignored; centre = mean of all seen joints of the window; "
    "scale = mean torso length over the keyframes showing one: neck to mid-hip where both are "
    "seen, else the mean of the shoulder-to-hip lengths of the sides seen (else 0.3 x the mean "
    "bounding-box extent, else 1); times relative to the newest valid keyframe. Errors in "
    "normalised units = pixel error / scale.")
INPUTS_DOC = {
    "key_xy": "(B, K, 19, 2) float32, caller units; missing joints any value, NaN allowed",
    "key_conf": "(B, K, 19) float32, 0 = missing",
    "key_time": "(B, K) float32 seconds ascending, newest keyframe last, padding slots (conf 0) first",
    "query_time": "(B, Q) float32 seconds",
}
OUTPUTS_DOC = {
    "query_xy": "(B, Q, 19, 2) float32, poses at the query times, caller units",
    "key_denoised": "(B, K, 19, 2) float32, denoised and completed keyframes, caller units",
}


# ----------------------------------------------------------------------------- model identity

def model_hash(model: PoseTween) -> str:
    """sha256 of the model's config and weights (independent of how the file was written)."""
    h = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _checkpoint_extra(path) -> dict:
    """JSON-able scalar extras saved beside the weights (e.g. the training step)."""
    if path is None:
        return {}
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 -- metadata only
        return {}
    out = {}
    for k, v in ckpt.items():
        if k in ("config", "state_dict"):
            continue
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            continue
    return out


def resolve_model(model: PoseTween | str | os.PathLike | None) -> tuple[PoseTween, str | None]:
    """A model object, a checkpoint path, or None (the shipped default) -> (model, source)."""
    if isinstance(model, PoseTween):
        return model.eval(), None
    m = load_model(model)
    source = str(model) if model is not None else "posetween/models/default.pt"
    return m, source


def build_metadata(model: PoseTween, *, fmt: str, precision: str = "fp32",
                   queries: int | None = DEFAULT_QUERIES, source: str | None = None,
                   extra: dict | None = None, opset: int | None = None,
                   device: str | None = None) -> dict[str, str]:
    md = {
        "posetween.format_version": FORMAT_VERSION,
        "posetween.version": posetween.__version__,
        "format": fmt,
        "precision": precision,
        "joint_layout": "posetween19",
        "joint_names": json.dumps(list(JOINT_NAMES)),
        "num_joints": str(NUM_JOINTS),
        "window": str(model.cfg.window),
        "queries": str(queries) if queries else "dynamic",
        "batch": "dynamic",
        "inputs": json.dumps(INPUTS_DOC),
        "outputs": json.dumps(OUTPUTS_DOC),
        "lookahead": LOOKAHEAD_SEMANTICS,
        "normalisation": NORMALISATION,
        "model_config": json.dumps(model.cfg.to_dict(), sort_keys=True),
        "model_sha256": model_hash(model),
        "model_source": source or "",
        "model_extra": json.dumps(extra or {}, sort_keys=True),
        "torch_version": torch.__version__,
    }
    if opset is not None:
        md["opset"] = str(opset)
    if device is not None:
        md["device"] = device
    return md


def example_inputs(batch: int = 2, window: int = 8, queries: int = DEFAULT_QUERIES,
                   device="cpu", seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Plausible inputs (a person of ~100 px torso around (640, 360))."""
    g = torch.Generator().manual_seed(seed)
    key_xy = 640 + 100 * torch.randn(batch, window, NUM_JOINTS, 2, generator=g)
    key_conf = torch.rand(batch, window, NUM_JOINTS, generator=g)
    key_time = torch.linspace(-(window - 1) / 7.5, 0, window).repeat(batch, 1)
    query_time = torch.linspace(-1 / 7.5, 0, queries + 1)[1:].repeat(batch, 1)
    return tuple(t.to(device) for t in (key_xy, key_conf, key_time, query_time))


# ----------------------------------------------------------------------------- ONNX

@contextlib.contextmanager
def _quiet_loggers(*names: str, level: int = logging.ERROR):
    """The exporter and the quantiser log a line per node or tensor (some to the root logger)."""
    loggers = [logging.getLogger(n) for n in ("", "onnx_ir", "onnxscript", "torch.onnx", *names)]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), level))
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old):
            lg.setLevel(lv)


def _dim_of(value_info, axis: int):
    d = value_info.type.tensor_type.shape.dim[axis]
    return d.dim_param if d.dim_param else d.dim_value


SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def _strip_node_metadata(proto) -> None:
    """The exporter tags every node with its stack trace, FX node and module path: keep only
    the module path (what picks the nodes to convert to fp16/int8 later), drop the rest (half
    the file, and local paths)."""
    def strip(graph):
        for node in graph.node:
            keep = [(p.key, p.value) for p in node.metadata_props if p.key == SCOPES_KEY]
            del node.metadata_props[:]
            for k, v in keep:
                q = node.metadata_props.add()
                q.key, q.value = k, v
            for attr in node.attribute:
                if attr.HasField("g"):
                    strip(attr.g)
                for sub in attr.graphs:
                    strip(sub)
    strip(proto.graph)


def _node_modules(node) -> tuple[str, ...]:
    """The module path of an exported node, e.g. ('', 'encoder.0', 'encoder.0.attn', 'linear')."""
    for p in node.metadata_props:
        if p.key == SCOPES_KEY:
            try:
                return tuple(json.loads(p.value.replace("'", '"')))
            except json.JSONDecodeError:
                return ()
    return ()


def _in_modules(node, modules: tuple[str, ...]) -> bool:
    scopes = _node_modules(node)
    return any(s == m or s.startswith(m + ".") for s in scopes for m in modules)


def export_onnx_fp32(model: PoseTween, queries: int | None = DEFAULT_QUERIES,
                     opset: int = DEFAULT_OPSET):
    """torch.onnx.export(dynamo=True) with a dynamic batch: the ONNX ModelProto, node metadata
    kept (for the precision conversions)."""
    import onnx

    if opset < 18:
        raise ValueError("opset must be >= 18")
    model = model.eval().cpu()
    K = model.cfg.window
    # An example batch of 2 (not 1: a batch of 1 would be specialised and stay fixed).
    args = example_inputs(2, K, queries or DEFAULT_QUERIES)
    batch = torch.export.Dim("batch")
    if queries:
        shapes = ({0: batch}, {0: batch}, {0: batch}, {0: batch})
    else:
        shapes = ({0: batch}, {0: batch}, {0: batch}, {0: batch, 1: torch.export.Dim("queries")})
    with warnings.catch_warnings(), _quiet_loggers():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            program = torch.onnx.export(
                model, args, dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                verbose=False, optimize=True)
    proto = program.model_proto
    for vi in list(proto.graph.input) + list(proto.graph.output):
        if not isinstance(_dim_of(vi, 0), str):
            raise RuntimeError(f"exported graph has a fixed batch dimension on {vi.name}: "
                               f"{_dim_of(vi, 0)}")
    onnx.checker.check_model(proto)
    return proto


def convert_fp16(proto, modules: tuple[str, ...]):
    """float16 transformer, float32 normalisation/prior/time phases and inputs/outputs.

    A region conversion: every node of the transformer's modules computes in float16, every
    other node in float32, with one Cast wherever a tensor crosses between the two (node-wise
    converters such as onnxconverter-common's store every tensor in float16, which overflows
    the pixel sums of the normalisation)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    proto = onnx.shape_inference.infer_shapes(proto)
    g = proto.graph
    elem = {vi.name: vi.type.tensor_type.elem_type
            for vi in list(g.value_info) + list(g.input) + list(g.output)}
    inits = {i.name: i for i in g.initializer}
    for name, t in inits.items():
        elem[name] = t.data_type
    # (by position: protobuf may hand out a new wrapper object, with a new id, on each access)
    half_nodes = {i for i, n in enumerate(g.node) if _in_modules(n, modules)}
    if not half_nodes:
        raise RuntimeError("fp16 conversion: no node carries its module path (was the node metadata stripped?)")
    for i, n in enumerate(g.node):
        if i in half_nodes and any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                       for a in n.attribute):
            raise RuntimeError(f"fp16 conversion: node {n.name} ({n.op_type}) has a subgraph")

    half_values: set[str] = set()        # float tensors that hold float16
    renamed: dict[tuple[str, int], str] = {}
    new_inits = []
    nodes = []

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in renamed:
            if to == HALF and name in inits:   # a float16 copy of a weight, no run-time Cast
                arr = numpy_helper.to_array(inits[name]).astype(np.float32)
                arr = np.clip(arr, -65504, 65504).astype(np.float16)
                new_inits.append(numpy_helper.from_array(arr, name + "__fp16"))
                renamed[key] = name + "__fp16"
            else:
                out = name + ("__to_fp16" if to == HALF else "__to_fp32")
                nodes.append(helper.make_node("Cast", [name], [out], to=to, name=out + "_cast"))
                renamed[key] = out
        return renamed[key]

    for k, n in enumerate(g.node):
        half = k in half_nodes
        for i, x in enumerate(n.input):
            if not x:
                continue
            if half and elem.get(x) == FLOAT and x not in half_values:
                n.input[i] = cast(x, HALF)
            elif not half and x in half_values:
                n.input[i] = cast(x, FLOAT)
        if half:
            for a in n.attribute:
                if n.op_type == "Cast" and a.name == "to" and a.i == FLOAT:
                    a.i = HALF
                if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == FLOAT:
                    arr = np.clip(numpy_helper.to_array(a.t), -65504, 65504).astype(np.float16)
                    a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
            for o in n.output:
                if elem.get(o) == FLOAT:
                    half_values.add(o)
        nodes.append(n)
    # Graph outputs stay float32.
    for out in g.output:
        if out.name in half_values:
            for n in nodes:
                for i, o in enumerate(n.output):
                    if o == out.name:
                        n.output[i] = o + "__fp16"
            for n in nodes:
                for i, x in enumerate(n.input):
                    if x == out.name:
                        n.input[i] = out.name + "__fp16"
            nodes.append(helper.make_node("Cast", [out.name + "__fp16"], [out.name], to=FLOAT,
                                          name=out.name + "__to_fp32_cast"))
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.value_info[:]   # stale types: let the runtime infer them
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    del proto.graph.value_info[:]
    onnx.checker.check_model(proto)
    return proto


def convert_int8(proto, out_path: Path, modules: tuple[str, ...]) -> None:
    """Dynamic quantisation of the encoder/decoder weight MatMuls: per-channel **QUInt8**
    weights (activations quantised per call to uint8). Signed QInt8 weights, onnxruntime's
    default, go through the u8s8 kernels, whose 16-bit pair sums saturate on AVX2 CPUs without
    VNNI: on this model that gave errors up to 0.09 torso lengths (QUInt8: 0.0025, measured on
    Bandai windows); ``reduce_range`` fixes it too, less well. The embeddings (first layer),
    heads (last layers) and activation-by-activation products (attention, kernels) stay float."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = {i.name for i in proto.graph.initializer}
    include = [n.name for n in proto.graph.node if n.op_type == "MatMul" and _in_modules(n, modules)
               and n.input[1] in weights]
    exclude = [n.name for n in proto.graph.node if n.op_type == "MatMul" and n.name not in include]
    with _quiet_loggers(), tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save(proto, src)
        quantize_dynamic(src, out_path, weight_type=QuantType.QUInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude,
                         extra_options={"MatMulConstBOnly": True})


def _save_onnx(proto, path: Path, metadata: dict[str, str]) -> None:
    import onnx

    _strip_node_metadata(proto)
    del proto.metadata_props[:]
    for k, v in metadata.items():
        p = proto.metadata_props.add()
        p.key, p.value = k, v
    proto.doc_string = "posetween motion model: " + json.dumps(OUTPUTS_DOC)
    proto.model_version = int(FORMAT_VERSION)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One self-contained file: all weights inside (the model is a few MB, far from 2 GB).
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    onnx.save_model(proto, str(tmp), save_as_external_data=False)
    os.replace(tmp, path)


def cache_dir() -> Path:
    """Where exports made on the fly are kept: $POSETWEEN_CACHE, else ~/.cache/posetween."""
    return Path(os.environ.get("POSETWEEN_CACHE") or Path.home() / ".cache" / "posetween")


def cache_path(digest: str, precision: str, queries: int | None, opset: int = DEFAULT_OPSET) -> Path:
    q = str(queries) if queries else "dynamic"
    return cache_dir() / "onnx" / f"{digest[:16]}-q{q}-{precision}-opset{opset}.onnx"


def onnx_matches(path: Path, digest: str, precision: str, queries: int | None,
                 opset: int | None = None) -> bool:
    """Whether ``path`` is an export of the model with this hash, precision and query count."""
    try:
        md = read_onnx_metadata(path)
    except Exception:  # noqa: BLE001 -- unreadable: no match
        return False
    return (md.get("model_sha256") == digest and md.get("precision") == precision
            and md.get("queries") == (str(queries) if queries else "dynamic")
            and md.get("posetween.format_version") == FORMAT_VERSION
            and (opset is None or md.get("opset") == str(opset)))


def _no_progress(stage: str) -> None:
    """The default ``progress`` callback of the exports: says nothing."""


def fp32_proto(model: PoseTween, queries: int | None = DEFAULT_QUERIES, opset: int = DEFAULT_OPSET,
               use_cache: bool = True, source: str | None = None, extra: dict | None = None,
               progress=_no_progress):
    """The float32 ONNX of ``model`` (node module paths kept, for the conversions): from the
    cache when this model was exported before (a torch.onnx dynamo export takes 10-60 s), else
    exported and, with ``use_cache``, stored there as a finished fp32 file."""
    import onnx

    digest = model_hash(model)
    path = cache_path(digest, "fp32", queries, opset)
    if use_cache and path.is_file() and onnx_matches(path, digest, "fp32", queries, opset):
        log.debug("reusing the cached export %s", path)
        return onnx.load(str(path))
    progress("exporting with torch.onnx (the slow part, 10-60 s; cached for next time)")
    proto = export_onnx_fp32(model, queries, opset)
    if use_cache:
        try:
            md = build_metadata(model, fmt="onnx", precision="fp32", queries=queries, source=source,
                                extra=extra, opset=opset)
            cached = onnx.ModelProto()
            cached.CopyFrom(proto)
            _save_onnx(cached, path, md)
        except OSError as e:
            log.warning("could not cache the export in %s: %s", path, e)
    return proto


def export_onnx(model: PoseTween | str | os.PathLike | None, out, *, precision: str = "fp32",
                queries: int | None = DEFAULT_QUERIES, opset: int = DEFAULT_OPSET,
                use_cache: bool = True, progress=_no_progress) -> Path:
    """Export ``model`` (object, checkpoint path, or None: the shipped default) to one .onnx
    file with metadata. The float32 export is cached by model hash (see :func:`fp32_proto`),
    so exporting the same model again, or in another precision, takes a second. ``progress``
    is called with the name of each stage as it starts."""
    import onnx

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    out = Path(out)
    extra = _checkpoint_extra(model) if not isinstance(model, PoseTween) and model is not None else {}
    progress("loading the model")
    m, source = resolve_model(model)
    proto = fp32_proto(m, queries, opset, use_cache, source, extra, progress)
    metadata = build_metadata(m, fmt="onnx", precision=precision, queries=queries, source=source,
                              extra=extra, opset=opset)
    if not isinstance(model, PoseTween):
        metadata[CHECKPOINT_FILE_SHA256] = file_sha256(checkpoint_file(model))
    if precision == "fp16":
        progress("converting to float16")
        proto = convert_fp16(proto, fp16_modules(m))
    elif precision == "int8":
        progress("quantising to int8")
        with tempfile.TemporaryDirectory() as tmp:
            q = Path(tmp) / "int8.onnx"
            convert_int8(proto, q, int8_modules(m))
            proto = onnx.load(str(q))
    progress("writing")
    _save_onnx(proto, out, metadata)
    return out


def read_onnx_metadata(path) -> dict[str, str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


# ----------------------------------------------------------------------------- TorchScript

def trace_model(model: PoseTween, queries: int = DEFAULT_QUERIES, device="cpu"):
    """torch.jit.trace on ``device`` (the trace bakes the device of a few constants in, so a
    CUDA module must be traced on CUDA). Batch and query count stay dynamic in the trace."""
    model = model.eval().to(device)
    args = example_inputs(2, model.cfg.window, queries or DEFAULT_QUERIES, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation, and python floats of fixed sizes
        with torch.no_grad():
            return torch.jit.trace(model, args, check_trace=False)


def export_torchscript(model: PoseTween | str | os.PathLike | None, out, *,
                       queries: int | None = DEFAULT_QUERIES, device: str = "cpu", progress=_no_progress) -> Path:
    out = Path(out)
    extra = _checkpoint_extra(model) if not isinstance(model, PoseTween) and model is not None else {}
    progress("loading the model")
    m, source = resolve_model(model)
    progress("tracing")
    traced = trace_model(m, queries or DEFAULT_QUERIES, device)
    metadata = build_metadata(m, fmt="torchscript", precision="fp32", queries=queries,
                              source=source, extra=extra, device=str(torch.device(device)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_METADATA_FILE: json.dumps(metadata)})
    os.replace(tmp, out)
    return out


def load_torchscript(path, map_location="cpu"):
    """-> (module, metadata)."""
    files = {TORCHSCRIPT_METADATA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=files)
    raw = files[TORCHSCRIPT_METADATA_FILE]
    metadata = json.loads(raw.decode() if isinstance(raw, bytes) else raw) if raw else {}
    return module.eval(), metadata


def read_metadata(path) -> dict[str, str]:
    """Metadata of an exported .onnx or TorchScript file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):  # TorchScript is a zip archive
        return load_torchscript(path)[1]
    return read_onnx_metadata(path)


def export(model, out, fmt: str = "onnx", *, precision: str = "fp32",
           queries: int | None = DEFAULT_QUERIES, device: str = "cpu",
           opset: int = DEFAULT_OPSET, use_cache: bool = True, progress=_no_progress) -> Path:
    if fmt == "onnx":
        return export_onnx(model, out, precision=precision, queries=queries, opset=opset,
                           use_cache=use_cache, progress=progress)
    if fmt == "torchscript":
        if precision != "fp32":
            raise ValueError("--fp16 and --int8 are for ONNX only (TorchScript exports float32)")
        return export_torchscript(model, out, queries=queries, device=device, progress=progress)
    raise ValueError(f"unknown format {fmt!r} (onnx or torchscript)")


__all__ = ["export", "export_onnx", "export_onnx_fp32", "export_torchscript", "read_metadata",
           "load_torchscript", "trace_model", "build_metadata", "model_hash", "example_inputs"]

