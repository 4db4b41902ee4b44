"""``posetween eval``: the model against classical baselines on held-out motion capture.

Each test motion is projected through fixed, seeded virtual cameras; keyframes are taken at the
input rate (every n-th frame), optionally made noisy; every method then fills each interval
from the same window of keyframes the streaming engine would give the model (the K newest up
to the interval's right end for lookahead 1, further for 2, up to its left end for lookahead
0). Errors are in torso lengths on the frames between keyframes (see posetween.core.metrics).

    posetween eval --data data/bandai.h5 --split test --input-fps 7.5 --output-fps 30 \\
        [--noisy] [--lookahead 1] [--model PATH] --json out.json [--report out.md]
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from posetween.core import baselines, metrics
from posetween.core.model import ModelConfig, PoseTween, load_model
from posetween.training.build_data import load_motions
from posetween.training.config import SplitConfig, load_config
from posetween.training.keypoint_sources import load_keypoints
from posetween.training.splits import split_of
from posetween.core.skeleton import JOINT_INDEX, MID_HIP, NECK
from posetween.training.windows import LAYOUT_MISSING, Camera, apply_layout
from posetween.stream.engine import MAX_EXTRAPOLATION, fallback_batch
from posetween.stream.guard import Guard

log = logging.getLogger("posetween.eval")

TUNING_MOTIONS = 40                # validation motions the One-Euro filter is tuned on
# "guarded": the model's answers as the streaming engine shows them, its guard on (stream/guard.py).
INTERPOLATION_METHODS = ("model", "guarded", "linear", "cubic", "curve", "one_euro")
PREDICTION_METHODS = ("model", "constant_velocity", "linear", "one_euro")


@dataclass
class EvalSettings:
    input_fps: float = 7.5
    output_fps: float | None = None   # default: the data's own rate
    lookahead: int = 1
    noisy: bool = False
    noise: float = 0.04               # --noisy: keyframe noise std, torso lengths
    missing: float = 0.10             # --noisy: share of keyframe joints missing
    views: int = 4
    seed: int = 0
    layout: str = "posetween19"       # coco17: inputs and truth as a COCO-17 detector gives them
    one_euro_min_cutoff: float = 1.0  # Hz (tuned on validation data when the data has some)
    one_euro_beta: float = 1.0        # per (torso length / s)


# A COCO-17 detector's hip points are the lateral hip points (the greater trochanters), wider
# than the joint centres motion capture gives: the hips are moved apart by this factor.
COCO_HIP_WIDTH = 1.25


@dataclass
class Windows:
    """Every interval of every view of every motion, as model inputs, with bookkeeping."""
    key_xy: np.ndarray        # (N, K, J, 2)
    key_conf: np.ndarray      # (N, K, J)
    key_time: np.ndarray      # (N, K)
    query_time: np.ndarray    # (N, Q)
    target: np.ndarray        # (N, Q, J, 2)
    one_euro_keys: np.ndarray  # (N, K, J, 2): the same keyframes after a causal One-Euro filter
    torso: np.ndarray         # (N,)
    track: np.ndarray         # (N,) which (motion, view) the interval belongs to


def camera_for(name: str, view: int, seed: int) -> Camera:
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}/{view}/{seed}".encode()))
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(1, generator=g)
    return Camera(yaw=u(-np.pi, np.pi), pitch=u(-0.25, 0.25), roll=u(-0.05, 0.05),
                  distance=u(5.0, 8.0), focal=u(800.0, 1200.0),
                  principal=torch.tensor([[640.0, 360.0]]))


def one_euro_keys(key_xy, key_conf, key_time, torso, s: EvalSettings) -> np.ndarray:
    f = baselines.OneEuroFilter(min_cutoff=s.one_euro_min_cutoff, beta=s.one_euro_beta)
    out = np.empty_like(key_xy)
    for m in range(len(key_xy)):
        out[m] = f(key_time[m], key_xy[m] / torso, key_conf[m] > 0) * torso
    return out


def as_detector(gt: np.ndarray, layout: str) -> np.ndarray:
    """Ground truth (T, J, 2) as a detector of ``layout`` reports it: for coco17, neck and
    mid-hip the means of the shoulders and hips, no hand centres or big toes (the lateral hip
    points, ``widen_hips`` before projection, are the caller's job)."""
    if layout == "posetween19":
        return gt
    if layout != "coco17":
        raise ValueError(f"unknown evaluation layout {layout!r}: use posetween19 or coco17")
    xy, lacking = apply_layout(torch.as_tensor(gt)[None], torch.tensor([list(LAYOUT_MISSING).index(layout)]))
    out = xy[0].numpy().copy()
    out[:, lacking[0].numpy()] = np.nan
    return out


def widen_hips(world: torch.Tensor, factor: float) -> torch.Tensor:
    hips = [JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]
    mid = world[..., hips, :].mean(-2, keepdim=True)
    out = world.clone()
    out[..., hips, :] = mid + factor * (world[..., hips, :] - mid)
    return out


def interval_windows(key_t: np.ndarray, key_xy: np.ndarray, key_conf: np.ndarray, query_t: np.ndarray,
                     target: np.ndarray, newest: np.ndarray, torso: float, track: int, window: int,
                     s: EvalSettings) -> dict:
    """The windows of one track: keyframes (M, ...) at times key_t, and for each interval its
    query times (I, Q), truth (I, Q, J, 2) and the index of the newest keyframe the engine has."""
    filtered = one_euro_keys(key_xy, key_conf, key_t, torso, s)
    # Pad K-1 empty slots in front so that every window has K slots (start of a stream).
    pad = window - 1
    pad_t = key_t[0] - (np.arange(pad, 0, -1)) / s.input_fps
    P = lambda a, fill: np.concatenate([np.full((pad,) + a.shape[1:], fill), a])
    idx = newest[:, None] + np.arange(window)        # in padded indexing
    return dict(key_xy=P(key_xy, np.nan)[idx], key_conf=P(key_conf, 0.0)[idx],
                key_time=np.concatenate([pad_t, key_t])[idx], query_time=query_t, target=target,
                one_euro_keys=P(filtered, np.nan)[idx], torso=np.full(len(idx), torso),
                track=np.full(len(idx), track))


def intervals_for(M: int, lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """Intervals (index of their left keyframe) among M keyframes, and the newest keyframe the
    engine has when it fills each."""
    intervals = np.arange(0, M - max(lookahead, 1))
    return intervals, intervals + lookahead


def build_windows(motions, window: int, s: EvalSettings) -> Windows:
    rng = np.random.default_rng(s.seed)
    parts, track = [], 0
    for m in tqdm(motions, desc="windows", leave=False):
        stride = m.fps / s.input_fps
        out_fps = s.output_fps or m.fps
        step = m.fps / out_fps
        if abs(stride - round(stride)) > 1e-6 or abs(step - round(step)) > 1e-6 or round(stride) % round(step):
            raise ValueError(f"{m.subset}/{m.name}: {m.fps:g} fps data cannot give keyframes at "
                             f"{s.input_fps:g} fps and output at {out_fps:g} fps (need integer frame strides)")
        stride, step = round(stride), round(step)
        T = len(m.joints)
        key_frames = np.arange(0, T, stride)
        intervals, newest = intervals_for(len(key_frames), s.lookahead)
        if len(intervals) == 0:
            continue
        query_frames = key_frames[intervals, None] + step * np.arange(1, stride // step + 1)
        times = np.arange(T) / m.fps
        world = torch.as_tensor(m.joints, dtype=torch.float32)[None]
        if s.layout == "coco17":
            world = widen_hips(world, COCO_HIP_WIDTH)
        for v in range(s.views):
            gt = camera_for(f"{m.subset}/{m.name}", v, s.seed).project(world)[0].double().numpy()
            torso_seq = np.nanmean(np.linalg.norm(gt[:, 1] - gt[:, 8], axis=-1))
            gt = as_detector(gt, s.layout)
            key_xy = gt[key_frames].copy()
            key_conf = np.ones(key_xy.shape[:2])
            if s.noisy:
                key_xy += rng.normal(0, s.noise * torso_seq, key_xy.shape)
                key_conf[rng.random(key_conf.shape) < s.missing] = 0
            key_conf[~np.isfinite(key_xy).all(-1)] = 0
            key_xy[key_conf == 0] = np.nan
            parts.append(interval_windows(times[key_frames], key_xy, key_conf, times[query_frames],
                                          gt[query_frames], newest, torso_seq, track, window, s))
            track += 1
    return concat_windows(parts)


def build_keypoint_windows(tracks, window: int, every: int, s: EvalSettings) -> Windows:
    """Windows over real 2D keypoint tracks: every ``every``-th real frame is a keyframe, and the
    truth is the real frames left out (missing where the detector missed them)."""
    parts = []
    for n, tr in enumerate(tqdm(tracks, desc="windows", leave=False)):
        T = len(tr.xy)
        key_frames = np.arange(0, T, every)
        intervals, newest = intervals_for(len(key_frames), s.lookahead)
        torso = np.nanmean(np.linalg.norm(tr.xy[:, NECK] - tr.xy[:, MID_HIP], axis=-1))
        if len(intervals) == 0 or not np.isfinite(torso) or torso <= 0:
            continue
        query_frames = key_frames[intervals, None] + np.arange(1, every + 1)
        times = np.arange(T) / tr.fps
        truth = np.where(tr.conf[..., None] > 0, tr.xy, np.nan)
        parts.append(interval_windows(times[key_frames], truth[key_frames], tr.conf[key_frames],
                                      times[query_frames], truth[query_frames], newest, torso, n, window,
                                      replace(s, input_fps=tr.fps / every)))
    return concat_windows(parts)


def concat_windows(parts: list[dict]) -> Windows:
    if not parts:
        raise ValueError("no motion is long enough for these settings")
    return Windows(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


@torch.no_grad()
def run_model(model: PoseTween, w: Windows, chunk: int = 1024) -> np.ndarray:
    outs = []
    for i in tqdm(range(0, len(w.key_xy), chunk), desc="model", leave=False):
        sl = slice(i, i + chunk)
        t = lambda a: torch.as_tensor(a[sl], dtype=torch.float32)
        # Times relative to the window's newest keyframe keep float32 precise on long clips.
        t_ref = w.key_time[sl, -1:]
        q, _ = model(t(w.key_xy), t(w.key_conf), torch.as_tensor(w.key_time[sl] - t_ref, dtype=torch.float32),
                     torch.as_tensor(w.query_time[sl] - t_ref, dtype=torch.float32))
        outs.append(q.double().numpy())
    return np.concatenate(outs)


def in_chunks(method, w: Windows, n: int = 4096) -> np.ndarray:
    """``method(key_xy, key_conf, key_time, query_time)`` over the windows n at a time: a
    per-joint curve's (windows, queries, keyframes, joints) terms are large."""
    return np.concatenate([method(w.key_xy[i:i + n], w.key_conf[i:i + n], w.key_time[i:i + n], w.query_time[i:i + n])
                           for i in range(0, len(w.key_xy), n)])


def run_method(name: str, model: PoseTween | None, w: Windows) -> np.ndarray:
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)
    if name == "model":
        return run_model(model, w)
    if name == "cubic":
        return baselines.cubic(w.key_xy, w.key_conf, w.key_time, w.query_time)
    if name == "linear":
        return baselines.linear(t(w.key_xy), t(w.key_conf), t(w.key_time), t(w.query_time)).numpy()
    if name == "curve":
        return in_chunks(lambda *a: baselines.curve(*map(t, a)).numpy(), w)
    if name == "constant_velocity":
        return baselines.constant_velocity(t(w.key_xy), t(w.key_conf), t(w.key_time), t(w.query_time)).numpy()
    if name == "one_euro":   # filtered keyframes, then linear (constant velocity past the newest)
        seen = np.isfinite(w.one_euro_keys).all(-1).astype(float)
        return baselines.constant_velocity(t(w.one_euro_keys), t(seen), t(w.key_time), t(w.query_time)).numpy()
    raise ValueError(f"unknown method {name!r}")


def guarded(model_out: np.ndarray, w: Windows) -> np.ndarray:
    """The model's answers as the streaming engine's guard passes them on: along each track, in
    order, the guard compares the previous answer and the engine's fallback curve with each new
    keyframe and shows ``curve + trust * (model - curve)`` (``Engine._guarded``)."""
    curve = in_chunks(lambda *a: fallback_batch(*a, MAX_EXTRAPOLATION), w)
    out = model_out.copy()
    for track in np.unique(w.track):
        guard = Guard()
        for i in np.flatnonzero(w.track == track):
            guard.observe(0, w.key_time[i, -1], w.key_xy[i, -1], w.key_conf[i, -1])
            trust = guard.trust
            guard.expect(0, w.query_time[i], model_out[i], curve[i])
            if trust < 1.0:
                out[i] = np.where(np.isfinite(curve[i]), curve[i] + trust * (model_out[i] - curve[i]), model_out[i])
    return out


def score(pred: np.ndarray, w: Windows) -> dict[str, float]:
    dists, coords, accels, firsts, unanswered = [], [], [], [], 0
    # The last query of each interval is the keyframe at its right end: not "between".
    for track in np.unique(w.track):
        rows = np.flatnonzero(w.track == track)
        torso = w.torso[rows[0]]
        p, g = pred[rows], w.target[rows]
        e = metrics.position_errors(p[:, :-1].reshape(-1, *p.shape[2:]), g[:, :-1].reshape(-1, *g.shape[2:]), torso)
        dists.append(e["dist"])
        coords.append(e["coord"])
        unanswered += e["unanswered"]
        # The first output frame after the interval's left keyframe: where moving a clean keyframe shows.
        firsts.append(metrics.position_errors(p[:, 0], g[:, 0], torso)["dist"])
        accels.append(metrics.acceleration_error(p.reshape(-1, *p.shape[2:]), g.reshape(-1, *g.shape[2:]), torso))
    out = metrics.summarize(dists, coords, accels, unanswered)
    first = np.concatenate(firsts)
    out["first"] = float(first.mean()) if first.size else float("nan")
    return out


ONE_EURO_GRID = {"min_cutoff": (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), "beta": (0.0, 0.05, 0.2, 1.0, 5.0)}


def tune_one_euro(validation: Windows, s: EvalSettings) -> tuple[float, float]:
    """The One-Euro filter's (min_cutoff, beta) with the lowest MPJPE (filtered keyframes, then
    linear) on validation windows, from ONE_EURO_GRID: the baseline at its best, not at
    arbitrary defaults."""
    best, params = np.inf, (s.one_euro_min_cutoff, s.one_euro_beta)
    rows = np.unique(validation.track)
    for mc in ONE_EURO_GRID["min_cutoff"]:
        for beta in ONE_EURO_GRID["beta"]:
            trial = EvalSettings(**{**asdict(s), "one_euro_min_cutoff": mc, "one_euro_beta": beta})
            keys = np.concatenate([one_euro_keys_of(validation, t, trial) for t in rows])
            err = score(run_method("one_euro", None, replace(validation, one_euro_keys=keys)), validation)["mpjpe"]
            if err < best:
                best, params = err, (mc, beta)
    return params


def tuned_one_euro(validation, window: int, s: EvalSettings, cache: Path) -> tuple[float, float]:
    """tune_one_euro on the validation motions for these settings, remembered in ``cache`` (a
    JSON file beside the results) so that the evaluations of one report tune each setting once."""
    key = f"{s.input_fps:g} fps, lookahead {s.lookahead}, {'noisy' if s.noisy else 'clean'}, {s.layout}"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if key not in known:
        # Scored at the middle of each interval (output at twice the input rate), on the motions
        # that have a frame there (30 fps data has none at 30 fps in).
        middle = lambda m: m.fps / (2 * s.input_fps)
        usable = [m for m in validation if middle(m) >= 1 and abs(middle(m) - round(middle(m))) < 1e-6]
        tuning = build_windows(usable, window, replace(s, views=1, output_fps=2 * s.input_fps))
        known[key] = tune_one_euro(tuning, s)
        log.info("One-Euro tuned on %d validation motions (%s): min_cutoff %g Hz, beta %g",
                 len(validation), key, *known[key])
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1))
    return tuple(known[key])


def one_euro_keys_of(w: Windows, track: int, s: EvalSettings) -> np.ndarray:
    """One track's windows' keyframes through a One-Euro filter run along the track, as
    ``interval_windows`` does: each window holds the filter's state at its keyframes."""
    rows = np.flatnonzero(w.track == track)
    key_xy, key_conf, key_time = w.key_xy[rows], w.key_conf[rows], w.key_time[rows]
    # The track's keyframes in order: the first window's, then each next window's newest.
    seq_xy = np.concatenate([key_xy[0], key_xy[1:, -1]])
    seq_conf = np.concatenate([key_conf[0], key_conf[1:, -1]])
    seq_t = np.concatenate([key_time[0], key_time[1:, -1]])
    filtered = one_euro_keys(seq_xy, seq_conf, seq_t, w.torso[rows[0]], s)
    K = key_xy.shape[1]
    return filtered[np.arange(len(rows))[:, None] + np.arange(K)]


def evaluate(model: PoseTween, motions, s: EvalSettings, windows: Windows | None = None) -> dict:
    """Every method on the windows of ``motions`` (or on ``windows``, when given)."""
    w = windows if windows is not None else build_windows(motions, model.cfg.window, s)
    methods = PREDICTION_METHODS if s.lookahead == 0 else INTERPOLATION_METHODS
    results, model_out = {}, None
    for name in tqdm(methods, desc=f"{s.input_fps:g} fps", leave=False):
        if name == "guarded":
            pred = guarded(model_out, w)
        else:
            pred = run_method(name, model, w)
        if name == "model":
            model_out = pred
        results[name] = score(pred, w)
    results["settings"] = {**asdict(s), "motions": len(motions), "intervals": int(len(w.key_xy)),
                           "window": model.cfg.window}
    return results


def markdown_table(results: dict) -> str:
    methods = [k for k in results if k != "settings"]
    cols = ("mpjpe", "first", "pck@0.1", "accel", "mse", "mae", "max")
    base = "linear" if "linear" in results else methods[1]
    lines = ["| method | " + " | ".join(cols) + f" | mpjpe / {base} |", "|---" * (len(cols) + 2) + "|"]
    for m in methods:
        r = results[m]
        lines.append(f"| {m} | " + " | ".join(f"{r.get(c, float('nan')):.4f}" for c in cols)
                     + f" | {r['mpjpe'] / results[base]['mpjpe']:.3f} |")
    return "\n".join(lines)


def write_report(path: Path, by_fps: dict[float, dict], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = sorted(by_fps)
    methods = [k for k in by_fps[rates[0]] if k != "settings"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        ax.plot(rates, [by_fps[r][m]["mpjpe"] for r in rates], marker="o", label=m)
    ax.set_xlabel("input rate (fps)")
    ax.set_ylabel("MPJPE (torso lengths)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(rates, [f"{r:g}" for r in rates])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plot = path.with_suffix(".png")
    fig.savefig(plot, dpi=120)
    plt.close(fig)
    settings = by_fps[rates[0]]["settings"]
    parts = [f"# {title}", "", f"![error against input rate]({plot.name})", "",
             "Errors in torso lengths (neck to mid-hip), on the frames between keyframes; "
             "`first`: the MPJPE of the first output frame after each keyframe; "
             "accel in torso lengths per output frame squared.", "",
             "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "input_fps"), ""]
    for r in rates:
        parts += [f"## {r:g} fps in", "", markdown_table(by_fps[r]), ""]
    path.write_text("\n".join(parts))


def _run(args) -> int:
    split_cfg = load_config(args.split_config).data.split if args.split_config else SplitConfig()
    if not args.data and not args.keypoints:
        raise SystemExit("give --data (motion capture) or --keypoints (real 2D keypoints)")
    if args.keypoints:
        motions = load_keypoints(args.keypoints)
    else:
        motions = [m for m in load_motions(args.data, subsets=args.subset)
                   if args.split == "all" or split_of(m.subset, m.name, split_cfg) == args.split]
    if args.limit:
        motions = motions[:args.limit]
    if not motions:
        raise SystemExit(f"no motions in split {args.split!r} of {args.data or args.keypoints}")
    model = load_model(args.model)
    if args.curve_blend is not None:
        if not 0 <= args.curve_blend <= 1:
            raise ValueError(f"--curve-blend {args.curve_blend}: a share, from 0 to 1")
        model.cfg.curve_blend, model.cfg.curve_blend_per_octave = args.curve_blend, 0.0
    # The One-Euro filter is tuned on the validation split of the training sources (a sample).
    validation = [] if args.no_tune_one_euro or not args.data else [
        m for m in load_motions(args.data) if split_of(m.subset, m.name, split_cfg) == "validation"]
    validation = validation[::max(1, len(validation) // TUNING_MOTIONS)]
    by_fps = {}
    for fps in args.input_fps:
        s = EvalSettings(input_fps=fps, output_fps=args.output_fps, lookahead=args.lookahead,
                         noisy=args.noisy, views=args.views, layout=args.layout)
        if validation:
            s.one_euro_min_cutoff, s.one_euro_beta = tuned_one_euro(validation, model.cfg.window, s,
                                                                    Path(args.json).parent / "one-euro-tuned.json")
        windows = build_keypoint_windows(motions, model.cfg.window, args.every, s) if args.keypoints else None
        by_fps[fps] = evaluate(model, motions, s, windows)
        by_fps[fps]["settings"].update(data=args.keypoints or args.data, split=args.split,
                                       model=args.model or "default",
                                       **{k: getattr(model.cfg, k) for k in ModelConfig.INFERENCE_ONLY})
        print(f"\n{fps:g} fps in, lookahead {args.lookahead}{', noisy' if args.noisy else ''}:")
        print(markdown_table(by_fps[fps]))
    out = dict(by_fps[args.input_fps[0]])
    if len(by_fps) > 1:
        out["by_input_fps"] = {f"{k:g}": v for k, v in by_fps.items()}
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=2))
    report = Path(args.report) if args.report else json_path.with_suffix(".md")
    title = f"lookahead {args.lookahead}, {'noisy' if args.noisy else 'clean'} input"
    write_report(report, by_fps, title)
    print(f"wrote {json_path} and {report}")
    return 0
