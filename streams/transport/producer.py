"""The app's Faust producer: table changelog writes in batches, room for a batch's writes.

Table writes (streams/transport/tables.py `Table`) reach the producer through
`write_changelog` and leave as one record batch per changelog partition and loop turn
(streams/transport/changelog.py): the sender task below hands the open batches to
aiokafka as soon as the event loop turns to it, so everything a fold batch wrote between
two awaits leaves together.

The bound: before handing the stream each record, Faust's conductor waits for the
producer buffer to ebb (`ProducerBuffer.wait_until_ebb`). It waits here too while more
than `MAX_UNACKNOWLEDGED` changelog writes are not acknowledged, so a producer that
cannot send (a broker down) stops the stream instead of piling up writes. (Faust's own
buffer now carries only what Faust sends with `send_soon` itself; the app's table
writes went through it one by one, and above its 100 messages the conductor waited and
logged "producer buffer full" at WARNING each time.)

Stop and flush: the open batches are sent before the producer flushes (Faust flushes
before it commits, on a rebalance) and before it stops.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

from streams.transport.changelog import ChangelogBatches, OffsetStore
from streams.transport.tables import CHANGELOG_WRITES

# Changelog writes held unacknowledged before the stream waits for them.
MAX_UNACKNOWLEDGED = 10_000


class Producer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changelog_batches = ChangelogBatches(CHANGELOG_WRITES, MAX_UNACKNOWLEDGED)
        faust_ebb = self.buffer.wait_until_ebb

        async def wait_until_ebb() -> None:
            await faust_ebb()
            await self.changelog_batches.wait_until_ebb()

        # The conductor reads the buffer's method when it starts, after this.
        self.buffer.wait_until_ebb = wait_until_ebb  # type: ignore[method-assign]

    def write_changelog(self, store: OffsetStore, tp: TP, key: bytes, value: bytes | None) -> None:
        """A table row's write (None: its deletion), sent with its partition's batch."""
        self.changelog_batches.write(store, tp, key, value)

    @Service.task
    async def _send_changelogs(self) -> None:
        batches = self.changelog_batches
        while not self.should_stop:
            await batches.wait_opened()
            await batches.send_open(self._producer)

    async def flush(self) -> None:
        await self.changelog_batches.send_open(self._producer)
        await super().flush()

    async def on_stop(self) -> None:
        await self.changelog_batches.send_open(self._producer)
        await super().on_stop()
