"""The models shipped in the package, by name: ``--model default`` (any data, non-commercial
weights) and ``--model open`` (trained only on commercially usable motion). See their cards in
``posetween/models/``. No heavy imports: the CLI and the runtime install use this."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"
SHIPPED_MODELS = ("default", "open")


class MissingModelError(FileNotFoundError):
    """A model argument that is neither a file nor a shipped model's name."""

    def __init__(self, model):
        super().__init__(2, f"no such model file (a path, or a shipped model: {', '.join(SHIPPED_MODELS)})",
                         str(model))


def resolve_model(model):
    """A shipped model's name -> its file (the PyTorch checkpoint where torch is installed, else
    the ONNX export beside it); ``default`` -> None, which every loader reads as the default
    model; anything else (a path, None) unchanged."""
    if model is None or str(model) not in SHIPPED_MODELS:
        return model
    if str(model) == "default":
        return None
    torch = importlib.util.find_spec("torch") is not None
    return MODELS_DIR / f"{model}{'.pt' if torch else '.onnx'}"


def checkpoint_file(model) -> Path:
    """The file a model argument (a shipped name, a path, or None: the default) names."""
    model = resolve_model(model)
    return MODELS_DIR / "default.pt" if model is None else Path(model)
