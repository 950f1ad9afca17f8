"""Writing a Faust table key under the right event, inside a batch.

A Faust table files a write under the partition of the *current event* (see
`faust.tables.base.Collection.partition_for_key`, and the rocksdb store). Inside
`take_events()` the current event is the batch's last one, so a batch holding several
bookings would file all their writes under that one event's partition: the rows would
land in the wrong changelog partition and vanish on the next rebalance or recovery.
Every write therefore goes through `write_under`, which makes the booking's own
latest event current for the duration of the write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import faust
from faust.types import EventT

T = TypeVar("T")


def write_under(stream: faust.Stream[bytes], event: EventT[bytes], write: Callable[[], T]) -> T:
    """Run `write` (a table assignment) with `event` as the stream's current event."""
    previous = stream.current_event
    stream._set_current_event(event)
    try:
        return write()
    finally:
        stream._set_current_event(previous)
