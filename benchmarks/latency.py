#!/usr/bin/env python
"""Latency of the runtime backends: each backend x batch (1, 8, 64) on the default window
(K = 8 keyframes, Q = 5 queries), median and p99 of the full ``backend.run`` call over >= 500
runs after a warm-up, the machine's CPU and GPU named, a markdown table on stdout and JSON.

Same as ``posetween bench latency``::

    python benchmarks/latency.py --model posetween/models/default.pt --json out/latency.json
    python benchmarks/latency.py --backends torch onnxruntime onnxruntime:int8 --batches 1 8 64 --runs 500

Backends: torch, torchscript, onnxruntime, onnxruntime:int8, onnxruntime-cuda:fp16,
onnxruntime-cuda:fp32,nograph, torch:cuda, torchscript:cuda (default: all that run here).
The "median vs torch" column is each backend's median over plain PyTorch's on the same
batch, measured in the same run.
"""

import argparse
import logging
import sys

from posetween.export import bench


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_latency_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return bench.run_latency(args)


if __name__ == "__main__":
    sys.exit(main())
