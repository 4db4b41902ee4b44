"""Streaming: keyframes of many live streams in, poses out at a fixed rate (in-process engine,
ZeroMQ service, client helpers, replay). See engine.py for the in-process API and
README.md (section "Wire format") for the wire format."""

from .config import EngineConfig
from .engine import Engine, PushResult
from .frames import FALLBACK, INTERPOLATED, KEYFRAME, KINDS, PREDICTED, Keyframe, OutputPose

__all__ = ["Engine", "EngineConfig", "PushResult", "OutputPose", "Keyframe", "KINDS",
           "KEYFRAME", "INTERPOLATED", "PREDICTED", "FALLBACK"]
