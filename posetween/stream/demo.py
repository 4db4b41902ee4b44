"""``posetween demo``: a slow pose estimator in, smooth motion out, side by side on the video.

    posetween demo                                   # the shipped clip, the default model
    posetween demo --video FILE.mp4 --pose-fps 7.5 --out out/demo.mp4
    posetween demo --camera 0 --publish tcp://127.0.0.1:5556
    posetween demo --images FOLDER --fps 25 --pose-every 4 --max-people 2

MediaPipe Pose runs on a few frames a second (--pose-fps, or every Nth frame with --pose-every),
once per person on a crop around them (at most --max-people people; see multi_pose.py), and
every keyframe's people go into the same streaming engine as `posetween serve` (in process),
one stream per person (demo/0, demo/1, ...). The engine outputs poses at --rate Hz for a time
one input interval behind the capture clock (lookahead 1); the picture is delayed as much, so
each frame carries the poses for its own time. Two panels: left, the estimator's keyframes as
they arrived, held until the next one (what you would draw without posetween); right,
posetween's output. Each person has their own colour.

A video file or an image folder runs on a simulated clock -- the source's timestamps, as fast
as the CPU allows -- so its output is deterministic; a camera runs on the wall clock. With a
display (DISPLAY/WAYLAND_DISPLAY) and no --headless/--out, an OpenCV window shows the result
(q or Esc quits); otherwise an H.264 MP4 is written. --publish ADDRESS also sends every output
pose over ZeroMQ in the service's wire format (README.md, "Wire format").

How the code is laid out, in the order a frame goes through it:

- ``DemoLoop.on_frame``: a source frame arrives; on a keyframe the estimator runs
  (``_estimate``) and its people go to ``engine.push_frame``; then ``_step`` lets the engine
  run and collects its output in ``OutputLog``;
- ``FrameQueue``: the frames wait there until the output has reached their time;
- ``DemoLoop._show``: a frame leaves the queue with the keyframe held at its time
  (``KeyframeLog``) and the output poses for its time (``OutputLog``), and is drawn
  (``demo_video.Renderer``) to the sinks (an MP4 file or a window);
- ``DemoLoop.finish``: the queued frames are flushed and the numbers summed up (``DemoResult``).
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

import numpy as np

from posetween.stream.config import EngineConfig
from posetween.stream.demo_video import Header, PersonPose, Renderer, ShownFrame, VideoSink, WindowSink
from posetween.stream.sources import Frame, PoseSchedule, Source, open_source

__all__ = ["DemoLoop", "DemoResult", "Publisher", "Renderer", "ShownFrame", "SimClock", "VideoSink",
           "WindowSink", "make_engine", "run_demo"]

log = logging.getLogger("posetween.demo")

CAMERA = "demo"                 # the demo's camera id: its people are the streams demo/0, demo/1, ...
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
class DemoResult:
    source: str
    frames: int = 0
    duration_s: float = 0.0           # of the source (capture clock)
    source_fps: float = 0.0
    keyframes: int = 0
    keyframes_with_person: int = 0
    people: dict = field(default_factory=dict)   # stream -> keyframes that person was found in
    pose_rate: float = 0.0            # keyframes per second of source time
    output_rate: float = 0.0          # engine output poses per second of source time, per person
    engine_rate: float = 0.0
    delay_ms: float = float("nan")    # median output delay behind the capture clock
    model_ms: float = float("nan")    # mean model time per call
    model_calls: int = 0
    estimator_ms: float = float("nan")   # per keyframe (every MediaPipe call of it)
    estimator_calls: float = float("nan")   # MediaPipe calls per keyframe
    max_people: int | None = None
    wall_s: float = 0.0               # the loop over the frames
    startup_s: float = 0.0            # model backend and estimator set-up (ONNX export the first time)
    restarts: dict = field(default_factory=dict)
    fallbacks: int = 0
    output_kinds: dict = field(default_factory=dict)
    video: Path | None = None
    codec: str | None = None
    published: int = 0
    shown: list[ShownFrame] = field(default_factory=list)
    # per keyframe: (frame index, time, {stream: (xy, conf)}) of the people pushed
    keys: list[tuple[int, float, dict]] = field(default_factory=list)

    def summary(self) -> str:
        restarts = sum(self.restarts.values())
        why = ", ".join(f"{k} {v}" for k, v in sorted(self.restarts.items()))
        people = ", ".join(f"{s} in {n}" for s, n in sorted(self.people.items(), key=lambda kv: person_key(kv[0])))
        calls = "" if np.isnan(self.estimator_calls) else f"{self.estimator_calls:.1f} MediaPipe calls, "
        at_most = "" if self.max_people is None else f" (at most {self.max_people})"
        lines = [
            f"posetween demo: {self.source}: {self.frames} frames ({self.duration_s:.2f} s at "
            f"{self.source_fps:.3g} fps) in {self.wall_s:.1f} s"
            + (f" (+ {self.startup_s:.1f} s start-up)" if self.startup_s >= 0.05 else ""),
            f"  pose estimator: MediaPipe Pose per person{at_most} at {self.pose_rate:.3g} fps: {self.keyframes} "
            f"keyframes ({self.keyframes_with_person} with a person), {calls}{self.estimator_ms:.0f} ms per keyframe",
            f"  people: {len(self.people)} ({people or 'none'}; keyframes each was found in)",
            f"  posetween: output {self.output_rate:.3g} Hz per person (engine rate {self.engine_rate:g} Hz), delay "
            f"{self.delay_ms:.0f} ms behind capture, model {self.model_ms:.1f} ms per call "
            f"({self.model_calls} calls), fallbacks {self.fallbacks}, restarts {restarts}"
            + (f" ({why})" if why else ""),
        ]
        if self.published:
            lines.append(f"  published {self.published} poses over ZeroMQ")
        if self.video is not None:
            lines.append(f"  video: {self.video}" + (f" ({self.codec})" if self.codec else ""))
        return "\n".join(lines)


def person_key(stream: str):
    """Sort order of streams: demo/2 before demo/10."""
    person = stream.rpartition("/")[2]
    return (0, int(person), "") if person.isdigit() else (1, 0, person)


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


# ---------------------------------------------------------------- the parts of the loop

def people_of(result) -> tuple[np.ndarray, np.ndarray, list | None]:
    """An estimator's answer as ``(xy (N, 19, 2), conf (N, 19), ids or None)``: a several-people
    estimator (:class:`~posetween.stream.multi_pose.MultiPersonPose`) returns that already; a
    one-person one (:class:`~posetween.stream.pose_estimator.MediaPipePose`) returns
    ``(xy, conf)``, one person or nobody (every joint missing), without an id."""
    if len(result) == 3:
        xy, conf, ids = result
        return np.asarray(xy, np.float64), np.asarray(conf, np.float64), list(ids)
    xy, conf = (np.asarray(a, np.float64) for a in result)
    if not (conf > 0).any():
        return xy[None][:0], conf[None][:0], None
    return xy[None], conf[None], None


class KeyframeLog:
    """The newest keyframes (the people the engine took, by stream), to hold on the left panel."""

    def __init__(self, size: int = 64):
        self.keys: deque[tuple[float, dict[str, PersonPose]]] = deque(maxlen=size)

    def add(self, t: float, people: dict[str, PersonPose]) -> None:
        self.keys.append((t, people))

    def held_at(self, t: float) -> tuple[float | None, dict[str, PersonPose]]:
        """The newest keyframe captured at or before ``t`` (its time and people)."""
        for kt, people in reversed(self.keys):
            if kt <= t + 1e-9:
                return kt, people
        return None, {}


class OutputLog:
    """The engine's output poses of the demo's streams, kept a few seconds, and the delay of
    the output behind the capture clock."""

    def __init__(self, engine, initial_delay: float, publisher=None):
        self.engine = engine
        self.rate = engine.cfg.rate
        self.publisher = publisher
        self.poses: dict[str, deque] = {}
        self.keep = int(self.rate * 4) + 8
        self.delay = initial_delay                  # until the engine shows its own
        self.delays: deque[float] = deque(maxlen=4096)
        self.count = 0                              # poses output, all people
        self.span: dict[str, list[float]] = {}      # stream -> [first, last] pose time
        # A frame gets the output pose nearest its time, at most half an output period away;
        # while the delay adapts the output runs up to max_lag_catchup fast or max_lag_slew slow,
        # so its poses lie up to that much further apart, and half a period would leave a frame bare.
        self.half = 0.5 / self.rate * (1.0 + max(engine.cfg.max_lag_slew, engine.cfg.max_lag_catchup))

    def step(self, now: float) -> None:
        """Let the engine run its model and render every output tick due at ``now``."""
        self.engine.process()                       # in simulated time the model costs nothing
        rendered = [p for p in self.engine.render(now) if p.stream.startswith(CAMERA + "/")]
        if not rendered:
            return
        # Each stream has at most one pose per output tick; its newest is at the last tick.
        last_tick = self.engine.next_tick() - 1.0 / self.rate
        by_stream: dict[str, list] = {}
        for pose in rendered:
            by_stream.setdefault(pose.stream, []).append(pose)
        delays = []
        for stream, poses in by_stream.items():
            log_ = self.poses.setdefault(stream, deque(maxlen=self.keep))
            span = self.span.setdefault(stream, [np.inf, -np.inf])
            for pose in poses:
                log_.append(pose)
                span[0], span[1] = min(span[0], pose.time), max(span[1], pose.time)
                if self.publisher is not None:
                    self.publisher.send(pose)
            delays.append(last_tick - poses[-1].time)
        self.count += len(rendered)
        self.delays.extend(delays)
        self.delay = max(delays)                    # a frame waits for the person furthest behind

    def at(self, t: float) -> dict[str, PersonPose]:
        """Each stream's output pose nearest ``t`` (within half an output period)."""
        out = {}
        for stream, poses in self.poses.items():
            best = None
            for p in reversed(poses):
                if abs(p.time - t) <= self.half + 1e-9 and (best is None or abs(p.time - t) < abs(best.time - t)):
                    best = p
                if p.time < t - self.half:
                    break
            if best is not None:
                out[stream] = PersonPose(best.time, np.asarray(best.xy, np.float64),
                                         np.asarray(best.conf, np.float64), best.kind, best.segment)
        return out

    def rate_per_person(self) -> float:
        """Output poses per second of the time they cover, per person."""
        covered = sum(max(b - a, 0.0) for a, b in self.span.values())
        people = len(self.span)
        return (self.count - people) / covered if covered > 0 and self.count > people else 0.0


