"""posetween: a streaming, real-time 2D human pose upsampler."""

__version__ = "0.1.0"
