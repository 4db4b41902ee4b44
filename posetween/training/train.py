"""``posetween train``: train the motion model on windows drawn from motion capture.

    posetween train [--config configs/default.yaml] --batch-size 64 --name NAME [--resume]
    torchrun --nproc_per_node 2 -m posetween.cli train ...   # DistributedDataParallel

A run lives in ``runs/NAME/``: ``config.yaml``, ``last.pt`` (everything needed to resume exactly:
model, optimizer, scheduler, step, every random state), ``best.pt`` (lowest validation error),
``model.pt`` (the best weights alone, what ``--model`` takes) and TensorBoard logs in ``tb/``.
Ctrl-C or SIGTERM saves ``last.pt`` before leaving, and ``--until STEP`` stops early on purpose:
on a small machine, train in pieces and continue with ``--resume``. ``--init MODEL.pt`` starts a
new run (fresh optimizer and schedule) from a model file's weights, for instance the shipped
default: the run's files then count the steps and time of the weights it started from too. The
new run may have more encoder or decoder layers than the file (``--set model.encoder_layers=5``):
the added layers start as the identity, so training goes on from the file's accuracy with more
capacity.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from posetween.core import baselines
from posetween.core.model import ModelConfig, PoseTween, load_weights, save_model
from posetween.training.build_data import load_motions
from posetween.training.config import TrainConfig, load_config, override, to_dict
from posetween.training.splits import split_of
from posetween.training.windows import MotionClips, sample_windows

log = logging.getLogger("posetween.train")


def subset_weight(subset: str, weights: dict[str, float]) -> float:
    return next((float(w) for prefix, w in weights.items() if subset.startswith(prefix)), 1.0)


def load_clips(cfg: TrainConfig, split: str) -> MotionClips:
    motions = [m for m in load_motions(cfg.data.path, subsets=cfg.data.subsets or None)
               if split_of(m.subset, m.name, cfg.data.split) == split]
    return MotionClips.from_motions([(f"{m.subset}/{m.name}", m.fps, m.joints) for m in motions],
                                    [subset_weight(m.subset, cfg.data.subset_weights) for m in motions])


def joint_errors(pred: torch.Tensor, target: torch.Tensor, torso: torch.Tensor, mask: torch.Tensor | None = None):
    """Per-joint position errors in torso lengths (0 where they do not count) and where they count:
    joints absent from the ground truth (NaN) and masked-out entries do not."""
    err = (pred - target).norm(dim=-1) / torso.view(-1, *([1] * (pred.dim() - 2)))
    ok = torch.isfinite(err)
    if mask is not None:
        ok = ok & mask
    return torch.where(ok, err, torch.zeros_like(err)), ok


def mpjpe(pred: torch.Tensor, target: torch.Tensor, torso: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean per-joint position error in torso lengths."""
    err, ok = joint_errors(pred, target, torso, mask)
    return err.sum() / ok.sum().clamp(min=1)


def relative_mpjpe(pred: torch.Tensor, linear: torch.Tensor, target: torch.Tensor, torso: torch.Tensor,
                   floor: float) -> torch.Tensor:
    """Each window's error as a share of linear interpolation's on the same joints (plus ``floor``
    torso lengths), averaged over windows and scaled by the batch's mean linear error so that it
    reads in torso lengths like ``mpjpe``. Plain MPJPE is ruled by the windows with the most motion;
    this weighs every window alike, so a small error where linear is nearly exact (a still body,
    30 fps in) costs as much as a large one in a fast jump: the model learns to do no harm there."""
    err, ok = joint_errors(pred, target, torso, torch.isfinite(linear).all(-1))
    lin, _ = joint_errors(linear, target, torso, ok)
    n = ok.flatten(1).sum(1)
    has = n > 0
    if not has.any():
        return err.sum() * 0.0
    per_window = err.flatten(1).sum(1)[has] / n[has]
    lin_window = lin.flatten(1).sum(1)[has] / n[has]
    return (per_window / (lin_window + floor)).mean() * lin_window.mean().detach()


