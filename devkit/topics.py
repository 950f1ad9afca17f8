"""Writing and reading a broker's topics from outside, for tests and benches.

Plain aiokafka clients, as a producer or an operator would use them (no consumer group,
nothing committed): `tests/fixtures.py` and `bench/harness.py` share these. A topic is
named by its default name and found in the broker's namespace (a test's prefix on the
shared Kafka: devkit/broker_namespace.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devkit.broker import EmbeddedBroker
from devkit.broker_namespace import BrokerNamespace
from devkit.kafka import KafkaCluster

Record = tuple[bytes | None, bytes]
# A broker, or a namespace on one.
AnyBroker = BrokerNamespace | EmbeddedBroker | KafkaCluster


def event_records(events: Iterable[dict[str, Any]]) -> list[Record]:
    """Kafka records for event dicts, keyed by subject as producers must."""
    return [(str(event["subject"]).encode(), orjson.dumps(event)) for event in events]


async def produce(
    broker: AnyBroker,
    topic: str,
    records: Iterable[Record],
    *,
    rate: float | None = None,
    on_sent: Callable[[int, float], None] | None = None,
) -> float:
    """Send `records` (at `rate` per second if given); return seconds taken incl. flush.

    `on_sent(index, wall_time)` is called as each record is handed to the producer.
    """
    topic = BrokerNamespace.of(broker).topic(topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap,
        # aiokafka's default is acks=1: a record the leader took but had not replicated
        # is lost when that leader dies (chaos kills it). All in-sync replicas, as the app.
        acks="all",
        max_request_size=4 * 1024 * 1024,
        linger_ms=5 if rate is None else 0,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    began = time.monotonic()
    try:
        for index, (key, value) in enumerate(records):
            if rate is not None:
                delay = began + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.send(topic, key=key, value=value)
            if on_sent is not None:
                on_sent(index, time.time())
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - began


async def _partitions(consumer: AIOKafkaConsumer, topic: str, wait_s: float) -> list[Any]:
    """The topic's partitions, waiting up to `wait_s` for it to exist ([] if it does not)."""
    deadline = time.monotonic() + wait_s
    partitions = consumer.partitions_for_topic(topic) or set()
    while not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
        if partitions or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def read_topic(
    broker: AnyBroker,
    topic: str,
    *,
    expect: int | None = None,
    wait_s: float = 30.0,
    idle_s: float = 2.0,
) -> list[Any]:
    """Every record of `topic` from the start.

    With `expect`: once at least that many are there (waiting up to `wait_s` in all,
    for the topic too). Without: what the topic holds now, read until its end offsets
    are reached and a fetch comes back empty, or nothing came for `idle_s`.
    """
    topic = BrokerNamespace.of(broker).topic(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + wait_s
        tps = await _partitions(consumer, topic, wait_s if expect is not None else 0.0)
        if not tps:
            return []
        consumer.assign(tps)
        if expect is not None:
            while len(records) < expect and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for items in batch.values():
                    records.extend(items)
            return records
        ends = await consumer.end_offsets(tps)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            batch = await consumer.getmany(timeout_ms=200)
            got = sum(len(items) for items in batch.values())
            for items in batch.values():
                records.extend(items)
            if got:
                quiet_since = time.monotonic()
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps) and not got:
                break
    finally:
        await consumer.stop()
    return records
