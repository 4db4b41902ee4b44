"""``posetween demo``: a slow pose estimator in, smooth motion out, side by side on the video.

    posetween demo                                   # the shipped clip, the default model
    posetween demo --video FILE.mp4 --pose-fps 7.5 --out out/demo.mp4
    posetween demo --camera 0 --publish tcp://127.0.0.1:5556
    posetween demo --images FOLDER --fps 25 --pose-every 4

MediaPipe Pose runs on a few frames a second (``--pose-fps``, or every Nth frame with
``--pose-every``); its poses go into the same streaming engine as ``posetween serve`` (in
process), which outputs poses at ``--rate`` Hz for a time ``delay`` behind the capture clock
(one input interval for lookahead 1). The picture is delayed by the
same amount (a bounded frame buffer), so each shown frame carries the pose for its own time and
the skeleton sits on the person. Two panels: left, the estimator's keyframes as they arrive,
held until the next one (what you would draw without posetween); right, posetween's output.

A video file or an image folder runs on a simulated clock -- the source's timestamps, as fast
as the CPU allows -- so its output is deterministic; a camera runs on the wall clock. With a
display (``DISPLAY``/``WAYLAND_DISPLAY``) and no ``--headless``/``--out``, an OpenCV window
shows the result (q or Esc quits); otherwise an MP4 (mp4v) is written. ``--publish ADDRESS``
also sends every output pose over ZeroMQ in the service's wire format (README.md, section "Wire format").
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posetween.offline.draw import COLORS, draw_skeleton, put_text
from posetween.stream.sources import Frame, PoseSchedule, Source, open_source

log = logging.getLogger("posetween.demo")

STREAM_ID = "demo"
DEFAULT_OUT = Path("out") / "demo.mp4"


def display_available() -> bool:
    """True when an OpenCV window can open (cv2.imshow aborts the process without a display)."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class SimClock:
    """The simulated clock of a recorded source: the engine reads it, the demo sets it."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class ShownFrame:
    """What the demo drew for one frame (kept for tests and the summary)."""
    index: int
    time: float
    key_time: float | None           # capture time of the keyframe shown on the left
    key_xy: np.ndarray | None
    key_conf: np.ndarray | None
    out_time: float | None           # the time the output pose on the right stands for
    out_xy: np.ndarray | None
    out_conf: np.ndarray | None
    out_kind: str | None
    out_segment: int | None
    delay: float | None              # output tick time minus the time its pose stands for


@dataclass
class DemoResult:
    source: str
    frames: int = 0
    duration_s: float = 0.0           # of the source (capture clock)
    source_fps: float = 0.0
    keyframes: int = 0
    keyframes_with_person: int = 0
    pose_rate: float = 0.0            # keyframes per second of source time
    output_rate: float = 0.0          # engine output poses per second of source time
    engine_rate: float = 0.0
    delay_ms: float = float("nan")    # median output delay behind the capture clock
    model_ms: float = float("nan")    # mean model time per call
    model_calls: int = 0
    estimator_ms: float = float("nan")
    wall_s: float = 0.0               # the loop over the frames
    startup_s: float = 0.0            # model backend and estimator set-up (ONNX export the first time)
    restarts: dict = field(default_factory=dict)
    fallbacks: int = 0
    output_kinds: dict = field(default_factory=dict)
    video: Path | None = None
    published: int = 0
    shown: list[ShownFrame] = field(default_factory=list)
    keys: list[tuple[int, float, np.ndarray, np.ndarray]] = field(default_factory=list)

    def summary(self) -> str:
        restarts = sum(self.restarts.values())
        why = ", ".join(f"{k} {v}" for k, v in sorted(self.restarts.items()))
        lines = [
            f"posetween demo: {self.source}: {self.frames} frames ({self.duration_s:.2f} s at "
            f"{self.source_fps:.3g} fps) in {self.wall_s:.1f} s"
            + (f" (+ {self.startup_s:.1f} s start-up)" if self.startup_s >= 0.05 else ""),
            f"  pose estimator: MediaPipe Pose at {self.pose_rate:.3g} fps: {self.keyframes} keyframes "
            f"({self.keyframes_with_person} with a person), {self.estimator_ms:.1f} ms per call",
            f"  posetween: output {self.output_rate:.3g} Hz (engine rate {self.engine_rate:g} Hz), delay "
            f"{self.delay_ms:.0f} ms behind capture, model {self.model_ms:.1f} ms per call "
            f"({self.model_calls} calls), fallbacks {self.fallbacks}, restarts {restarts}"
            + (f" ({why})" if why else ""),
        ]
        if self.published:
            lines.append(f"  published {self.published} poses over ZeroMQ")
        if self.video is not None:
            lines.append(f"  video: {self.video}")
        return "\n".join(lines)


class Publisher:
    """A PUB socket bound to ``address`` sending output poses in the service's wire format."""

    def __init__(self, address: str, allow_remote: bool = False):
        import zmq

        from posetween.stream import wire
        from posetween.stream.service import check_bind_address
        self.zmq, self.wire = zmq, wire
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.bind(check_bind_address(address, allow_remote))
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0

    def send(self, pose) -> None:
        try:
            self.sock.send(self.wire.encode_pose(pose, time.time()), self.zmq.NOBLOCK)
            self.sent += 1
        except self.zmq.Again:
            pass

    def send_stats(self, snapshot: dict) -> None:
        try:
            self.sock.send(self.wire.encode_stats(snapshot, time.time()), self.zmq.NOBLOCK)
        except self.zmq.Again:
            pass

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------- drawing

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
        self.segment = None
        self.segment_since = -np.inf

    @property
    def size(self) -> tuple[int, int]:
        return 2 * self.pw, self.header + self.ph

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """The source image at panel size (a no-op when it already is)."""
        if image.shape[1] == self.pw and image.shape[0] == self.ph:
            return image
        return cv2.resize(image, (self.pw, self.ph), interpolation=cv2.INTER_AREA)

    def __call__(self, frame: Frame, shown: ShownFrame, pose_rate: float, out_rate: float,
                 model_ms: float, est_ms: float) -> np.ndarray:
        small = self.shrink(frame.image)
        left, right = small, small.copy()
        s, th, ts, line = self.scale, self.thickness, self.text, self.line
        if shown.key_xy is not None:
            draw_skeleton(left, shown.key_xy, shown.key_conf, COLORS["keyframes"], th, scale=s, min_conf=self.min_conf)
        if shown.out_xy is not None:
            draw_skeleton(right, shown.out_xy, shown.out_conf, COLORS["posetween"], th, scale=s, min_conf=self.min_conf)
        if shown.out_segment is not None and shown.out_segment != self.segment:
            if self.segment is not None:
                self.segment_since = frame.time
            self.segment = shown.out_segment
        top = np.full((self.header, 2 * self.pw, 3), 32, np.uint8)
        put_text(top, f"MediaPipe keyframes: {pose_rate:.3g} fps, held", (10, line), ts, COLORS["keyframes"], 2 * self.tt)
        age = "no keyframe yet" if shown.key_time is None else \
            f"keyframe {1000 * (shown.time - shown.key_time):.0f} ms old"
        put_text(top, f"{age}   estimator {est_ms:.0f} ms/call", (10, 2 * line), ts * 0.85, (230, 230, 230), self.tt)
        x = self.pw + 10
        put_text(top, f"posetween: {out_rate:.3g} Hz, smooth", (x, line), ts, COLORS["posetween"], 2 * self.tt)
        parts = []
        if shown.delay is not None:
            parts.append(f"delay {1000 * shown.delay:.0f} ms")
        if shown.out_kind:
            parts.append(shown.out_kind)
        if not np.isnan(model_ms):
            parts.append(f"model {model_ms:.1f} ms/call")
        put_text(top, "   ".join(parts), (x, 2 * line), ts * 0.85, (230, 230, 230), self.tt)
        if frame.time - self.segment_since < 1.0:
            put_text(right, "stream restarted", (10, line), ts, (80, 80, 255), 2 * self.tt)
        label = f"frame {frame.index}  {frame.time:5.2f} s"
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, ts * 0.8, self.tt)
        put_text(right, label, (self.pw - tw - 12, self.ph - 10), ts * 0.8, (230, 230, 230), self.tt)
        out = np.concatenate([top, np.concatenate([left, right], axis=1)], axis=0)
        cv2.line(out, (self.pw, 0), (self.pw, out.shape[0]), (255, 255, 255), 2)
        return out


