"""Table changelog writes, sent as one record batch per changelog partition and loop turn.

Faust sends each table write on its own: a `FutureMessage`, a trip through the producer
buffer's queue, a publish coroutine, aiokafka's `send` with a future per record, and
three callbacks on the broker's ack (the table's persisted offset, sensors, the commit
guard's tracking). A fold batch writes a row or two per booking it changes, so these
paths were a large share of a worker's CPU (docs/performance.md, "Changelog writes in
batches").

Here a write joins its changelog partition's open batch (`ChangelogBatch`), keyed by the
row's key: a key written twice before the batch leaves is sent once, with its last value
(a changelog is compacted; a restore keeps only a key's last value). The producer's
sender task (streams/transport/producer.py) takes every open batch when the event loop
next turns to it and hands each to aiokafka whole (`create_batch`, `send_batch`): one
future per batch, resolved when the broker acknowledges it; then the table's store
records the batch's last offset, as Faust's `_on_changelog_sent` did per record.

What holds as before:
- **The commit guard** (streams/transport/acks.py): a batch is tracked in
  `CHANGELOG_WRITES` from its first write, so a commit waits for writes that have not
  left yet as well as for those on their way.
- **Order**: one task sends, batch after batch, so a partition's batches reach the
  broker in the order their writes were made.
- **A failed batch**: its keys of which it is still the newest write are written again
  (`ChangelogWrites`, streams/transport/tables.py); a batch cancelled because the
  producer stopped is not (the worker is stopping; the skipped commit leaves the events
  to the partition's next owner).
- **A bound**: the stream waits (Faust's conductor, before each record) while more than
  `max_records` writes are unacknowledged, as Faust's producer buffer made it wait.
- **Stop**: the open batches are sent before the producer stops.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Hashable
from typing import Any, Protocol, cast

from aiokafka.errors import ProducerClosed
from faust.types import TP

from streams.transport.tables import ChangelogWrites

log = logging.getLogger(__name__)


class OffsetStore(Protocol):
    """What a batch needs of its table's store: where the table's changelog has reached."""

    def set_persisted_offset(self, tp: TP, offset: int) -> None: ...


class ChangelogBatch:
    """The writes to one changelog partition waiting to leave: each key's last value
    (None deletes the row: a tombstone)."""

    __slots__ = ("records", "store", "tp", "written")

    def __init__(self, store: OffsetStore, tp: TP, written: asyncio.Future[int]) -> None:
        self.store = store
        self.tp = tp
        self.records: dict[bytes, bytes | None] = {}
        # Resolved with the offset of the batch's last record once the broker has it all.
        self.written = written


class ChangelogBatches:
    """The changelog writes of one producer: open batches, and those sent but not
    acknowledged (`unsettled`, the bound's count)."""

    def __init__(self, writes: ChangelogWrites, max_records: int) -> None:
        self._writes = writes
        self.max_records = max_records
        self._open: dict[TP, ChangelogBatch] = {}
        self.unsettled = 0
        self._opened = asyncio.Event()
        self._ebbed = asyncio.Event()
        self._sending = asyncio.Lock()
        self.batches_sent = 0

    def write(self, store: OffsetStore, tp: TP, key: bytes, value: bytes | None) -> None:
        """Write `key`'s row (`value`, or None to delete it) to changelog partition `tp`."""
        batch = self._open.get(tp)
        if batch is None:
            batch = ChangelogBatch(store, tp, asyncio.get_running_loop().create_future())
            self._open[tp] = batch
            self._writes.track(batch.written, resend=functools.partial(self._resend, batch))
            self._opened.set()
        records = batch.records
        if key not in records:
            self.unsettled += 1
            self._writes.claim(batch.written, (tp, key))
        records[key] = value

    def _resend(self, failed: ChangelogBatch, slots: list[Hashable]) -> None:
        for slot in slots:
            tp, key = cast(tuple[TP, bytes], slot)  # the slots `write` claims
            self.write(failed.store, tp, key, failed.records[key])

    async def wait_opened(self) -> None:
        """Until a batch is open (the sender task's wake-up)."""
        await self._opened.wait()

    async def wait_until_ebb(self) -> None:
        """Until at most `max_records` writes are unacknowledged."""
        while self.unsettled > self.max_records:
            self._ebbed.clear()
            await self._ebbed.wait()

    async def send_open(self, producer: Any) -> None:
        """Hand every open batch to `producer` (aiokafka's; None: stopped), in order."""
        async with self._sending:
            while self._open:
                self._opened.clear()
                batches, self._open = self._open, {}
                for batch in batches.values():
                    await self._send(producer, batch)

    async def _send(self, producer: Any, batch: ChangelogBatch) -> None:
        tp = batch.tp
        acks: list[asyncio.Future[Any]] = []
        counts: list[int] = []
        try:
            if producer is None:
                raise ProducerClosed()
            builder = producer.create_batch()
            for key, value in batch.records.items():
                if builder.append(timestamp=None, key=key, value=value) is None:
                    counts.append(builder.record_count())
                    acks.append(
                        await producer.send_batch(builder, tp.topic, partition=tp.partition)
                    )
                    builder = producer.create_batch()
                    builder.append(timestamp=None, key=key, value=value)  # the first always fits
            counts.append(builder.record_count())
            acks.append(await producer.send_batch(builder, tp.topic, partition=tp.partition))
        except ProducerClosed:
            self._settle(batch, cancelled=True)
            return
        except Exception as exc:  # the batch failed before it was queued; its keys are resent
            self._settle(batch, error=exc)
            return
        self.batches_sent += len(acks)
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
        last = done.result()[-1].offset + counts[-1] - 1
        batch.store.set_persisted_offset(batch.tp, last)
        self._settle(batch, offset=last)

    def _settle(
        self,
        batch: ChangelogBatch,
        *,
        offset: int | None = None,
        error: BaseException | None = None,
        cancelled: bool = False,
    ) -> None:
        self.unsettled -= len(batch.records)
        if self.unsettled <= self.max_records:
            self._ebbed.set()
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
            written.set_result(offset if offset is not None else -1)
