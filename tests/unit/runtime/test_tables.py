"""Rows read and written under their booking's partition (streams/runtime/tables.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from faust.streams import current_event

from streams.runtime.tables import (
    OutsideStreamError,
    PartitionAnchor,
    PartitionedTable,
    current,
)


@dataclass
class Message:
    partition: int


class Event:
    """The part of a Faust event the store looks at (weak-referenceable, as Faust's)."""

    def __init__(self, partition: int) -> None:
        self.message = Message(partition)


class PartitionStore(dict[bytes, Any]):
    """Files and finds a key under the current event's partition, as Faust's RocksDB
    store does (`_set`/`_get`); without a current event it searches every partition."""

    def __init__(self) -> None:
        super().__init__()
        self.partitions: dict[int, dict[bytes, Any]] = {}

    @property
    def data(self) -> PartitionStore:
        """The table's store, which `Rows.get` reads: here the table is its own store."""
        return self

    def _partition(self) -> int | None:
        event = current_event()
        return None if event is None else event.message.partition

    def __setitem__(self, key: bytes, value: Any) -> None:
        partition = self._partition()
        assert partition is not None, "a write needs a current event"
        self.partitions.setdefault(partition, {})[key] = value

    def __delitem__(self, key: bytes) -> None:
        partition = self._partition()
        assert partition is not None, "a delete needs a current event"
        del self.partitions.setdefault(partition, {})[key]  # KeyError when missing, as Faust

    def get(self, key: bytes, default: Any = None) -> Any:
        partition = self._partition()
        if partition is not None:
            return self.partitions.get(partition, {}).get(key, default)
        for rows in self.partitions.values():
            if key in rows:
                return rows[key]
        return default

    def items(self) -> Any:
        return [item for rows in self.partitions.values() for item in rows.items()]


def test_each_row_is_written_and_read_under_its_own_event_whatever_is_current() -> None:
    store = PartitionStore()
    table: PartitionedTable[int] = PartitionedTable(store)
    a, b = Event(0), Event(3)
    with current(b):  # a batch whose current event is of another partition
        rows_a, rows_b = table.under(a), table.under(b)
        rows_a.set(b"a", 1)
        rows_b.set(b"b", 2)
        assert rows_a.get(b"a") == 1
        assert rows_b.get(b"b") == 2
        assert store.get(b"a") is None  # the partition-blind read misses it
    assert store.partitions == {0: {b"a": 1}, 3: {b"b": 2}}
    assert current_event() is None  # restored


def test_outside_a_stream_reads_search_every_partition() -> None:
    store = PartitionStore()
    table: PartitionedTable[int] = PartitionedTable(store)
    table.under(Event(2)).set(b"a", 1)
    assert table.under(None).get(b"a") == 1
    assert list(table.under(None).items()) == [(b"a", 1)]


def test_a_partition_blind_read_inside_a_stream_is_refused() -> None:
    table: PartitionedTable[int] = PartitionedTable(PartitionStore())
    with current(Event(1)), pytest.raises(OutsideStreamError):
        table.under(None).get(b"a")
    with current(Event(1)), pytest.raises(OutsideStreamError):
        table.under(None).items()


def test_a_timer_writes_and_deletes_under_a_partition_anchor() -> None:
    store = PartitionStore()
    table: PartitionedTable[int] = PartitionedTable(store)
    anchor = PartitionAnchor("booking-events", 2).event()
    assert (anchor.message.topic, anchor.message.partition) == ("booking-events", 2)
    rows = table.under(anchor)
    rows.set(b"a", 1)
    assert store.partitions == {2: {b"a": 1}}
    rows.delete(b"a")
    rows.delete(b"never-there")  # a missing row is no error
    assert store.partitions == {2: {}}
    assert current_event() is None


def test_no_event_stays_current_between_calls() -> None:
    """A view sets its event per call only: a stream's own current event is untouched
    after each access, so nothing is held across an await."""
    table: PartitionedTable[int] = PartitionedTable(PartitionStore())
    batch_event = Event(1)
    with current(batch_event):
        rows = table.under(Event(2))
        rows.set(b"a", 1)
        seen = current_event()
        assert seen is not None
        assert seen.message.partition == 1
        assert rows.get(b"a") == 1
    assert current_event() is None