class VideoSink:
    """An MP4 (mp4v) at the source's rate; opened at the first frame (its size)."""

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self.writer = None
        self.frames = 0

    def show(self, img: np.ndarray) -> bool:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = img.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write the video {self.path}")
        self.writer.write(img)
        self.frames += 1
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


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


# ---------------------------------------------------------------- the demo loop

def make_engine(backend, rate: float, lookahead: int, budget_ms: float, clock, **config):
    from posetween.stream import Engine, EngineConfig
    return Engine(backend, EngineConfig(rate=rate, lookahead=lookahead, budget_ms=budget_ms, **config), clock=clock)


def run_demo(source: Source, estimator, engine, schedule: PoseSchedule, sinks=(), panel_width: int = 800,
             publisher=None, max_buffer: int | None = None, keep_shown: bool = True,
             progress: bool = False) -> DemoResult:
    """Run the source through the estimator and the engine; returns what was shown.

    ``engine`` must read the clock this loop drives: for a recorded source a :class:`SimClock`
    (``engine.now``), set here to each frame's time; for a live source the wall clock.
    """
    live = source.live
    sim = engine.now if isinstance(engine.now, SimClock) else None
    if not live and sim is None:
        raise ValueError("a recorded source needs an engine on a SimClock (deterministic output)")
    res = DemoResult(source=source.name, source_fps=source.fps, engine_rate=engine.cfg.rate)
    fps = source.fps
    pose_rate = schedule.rate(fps)
    # The picture waits for the output: at most this many frames (bounded memory).
    max_buffer = max_buffer or int(np.ceil(fps * 2.0)) + 2
    frames: deque[Frame] = deque()
    keys: deque[tuple[float, np.ndarray, np.ndarray]] = deque(maxlen=64)
    outs: deque = deque(maxlen=int(engine.cfg.rate * 4) + 8)
    delays: deque[float] = deque(maxlen=4096)
    delay_est = engine.cfg.lookahead / pose_rate              # until the engine shows its own
    # A frame gets the output pose nearest its time, at most half an output period away; while
    # the delay adapts the output runs up to max_lag_slew fast or slow, so its poses lie up to
    # that much further apart, and half a period would leave a frame between two of them bare.
    half = 0.5 / engine.cfg.rate * (1.0 + engine.cfg.max_lag_slew)
    first_t = last_t = None
    renderer = None
    key_span = [np.inf, -np.inf]        # first and last keyframe time
    n_out = 0
    out_span = [np.inf, -np.inf]
    t_wall = time.perf_counter()

    def step(now: float) -> None:
        nonlocal delay_est, n_out
        if sim is not None:
            sim.t = now
        engine.process()                        # in simulated time the model costs nothing
        poses = [p for p in engine.render(now) if p.stream == STREAM_ID]
        # One pose per output tick; the ticks run up to the one before next_tick().
        last_tick = engine.next_tick() - 1.0 / engine.cfg.rate
        for i, pose in enumerate(poses):
            tick = last_tick - (len(poses) - 1 - i) / engine.cfg.rate
            outs.append(pose)
            n_out += 1
            out_span[0] = min(out_span[0], pose.time)
            out_span[1] = max(out_span[1], pose.time)
            delay_est = tick - pose.time
            delays.append(delay_est)
            if publisher is not None:
                publisher.send(pose)

    def pose_for(t: float):
        best = None
        for p in reversed(outs):
            if abs(p.time - t) <= half + 1e-9 and (best is None or abs(p.time - t) < abs(best.time - t)):
                best = p
            if p.time < t - half:
                break
        return best

    def show(frame: Frame) -> bool:
        key = None
        for k in reversed(keys):
            if k[0] <= frame.time + 1e-9:
                key = k
                break
        pose = pose_for(frame.time)
        sf = ShownFrame(frame.index, frame.time,
                        None if key is None else key[0], None if key is None else key[1],
                        None if key is None else key[2],
                        None if pose is None else pose.time, None if pose is None else np.asarray(pose.xy, np.float64),
                        None if pose is None else np.asarray(pose.conf, np.float64),
                        None if pose is None else pose.kind, None if pose is None else pose.segment,
                        None if pose is None else delay_est)
        if keep_shown:
            res.shown.append(sf)
        ok = True
        if sinks:
            snap_ms = _mean_model_ms(engine)
            img = renderer(frame, sf, pose_rate, engine.cfg.rate, snap_ms, estimator.mean_ms)
            for sink in sinks:
                ok = sink.show(img) and ok
        return ok

    def drain(now: float, force: bool = False) -> bool:
        # A frame waits until the output has passed its time by half an output period: the
        # pose nearest to it may lie just after it.
        ok = True
        while frames and (force or len(frames) > max_buffer or now >= frames[0].time + delay_est + half - 1e-9):
            ok = show(frames.popleft()) and ok
        return ok

    def one(frame: Frame) -> bool:
        nonlocal first_t, last_t, renderer
        now = frame.time if not live else engine.now()
        if first_t is None:
            first_t = frame.time
        last_t = frame.time
        res.frames += 1
        image = frame.image
        # The buffer keeps the picture at panel size, or none without sinks (bounded memory).
        if sinks and renderer is None:
            renderer = Renderer(image.shape[1], image.shape[0], panel_width)
        frame = Frame(frame.index, frame.time, renderer.shrink(image) if sinks else None)
        frames.append(frame)
        if schedule(frame):
            xy, conf = estimator.estimate(image)
            res.keyframes += 1
            if (conf > 0).any():
                res.keyframes_with_person += 1
            keys.append((frame.time, xy, conf))
            key_span[0], key_span[1] = min(key_span[0], frame.time), frame.time
            if keep_shown:
                res.keys.append((frame.index, frame.time, xy, conf))
            if live:
                now = engine.now()               # the estimator took time
            if sim is not None:
                sim.t = now
            engine.push(STREAM_ID, frame.time, xy, conf, layout="posetween19", now=now)
        step(now)
        if progress and res.frames % 50 == 0:
            log.info("frame %d (%.1f s)", res.frames, frame.time)
        return drain(now)

    running = True
    try:
        for frame in source:
            if not one(frame):
                running = False              # the window was closed
                break
    except KeyboardInterrupt:                  # Ctrl-C ends a live run: still flush and summarise
        log.info("interrupted")
    # Flush: let the clock run on past the last frame so the buffered frames get their poses.
    # Live, the frames still waiting are shown with what the output has reached.
    if running and last_t is not None:
        if live:
            now = engine.now()
            step(now)
        else:
            now = last_t
            deadline = last_t + delay_est + 2.0 / fps
            while frames and now < deadline:
                now += 1.0 / fps
                step(now)
                drain(now)
        drain(now, force=True)
    res.wall_s = time.perf_counter() - t_wall
    if first_t is not None:
        res.duration_s = (last_t - first_t) + 1.0 / fps
        if res.keyframes > 1 and key_span[1] > key_span[0]:
            res.pose_rate = (res.keyframes - 1) / (key_span[1] - key_span[0])
        if n_out > 1:            # poses per second of the time they cover
            res.output_rate = (n_out - 1) / max(out_span[1] - out_span[0], 1e-9)
    snap = engine.snapshot()
    res.delay_ms = 1000.0 * float(np.median(delays)) if delays else float("nan")
    res.model_ms = _mean_model_ms(engine)
    res.model_calls = int(snap["model_calls"])
    res.estimator_ms = estimator.mean_ms
    res.restarts = dict(snap["restarts_by_reason"])
    res.fallbacks = int(snap["fallbacks"])
    res.output_kinds = dict(snap["frames_by_kind"])
    if publisher is not None:
        publisher.send_stats(snap)
        res.published = publisher.sent
    return res


