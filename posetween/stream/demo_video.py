"""What ``posetween demo`` draws and where it goes: the two panels, an MP4 file, a window.

:class:`Renderer` composes one picture per source frame: left, the estimator's keyframes as
they arrived, held until the next one; right, posetween's output for the frame's own time.
Each person has their own colour (by the number after ``/`` in their stream id,
``demo/0``, ``demo/1``, ...) in both panels, and a label. :class:`VideoSink` writes an H.264
MP4 with the ffmpeg that ``imageio-ffmpeg`` ships (browsers and chat apps play it); without
``imageio-ffmpeg`` it falls back to OpenCV's MPEG-4 Part 2 (``mp4v``). :class:`WindowSink`
shows the pictures in an OpenCV window (only where a display exists: ``cv2.imshow`` aborts
the process without one).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posetween.offline.draw import draw_skeleton, put_text

log = logging.getLogger("posetween.demo")

# One colour per person (BGR), the same in both panels.
PERSON_COLORS = [(60, 220, 60), (220, 90, 230), (255, 190, 40), (40, 210, 255), (80, 80, 255), (230, 230, 230)]
KEYFRAMES = (0, 140, 255)       # the left panel's header (orange, as the keyframes were drawn before)
POSETWEEN = (60, 220, 60)


def person_color(stream: str) -> tuple[int, int, int]:
    person = stream.rpartition("/")[2]
    i = int(person) if person.isdigit() else sum(map(ord, person))
    return PERSON_COLORS[i % len(PERSON_COLORS)]


@dataclass
class PersonPose:
    """One person's pose in a shown frame: 19 joints in source pixels, and for the output
    its kind (keyframe, interpolated, ...) and segment (restarts)."""
    time: float
    xy: np.ndarray
    conf: np.ndarray
    kind: str | None = None
    segment: int | None = None


@dataclass
class ShownFrame:
    """What the demo drew for one frame (kept for tests and the summary)."""
    index: int
    time: float
    key_time: float | None                # capture time of the keyframe shown on the left
    keys: dict[str, PersonPose] = field(default_factory=dict)     # stream -> held keyframe pose
    outs: dict[str, PersonPose] = field(default_factory=dict)     # stream -> output pose for `time`
    delay: float | None = None            # output tick time minus the time its poses stand for


@dataclass
class Header:
    """The numbers the header shows."""
    pose_rate: float
    out_rate: float
    model_ms: float
    estimator_ms: float


class Renderer:
    """Two panels side by side, each under a header: keyframes (held), posetween's output."""

    def __init__(self, width: int, height: int, panel_width: int = 800, min_conf: float = 0.0):
        self.src_w, self.src_h = width, height
        self.pw = int(panel_width)
        self.scale = self.pw / width
        self.ph = int(round(height * self.scale))
        self.min_conf = min_conf
        self.thickness = max(2, int(round(3 * self.pw / 800)))
        self.text = 0.6 * self.pw / 800
        self.tt = max(1, int(round(self.pw / 800)))      # text thickness
        self.line = int(round(26 * self.pw / 800))
        self.header = 2 * self.line + int(round(10 * self.pw / 800))
        self.segments: dict[str, int] = {}
        self.restarted: dict[str, float] = {}             # stream -> time of its last restart

    @property
    def size(self) -> tuple[int, int]:
        return 2 * self.pw, self.header + self.ph

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """The source image at panel size (a no-op when it already is)."""
        if image.shape[1] == self.pw and image.shape[0] == self.ph:
            return image
        return cv2.resize(image, (self.pw, self.ph), interpolation=cv2.INTER_AREA)

    def _people(self, panel: np.ndarray, poses: dict[str, PersonPose], now: float, show_restarts: bool) -> None:
        for stream, p in sorted(poses.items()):
            color = person_color(stream)
            draw_skeleton(panel, p.xy, p.conf, color, self.thickness, scale=self.scale, min_conf=self.min_conf)
            seen = (p.conf > self.min_conf) & np.isfinite(p.xy).all(-1)
            if not seen.any():
                continue
            pts = p.xy[seen] * self.scale
            x, y = int(pts[:, 0].min()), int(pts[:, 1].min()) - int(0.4 * self.line)
            label = "person " + stream.rpartition("/")[2]
            if show_restarts and now - self.restarted.get(stream, -np.inf) < 1.0:
                label += " (restarted)"
            put_text(panel, label, (max(x, 2), max(y, self.line)), self.text * 0.8, color, self.tt)

    def _note_restarts(self, outs: dict[str, PersonPose], now: float) -> None:
        for stream, p in outs.items():
            before = self.segments.get(stream)
            if p.segment is not None and before is not None and p.segment != before:
                self.restarted[stream] = now
            if p.segment is not None:
                self.segments[stream] = p.segment

    def __call__(self, image: np.ndarray, index: int, shown: ShownFrame, header: Header) -> np.ndarray:
        small = self.shrink(image)
        left, right = small.copy(), small.copy()
        self._note_restarts(shown.outs, shown.time)
        self._people(left, shown.keys, shown.time, False)
        self._people(right, shown.outs, shown.time, True)
        ts, line = self.text, self.line
        top = np.full((self.header, 2 * self.pw, 3), 32, np.uint8)
        put_text(top, f"MediaPipe keyframes: {header.pose_rate:.3g} fps, held", (10, line), ts, KEYFRAMES, 2 * self.tt)
        age = "no keyframe yet" if shown.key_time is None else \
            f"keyframe {1000 * (shown.time - shown.key_time):.0f} ms old"
        put_text(top, f"{age}   estimator {header.estimator_ms:.0f} ms/keyframe", (10, 2 * line), ts * 0.85,
                 (230, 230, 230), self.tt)
        x = self.pw + 10
        put_text(top, f"posetween: {header.out_rate:.3g} Hz, smooth", (x, line), ts, POSETWEEN, 2 * self.tt)
        parts = []
        if shown.delay is not None:
            parts.append(f"delay {1000 * shown.delay:.0f} ms")
        if shown.outs:
            parts.append(f"{len(shown.outs)} {'person' if len(shown.outs) == 1 else 'people'}")
        if not np.isnan(header.model_ms):
            parts.append(f"model {header.model_ms:.1f} ms/call")
        put_text(top, "   ".join(parts), (x, 2 * line), ts * 0.85, (230, 230, 230), self.tt)
        label = f"frame {index}  {shown.time:5.2f} s"
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, ts * 0.8, self.tt)
        put_text(right, label, (self.pw - tw - 12, self.ph - 10), ts * 0.8, (230, 230, 230), self.tt)
        out = np.concatenate([top, np.concatenate([left, right], axis=1)], axis=0)
        cv2.line(out, (self.pw, 0), (self.pw, out.shape[0]), (255, 255, 255), 2)
        return out


