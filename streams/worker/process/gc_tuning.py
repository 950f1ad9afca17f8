"""Garbage-collector thresholds for a worker process.

A worker keeps a large, long-lived heap (tables, a catch-up batch of up to 25,000
events, Faust's buffers) and allocates several objects per record. With CPython's
default thresholds (700, 10, 10) a 100,000-event backfill ran 19 full collections, each
walking that heap: 3.1 s of 36.8 s CPU (`GCSTAT` sampling, docs/performance.md). Larger
young-generation thresholds make full collections rare (0 in the same run, 0.75 s of
GC in all) at the cost of a little more memory between collections; reference cycles
are still collected.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 10)


def tune_gc() -> None:
    gc.set_threshold(*THRESHOLDS)
