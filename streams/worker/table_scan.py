"""Scanning a whole table from a timer without stalling the agents.

The completion and reconcile timers visit every booking of the worker's tables, and
they run on the same event loop as the fold and the sink. Done in one go, the
completion scan of 8,000 bookings (~22 µs each to load and view, `make bench-fold`)
held the loop for ~0.18 s every 30 s, and every live event arriving meanwhile waited
for it (docs/performance.md, "Live p99"); the stall grows with the table. `scan` hands
out a snapshot of the table's items and gives the loop a turn every `slice_size` of
them, so no slice holds it for more than a few milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

SLICE_SIZE = 256


async def scan(
    items: Iterable[tuple[K, V]], slice_size: int = SLICE_SIZE
) -> AsyncIterator[tuple[K, V]]:
    """A table's (key, value) pairs as they were when the scan began."""
    for index, item in enumerate(list(items), start=1):
        yield item
        if index % slice_size == 0:
            await asyncio.sleep(0)
