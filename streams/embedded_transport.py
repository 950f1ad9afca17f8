"""Faust's aiokafka transport, with a short consumer fetch wait, for the embedded broker.

Faust 0.15.3 creates its consumer with a hard-coded `fetch_max_wait_ms=1500`. Tansu
holds a fetch for about half the max wait before answering even when records are
there, so each hop (booking-events -> ingest, activity-projections -> sink) cost
~0.75 s at p50 (measured: docs/performance.md, "Live p99"). Apache Kafka answers as
soon as `fetch_min_bytes` is there, so the `kafka` profile keeps Faust's transport.

Selected by the embedded profile in `streams.settings` through the URL scheme
`tansu://` for the consumer; everything else is Faust's own transport.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "tansu"
FETCH_MAX_WAIT_MS = 50


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the value and hands it to its fetcher when the consumer starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
