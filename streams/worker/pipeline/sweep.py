"""Reading a due slice from a timer without stalling the agents.

The timers run on the same event loop as the fold and the sink. `Sweep` hands out the
items of one sweep lazily and gives the loop a turn every `slice_size` of them, so no
slice holds it for more than a few milliseconds; it also measures the sweep (the CPU
of its slices, the longest slice, how many items) for the `activity_sync_sweep_*`
metrics, since "no timer pauses the loop more than 50 ms" is a figure to watch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

SLICE_SIZE = 64  # a reconcile entry that reads its booking costs up to ~0.3 ms: <= ~20 ms a slice


class Sweep:
    """One sweep's figures: items handed out, CPU seconds, the longest slice (wall).

    CPU is the event loop's thread's only (`thread_time`): the process's would count
    the consumer thread and RocksDB's compactions running meanwhile."""

    def __init__(self, slice_size: int = SLICE_SIZE) -> None:
        self.slice_size = slice_size
        self.items = 0
        self.cpu_s = 0.0
        self.longest_slice_s = 0.0

    async def over(self, items: Iterable[T]) -> AsyncIterator[T]:
        """`items`, read lazily, with a turn for the loop after every slice."""
        wall, cpu = time.perf_counter(), time.thread_time()
        in_slice = 0
        for item in items:
            yield item
            self.items += 1
            in_slice += 1
            if in_slice == self.slice_size:
                self._close_slice(wall, cpu)
                await asyncio.sleep(0)
                wall, cpu, in_slice = time.perf_counter(), time.thread_time(), 0
        self._close_slice(wall, cpu)

    def _close_slice(self, wall: float, cpu: float) -> None:
        self.cpu_s += time.thread_time() - cpu
        self.longest_slice_s = max(self.longest_slice_s, time.perf_counter() - wall)
