"""Make the README's demo picture and GIF from the demo on the shipped clip.

    python scripts/demo_media.py [--model PATH] [--out-dir docs]

Runs the demo exactly as ``posetween demo`` (``make demo``) does -- simulated clock, so the
output is deterministic; MediaPipe per person, at most 4 -- keeps the composed frames
losslessly, and writes ``demo.png`` (one whole frame, both panels) and ``demo.gif`` (a stretch
of frames with both people, each panel cropped around them, scaled down), in 256 and 128
colours to stay a few hundred KB.
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


def gif_crops(keep: Keep, indices: list[int], res, rate: float) -> list[np.ndarray]:
    """Each panel cropped to the box around every pose shown in the stretch (plus a margin),
    under a one-line header of its own, the two side by side."""
    from posetween.offline.draw import put_text
    from posetween.stream.demo_video import KEYFRAMES, POSETWEEN

    first = keep.frames[indices[0]]
    pw = first.shape[1] // 2
    ph = int(round(994 * pw / 1768))
    header = first.shape[0] - ph
    scale = pw / 1768
    a, b = indices[0], indices[-1]
    pts = [p.xy[p.conf > 0] for s in res.shown if a <= s.index <= b for p in (*s.outs.values(), *s.keys.values())]
    p = np.concatenate(pts) * scale
    margin = 0.1 * (p.max(0) - p.min(0)).max()
    lo, hi = p.min(0) - margin, p.max(0) + margin
    x0, x1 = int(max(lo[0], 0)), int(min(hi[0], pw))
    y0, y1 = int(max(lo[1], 0)), int(min(hi[1], ph))
    out = []
    for i in indices:
        body = keep.frames[i][header:]
        panels = []
        for k, (label, color) in enumerate(((f"MediaPipe {res.pose_rate:.3g} fps, held", KEYFRAMES),
                                            (f"posetween {rate:g} Hz", POSETWEEN))):
            crop = body[y0:y1, k * pw + x0:k * pw + x1]
            top = np.full((int(0.09 * crop.shape[0]), crop.shape[1], 3), 32, np.uint8)
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
            size = min(0.85 * crop.shape[1] / tw, 0.6 * top.shape[0] / th)     # fits the header
            put_text(top, label, (int(0.04 * crop.shape[1]), int(0.78 * top.shape[0])), size, color,
                     max(1, int(2 * size)))
            panels.append(np.concatenate([top, crop], 0))
        out.append(np.concatenate([panels[0], np.full((panels[0].shape[0], 6, 3), 255, np.uint8), panels[1]], 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model file (default: the shipped default model)")
    ap.add_argument("--out-dir", default="docs")
    ap.add_argument("--png-frame", type=int, default=122)
    ap.add_argument("--png-width", type=int, default=1400)
    ap.add_argument("--gif-frames", default="104:152", help="first:last frame of the GIF")
    ap.add_argument("--gif-step", type=int, default=3, help="every Nth frame (GIF at 30/N fps)")
    ap.add_argument("--gif-width", type=int, default=440)
    ap.add_argument("--gif-colors", type=int, default=128)
    ap.add_argument("--max-people", type=int, default=4)
    args = ap.parse_args()

    from PIL import Image

    from posetween.export.backends import create_backend
    from posetween.stream.demo import SimClock, make_engine, run_demo
    from posetween.stream.multi_pose import MultiPersonPose
    from posetween.stream.sources import PoseSchedule, VideoSource, default_clip

    a, b = (int(x) for x in args.gif_frames.split(":"))
    gif_idx = list(range(a, b + 1, args.gif_step))
    keep = Keep({args.png_frame, *gif_idx})
    engine = make_engine(create_backend("auto", model_path=args.model), 60.0, 1, 10.0, SimClock())
    with VideoSource(default_clip()) as src, MultiPersonPose(max_people=args.max_people) as est:
        res = run_demo(src, est, engine, PoseSchedule(fps=7.5), [keep], args.png_width // 2, progress=None)
    print(res.summary())
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def pil(img: np.ndarray, width: int) -> Image.Image:
        h = int(round(img.shape[0] * width / img.shape[1]))
        img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
        return Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

    png = pil(keep.frames[args.png_frame], args.png_width).quantize(256, method=Image.Quantize.MEDIANCUT)
    png.save(out / "demo.png", optimize=True)
    frames = [pil(frame, args.gif_width) for frame in gif_crops(keep, gif_idx, res, engine.cfg.rate)]
    # One palette for every frame (no flicker), made from a few frames across the stretch.
    sample = Image.new("RGB", (frames[0].width, frames[0].height * 3))
    for k, f in enumerate(frames[:: max(len(frames) // 3, 1)][:3]):
        sample.paste(f, (0, k * frames[0].height))
    palette = sample.quantize(args.gif_colors, method=Image.Quantize.MEDIANCUT)
    gif = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    gif[0].save(out / "demo.gif", save_all=True, append_images=gif[1:], loop=0, optimize=True,
                duration=int(round(1000 * args.gif_step / 30.0)))
    for name in ("demo.png", "demo.gif"):
        print(f"wrote {out / name} ({(out / name).stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
