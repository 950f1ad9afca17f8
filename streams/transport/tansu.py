"""Faust's aiokafka transport, adjusted for the embedded broker (Tansu).

Two Tansu behaviours, each corrected here so the rest of the app is plain Faust:

- **Fetch wait.** Faust 0.15.3 creates its consumer with a hard-coded
  `fetch_max_wait_ms=1500`, and Tansu holds a fetch for about half the max wait even
  when records are there, so each hop (booking-events -> ingest, activity-projections
  -> sink) cost ~0.75 s at p50 (docs/performance.md, "Live p99"). The consumer here
  waits at most 50 ms. Apache Kafka answers as soon as `fetch_min_bytes` is there.
- **End offsets.** Tansu's ListOffsets(latest) answer stops short of the newest
  record batch's tail, and Faust's table recovery reads a changelog up to that
  answer: it would lose the newest changelog records. The consumer corrects the
  answer (`streams.transport.tansu_offsets`). Before this, the profile made every producer
  batch one record long instead, which made every record its own produce request.

Selected by the embedded profile in `streams.worker.settings` through the URL scheme
`tansu://` for the consumer. Otherwise it is the `kafka` profile's consumer
(`streams.transport.consumer`: the ack guard and one flow race per fetch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.transport import consumer
from streams.transport.tansu_offsets import exact_end_offsets

SCHEME = "tansu"
FETCH_MAX_WAIT_MS = 50


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the value and hands it to its fetcher when the consumer starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        transport = cast(faust_aiokafka.Transport, self.transport)
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)
        return await exact_end_offsets(servers, reported)


class TansuThread(faust_aiokafka.Consumer):
    """Mixin for a Faust aiokafka consumer: its thread is `ConsumerThread` above."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Consumer(TansuThread, consumer.Consumer):
    """The app's consumer (`streams.transport.consumer`) with the Tansu corrections."""


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
