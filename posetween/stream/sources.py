"""Frame sources for the demo: a webcam, a video file, a folder of images.

Each source yields :class:`Frame` ``(index, time, image)``, ``image`` a BGR uint8 array and
``time`` the capture time in seconds. A video file or an image folder is *recorded*: its times
come from the file (position in the video, or ``index / fps``), starting at 0, and the demo runs
it on a simulated clock as fast as the CPU allows, so that its output is deterministic. A
camera is *live*: its times are wall-clock (``time.time()``) at capture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEMO_CLIP = "walk-outdoor.mp4"


def default_clip() -> Path:
    """The clip shipped with the package (``posetween/assets/walk-outdoor.mp4``)."""
    return Path(str(files("posetween") / "assets" / DEMO_CLIP))


@dataclass
class Frame:
    index: int
    time: float          # capture time, seconds
    image: np.ndarray    # BGR uint8 (H, W, 3)


class Source:
    live: bool = False
    fps: float = 30.0
    name: str = ""

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoSource(Source):
    """A video file; times from the decoder's position (``CAP_PROP_POS_MSEC``), else index / fps."""

    def __init__(self, path, max_frames: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such video: {self.path}")
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise RuntimeError(f"OpenCV cannot open the video {self.path}")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.max_frames = max_frames
        self.name = self.path.name

    def __iter__(self) -> Iterator[Frame]:
        i, last_t = 0, -np.inf
        while self.max_frames is None or i < self.max_frames:
            ok, img = self.cap.read()
            if not ok or img is None:
                break
            t = i / self.fps
            # Trust the container's timestamps when they are sane (variable frame rate videos).
            pos = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if i > 0 and np.isfinite(pos) and pos > last_t and abs(pos - t) < 1.0:
                t = pos
            last_t = t
            yield Frame(i, t, img)
            i += 1

    def close(self) -> None:
        self.cap.release()


class ImageFolderSource(Source):
    """A folder of images, sorted by name, at ``fps`` (default 30)."""

    def __init__(self, folder, fps: float = 30.0, max_frames: int | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"no such folder of images: {self.folder}")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.folder}")
        self.fps = float(fps)
        self.max_frames = max_frames
        self.frame_count = len(self.files)
        self.name = self.folder.name

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.files[:self.max_frames]):
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise RuntimeError(f"cannot read image {p}")
            yield Frame(i, i / self.fps, img)


class CameraSource(Source):
    """A webcam (OpenCV device index); capture times are wall-clock seconds."""

    live = True

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None,
                 max_frames: int | None = None):
        self.cap = cv2.VideoCapture(int(index))
        if not self.cap.isOpened():
            raise RuntimeError(f"cannot open camera {index} (is a webcam connected, and may this user use it?)")
        if width:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 1 <= fps <= 240 else 30.0
        self.max_frames = max_frames
        self.frame_count = 0
        self.name = f"camera {index}"

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        while self.max_frames is None or i < self.max_frames:
            ok, img = self.cap.read()
            t = time.time()
            if not ok or img is None:
                break
            yield Frame(i, t, img)
            i += 1

    def close(self) -> None:
        self.cap.release()


def open_source(camera: int | None = None, video=None, images=None, fps: float | None = None,
                max_frames: int | None = None) -> Source:
    """The source the options name; with none, the shipped demo clip."""
    given = [x is not None for x in (camera, video, images)]
    if sum(given) > 1:
        raise ValueError("give one source: --camera, --video or --images")
    if camera is not None:
        return CameraSource(camera, max_frames=max_frames)
    if images is not None:
        return ImageFolderSource(images, fps=fps or 30.0, max_frames=max_frames)
    path = Path(video) if video is not None else default_clip()
    if video is None and not path.is_file():
        raise FileNotFoundError(f"the demo clip is missing from the package ({path}); pass --video FILE")
    return VideoSource(path, max_frames=max_frames)


class PoseSchedule:
    """Which frames the pose estimator sees: every ``every``-th frame, or at ``fps`` by time
    (a frame is taken when its time reaches the next due time; due times advance on a fixed
    grid, so the rate holds on average whatever the source's rate)."""

    def __init__(self, fps: float | None = 7.5, every: int | None = None):
        if every is not None and every < 1:
            raise ValueError("--pose-every must be >= 1")
        if every is None and (fps is None or fps <= 0):
            raise ValueError("--pose-fps must be > 0")
        self.fps, self.every = fps, every
        self.next_due: float | None = None

    def __call__(self, frame: Frame) -> bool:
        if self.every is not None:
            return frame.index % self.every == 0
        period = 1.0 / self.fps
        eps = 1e-6
        if self.next_due is None or frame.time + eps >= self.next_due:
            if self.next_due is None or frame.time - self.next_due > period:
                self.next_due = frame.time           # fell behind (or first): restart the grid
            self.next_due += period
            return True
        return False

    def describe(self, source_fps: float) -> str:
        if self.every is not None:
            return f"every {self.every} frames ({source_fps / self.every:.3g} fps)"
        return f"{self.fps:.3g} fps"

    def rate(self, source_fps: float) -> float:
        return source_fps / self.every if self.every is not None else min(self.fps, source_fps)