def _mean_model_ms(engine) -> float:
    ms = list(engine.stats.model_ms)
    return float(np.mean(ms)) if ms else float("nan")


# ---------------------------------------------------------------- command line

def run(args) -> int:
    from posetween.export.backends import create_backend
    from posetween.stream.pose_estimator import MediaPipePose

    try:
        source = open_source(camera=args.camera, video=args.video, images=args.images, fps=args.fps,
                             max_frames=args.max_frames)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        raise SystemExit(f"posetween demo: {e}") from None
    schedule = PoseSchedule(fps=args.pose_fps, every=args.pose_every)

    window = not args.headless and args.out is None and display_available()
    if not window and not args.headless and args.out is None:
        log.info("no display (DISPLAY/WAYLAND_DISPLAY unset): writing a video instead of opening a window")
    out_path = None if window else Path(args.out or DEFAULT_OUT)

    options = {} if args.backend in ("torch", "torchscript") else {"queries": args.queries}
    t0 = time.perf_counter()
    try:
        backend = create_backend(args.backend, model_path=args.model, **options)
    except FileNotFoundError as e:
        source.close()
        where = args.model or "posetween/models/default.pt (the shipped default model)"
        raise SystemExit(f"posetween demo: no model at {where}: {e}; pass --model FILE") from None
    log.info("backend %r ready in %.1f s", backend, time.perf_counter() - t0)
    clock = time.time if source.live else SimClock()
    engine = make_engine(backend, args.rate, args.lookahead, args.budget_ms, clock, queries=args.queries)
    try:
        publisher = Publisher(args.publish, args.allow_remote) if args.publish else None
    except Exception as e:  # noqa: BLE001 - a bad or busy address (ValueError, zmq.ZMQError)
        source.close()
        raise SystemExit(f"posetween demo: cannot publish on {args.publish}: {e}") from None
    if publisher:
        log.info("publishing output poses on %s (topic pose/%s)", publisher.address, STREAM_ID)

    estimator = MediaPipePose(min_visibility=args.min_visibility, smooth=args.smooth)
    sink = (WindowSink(pace_fps=None if source.live else source.fps) if window
            else VideoSink(out_path, source.fps))
    startup = time.perf_counter() - t0
    try:
        res = run_demo(source, estimator, engine, schedule, [sink], args.panel_width, publisher,
                       keep_shown=False, progress=args.verbose)
        res.startup_s = startup
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130
    finally:
        sink.close()
        estimator.close()
        source.close()
        if publisher:
            publisher.close()
    if res.frames == 0:
        raise SystemExit(f"posetween demo: no frames in {source.name}")
    res.video = out_path.resolve() if out_path is not None else None
    print(res.summary())
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="MediaPipe at a few fps in, smooth poses out, side by side on the video",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, metavar="INDEX", help="a webcam (OpenCV device index)")
    src.add_argument("--video", metavar="FILE", help="a video file (default: the shipped walk-outdoor.mp4)")
    src.add_argument("--images", metavar="DIR", help="a folder of images, sorted by name")
    p.add_argument("--fps", type=float, help="frame rate of --images (default 30)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--pose-fps", type=float, default=7.5,
                      help="run the pose estimator at this rate (default 7.5)")
    rate.add_argument("--pose-every", type=int, metavar="N", help="run the pose estimator on every Nth frame")
    p.add_argument("--min-visibility", type=float, default=0.5,
                   help="MediaPipe landmarks less visible than this are missing (default 0.5)")
    p.add_argument("--smooth", action="store_true", help="MediaPipe's own landmark smoothing (off by default)")
    p.add_argument("--rate", type=float, default=60.0, help="posetween output rate, Hz (default 60)")
    p.add_argument("--lookahead", type=int, default=1, choices=(0, 1, 2),
                   help="1: interpolate (delay one input interval, default); 0: predict")
    p.add_argument("--budget-ms", type=float, default=10.0, help="the model's latency budget (default 10)")
    p.add_argument("--queries", type=int, default=8, help="model samples per interval (default 8)")
    p.add_argument("--model", help="model file (default: the shipped default model)")
    p.add_argument("--backend", default="auto", help="runtime backend (default auto, as posetween serve)")
    p.add_argument("--out", metavar="FILE.mp4", help=f"write the video here (default without a display: {DEFAULT_OUT})")
    p.add_argument("--headless", action="store_true", help="never open a window; write the video")
    p.add_argument("--panel-width", type=int, default=800, help="width of each of the two panels (default 800)")
    p.add_argument("--publish", metavar="ADDRESS", help="also publish output poses over ZeroMQ, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--allow-remote", action="store_true", help="allow --publish to bind a non-loopback address")
    p.set_defaults(func=run)
