"""Reading and writing a booking's table row under the booking's own partition.

Faust picks a table row's partition from the *current event* (a context variable):
`Collection.partition_for_key` files a write under it, and the RocksDB store
(`faust/stores/rocksdb.py`, `_get`/`_contains`) looks a key up *only* in that event's
partition store. Inside `take_events()` the current event is some event of the batch,
so a batch holding bookings of several partitions would read the others as empty
(their state folded from scratch, their Events written wrong) and file their writes in
the wrong changelog partition (lost on the next rebalance). The memory store hides the
read half: it keeps one dict for all partitions.

`PartitionedTable` is the only way the code reaches the `bookings` and `synced` tables:
in a stream every read and write names the booking's event (`under=`), and outside a
stream (timers, web views) a read names no event and is refused if one is current, so
the partition-blind way cannot be written. Without a current event the RocksDB store
searches the partitions this worker holds, which is right for timers and web views.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Generic, NamedTuple, TypeVar, cast

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


class PartitionedTable(Generic[V]):
    """A Faust table keyed by booking id, accessed only under the booking's partition.

    `table` is the Faust table (typed loosely: Faust's stubs are incomplete); `V` is the
    value type the table stores.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def faust_table(self) -> Any:
        """The underlying Faust table, for Faust's own machinery (table routing)."""
        return self._table

    def get(self, key: bytes, *, under: EventT[Any] | None) -> V | None:
        """The row of `key`, read in the partition of `under` (the booking's own event).

        `under=None` is for code outside a stream (timers, web views), where no event
        is current and the store searches the worker's partitions."""
        if under is None:
            self._check_outside_stream()
            return self._table.get(key)  # type: ignore[no-any-return]
        with current(under):
            return self._table.get(key)  # type: ignore[no-any-return]

    def set(self, key: bytes, value: V, *, under: EventT[Any]) -> None:
        """Write `key`'s row in the partition (and changelog partition) of `under`."""
        with current(under):
            self._table[key] = value

    def delete(self, key: bytes, *, under: EventT[Any]) -> None:
        """Remove `key`'s row from the partition (and changelog partition) of `under`."""
        # The memory store raises for a missing key; RocksDB does not.
        with current(under), suppress(KeyError):
            del self._table[key]

    def items(self) -> Iterator[tuple[bytes, V]]:
        """Every row of the partitions this worker holds (outside a stream only)."""
        self._check_outside_stream()
        return iter(self._table.items())

    @staticmethod
    def _check_outside_stream() -> None:
        if current_event() is not None:
            raise OutsideStreamError(
                "a table read inside a stream must name the booking's event (under=event)"
            )
