"""``posetween export`` and ``posetween bench latency|parity``.

    posetween export [--model PATH] --format onnx|torchscript --out FILE [--fp16] [--int8]
                     [--queries Q] [--device cpu|cuda] [--opset N]
    posetween bench latency [--model PATH] [--backends ...] [--batches 1 8 64] [--runs 500]
                     [--threads 1] [--json OUT]
    posetween bench parity [--model PATH] [--backends ...] [--json OUT]

ONNX is the format to ship (one self-contained file, dynamic batch, metadata inside, runs on
onnxruntime CPU and CUDA); TorchScript is deprecated upstream and kept for LibTorch hosts.
``--fp16`` (GPU) and ``--int8`` (CPU) are ONNX only; see posetween.export.exporters.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time

from posetween.export.model_files import DEFAULT_QUERIES

log = logging.getLogger("posetween.export")


class StageProgress:
    """A terminal line naming the current stage with a running clock: a fresh ONNX export is one
    torch call of up to a minute, which no bar can measure, so the clock ticks from a thread."""

    def __init__(self, what: str):
        from tqdm import tqdm

        self.bar = tqdm(bar_format="{desc} [{elapsed}]", desc=what, disable=None, leave=False)
        self.what = what
        self._done = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self._done.wait(0.5):
            self.bar.refresh()

    def __call__(self, stage: str) -> None:
        self.bar.set_description_str(f"{self.what}: {stage}")

    def __enter__(self):
        self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._ticker.join()
        self.bar.close()


def _run_export(args) -> int:
    from posetween.export import exporters

    if args.fp16 and args.int8:
        raise SystemExit("posetween export: --fp16 and --int8 exclude each other")
    precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    if args.format == "torchscript" and precision != "fp32":
        raise SystemExit("posetween export: --fp16 and --int8 are for --format onnx only")
    if args.queries == 1 or args.queries < 0:
        raise SystemExit(f"posetween export: --queries {args.queries}: give 2 or more query times per window "
                         "(the interval's two ends and the times between), or 0 for any count")
    t0 = time.perf_counter()
    with StageProgress("export") as progress:
        out = exporters.export(args.model, args.out, args.format, precision=precision,
                               queries=args.queries or None, device=args.device, opset=args.opset,
                               use_cache=not args.no_cache, progress=progress)
    md = exporters.read_metadata(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {args.format} {precision}, window "
          f"{md['window']}, queries {md['queries']}, dynamic batch) in {time.perf_counter() - t0:.1f} s")
    log.debug("metadata: %s", json.dumps(md, indent=1))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export the model to ONNX or TorchScript",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model checkpoint, or a shipped model by name: default (the default) or open")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", required=True, help="output file (.onnx, or .pt/.ts for TorchScript)")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="ONNX for GPUs: float16 transformer, "
                                                          "float32 normalisation and inputs/outputs")
    prec.add_argument("--int8", action="store_true", help="ONNX for CPUs: onnxruntime dynamic "
                                                          "quantisation of the encoder/decoder weights")
    p.add_argument("--queries", type=int, default=DEFAULT_QUERIES,
                   help=f"query times per window, fixed in the graph (default {DEFAULT_QUERIES}, as the "
                        "streaming engine asks; 0: any count)")
    p.add_argument("--device", default="cpu", help="TorchScript: device to trace on (cpu or cuda; "
                                                   "a CUDA host needs a CUDA trace)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 18, default 18)")
    p.add_argument("--no-cache", action="store_true",
                   help="export afresh (by default the float32 export of a model is cached by its hash in "
                        "$POSETWEEN_CACHE or ~/.cache/posetween, so other precisions take a second)")
    p.set_defaults(func=_run_export)

    from posetween.export import bench

    b = subparsers.add_parser("bench", help="benchmarks of the runtime backends",
                              description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = b.add_subparsers(dest="bench_command", required=True)
    lat = bsub.add_parser("latency", help="latency of each backend x batch (markdown table + JSON)")
    bench.add_latency_arguments(lat)
    lat.set_defaults(func=bench.run_latency)
    par = bsub.add_parser("parity", help="max error of each backend and precision vs plain PyTorch")
    bench.add_parity_arguments(par)
    par.set_defaults(func=bench.run_parity)
