"""A table row is read and written under its booking's own partition.

Faust picks a row's partition from the *current event* (a context variable,
`faust.streams._current_event`): `Collection.partition_for_key` files a write under
it, and the RocksDB store looks a key up *only* in that event's partition store.
Inside a batch the current event is some event of the batch, so a row of another
partition would read as empty and its write would land in the wrong changelog
partition. The memory store hides the read half: it keeps one dict for all partitions.

`PartitionedTable` wraps a Faust table so that this cannot be written by mistake:

- In a stream, code scopes the table to the event it handles, once, and reads and
  writes through that view; every call sets the event as current for its duration
  only (never across an `await`)::

      rows = bookings.under(event)
      state = rows.get(key)
      rows.set(key, new_state)

- Outside a stream (timers, web views), `under(None)` reads the rows of every partition
  this worker holds; it is refused (`OutsideStreamError`) while an event is current,
  and it cannot write (a write needs a partition)::

      raw = bookings.under(None).get(key)

- A timer writing a row it found in partition p scopes the table to a
  `PartitionAnchor` of p: ``synced.under(PartitionAnchor(topic, p).event())``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Generic, NamedTuple, TypeVar, cast, overload

from faust.streams import _current_event, current_event
from faust.types import EventT

V = TypeVar("V")


class OutsideStreamError(RuntimeError):
    """A partition-blind table access was attempted while a stream event is current."""


@contextmanager
def current(event: EventT[Any]) -> Iterator[None]:
    """Make `event` Faust's current event (for its partition) for the block's duration."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class _AnchorMessage(NamedTuple):
    topic: str
    partition: int


class PartitionAnchor:
    """Stands for "an event of partition `partition` of `topic`" where there is none:
    a timer writing a booking's row (it knows the partition from where it read the
    row). Only the message's topic and partition are read by Faust's table and store."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _AnchorMessage(topic, partition)

    def event(self) -> EventT[Any]:
        return cast(EventT[Any], self)


class Rows(Generic[V]):
    """A table's rows in the partition of one event: what a stream reads and writes."""

    def __init__(self, table: Any, event: EventT[Any]) -> None:
        self._table = table
        self.event = event

    def get(self, key: bytes) -> V | None:
        """The row of `key` in the event's partition, or None."""
        # From the store: one lookup. Faust's table (a table has `__missing__`) asks the
        # store whether it holds the key and then reads it, two RocksDB reads per row
        # (and its table-read sensor, which nothing here reports).
        with current(self.event):
            return self._table.data.get(key)  # type: ignore[no-any-return]

    def set(self, key: bytes, value: V) -> None:
        """Write `key`'s row in the event's partition and changelog partition."""
        with current(self.event):
            self._table[key] = value

    def delete(self, key: bytes) -> None:
        """Remove `key`'s row from the event's partition; a missing row is no error."""
        # The memory store raises for a missing key; RocksDB does not.
        with current(self.event), suppress(KeyError):
            del self._table[key]


class HeldRows(Generic[V]):
    """A table's rows in every partition this worker holds: reads outside a stream."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: bytes) -> V | None:
        """The row of `key` in whichever held partition has it, or None."""
        _check_outside_stream()
        return self._table.get(key)  # type: ignore[no-any-return]

    def items(self) -> Iterator[tuple[bytes, V]]:
        """Every row of the partitions this worker holds."""
        _check_outside_stream()
        return iter(self._table.items())


class PartitionedTable(Generic[V]):
    """A Faust table keyed by booking id, reached only under a partition.

    `table` is the Faust table (typed loosely: Faust's stubs are incomplete); `V` is the
    value type the table stores.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def faust_table(self) -> Any:
        """The underlying Faust table, for Faust's own machinery (table routing)."""
        return self._table

    @overload
    def under(self, event: EventT[Any]) -> Rows[V]: ...
    @overload
    def under(self, event: None) -> HeldRows[V]: ...
    def under(self, event: EventT[Any] | None) -> Rows[V] | HeldRows[V]:
        """The rows in `event`'s partition; with None, the rows of every partition held
        (outside a stream only)."""
        if event is None:
            return HeldRows(self._table)
        return Rows(self._table, event)


def _check_outside_stream() -> None:
    if current_event() is not None:
        raise OutsideStreamError(
            "a table read inside a stream must name the booking's event (table.under(event))"
        )
