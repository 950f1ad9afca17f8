"""A sweep's items handed out lazily, in slices (streams/worker/pipeline/sweep.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from streams.worker.pipeline.sweep import Sweep


async def test_a_sweep_reads_its_items_lazily_and_counts_them() -> None:
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for n in range(10):
            pulled += 1
            yield n

    sweep = Sweep(slice_size=3)
    seen = []
    async for item in sweep.over(items()):
        seen.append((item, pulled))
        if item == 4:
            break
    # Never more than one item ahead of the consumer: nothing is copied up front.
    assert seen == [(n, n + 1) for n in range(5)]
    assert sweep.items == 4  # counted once the consumer has finished with an item
    assert sweep.cpu_s >= 0
    assert sweep.longest_slice_s >= 0


@pytest.mark.parametrize(("items", "slice_size"), [(10, 3), (9, 3), (2, 3)])
async def test_other_tasks_run_between_slices(items: int, slice_size: int) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)  # the ticker is now waiting for its turn
    sweep = Sweep(slice_size)
    ticks_at_item = [ticks async for _ in sweep.over(range(items))]
    task.cancel()
    # One turn for the ticker after each full slice, none within a slice.
    assert [t - ticks_at_item[0] for t in ticks_at_item] == [n // slice_size for n in range(items)]
    assert sweep.items == items


async def test_the_longest_slice_is_measured() -> None:
    sweep = Sweep(slice_size=2)
    async for n in sweep.over(range(4)):
        if n == 2:
            await asyncio.sleep(0.02)  # the consumer holds the third item's slice
    assert 0.02 <= sweep.longest_slice_s < 1