def loss_fn(model, batch: dict, cfg: TrainConfig) -> tuple[torch.Tensor, dict]:
    query, keys = model(batch["key_xy"], batch["key_conf"], batch["key_time"], batch["query_time"])
    query_err = mpjpe(query, batch["target_query"], batch["torso"])
    key_err = mpjpe(keys, batch["target_key"], batch["torso"], batch["key_in_clip"][:, :, None])
    # Detached tensors, read (.item()) only when logged: each read waits for a GPU to finish.
    parts = {"query_mpjpe": query_err.detach(), "key_mpjpe": key_err.detach()}
    share = cfg.optim.relative_loss_weight
    if share > 0:
        with torch.no_grad():
            linear = baselines.constant_velocity(batch["key_xy"], batch["key_conf"], batch["key_time"],
                                                 batch["query_time"])
        relative = relative_mpjpe(query, linear, batch["target_query"], batch["torso"], cfg.optim.relative_floor)
        parts["query_relative"] = relative.detach()
        query_err = (1 - share) * query_err + share * relative
    return query_err + cfg.optim.key_loss_weight * key_err, parts


@torch.no_grad()
def validate(model: PoseTween, batches: list[dict]) -> dict[str, float]:
    """Model and linear interpolation on the same fixed windows and joints, in torso lengths: a
    joint seen in no keyframe of its window (linear has no answer for it) does not count."""
    model.eval()
    sums = {"model": 0.0, "linear": 0.0, "model_lookahead1": 0.0, "linear_lookahead1": 0.0}
    for b in batches:
        query, _ = model(b["key_xy"], b["key_conf"], b["key_time"], b["query_time"])
        lin = baselines.constant_velocity(b["key_xy"], b["key_conf"], b["key_time"], b["query_time"])
        answered = torch.isfinite(lin).all(-1)
        la1 = answered & (b["lookahead"] == 1)[:, None, None]
        for name, pred in (("model", query), ("linear", lin)):
            sums[name] += mpjpe(pred, b["target_query"], b["torso"], answered).item()
            sums[f"{name}_lookahead1"] += mpjpe(pred, b["target_query"], b["torso"], la1).item()
    model.train()
    out = {k: v / len(batches) for k, v in sums.items()}
    out["ratio"] = out["model"] / out["linear"]
    return out


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @classmethod
    def setup(cls) -> "Distributed":
        if "RANK" not in os.environ:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def main(self) -> bool:
        return self.rank == 0


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def lr_lambda(cfg: TrainConfig):
    warm, total = cfg.optim.warmup_steps, cfg.optim.steps

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False, until: int | None = None,
          device: str | None = None, init: Path | None = None) -> Path:
    ddp = Distributed.setup()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    run_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = PoseTween(cfg.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    # Training windows are drawn on the training device: on a GPU the CPU could not keep up.
    sampler_rng = torch.Generator(device).manual_seed(cfg.seed * 1000 + ddp.rank)
    step, best, seconds = 0, math.inf, 0.0
    before = {"steps": 0, "seconds": 0.0}   # training of the weights a run started from (--init)

    last = run_dir / "last.pt"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        ckpt = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, best, seconds = ckpt["step"], ckpt["best"], ckpt.get("seconds", 0.0)
        before = ckpt.get("before", before)
        try:
            sampler_rng.set_state(ckpt["rng"]["sampler"][ddp.rank])
        except RuntimeError as e:   # a CPU generator's state does not fit a GPU's, or back
            raise ValueError(f"--resume: {last} was trained on another kind of device than "
                             f"{device.type}; resume it there ({e})") from None
        torch.set_rng_state(ckpt["rng"]["torch"][ddp.rank])
        log.info("resumed %s at step %d", run_dir, step)
    else:
        if init is not None:
            before = init_from(model, cfg, init)
            log.info("starting from %s (%d steps, %.2f h of training before)", init, before["steps"],
                     before["seconds"] / 3600)
        if ddp.main:
            (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))

    train_clips = load_clips(cfg, "train").to(device)
    val_clips = load_clips(cfg, "validation")
    val_rng = torch.Generator().manual_seed(12345)   # the same validation windows every time
    n_val = max(1, cfg.log.validation_windows // 256)
    val_batches = [{k: v.to(device) for k, v in sample_windows(val_clips, 256, cfg.model.window, cfg.augment, val_rng).items()}
                   for _ in range(n_val)]
    if ddp.main:
        log.info("train: %d motions, %d frames; validation: %d motions", len(train_clips.names),
                 len(train_clips.frames), len(val_clips.names))

    net = DistributedDataParallel(model) if ddp.world > 1 else model
    writer = None
    if ddp.main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / "tb"), purge_step=step)

    def checkpoint() -> None:
        rng = {"sampler": [sampler_rng.get_state()], "torch": [torch.get_rng_state()]}
        if ddp.world > 1:   # every rank's random state, so that each resumes its own stream
            gathered = [None] * ddp.world
            dist.all_gather_object(gathered, rng)
            rng = {k: [g[k][0] for g in gathered] for k in rng}
        if ddp.main:
            tmp = run_dir / "last.pt.tmp"
            torch.save({"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step, "best": best,
                        "seconds": seconds + time.monotonic() - started, "before": before,
                        "rng": rng, "config": to_dict(cfg)}, tmp)
            tmp.replace(last)

    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)

    started = time.monotonic()
    end = min(cfg.optim.steps, until if until is not None else cfg.optim.steps)
    bar = tqdm(total=end, initial=step, desc=f"train {run_dir.name}", disable=not ddp.main, dynamic_ncols=True)
    model.train()
    while step < end and not stop["now"]:
        batch = {k: v.to(device) for k, v in sample_windows(train_clips, cfg.optim.batch_size, cfg.model.window,
                                                             cfg.augment, sampler_rng).items()}
        loss, parts = loss_fn(net, batch, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        if ddp.main and step % cfg.log.every == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", q=f"{parts['query_mpjpe'].item():.4f}")
            writer.add_scalar("train/loss", loss.item(), step)
            for k, v in parts.items():
                writer.add_scalar(f"train/{k}", v.item(), step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
        if step % cfg.log.validate_every == 0 or step == end:
            if ddp.main:
                val = validate(model, val_batches)
                for k, v in val.items():
                    writer.add_scalar(f"val/{k}", v, step)
                tqdm.write(f"step {step}: validation mpjpe model {val['model']:.4f} linear {val['linear']:.4f} "
                           f"(x{val['ratio']:.3f}); lookahead 1: {val['model_lookahead1']:.4f} vs "
                           f"{val['linear_lookahead1']:.4f}")
                if val["model"] < best:
                    best = val["model"]
                    save_model(model, run_dir / "model.pt", {
                        "step": before["steps"] + step, "validation": val,
                        "train_seconds": before["seconds"] + seconds + time.monotonic() - started,
                        "hardware": f"{ddp.world} x {hardware(device)}"})
        if step % cfg.log.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    bar.close()
    if writer:
        writer.close()
    if ddp.world > 1:
        dist.destroy_process_group()
    return run_dir


def init_from(model: PoseTween, cfg: TrainConfig, path: Path) -> dict:
    """Load a model file's weights into ``model``; returns the steps and seconds they had."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    theirs, ours = ckpt["config"], cfg.model.to_dict()
    free = ("encoder_layers", "decoder_layers", *ModelConfig.INFERENCE_ONLY)
    same = lambda c: {k: v for k, v in c.items() if k not in free}
    if same(theirs) != same(ours):
        raise ValueError(f"--init {path}: its model config {theirs} differs from the run's {ours} "
                         f"(only the numbers of encoder and decoder layers and the inference settings "
                         f"{', '.join(ModelConfig.INFERENCE_ONLY)} may differ)")
    load_weights(model, ckpt["state_dict"], str(path), any_depth=True)
    return {"steps": int(ckpt.get("step", 0)), "seconds": float(ckpt.get("train_seconds", 0.0))}


def _run(args) -> int:
    run_dir = Path(args.runs) / args.name
    if args.resume and not (run_dir / "last.pt").exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {run_dir / 'last.pt'}")
    # A resumed run keeps the configuration it started with.
    cfg = load_config(run_dir / "config.yaml" if args.resume else args.config)
    if args.batch_size:
        cfg.optim.batch_size = args.batch_size
    if args.steps:
        cfg.optim.steps = args.steps
    if args.lr:
        cfg.optim.lr = args.lr
    if args.data:
        cfg.data.path = args.data
    for assignment in args.set:
        override(cfg, assignment)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    if args.resume and args.init:
        raise ValueError("--init starts a new run; --resume continues one: give one of them")
    train(cfg, run_dir, resume=args.resume, until=args.until, device=args.device, init=args.init)
    return 0
