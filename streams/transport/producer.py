"""The app's Faust producer: its records leave in batches, one per partition and loop turn.

Table writes (streams/transport/tables.py `Table`) reach the producer through
`write_changelog` (streams/transport/changelog.py), the app's own records (projections,
hand-backs) through `send_record` (streams/transport/record_batches.py). Both join
their partition's open batch; the sender task below hands the open batches to aiokafka
as soon as the event loop turns to it, so everything a fold batch wrote and sent
between two awaits leaves together, one record batch per partition.

The bound: before handing the stream each record, Faust's conductor waits for the
producer buffer to ebb (`ProducerBuffer.wait_until_ebb`). It waits here too while more
than `MAX_UNACKNOWLEDGED` of these records are not acknowledged (`Backlog`), so a
producer that cannot send (a broker down) stops the stream instead of piling up
records. (Faust's own buffer now carries only what Faust sends with `send_soon` itself;
the app's table writes went through it one by one, and above its 100 messages the
conductor waited and logged "producer buffer full" at WARNING each time.)

Stop and flush: the open batches are sent before the producer flushes (Faust flushes
before every commit and on a rebalance) and before it stops.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

from streams.transport.changelog import ChangelogBatches, OffsetStore
from streams.transport.record_batches import Backlog, Headers, RecordBatches, SentCallback
from streams.transport.tables import CHANGELOG_WRITES

# Records (changelog writes and the app's own) unacknowledged before the stream waits.
MAX_UNACKNOWLEDGED = 10_000


class Producer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opened = asyncio.Event()
        self._sending = asyncio.Lock()
        self.backlog = Backlog(MAX_UNACKNOWLEDGED)
        self.changelog_batches = ChangelogBatches(CHANGELOG_WRITES, self.backlog, self._opened.set)
        self.record_batches = RecordBatches(self.backlog, self._opened.set)
        faust_ebb = self.buffer.wait_until_ebb

        async def wait_until_ebb() -> None:
            await faust_ebb()
            await self.backlog.wait_until_ebb()

        # The conductor reads the buffer's method when it starts, after this.
        self.buffer.wait_until_ebb = wait_until_ebb  # type: ignore[method-assign]

    def write_changelog(self, store: OffsetStore, tp: TP, key: bytes, value: bytes | None) -> None:
        """A table row's write (None: its deletion), sent with its partition's batch."""
        self.changelog_batches.write(store, tp, key, value)

    async def send_record(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        on_sent: SentCallback | None = None,
    ) -> None:
        """A record to `topic`, in the partition of its key (as aiokafka's default
        partitioner places it), sent with that partition's batch; `on_sent(partition,
        offset)` once the broker has it."""
        # The partitioner needs the topic's partitions, which the producer's metadata may
        # not hold yet (a worker's first projection): wait for them as aiokafka's own
        # `send` does. Once known, this is a lookup.
        await self._ensure_producer().partitions_for(topic)
        # Faust types the key as bytes; aiokafka's partitioner takes None (any partition).
        tp = self.key_partition(topic, cast(bytes, key))
        self.record_batches.send(tp, key, value, headers, on_sent)

    async def send_open(self) -> None:
        """Hand every open batch to aiokafka, in the order they were opened."""
        async with self._sending:
            while self.changelog_batches.has_open or self.record_batches.has_open:
                self._opened.clear()
                await self.changelog_batches.send_open(self._producer)
                await self.record_batches.send_open(self._producer)

    @Service.task
    async def _send_batches(self) -> None:
        while not self.should_stop:
            await self._opened.wait()
            await self.send_open()

    async def flush(self) -> None:
        await self.send_open()
        await super().flush()

    async def on_stop(self) -> None:
        await self.send_open()
        await super().on_stop()
