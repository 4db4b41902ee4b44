"""Make the README's demo picture and GIF from the demo on the shipped clip.

    python scripts/demo_media.py [--model PATH] [--out-dir docs]

Runs the demo exactly as ``posetween demo`` does (simulated clock, deterministic), keeps the
composed frames losslessly, and writes ``demo.png`` (one whole frame) and ``demo.gif`` (a
stretch of frames cropped around the person, small enough for a README: < 2 MB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


class Keep:
    def __init__(self, wanted: set[int]):
        self.wanted, self.frames, self.i = wanted, {}, 0

    def show(self, img) -> bool:
        if self.i in self.wanted:
            self.frames[self.i] = img.copy()
        self.i += 1
        return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file (default: the shipped default model)")
    ap.add_argument("--out-dir", default="docs")
    ap.add_argument("--png-frame", type=int, default=214)
    ap.add_argument("--gif-frames", default="8:68", help="first:last frame of the GIF")
    ap.add_argument("--gif-step", type=int, default=2, help="every Nth frame (GIF at 30/N fps)")
    ap.add_argument("--gif-width", type=int, default=448)
    ap.add_argument("--panel-width", type=int, default=1768, help="render at this panel width (crop quality)")
    args = ap.parse_args()

    import imageio.v2 as imageio

    from posetween.export.backends import create_backend
    from posetween.offline.draw import COLORS, put_text
    from posetween.stream.demo import SimClock, make_engine, run_demo
    from posetween.stream.pose_estimator import MediaPipePose
    from posetween.stream.sources import PoseSchedule, VideoSource, default_clip

    a, b = (int(x) for x in args.gif_frames.split(":"))
    gif_idx = list(range(a, b + 1, args.gif_step))
    keep = Keep({args.png_frame, *gif_idx})
    engine = make_engine(create_backend("auto", model_path=args.model), 60.0, 1, 10.0, SimClock())
    with VideoSource(default_clip()) as src, MediaPipePose() as est:
        res = run_demo(src, est, engine, PoseSchedule(fps=7.5), [keep], args.panel_width)
    print(res.summary())
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = keep.frames[args.png_frame]
    png = cv2.resize(png, (1600, int(round(png.shape[0] * 1600 / png.shape[1]))), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out / "demo.png"), png, [cv2.IMWRITE_PNG_COMPRESSION, 9])

    # GIF: each panel cropped to the box around the poses shown in the stretch (plus a margin),
    # scaled down, under a one-line header of its own.
    first = keep.frames[gif_idx[0]]
    pw = first.shape[1] // 2
    ph = int(round(994 * pw / 1768))
    header = first.shape[0] - ph
    scale = pw / 1768
    pts = [s.out_xy[s.out_conf > 0] for s in res.shown if a <= s.index <= b and s.out_xy is not None]
    pts += [s.key_xy[s.key_conf > 0] for s in res.shown if a <= s.index <= b and s.key_xy is not None]
    p = np.concatenate(pts) * scale
    margin = 0.15 * (p.max(0) - p.min(0)).max()
    lo, hi = p.min(0) - margin, p.max(0) + margin
    x0, x1 = int(max(lo[0], 0)), int(min(hi[0], pw))
    y0, y1 = int(max(lo[1], 0)), int(min(hi[1], ph))
    half = (args.gif_width - 4) // 2
    h = int(round((y1 - y0) * half / (x1 - x0)))
    gif = []
    for i in gif_idx:
        body = keep.frames[i][header:]
        panels = []
        for k, (label, color) in enumerate(((f"MediaPipe {res.pose_rate:.3g} fps, held", COLORS["keyframes"]),
                                            (f"posetween {engine.cfg.rate:g} Hz, smooth", COLORS["posetween"]))):
            crop = cv2.resize(body[y0:y1, k * pw + x0:k * pw + x1], (half, h), interpolation=cv2.INTER_AREA)
            top = np.full((24, half, 3), 32, np.uint8)
            put_text(top, label, (6, 17), 0.5, color, 1)
            panels.append(np.concatenate([top, crop], 0))
        frame = np.concatenate([panels[0], np.full((h + 24, 4, 3), 255, np.uint8), panels[1]], 1)
        gif.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    imageio.mimsave(out / "demo.gif", gif, duration=1000 * args.gif_step / 30.0, loop=0)
    for name in ("demo.png", "demo.gif"):
        print(f"wrote {out / name} ({(out / name).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
