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
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from posetween.core.model import PoseTween, load_model


class Backend(ABC):
    name: str
    window: int

    def run(self, key_xy, key_conf, key_time, query_time) -> np.ndarray:
        key_time = np.asarray(key_time, dtype=np.float64)
        t_ref = key_time[:, -1:]
        return self._run(np.asarray(key_xy, np.float32), np.asarray(key_conf, np.float32),
                         (key_time - t_ref).astype(np.float32),
                         (np.asarray(query_time, np.float64) - t_ref).astype(np.float32))

    @abstractmethod
    def _run(self, key_xy: np.ndarray, key_conf: np.ndarray, key_time: np.ndarray,
             query_time: np.ndarray) -> np.ndarray:
        """Inputs as float32 with times relative to the newest keyframe."""


class TorchBackend(Backend):
    """Plain PyTorch eager: the reference every other backend is compared with."""

    name = "torch"

    def __init__(self, model: PoseTween | None = None, model_path=None, device: str = "cpu"):
        self.model = (model or load_model(model_path)).to(device).eval()
        self.device = torch.device(device)
        self.window = self.model.cfg.window

    @torch.inference_mode()
    def _run(self, key_xy, key_conf, key_time, query_time):
        t = lambda a: torch.from_numpy(a).to(self.device)
        out, _ = self.model(t(key_xy), t(key_conf), t(key_time), t(query_time))
        return out.float().cpu().numpy()


def create_backend(name: str = "auto", model_path=None, **options) -> Backend:
    if name in ("torch", "auto"):
        return TorchBackend(model_path=model_path, **options)
    raise ValueError(f"unknown backend {name!r}")
