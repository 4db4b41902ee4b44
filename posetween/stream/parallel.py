"""The model on several cores at once: a large batch split over single-thread sessions.

onnxruntime's own intra-op threads do not pay off for this model on a 2-core machine (a batch
of 64 windows of the default model: 25 ms with one thread, 20-25 ms with two), but two
single-thread sessions, each answering half of the batch at the same time (onnxruntime
releases the GIL while it runs), take 13 ms. The engine uses this backend for batches of
``wide_batch`` windows or more (``posetween serve --wide-threads``).
"""

from __future__ import annotations

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
        self._pool = (ThreadPoolExecutor(len(self.backends) - 1, thread_name_prefix="posetween-model")
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
