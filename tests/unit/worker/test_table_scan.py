"""Scanning a table in slices (streams/worker/table_scan.py)."""

from __future__ import annotations

import asyncio

import pytest

from streams.worker.table_scan import scan


async def test_a_scan_yields_the_items_as_they_were_when_it_began() -> None:
    table = {f"b-{n}": n for n in range(10)}
    seen = []
    async for key, value in scan(table.items(), slice_size=3):
        seen.append((key, value))
        table.pop("b-9", None)  # changes during the scan do not reach it
        table["b-new"] = -1
    assert seen == [(f"b-{n}", n) for n in range(10)]


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
    ticks_at_item = [ticks async for _ in scan(dict.fromkeys(range(items)).items(), slice_size)]
    task.cancel()
    # One turn for the ticker after each full slice, none within a slice.
    assert [t - ticks_at_item[0] for t in ticks_at_item] == [n // slice_size for n in range(items)]
