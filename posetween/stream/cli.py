"""``posetween serve`` (the ZeroMQ streaming service) and ``posetween replay``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import replay
from .config import EngineConfig

log = logging.getLogger("posetween.serve")

SERVE_HELP = """Serve the streaming upsampler over ZeroMQ.

Detectors connect PUB sockets to --in and send keyframes (topic pose/<stream id>); consumers
connect SUB sockets to --out and receive every stream's pose at --rate Hz (topic
pose/<stream id>) and the live counters (topic stats). Wire format: README.md (section "Wire format").

    posetween serve --in tcp://127.0.0.1:5555 --out tcp://127.0.0.1:5556 --rate 120 --lookahead 1
"""


def register(sub) -> None:
    p = sub.add_parser("serve", help="the streaming upsampler as a ZeroMQ service",
                       description=SERVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = EngineConfig()
    p.add_argument("--in", dest="in_address", default="tcp://127.0.0.1:5555",
                   help="bind address for keyframes in (SUB)")
    p.add_argument("--out", dest="out_address", default="tcp://127.0.0.1:5556",
                   help="bind address for poses out (PUB)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address such as 0.0.0.0 (anyone who reaches it can send and read)")
    p.add_argument("--curve-key", metavar="FILE",
                   help="CurveZMQ: encrypt and authenticate both sockets with this server key pair (the "
                        "NAME.key_secret file of zmq.auth.create_certificates); needs --curve-clients")
    p.add_argument("--curve-clients", metavar="FILE",
                   help="CurveZMQ: the client public keys allowed, one a line, each with the stream-id prefix "
                        "it may write: '<Z85 key> [<prefix>]' (README, section Security)")
    p.add_argument("--rate", type=float, default=d.rate, help="output poses per second per stream")
    p.add_argument("--lookahead", type=int, choices=(0, 1, 2), default=d.lookahead,
                   help="1: interpolate (delay: one input interval); 0: predict (delay: only the clock offset)")
    p.add_argument("--backend", default="auto", help="runtime backend (posetween.export.backends)")
    p.add_argument("--model", help="model file, or a shipped model by name: default (the default) or open")
    p.add_argument("--budget-ms", type=float, default=d.budget_ms,
                   help="model latency budget (not added to the delay); a window answered later is filled "
                        "linearly (fallback) until its answer comes")
    p.add_argument("--lead-intervals", type=float, default=d.lead_intervals,
                   help="input intervals the model's lead covers past a window (0-1]: the output shows it "
                        "while the next window is computed, so it bounds the model's time (--budget-ms at least)")
    p.add_argument("--extra-delay-ms", type=float, default=d.extra_delay_ms, help="margin for arrival jitter")
    p.add_argument("--queries", type=int, default=d.queries, help="model queries per input interval")
    p.add_argument("--blend-ms", type=float, default=d.blend_s * 1000,
                   help="corrections of what was shown (lookahead 0: the real keyframe) blend over this long")
    p.add_argument("--max-streams", type=int, default=d.max_streams)
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s, help="seconds before an idle stream is evicted")
    p.add_argument("--max-gap-intervals", type=float, default=d.max_gap_intervals,
                   help="a longer gap between keyframes restarts the stream")
    p.add_argument("--max-jump-torso-per-s", type=float, default=d.max_jump_torso_per_s,
                   help="body-centre speed (torso lengths / s) beyond which the stream restarts")
    p.add_argument("--stats-interval", type=float, default=1.0, help="seconds between stats messages")
    p.add_argument("--log-interval", type=float, default=10.0, help="seconds between logged counter lines")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for small batches)")
    p.add_argument("--wide-threads", type=int, default=min(2, os.cpu_count() or 1),
                   help="cores for batches of --wide-batch windows or more (many streams at once): the batch "
                        "is split over this many one-thread onnxruntime sessions that run at the same time; "
                        "1: one thread for every batch")
    p.add_argument("--wide-batch", type=int, default=d.wide_batch, help="see --wide-threads")
    p.add_argument("--no-pin", dest="pin_cores", action="store_false",
                   help="leave the service's threads to the OS scheduler (by default the model's calls keep "
                        "one core and the Python threads the others)")
    p.add_argument("--linear-only", action="store_true",
                   help="no model: every window is linear interpolation (the service's own cost, for capacity tests)")
    p.set_defaults(func=_serve)
    replay.register(sub)


def _warm_up(backend, queries: int, batch: int) -> None:
    """One call before serving: a backend's first call is many times slower than the next
    (memory arenas, thread start), and the engine would count its windows as fallen back."""
    import numpy as np
    K = backend.window
    key_time = np.tile(np.arange(K) / 15.0, (batch, 1))
    key_xy = np.tile(np.linspace(100.0, 300.0, 19 * 2).reshape(19, 2), (batch, K, 1, 1))
    query = np.tile(np.linspace(key_time[0, -2], key_time[0, -1], queries), (batch, 1))
    for _ in range(2):
        backend.run(key_xy, np.ones((batch, K, 19)), key_time, query)


def _serve(args) -> int:
    from posetween.export.backends import create_backend

    from .engine import Engine
    from .service import Service, check_bind_address

    from .security import CurveConfig
    try:
        for a in (args.in_address, args.out_address):
            check_bind_address(a, args.allow_remote)
        if bool(args.curve_key) != bool(args.curve_clients):
            raise ValueError("--curve-key and --curve-clients go together")
        curve = CurveConfig.from_files(args.curve_key, args.curve_clients) if args.curve_key else None
        cfg = EngineConfig(rate=args.rate, lookahead=args.lookahead, budget_ms=args.budget_ms,
                           extra_delay_ms=args.extra_delay_ms,
                           lead_intervals=args.lead_intervals, queries=args.queries, blend_s=args.blend_ms / 1000,
                           max_streams=args.max_streams, idle_timeout_s=args.idle_timeout,
                           max_gap_intervals=args.max_gap_intervals,
                           max_jump_torso_per_s=args.max_jump_torso_per_s, wide_batch=args.wide_batch)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}")
    if args.allow_remote and curve is None:
        log.warning("--allow-remote without --curve-key: anyone who reaches these sockets can write any stream "
                    "and read every one")
    if args.threads and args.backend in ("torch", "torchscript"):
        import torch   # only these backends need it: the runtime install has no torch
        torch.set_num_threads(args.threads)
    # The output thread must not wait long for the GIL while the input thread decodes.
    sys.setswitchinterval(0.0005)
    options = {"queries": args.queries} if args.backend.startswith(("onnx", "ort", "auto")) else {}
    backend = create_backend(args.backend, model_path=args.model, **options)
    wide = None
    if args.wide_threads > 1 and args.backend.startswith(("onnx", "ort", "auto")) and "cuda" not in backend.name:
        from .parallel import SplitBackend
        wide = SplitBackend([backend] + [create_backend(args.backend, model_path=args.model, **options)
                                         for _ in range(args.wide_threads - 1)])
    if args.linear_only:
        from .engine import LinearOnly
        backend, wide = LinearOnly(backend.window), None
    else:
        for batch in (1, args.wide_batch):
            _warm_up(backend, args.queries, batch)
        if wide is not None:
            for batch in (args.wide_batch, cfg.max_batch):
                _warm_up(wide, args.queries, batch)
    log.info("backend %s, window %d%s", getattr(backend, "name", type(backend).__name__), backend.window,
             f"; {wide.name} from {args.wide_batch} windows" if wide is not None else "")
    service = Service(Engine(backend, cfg, wide_backend=wide), args.in_address, args.out_address,
                      allow_remote=args.allow_remote, curve=curve,
                      stats_interval=args.stats_interval, log_interval=args.log_interval,
                      pin_cores=args.pin_cores)
    try:
        service.start()
    except OSError as e:
        raise SystemExit(f"error: {e}")
    service.serve_forever()
    return 0
