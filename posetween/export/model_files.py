"""What makes a file a posetween model, without importing torch or onnx (the runtime install
has neither): the names and versions its exports carry, and the check that tells a posetween
ONNX file from a foreign or broken one before it fails deep inside a call."""

from __future__ import annotations

import hashlib
from pathlib import Path

FORMAT_VERSION = "1"
# Query times the streaming engine asks per interval (and what the shipped ONNX files are fixed
# to): its output draws a cubic curve through them (stream/track.py), which 5 samples per
# interval follow as closely as 8 at 15 % less model time (README, "Speed").
DEFAULT_QUERIES = 5
DEFAULT_OPSET = 18
INPUT_NAMES = ("key_xy", "key_conf", "key_time", "query_time")
OUTPUT_NAMES = ("query_xy", "key_denoised")
TORCHSCRIPT_METADATA_FILE = "posetween_metadata.json"
PRECISIONS = ("fp32", "fp16", "int8")

HOW_TO_GET_ONE = "use the shipped model (no --model), or a file written by posetween export"
# Metadata key: sha256 of the checkpoint file's bytes an export was made from. It lets the
# runtime tell that a checkpoint's sibling .onnx is its export without loading the checkpoint
# (which needs torch: a service that imports torch starts slower and holds far more objects).
CHECKPOINT_FILE_SHA256 = "checkpoint_file_sha256"


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_onnx_session(path, session_options, providers):
    """An onnxruntime session for a posetween .onnx file; ValueError naming the file when it is
    not a readable ONNX model or not one of ours, FileNotFoundError when it is absent."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such model file", str(path))
    try:
        session = ort.InferenceSession(str(path), session_options, providers=providers)
    except Exception as e:  # noqa: BLE001 -- onnxruntime's own types (InvalidProtobuf, Fail, ...)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path} is not a readable ONNX model ({first_line[:200]}); {HOW_TO_GET_ONE}") from e
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if inputs != INPUT_NAMES or OUTPUT_NAMES[0] not in outputs:
        raise ValueError(f"{path} is an ONNX model, but not a posetween model (inputs {', '.join(inputs)}; "
                         f"expected {', '.join(INPUT_NAMES)}); {HOW_TO_GET_ONE}")
    return session
