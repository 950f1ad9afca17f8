"""The embedded broker's end offsets, corrected (streams/transport/tansu.py), on the real
broker; the kafka profile's connection (streams/transport/connection.py) takes them as
the broker answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from devkit.broker import EmbeddedBroker
from streams.commands import kafka_io
from streams.transport.connection import KAFKA_PROFILE, BrokerConnection
from streams.transport.tansu import exact_end_offsets

pytestmark = pytest.mark.integration

TOPIC = "changelog-like"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """An embedded broker of the test's own (the suite's `broker` is Apache Kafka)."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as running:
        yield running


TPS = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]


async def _produce_batches(broker: EmbeddedBroker, batches: list[int]) -> None:
    """Into partition 0, one producer batch of `size` records per entry of `batches`."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=200)
    await producer.start()
    try:
        for size in batches:
            sent = [
                await producer.send(TOPIC, key=b"k%d" % n, value=b"v", partition=0)
                for n in range(size)
            ]
            for future in sent:
                await future
    finally:
        await producer.stop()


async def _end_offsets(broker: BrokerConnection) -> dict[TopicPartition, int]:
    async with kafka_io.consumer(broker) as consumer:
        _, end = await kafka_io.offsets(broker, consumer, TPS)
        return end


@pytest.mark.parametrize(
    "batches",
    [[], [1], [25], [10, 10, 10], [1, 1, 1, 1], [7, 1, 30]],
    ids=["empty", "one-record", "one-batch", "three-batches", "single-records", "mixed"],
)
async def test_end_offsets_are_the_offset_after_the_last_record(
    broker: EmbeddedBroker, batches: list[int]
) -> None:
    async with kafka_io.admin(broker.connection) as admin:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    await _produce_batches(broker, batches)
    # Partition 1 stays empty throughout.
    want = {TPS[0]: sum(batches), TPS[1]: 0}
    # ListOffsets(latest) as the broker answers it: the kafka profile takes it as it is.
    reported = await _end_offsets(BrokerConnection(broker.url, KAFKA_PROFILE))

    assert await exact_end_offsets(broker.bootstrap, reported) == want, f"reported {reported}"
    # The operator commands' view of the same partitions, through the embedded profile.
    assert await _end_offsets(broker.connection) == want


async def test_end_offsets_come_from_the_high_water_mark_when_no_record_is_read(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that gets no records back (as a restarted worker's once did for 60 s at
    the 200k bench stage) still finds the end: the fetch answers carry the high-water
    mark. Before, it kept ListOffsets' short answer and Faust's recovery stopped."""
    async with kafka_io.admin(broker.connection) as admin:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    await _produce_batches(broker, [7, 30])
    reported = await _end_offsets(BrokerConnection(broker.url, KAFKA_PROFILE))
    assert reported[TPS[0]] < 37  # Tansu's short answer: what there is to correct

    async def no_records(self: AIOKafkaConsumer, *_: object, timeout_ms: int = 0) -> dict[Any, Any]:
        await asyncio.sleep(timeout_ms / 1000)  # the fetcher runs; nothing is handed over
        return {}

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", no_records)
    assert await exact_end_offsets(broker.bootstrap, reported) == {TPS[0]: 37, TPS[1]: 0}