class VideoSink:
    """An MP4 at the source's rate, opened at the first frame (its size): H.264 through the
    ffmpeg inside ``imageio-ffmpeg``, else OpenCV's mp4v."""

    def __init__(self, path: Path, fps: float, crf: int = 23):
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.writer = None
        self.codec = None
        self.frames = 0
        self._size = None

    def _open(self, w: int, h: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import imageio_ffmpeg
        except ImportError:
            imageio_ffmpeg = None
            log.warning("imageio-ffmpeg is not installed: writing MPEG-4 Part 2 (mp4v), which many browsers "
                        "do not play (pip install imageio-ffmpeg for H.264)")
        if imageio_ffmpeg is not None:
            # yuv420p (what players expect) needs even sizes: odd ones get a black pixel row/column.
            self._size = (w + w % 2, h + h % 2)
            self.writer = imageio_ffmpeg.write_frames(
                str(self.path), self._size, pix_fmt_in="bgr24", pix_fmt_out="yuv420p", fps=self.fps,
                codec="libx264", macro_block_size=2, quality=None,
                output_params=["-crf", str(self.crf), "-preset", "veryfast", "-movflags", "+faststart"])
            self.writer.send(None)            # start ffmpeg
            self.codec = "h264"
        else:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write the video {self.path}")
            self.codec = "mp4v"

    def show(self, img: np.ndarray) -> bool:
        if self.writer is None:
            self._open(img.shape[1], img.shape[0])
        if self.codec == "h264":
            w, h = self._size
            if img.shape[:2] != (h, w):
                img = cv2.copyMakeBorder(img, 0, h - img.shape[0], 0, w - img.shape[1], cv2.BORDER_CONSTANT)
            self.writer.send(np.ascontiguousarray(img))
        else:
            self.writer.write(img)
        self.frames += 1
        return True

    def close(self) -> None:
        if self.writer is None:
            return
        if self.codec == "h264":
            self.writer.close()
        else:
            self.writer.release()
        self.writer = None


class WindowSink:
    def __init__(self, title: str = "posetween demo", pace_fps: float | None = None):
        self.title = title
        self.period = 1.0 / pace_fps if pace_fps else None
        self.next = None
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, img: np.ndarray) -> bool:
        if self.period is not None:        # a recorded source: show it at its own rate
            now = time.perf_counter()
            self.next = now if self.next is None else self.next
            if self.next > now:
                time.sleep(self.next - now)
            self.next = max(self.next + self.period, time.perf_counter() - self.period)
        cv2.imshow(self.title, img)
        key = cv2.waitKey(1) & 0xFF
        return key not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.title)
