"""Table changelog writes, sent as one record batch per changelog partition and loop turn.

Faust sends each table write on its own: a `FutureMessage`, a trip through the producer
buffer's queue, a publish coroutine, aiokafka's `send` with a future per record, and
three callbacks on the broker's ack (the table's persisted offset, sensors, the commit
guard's tracking). A fold batch writes a row or two per booking it changes, so these
paths were a large share of a worker's CPU (docs/performance.md, "Changelog writes
and projections in batches").

Here a write joins its changelog partition's open batch (`ChangelogBatch`), keyed by the
row's key: a key written twice before the batch leaves is sent once, with its last value
(a changelog is compacted; a restore keeps only a key's last value). The producer's
sender task (streams/transport/producer.py) takes every open batch when the event loop
next turns to it and hands each to aiokafka whole (`send_as_batches`,
streams/transport/record_batches.py): one future per record batch, resolved when the
broker acknowledges it; then the table's store records the batch's last offset, as
Faust's `_on_changelog_sent` did per record.

What holds as before:
- **The commit guard** (streams/transport/acks.py): a batch is tracked in
  `CHANGELOG_WRITES` from its first write, so a commit waits for writes that have not
  left yet as well as for those on their way.
- **Order**: one task sends, batch after batch, so a partition's batches reach the
  broker in the order their writes were made.
- **A failed batch** (a `KafkaError`): its keys of which it is still the newest write
  are written again (`ChangelogWrites`, streams/transport/tables.py); a batch cancelled
  because the producer stopped is not (the worker is stopping; the skipped commit leaves
  the events to the partition's next owner). Any other error is a bug and is raised:
  writing again what cannot be written would spin.
- **A bound**: the stream waits (Faust's conductor, before each record) while the
  producer's `Backlog` of unacknowledged records is over its bound, as Faust's producer
  buffer made it wait.
- **Stop**: the open batches are sent before the producer stops.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Hashable
from typing import Any, Protocol, cast

from aiokafka.errors import KafkaError, ProducerClosed
from faust.types import TP

from streams.transport.record_batches import Backlog, send_as_batches
from streams.transport.tables import ChangelogWrites

log = logging.getLogger(__name__)


class OffsetStore(Protocol):
    """What a batch needs of its table's store: where the table's changelog has reached."""

    def set_persisted_offset(self, tp: TP, offset: int) -> None: ...


class ChangelogBatch:
    """The writes to one changelog partition waiting to leave: each key's last value
    (None deletes the row: a tombstone)."""

    __slots__ = ("records", "store", "tp", "written")

    def __init__(self, store: OffsetStore, tp: TP, written: asyncio.Future[None]) -> None:
        self.store = store
        self.tp = tp
        self.records: dict[bytes, bytes | None] = {}
        # Resolved once the broker has it all (the commit guard waits for it).
        self.written = written


class ChangelogBatches:
    """The table changelog writes of one producer waiting to leave, by partition."""

    def __init__(
        self, writes: ChangelogWrites, backlog: Backlog, opened: Callable[[], None]
    ) -> None:
        self._writes = writes
        self._backlog = backlog
        self._opened = opened
        self._open: dict[TP, ChangelogBatch] = {}

    @property
    def has_open(self) -> bool:
        return bool(self._open)

    def write(self, store: OffsetStore, tp: TP, key: bytes, value: bytes | None) -> None:
        """Write `key`'s row (`value`, or None to delete it) to changelog partition `tp`."""
        batch = self._open.get(tp)
        if batch is None:
            batch = ChangelogBatch(store, tp, asyncio.get_running_loop().create_future())
            self._open[tp] = batch
            self._writes.track(batch.written, resend=functools.partial(self._resend, batch))
            self._opened()
        records = batch.records
        if key not in records:
            self._backlog.add()
            self._writes.claim(batch.written, (tp, key))
        records[key] = value

    def _resend(self, failed: ChangelogBatch, slots: list[Hashable]) -> None:
        for slot in slots:
            tp, key = cast(tuple[TP, bytes], slot)  # the slots `write` claims
            self.write(failed.store, tp, key, failed.records[key])

    async def send_open(self, producer: Any) -> None:
        """Hand every open batch to `producer` (aiokafka's; None: stopped), in order."""
        batches, self._open = self._open, {}
        for batch in batches.values():
            try:
                if producer is None:
                    raise ProducerClosed()
                acks, counts = await send_as_batches(
                    producer,
                    batch.tp,
                    ((key, value, ()) for key, value in batch.records.items()),
                )
            except ProducerClosed:
                self._settle(batch, cancelled=True)
                continue
            except KafkaError as exc:  # not queued: its keys are written again
                self._settle(batch, error=exc)
                continue
            done = asyncio.gather(*acks)
            done.add_done_callback(functools.partial(self._acknowledged, batch, counts))

    def _acknowledged(
        self, batch: ChangelogBatch, counts: list[int], done: asyncio.Future[list[Any]]
    ) -> None:
        if done.cancelled():
            self._settle(batch, cancelled=True)
            return
        error = done.exception()
        if error is not None:
            self._settle(batch, error=error)
            return
        # The last record's offset: the last batch's base offset and its count.
        batch.store.set_persisted_offset(batch.tp, done.result()[-1].offset + counts[-1] - 1)
        self._settle(batch)

    def _settle(
        self,
        batch: ChangelogBatch,
        *,
        error: BaseException | None = None,
        cancelled: bool = False,
    ) -> None:
        self._backlog.settle(len(batch.records))
        written = batch.written
        if written.done():
            return
        if cancelled:
            written.cancel()
        elif error is not None:
            log.warning(
                "a changelog batch of %d records to %s failed: %r",
                len(batch.records),
                batch.tp,
                error,
            )
            written.set_exception(error)
        else:
            written.set_result(None)
