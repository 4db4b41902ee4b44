"""The model on several cores at once: a large batch split over single-thread sessions.

onnxruntime's own intra-op threads do not pay off for this model on a 2-core machine (a batch
of 64 windows of the default model: 25 ms with one thread, 20-25 ms with two), but two
single-thread sessions, each answering half of the batch at the same time (onnxruntime
releases the GIL while it runs), take 13 ms. The engine uses this backend for batches of
``wide_batch`` windows or more (``posetween serve --wide-threads``).

Below that, the service keeps its model calls on one core and its Python threads on the
others (:func:`split_cores`, :func:`pin`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class SplitBackend:
    """``backends`` (the same model, one thread each) answer one batch together, each a
    contiguous share of its windows; the calling thread runs the first share itself."""

    def __init__(self, backends: list):
        if not backends:
            raise ValueError("SplitBackend needs at least one backend")
        self.backends = list(backends)
        first = self.backends[0]
        self.window = first.window
        self.queries = getattr(first, "queries", None)
        self.name = f"{first.name} x{len(self.backends)} (batch split over sessions)"
        # Its threads may run on any core the process may, even when the thread that first
        # calls it is kept on one (the service's model call: split_cores).
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        self._pool = (ThreadPoolExecutor(len(self.backends) - 1, thread_name_prefix="posetween-model",
                                         initializer=pin, initargs=(cores,))
                      if len(self.backends) > 1 else None)

    def run(self, key_xy, key_conf, key_time, query_time) -> np.ndarray:
        arrays = (key_xy, key_conf, key_time, query_time)
        n = len(key_time)
        k = min(len(self.backends), n)
        if k <= 1:
            return np.asarray(self.backends[0].run(*arrays))
        bounds = [n * i // k for i in range(k + 1)]
        futures = [self._pool.submit(b.run, *(a[lo:hi] for a in arrays))
                   for b, lo, hi in zip(self.backends[1:k], bounds[1:k], bounds[2:])]
        first = np.asarray(self.backends[0].run(*(a[:bounds[1]] for a in arrays)))
        return np.concatenate([first] + [np.asarray(f.result()) for f in futures])


def split_cores() -> tuple[set[int] | None, set[int] | None]:
    """(the model call's core, the other threads' cores): the last core this process may use
    for the calls, the rest for the Python threads (None, None: one core, or no affinity
    control on this platform). Left to the scheduler, the threads took turns on both cores and
    a call took longer (README, "Speed": ``benchmarks/capacity.py`` with and without
    ``--serve-args=--no-pin``)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[-1]}, set(cores[:-1])


def pin(cores: set[int] | None) -> None:
    """Keep the calling thread on ``cores`` (None: leave it)."""
    if cores:
        os.sched_setaffinity(0, cores)
