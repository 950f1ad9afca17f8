"""The embedded broker (Tansu): Faust's aiokafka transport and the end offsets, corrected.

Two Tansu behaviours, each corrected here so the rest of the app is plain Faust:

- **Fetch wait.** Tansu holds a fetch for about half the max wait even when records
  are there, so with Faust's 1500 ms each hop (booking-events -> ingest,
  activity-projections -> sink) cost ~0.75 s at p50 (docs/performance.md, "Live p99").
  The consumer here waits at most 50 ms (the `kafka` profile's, 100 ms:
  `streams.transport.consumer`).
- **End offsets.** Tansu (v0.6.0) answers ListOffsets(latest) with the *first* offset
  of a partition's newest record batch + 1, not the offset after its last record:
  after one producer batch of ten records it says 1, not 10. Anything that reads "up to
  the end" would stop short of that batch's tail; Faust's table recovery is one (it
  would lose the newest changelog records), the operator commands' lag and progress are
  others. `exact_end_offsets` takes those answers and reads each partition's newest
  batch, from its first record, to find the offset after its last one; the consumer
  here corrects its answers with it, and so does the embedded profile's
  `BrokerConnection.end_offsets` (streams.transport.connection), so producers batch
  as on Kafka. Apache Kafka's answer is already exact. Fetch responses'
  high-water marks are exact on Tansu, so the consumer-lag gauge
  (streams/worker/watch/lag.py) needs no correction.

Selected by the embedded profile (streams.transport.connection) through the URL scheme
`tansu://` for the consumer. Otherwise it is the `kafka` profile's consumer
(`streams.transport.consumer`: the ack guard and one flow race per fetch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.transport import consumer

log = logging.getLogger(__name__)

SCHEME = "tansu"
FETCH_MAX_WAIT_MS = 50
# Faust waits up to `broker_request_timeout` (90 s) for the highwaters.
PROBE_TIMEOUT_S = 60.0
PROBE_SLOW_S = 2.0  # log how long a probe took past this

TPKey = TypeVar("TPKey")  # aiokafka's TopicPartition or Faust's TP: both (topic, partition)


async def exact_end_offsets(
    bootstrap_servers: str | list[str], reported: Mapping[TPKey, int]
) -> dict[TPKey, int]:
    """The offset after the last record of each partition, from Tansu's `reported`
    ListOffsets(latest) answers; read with a short-lived consumer outside any group."""
    exact = dict(reported)
    pending: dict[tuple[str, int], TPKey] = {
        (tp.topic, tp.partition): tp  # type: ignore[attr-defined]
        for tp, end in reported.items()
        if end > 0
    }
    if not pending:
        return exact
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    await probe.start()
    try:
        probe.assign([TopicPartition(topic, partition) for topic, partition in pending])
        for (topic, partition), tp in pending.items():
            # reported - 1 is the newest batch's first record.
            probe.seek(TopicPartition(topic, partition), reported[tp] - 1)
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            fetched: dict[Any, list[Any]] = await probe.getmany(timeout_ms=100)
            for fetched_tp, records in fetched.items():
                found = pending.pop((fetched_tp.topic, fetched_tp.partition), None)
                if records and found is not None:
                    exact[found] = max(exact[found], records[-1].offset + 1)
            # A fetch answered without records still carries the partition's high-water
            # mark, which Tansu reports exactly. A probe can get no records back for the
            # whole wait (60 s on a restarted worker at the 200k bench stage); keeping
            # ListOffsets' short answer would then stop it with Faust's ConsistencyError.
            for (topic, partition), tp in list(pending.items()):
                highwater = probe.highwater(TopicPartition(topic, partition))
                if highwater is not None:
                    exact[tp] = max(exact[tp], highwater)
                    del pending[(topic, partition)]
    finally:
        await probe.stop()
    took = PROBE_TIMEOUT_S - (deadline - time.monotonic())
    if took > PROBE_SLOW_S:
        log.warning("end offsets: the probe of %d partitions took %.1fs", len(reported), took)
    if pending:
        log.warning("no record read at the end of %s; keeping ListOffsets", sorted(pending))
    return exact


class ConsumerThread(consumer.ConsumerThread):
    fetch_max_wait_ms = FETCH_MAX_WAIT_MS

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


class Transport(consumer.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
