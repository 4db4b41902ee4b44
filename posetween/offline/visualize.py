"""``posetween visualize``: render skeleton sequences to a GIF or an MP4.

    posetween visualize OUT/model OUT/linear --out compare.gif
    posetween visualize keys=poses/@3.75 model=OUT/model linear=OUT/linear --out compare.mp4 --overlay
    posetween visualize OUT/model.npz OUT/linear.npz --out compare.gif --fps 30

Each input is ``[LABEL=]PATH[@FPS]``: a folder of OpenPose JSON or an npz (see
:mod:`posetween.offline.keypoint_io`); the label defaults to the folder or file name, ``@FPS``
gives the frame rate of an input without times (default ``--input-fps``). Inputs are
shown side by side (one panel each) or, with ``--overlay``, in one panel in different colours.
Every person of an input is drawn: side by side, an input of several people has a colour per
person (the demo's, by id) and their ids beside them; overlaid, every person of an input has
the input's colour. Sequences of different rates are aligned by time: each output frame shows,
for each input, its frame at or just before that time (a keyframe sequence is shown stepped).
The output rate is ``--fps`` (default: the fastest input's). An ``.mp4`` is H.264 (the demo's
writer), a ``.gif`` is written by imageio.
"""

from __future__ import annotations

import argparse
import errno
import logging
from pathlib import Path

import cv2
import numpy as np

from posetween.offline import keypoint_io as kio
from posetween.offline.draw import color_for, draw_skeleton, put_text
from posetween.stream.demo_video import VideoSink, person_color

log = logging.getLogger(__name__)


def parse_input(spec: str) -> tuple[str, Path, float | None]:
    """``[LABEL=]PATH[@FPS]`` -> (label, path, fps or None)."""
    label, sep, path = spec.partition("=")
    if not sep:
        path, label = spec, ""
    fps = None
    head, at, tail = path.rpartition("@")
    if at and head:
        try:
            fps = float(tail)
            path = head
        except ValueError:
            pass
    p = Path(path)
    return (label or (p.stem if p.suffix == ".npz" else p.name) or str(p)), p, fps


def load_input(path: Path, fps: float | None, default_fps: float = 30.0) -> kio.Tracks:
    """Read one input; ``fps`` (if given) overrides, ``default_fps`` serves inputs without times."""
    if not path.exists():   # before the format is guessed from what is there
        raise FileNotFoundError(errno.ENOENT, "no such file or folder", str(path))
    try:
        return kio.read_people(path, fps)
    except kio.MissingTimes:
        return kio.read_people(path, default_fps)


def person_colors(tracks: kio.Tracks, input_color, overlay: bool) -> list[tuple[int, int, int]]:
    """The colour of each person of an input: the input's for one person or in an overlay
    (there colour tells inputs apart), else one per person, as the demo colours them."""
    if overlay or tracks.people == 1:
        return [input_color] * tracks.people
    return [person_color(str(pid)) for pid in tracks.ids]


def draw_people(img: np.ndarray, tracks: kio.Tracks, f: int, colors, offset, scale: float) -> None:
    """Every person present on frame ``f``; with several people, each id beside its skeleton."""
    for p in np.flatnonzero((tracks.conf[f] > 0).any(-1)):
        xy, conf = tracks.xy[f, p], tracks.conf[f, p]
        draw_skeleton(img, xy, conf, colors[p], thickness=2, offset=offset, scale=scale)
        if tracks.people > 1:
            top = xy[conf > 0] * scale + offset
            put_text(img, str(tracks.ids[p]), (top[:, 0].min(), top[:, 1].min() - 6), 0.45, colors[p], 1)


