"""Reading the due index's slices (streams/worker/due_table.py) from per-partition RocksDB
stores, as Faust's `rocksdb://` keeps them: only what is due, only partitions held, and
no more of a partition once the caller has stopped it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import rocksdict
from faust.types import TP

from streams.core.due_index import entry_key, entry_value, sent_entries
from streams.runtime.ownership import Ownership
from streams.runtime.tables import PartitionedTable
from streams.worker.due_table import DueTable
from streams.worker.pipeline.sweep import Sweep

CHANGELOG = "app-due-changelog"


class Assignor:
    """Faust's assignor as the index asks it: a new set per call, a new assignment object
    per rebalance."""

    def __init__(self, partitions: set[int]) -> None:
        self.calls = 0
        self.rebalance(partitions)

    def rebalance(self, partitions: set[int]) -> None:
        self._assignment = SimpleNamespace(actives={CHANGELOG: set(partitions)})

    def assigned_actives(self) -> set[TP]:
        self.calls += 1
        return {TP(t, p) for t, ps in self._assignment.actives.items() for p in ps}


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[int, Any]]:
    """Two partitions' stores: entries due at 1..5 s (c|...) and one at 60 s."""
    dbs: dict[int, Any] = {}
    for partition in (0, 1):
        db = rocksdict.Rdict(str(tmp_path / f"due-{partition}"), rocksdict.Options(raw_mode=True))
        for second in (1, 2, 3, 4, 5, 60):
            key = entry_key("reconcile", second * 1000, b"p%d-b%d" % (partition, second))
            db[key] = entry_value(partition)
        db[entry_key("completion", 1000, b"p%d-c" % partition)] = entry_value(partition)
        dbs[partition] = db
    yield dbs
    for db in dbs.values():
        db.close()


def index(dbs: dict[int, Any], assignor: Assignor) -> DueTable:
    faust_table = SimpleNamespace(data=SimpleNamespace(_dbs=dbs), changelog_topic_name=CHANGELOG)
    ownership = Ownership(SimpleNamespace(assignor=assignor))
    return DueTable(PartitionedTable(faust_table), ownership, "events")


async def bookings_due(
    due: DueTable, until_ms: int, stop_at: bytes | None = None, sweep: Sweep | None = None
) -> list[bytes]:
    seen, stopped = [], set[int]()
    async for entry in due.due("reconcile", until_ms, sweep or Sweep(), stopped=stopped):
        seen.append(entry.entry.booking)
        if entry.entry.booking == stop_at:
            stopped.add(entry.value.partition)
    return seen


async def test_a_slice_reads_only_the_entries_due_of_its_kind(stores: dict[int, Any]) -> None:
    due = index(stores, Assignor({0, 1}))
    assert await bookings_due(due, 3000) == [
        b"p0-b1",
        b"p0-b2",
        b"p0-b3",
        b"p1-b1",
        b"p1-b2",
        b"p1-b3",
    ]


async def test_a_stopped_partition_is_not_read_further(stores: dict[int, Any]) -> None:
    due, sweep = index(stores, Assignor({0, 1})), Sweep()
    # The caller stops partition 0 at its second entry: partition 1 is read to the end.
    assert await bookings_due(due, 5000, stop_at=b"p0-b2", sweep=sweep) == [
        b"p0-b1",
        b"p0-b2",
        b"p1-b1",
        b"p1-b2",
        b"p1-b3",
        b"p1-b4",
        b"p1-b5",
    ]
    assert sweep.items == 7  # p0-b3.. were never read from the store


async def test_only_partitions_held_are_read_and_a_rebalance_is_seen(
    stores: dict[int, Any],
) -> None:
    assignor = Assignor({1})
    due = index(stores, assignor)
    assert await bookings_due(due, 2000) == [b"p1-b1", b"p1-b2"]
    calls = assignor.calls
    assert await bookings_due(due, 2000) == [b"p1-b1", b"p1-b2"]
    assert assignor.calls == calls  # the same assignment: its set is kept
    assignor.rebalance({0})
    assert await bookings_due(due, 2000) == [b"p0-b1", b"p0-b2"]


async def test_sent_entries_are_read_as_batches_from_their_own_slice(
    stores: dict[int, Any],
) -> None:
    for partition in (0, 1):
        for second in (2, 60):
            bookings = [(b"p%d-s%d-%d" % (partition, second, i), i + 1) for i in range(3)]
            for key, value in sent_entries(second * 1000, partition, second, bookings):
                stores[partition][key] = value
    due, stopped = index(stores, Assignor({0, 1})), set[int]()
    read = [
        (entry.batch.partition, entry.entry.at_ms, [key for key, _ in entry.batch.bookings])
        async for entry in due.due_sent(5000, Sweep(), stopped=stopped)
    ]
    assert read == [
        (0, 2000, [b"p0-s2-0", b"p0-s2-1", b"p0-s2-2"]),
        (1, 2000, [b"p1-s2-0", b"p1-s2-1", b"p1-s2-2"]),
    ]
    # The reconcile entries (the fixture's) are not in the sent slice, nor sent in theirs.
    assert len(await bookings_due(due, 5000)) == 10