class FrameQueue:
    """The picture waits here, at panel size, until the output has reached its time: at most
    ``max_frames`` frames (bounded memory; a frame pushed out early shows what there is)."""

    def __init__(self, max_frames: int):
        self.frames: deque[Frame] = deque()
        self.max_frames = max_frames

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, frame: Frame) -> None:
        self.frames.append(frame)

    def due(self, now: float, delay: float, half: float, force: bool = False):
        """The frames to show now, oldest first. A frame waits until the output has passed its
        time by half an output period: the pose nearest to it may lie just after it."""
        while self.frames and (force or len(self.frames) > self.max_frames
                               or now >= self.frames[0].time + delay + half - 1e-9):
            yield self.frames.popleft()


# ---------------------------------------------------------------- the loop

class DemoLoop:
    """The demo over one source: frames in, estimator on keyframes, engine, pictures out.

    ``engine`` must read the clock this loop drives: for a recorded source a :class:`SimClock`
    (``engine.now``), set here to each frame's time; for a live source the wall clock.
    """

    def __init__(self, source: Source, estimator, engine, schedule: PoseSchedule, sinks=(),
                 panel_width: int = 800, publisher=None, max_buffer: int | None = None,
                 keep_shown: bool = True, progress: bool | None = False):
        self.source, self.estimator, self.engine, self.schedule = source, estimator, engine, schedule
        self.sinks, self.panel_width, self.publisher, self.keep_shown = list(sinks), panel_width, publisher, keep_shown
        self.live = source.live
        self.sim = engine.now if isinstance(engine.now, SimClock) else None
        if not self.live and self.sim is None:
            raise ValueError("a recorded source needs an engine on a SimClock (deterministic output)")
        self.fps = source.fps
        self.pose_rate = schedule.rate(self.fps)
        self.res = DemoResult(source=source.name, source_fps=self.fps, engine_rate=engine.cfg.rate,
                              max_people=getattr(estimator, "max_people", None))
        self.queue = FrameQueue(max_buffer or int(np.ceil(self.fps * 2.0)) + 2)
        self.keys = KeyframeLog()
        self.outputs = OutputLog(engine, engine.cfg.lookahead / self.pose_rate, publisher)
        self.renderer: Renderer | None = None
        self.first_t = self.last_t = None
        self.key_span = [np.inf, -np.inf]           # first and last keyframe time
        self.progress = self._progress_bar(progress)

    def _progress_bar(self, progress: bool | None):
        """tqdm over the source's frames (``None``: only on a terminal)."""
        if progress is False:
            return None
        from tqdm import tqdm
        total = getattr(self.source, "frame_count", 0) or None
        if total and getattr(self.source, "max_frames", None):
            total = min(total, self.source.max_frames)
        return tqdm(total=total, unit="frame", desc=f"posetween demo: {self.source.name}", leave=False,
                    disable=None if progress is None else False, file=sys.stderr)

    def now(self, frame: Frame) -> float:
        return self.engine.now() if self.live else frame.time

    # -------------------------------------------------------- one frame

    def on_frame(self, frame: Frame) -> bool:
        """One source frame: estimate on keyframes, run the engine, show the frames due.
        False when a window was closed."""
        now = self.now(frame)
        self.first_t = frame.time if self.first_t is None else self.first_t
        self.last_t = frame.time
        self.res.frames += 1
        image = frame.image
        if self.sinks and self.renderer is None:
            self.renderer = Renderer(image.shape[1], image.shape[0], self.panel_width)
        # The queue keeps the picture at panel size, or none without sinks (bounded memory).
        self.queue.add(Frame(frame.index, frame.time, self.renderer.shrink(image) if self.sinks else None))
        if self.schedule(frame):
            now = self._estimate(frame, now)
        self.outputs.step(self._set_clock(now))
        if self.progress is not None:
            self.progress.update(1)
        return self._drain(now)

    def _set_clock(self, now: float) -> float:
        if self.sim is not None:
            self.sim.t = now
        return now

    def _estimate(self, frame: Frame, now: float) -> float:
        """The estimator on a keyframe; its people go to the engine (``push_frame``)."""
        xy, conf, ids = people_of(self.estimator.estimate(frame.image))
        res = self.res
        res.keyframes += 1
        self.key_span[0], self.key_span[1] = min(self.key_span[0], frame.time), frame.time
        if self.live:
            now = self.engine.now()                 # the estimator took time
        self._set_clock(now)
        people: dict[str, PersonPose] = {}
        if len(xy):
            pushed = self.engine.push_frame(CAMERA, frame.time, xy, conf, layout="posetween19", ids=ids, now=now)
            for i, stream in enumerate(pushed.streams):
                if stream is not None:
                    people[stream] = PersonPose(frame.time, xy[i], conf[i])
                    res.people[stream] = res.people.get(stream, 0) + 1
        if people:
            res.keyframes_with_person += 1
        self.keys.add(frame.time, people)
        if self.keep_shown:
            res.keys.append((frame.index, frame.time, {s: (p.xy, p.conf) for s, p in people.items()}))
        return now

    def _drain(self, now: float, force: bool = False) -> bool:
        ok = True
        for frame in self.queue.due(now, self.outputs.delay, self.outputs.half, force):
            ok = self._show(frame) and ok
        return ok

    def _show(self, frame: Frame) -> bool:
        """One frame leaves the queue: the keyframe held at its time, the output for its time."""
        key_time, keys = self.keys.held_at(frame.time)
        outs = self.outputs.at(frame.time)
        shown = ShownFrame(frame.index, frame.time, key_time, keys, outs, self.outputs.delay if outs else None)
        if self.keep_shown:
            self.res.shown.append(shown)
        ok = True
        if self.sinks:
            header = Header(self.pose_rate, self.engine.cfg.rate, mean_model_ms(self.engine), self.estimator.mean_ms)
            img = self.renderer(frame.image, frame.index, shown, header)
            for sink in self.sinks:
                ok = sink.show(img) and ok
        return ok

    # -------------------------------------------------------- the end

    def flush(self) -> None:
        """Let the clock run on past the last frame so the queued frames get their poses. Live,
        the frames still waiting are shown with what the output has reached."""
        if self.last_t is None:
            return
        if self.live:
            now = self.engine.now()
            self.outputs.step(now)
        else:
            now = self.last_t
            deadline = self.last_t + self.outputs.delay + 2.0 / self.fps
            while len(self.queue) and now < deadline:
                now += 1.0 / self.fps
                self.outputs.step(self._set_clock(now))
                self._drain(now)
        self._drain(now, force=True)

    def finish(self, wall_s: float) -> DemoResult:
        """The numbers of the run (and the publisher's last stats message)."""
        res, engine = self.res, self.engine
        if self.progress is not None:
            self.progress.close()
        res.wall_s = wall_s
        if self.first_t is not None:
            res.duration_s = (self.last_t - self.first_t) + 1.0 / self.fps
            if res.keyframes > 1 and self.key_span[1] > self.key_span[0]:
                res.pose_rate = (res.keyframes - 1) / (self.key_span[1] - self.key_span[0])
            res.output_rate = self.outputs.rate_per_person()
        snap = engine.snapshot()
        delays = self.outputs.delays
        res.delay_ms = 1000.0 * float(np.median(delays)) if delays else float("nan")
        res.model_ms = mean_model_ms(engine)
        res.model_calls = int(snap["model_calls"])
        res.estimator_ms = self.estimator.mean_ms
        res.estimator_calls = float(getattr(self.estimator, "mean_calls", 1.0))
        res.restarts = dict(snap["restarts_by_reason"])
        res.fallbacks = int(snap["fallbacks"])
        res.output_kinds = dict(snap["frames_by_kind"])
        if self.publisher is not None:
            self.publisher.send_stats(snap)
            res.published = self.publisher.sent
        return res

    def run(self) -> DemoResult:
        t0 = time.perf_counter()
        running = True
        try:
            for frame in self.source:
                if not self.on_frame(frame):
                    running = False                  # the window was closed
                    break
        except KeyboardInterrupt:                    # Ctrl-C ends a live run: still flush and summarise
            log.info("interrupted")
        if running:
            self.flush()
        return self.finish(time.perf_counter() - t0)