def render_frames(seqs: list[tuple[str, kio.Tracks]], fps: float | None = None, size: int = 360,
                  overlay: bool = False, margin: float = 0.08):
    """Yield BGR frames (H, W, 3) for the inputs ``(label, tracks)``."""
    if not seqs:
        raise ValueError("nothing to render")
    all_xy = np.concatenate([tr.xy[tr.conf > 0] for _, tr in seqs if (tr.conf > 0).any()] or [np.zeros((1, 2))])
    all_xy = all_xy[np.isfinite(all_xy).all(-1)]
    lo, hi = (all_xy.min(0), all_xy.max(0)) if len(all_xy) else (np.zeros(2), np.ones(2))
    extent = max(float((hi - lo).max()), 1e-6) * (1 + 2 * margin)
    scale = size / extent
    offset = size / 2 - (lo + hi) / 2 * scale
    fps = fps or fastest_rate(seqs)
    t0 = min(tr.t[0] for _, tr in seqs)
    n = frame_count(seqs, fps)
    panels = 1 if overlay else len(seqs)
    colors = [person_colors(tr, color_for(label, i), overlay) for i, (label, tr) in enumerate(seqs)]
    for k in range(n):
        tk = t0 + k / fps
        img = np.full((size, size * panels, 3), 255, np.uint8)
        for i, (label, tr) in enumerate(seqs):
            f = int(np.searchsorted(tr.t, tk + 1e-6, side="right")) - 1
            px = 0 if overlay else i * size
            if 0 <= f < len(tr.t):
                draw_people(img, tr, f, colors[i], (offset[0] + px, offset[1]), scale)
            put_text(img, label, (px + 8, 22 + (18 * i if overlay else 0)), 0.55, color_for(label, i), 1)
        if not overlay:
            for i in range(1, panels):
                cv2.line(img, (i * size, 0), (i * size, size), (200, 200, 200), 1)
        put_text(img, f"{tk - t0:6.2f} s", (8, size - 10), 0.5, (90, 90, 90), 1)
        yield img


def fastest_rate(seqs) -> float:
    """The frame rate of the fastest input (10 when none has two frames)."""
    rates = [1.0 / np.median(np.diff(tr.t)) for _, tr in seqs if len(tr.t) > 1]
    return float(max(rates)) if rates else 10.0


def frame_count(seqs, fps: float) -> int:
    """Output frames from the first input's start to the last one's end at ``fps``."""
    t0 = min(tr.t[0] for _, tr in seqs)
    t1 = max(tr.t[-1] for _, tr in seqs)
    return int(np.floor((t1 - t0) * fps + 1e-6)) + 1


def write_video(path: Path, frames, fps: float) -> int:
    """Write BGR frames to .gif (imageio) or an H.264 .mp4 (the demo's ``VideoSink``). Returns
    the frame count."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        import imageio.v2 as imageio
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with imageio.get_writer(path, mode="I", duration=1.0 / fps, loop=0) as w:
            for img in frames:
                w.append_data(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
                n += 1
        return n
    sink = VideoSink(path, fps)
    try:
        for img in frames:
            sink.show(img)
    finally:
        sink.close()
    return sink.frames


def run(args) -> int:
    from tqdm import tqdm

    seqs = []
    for spec in args.inputs:
        label, path, fps = parse_input(spec)
        seqs.append((label, load_input(path, fps, args.input_fps)))
    fps = args.fps or fastest_rate(seqs)
    frames = render_frames(seqs, fps, size=args.size, overlay=args.overlay)
    progress = tqdm(frames, total=frame_count(seqs, fps), desc=f"rendering {Path(args.out).name}", unit="frame",
                    disable=None, leave=False)   # disable=None: a bar on a terminal only
    n = write_video(Path(args.out), progress, fps)
    print(f"wrote {n} frames at {fps:.3g} fps to {args.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("visualize", help="render skeleton sequences (OpenPose JSON folders, npz) to GIF or MP4",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="[LABEL=]PATH[@FPS]: a folder of OpenPose JSON or an npz")
    p.add_argument("--out", required=True, help="output .gif or .mp4 (H.264)")
    p.add_argument("--overlay", action="store_true", help="one panel, one colour per input (default: side by side)")
    p.add_argument("--fps", type=float, help="output rate (default: the fastest input's)")
    p.add_argument("--input-fps", type=float, default=30.0,
                   help="frame rate of inputs that carry no times, e.g. OpenPose folders (default 30)")
    p.add_argument("--size", type=int, default=360, help="panel size in pixels (default 360)")
    p.set_defaults(func=run)
