"""The `due` table: the due index of streams/core/due_index.py, kept by Faust.

Co-partitioned with `bookings` (an entry is written under its booking's own event, so
it lives in the booking's partition and its changelog partition): it moves with the
partition to another worker and survives restarts like any table. The fold writes the
completion and retention entries and a sent entry per batch; the timers remove what
they have dealt with, writing under a `PartitionAnchor` of the entry's partition::

    due_table.under(event).apply(entry_changes(before, state))   # the fold
    async for due in due_table.due("retention", until_ms, sweep):  # a timer
        ...
        due_table.drop(due)                                      # dealt with

The fold writes one sent entry per partition and batch for the projections it sent
(`add_sent`); the reconcile timer reads them with `due_sent`.

A sweep yields only entries of partitions this worker holds (`Ownership.holds`), asked
again per entry since the sweep gives the loop a turn between slices. The timer paces it
(a `Pacer`: `Sweep`, streams/worker/pipeline/sweep.py); the table only declares what it
needs, so it imports nothing of what runs.

A due slice is read lazily: on RocksDB each active partition's store is sorted by key,
so the slice is an iterator from `slice_start(kind)` that stops at the first key past
`slice_end(kind, until)`; it costs what is due, not what is held. The memory store
(memory://, a smoke-test option) is not sorted: there a sweep filters every key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Set
from typing import Any, NamedTuple, Protocol, TypeVar

from faust.types import TP, EventT

from streams.core.due_index import (
    DueEntry,
    EntryValue,
    IndexChanges,
    Kind,
    SentBatch,
    entry_value,
    is_due,
    parse_key,
    parse_sent_value,
    parse_value,
    sent_entries,
    slice_end,
    slice_start,
)
from streams.runtime.ownership import Ownership
from streams.runtime.stores import partition_dbs
from streams.runtime.tables import PartitionAnchor, PartitionedTable, Rows

T = TypeVar("T")


class Pacer(Protocol):
    """How a timer's sweep hands out the items it reads: lazily, with a turn for the event
    loop between slices."""

    def over(self, items: Iterable[T]) -> AsyncIterator[T]: ...


class Due(NamedTuple):
    key: bytes
    entry: DueEntry
    value: EntryValue
    # Stands for an event of the entry's partition: read and write the booking under it.
    anchor: EventT[Any]


class SentDue(NamedTuple):
    """A due sent entry: the projections one fold batch sent from one partition."""

    key: bytes
    entry: DueEntry
    batch: SentBatch
    anchor: EventT[Any]


class DueRows:
    """The due index in the partition of one event (a booking's, or a `PartitionAnchor`)."""

    def __init__(self, rows: Rows[bytes]) -> None:
        self._rows = rows

    def apply(self, changes: IndexChanges) -> None:
        """A fold's changes to the booking's standing entries."""
        for key in changes.remove:
            self._rows.delete(key)
        for key in changes.add:
            self.add(key)

    def add(self, key: bytes, *, resent: int = 0, version: int = 0) -> None:
        value = entry_value(self._rows.event.message.partition, resent, version)
        self._rows.set(key, value)

    def add_sent(self, at_ms: int, bookings: list[tuple[bytes, int]]) -> None:
        """The sent entries for the projections a fold batch sent from this partition."""
        message = self._rows.event.message
        for key, value in sent_entries(at_ms, message.partition, message.offset, bookings):
            self._rows.set(key, value)

    def remove(self, key: bytes) -> None:
        self._rows.delete(key)


class DueTable:
    """The `due` table as the fold and the timers use it (app.py's `due_table`): entries
    written under a booking's partition, due slices read from the partitions this
    worker holds."""

    def __init__(
        self, table: PartitionedTable[bytes], ownership: Ownership, source_topic: str
    ) -> None:
        self.table = table
        self._ownership = ownership
        self._source_topic = source_topic

    def under(self, event: EventT[Any]) -> DueRows:
        """The index in `event`'s partition."""
        return DueRows(self.table.under(event))

    def drop(self, due: Due | SentDue) -> None:
        """Remove an entry a sweep has dealt with (or found stale)."""
        self.under(due.anchor).remove(due.key)

    def anchor(self, partition: int) -> EventT[Any]:
        return PartitionAnchor(self._source_topic, partition).event()

    def owns(self, partition: int) -> bool:
        """Whether this worker still holds `partition` (a sweep awaits between slices)."""
        return self._ownership.holds(TP(self._changelog_topic(), partition))

    async def due(
        self, kind: Kind, until_ms: int, sweep: Pacer, *, stopped: set[int] | None = None
    ) -> AsyncIterator[Due]:
        """The entries of `kind` due at or before `until_ms`, lazily, slice by slice.

        `stopped`: partitions the caller is done with for this sweep. It adds one when an
        entry tells it the later entries of that partition cannot be ready either (the
        reconcile sweep, on the first projection the sink has not read yet); the rest of
        that partition's slice is then not read at all."""
        stopped = stopped if stopped is not None else set()
        async for key, raw in sweep.over(self._due_items(kind, until_ms, stopped)):
            value = parse_value(raw)
            if value.partition in stopped or not self.owns(value.partition):
                continue  # stopped, or revoked while the sweep gave the loop a turn
            yield Due(key, parse_key(key), value, self.anchor(value.partition))

    async def due_sent(
        self, until_ms: int, sweep: Pacer, *, stopped: set[int] | None = None
    ) -> AsyncIterator[SentDue]:
        """The sent entries due at or before `until_ms`, as `due` reads a kind's."""
        stopped = stopped if stopped is not None else set()
        async for key, raw in sweep.over(self._due_items("sent", until_ms, stopped)):
            batch = parse_sent_value(raw)
            if batch.partition in stopped or not self.owns(batch.partition):
                continue
            yield SentDue(key, parse_key(key), batch, self.anchor(batch.partition))

    def _changelog_topic(self) -> str:
        return str(self.table.faust_table.changelog_topic_name)

    def _due_items(
        self, kind: Kind, until_ms: int, stopped: Set[int]
    ) -> Iterator[tuple[bytes, bytes]]:
        dbs = partition_dbs(self.table.faust_table.data)
        start, end = slice_start(kind), slice_end(kind, until_ms)
        if dbs is None:  # the memory store: one unsorted dict
            due = sorted(
                (k, v) for k, v in self.table.under(None).items() if is_due(k, kind, until_ms)
            )
            yield from due
            return
        for partition in sorted(dbs):
            if not self.owns(partition):
                continue  # a standby's copy, or revoked
            db = dbs.get(partition)
            if db is None:
                continue
            for key, value in db.items(from_key=start):
                if key >= end or partition in stopped:
                    break
                yield key, value