def run_demo(source: Source, estimator, engine, schedule: PoseSchedule, sinks=(), panel_width: int = 800,
             publisher=None, max_buffer: int | None = None, keep_shown: bool = True,
             progress: bool | None = False) -> DemoResult:
    """Run the source through the estimator and the engine; returns what was shown
    (see :class:`DemoLoop`)."""
    return DemoLoop(source, estimator, engine, schedule, sinks, panel_width, publisher, max_buffer,
                    keep_shown, progress).run()


def make_engine(backend, rate: float, lookahead: int, budget_ms: float, clock, **config):
    from posetween.stream import Engine, EngineConfig
    return Engine(backend, EngineConfig(rate=rate, lookahead=lookahead, budget_ms=budget_ms, **config), clock=clock)


def mean_model_ms(engine) -> float:
    ms = list(engine.stats.model_ms)
    return float(np.mean(ms)) if ms else float("nan")


# ---------------------------------------------------------------- command line

def run(args) -> int:
    from posetween.export.backends import create_backend
    from posetween.stream.multi_pose import MultiPersonPose

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
        log.info("publishing output poses on %s (topics pose/%s/<person>)", publisher.address, CAMERA)

    estimator = MultiPersonPose(max_people=args.max_people, min_visibility=args.min_visibility)
    sink = (WindowSink(pace_fps=None if source.live else source.fps) if window
            else VideoSink(out_path, source.fps))
    startup = time.perf_counter() - t0
    try:
        res = run_demo(source, estimator, engine, schedule, [sink], args.panel_width, publisher,
                       keep_shown=False, progress=None)
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
    res.codec = getattr(sink, "codec", None)
    print(res.summary())
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="MediaPipe at a few fps in, smooth poses of every person out, side by side on the video",
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
    p.add_argument("--max-people", type=int, default=4, metavar="N",
                   help="follow at most N people: one MediaPipe call per person per keyframe, plus one "
                        "to look for newcomers while fewer are followed (default 4)")
    p.add_argument("--rate", type=float, default=60.0, help="posetween output rate, Hz (default 60)")
    p.add_argument("--lookahead", type=int, default=1, choices=(0, 1, 2),
                   help="1: interpolate (delay one input interval, default); 0: predict")
    p.add_argument("--budget-ms", type=float, default=10.0, help="the model's latency budget (default 10)")
    p.add_argument("--queries", type=int, default=EngineConfig.queries,
                   help=f"model samples per interval (default {EngineConfig.queries})")
    p.add_argument("--model", help="model file, or a shipped model by name: default (the default) or open")
    p.add_argument("--backend", default="auto", help="runtime backend (default auto, as posetween serve)")
    p.add_argument("--out", metavar="FILE.mp4", help=f"write the video here (default without a display: {DEFAULT_OUT})")
    p.add_argument("--headless", action="store_true", help="never open a window; write the video")
    p.add_argument("--panel-width", type=int, default=800, help="width of each of the two panels (default 800)")
    p.add_argument("--publish", metavar="ADDRESS", help="also publish output poses over ZeroMQ, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--allow-remote", action="store_true", help="allow --publish to bind a non-loopback address")
    p.set_defaults(func=run)
