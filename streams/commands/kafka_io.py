"""Plain aiokafka clients for the operator commands (produce, replay, backfill).

The commands talk to Kafka directly rather than through a Faust app: they must not
join the workers' consumer group, and they must fail fast and clearly when the broker
is not there. Every connection problem becomes a one-line `UserError`. The broker is a
`BrokerConnection` (streams/transport/connection.py): its servers, and its end offsets
(`BrokerConnection.end_offsets`: the offset after each partition's last record, exact
for every profile). Nothing here depends on the kind of broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.commands.base import UserError, one_line
from streams.runtime.consumers import refresh_metadata
from streams.transport.connection import BrokerConnection

DEFAULT_TIMEOUT_S = 5.0


def bootstrap_servers(broker: BrokerConnection) -> list[str]:
    """The broker's servers, or a one-line error when its URL names none."""
    try:
        return broker.bootstrap_servers
    except ValueError as exc:
        raise UserError(f"{exc} (set ACTIVITY_SYNC_BROKER_URL)") from None


def _unreachable(servers: list[str], exc: BaseException) -> UserError:
    return UserError(f"cannot reach the Kafka broker at {','.join(servers)}: {one_line(exc)}")


def _client_options(timeout_s: float) -> dict[str, Any]:
    ms = int(timeout_s * 1000)
    return {"request_timeout_ms": ms, "connections_max_idle_ms": max(ms * 2, 540_000)}


async def _start(client: Any, servers: list[str], timeout_s: float) -> None:
    try:
        await asyncio.wait_for(client.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        # A half-started client still holds sockets and tasks.
        await client.stop()
        raise _unreachable(servers, exc) from None


@asynccontextmanager
async def _running(client: Any, servers: list[str], timeout_s: float) -> AsyncIterator[None]:
    """The producer or consumer started (or a one-line error), and stopped afterwards."""
    await _start(client, servers, timeout_s)
    try:
        yield
    finally:
        await client.stop()


@asynccontextmanager
async def producer(
    broker: BrokerConnection, timeout_s: float = DEFAULT_TIMEOUT_S
) -> AsyncIterator[AIOKafkaProducer]:
    servers = bootstrap_servers(broker)
    client = AIOKafkaProducer(
        bootstrap_servers=servers,
        # acks=all: a record is sent once every in-sync replica has it. Not idempotent:
        # nothing needs it (a retry's duplicate is harmless, the fold counts an event
        # once by its id), so the commands ask the broker for plain produce only.
        acks="all",
        linger_ms=5,
        max_request_size=1024 * 1024,
        **_client_options(timeout_s),
    )
    async with _running(client, servers, timeout_s):
        yield client


@asynccontextmanager
async def consumer(
    broker: BrokerConnection, timeout_s: float = DEFAULT_TIMEOUT_S
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group (manual assignment, nothing committed)."""
    servers = bootstrap_servers(broker)
    client = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **_client_options(timeout_s),
    )
    async with _running(client, servers, timeout_s):
        yield client


@asynccontextmanager
async def admin(
    broker: BrokerConnection, timeout_s: float = DEFAULT_TIMEOUT_S
) -> AsyncIterator[AIOKafkaAdminClient]:
    servers = bootstrap_servers(broker)
    client = AIOKafkaAdminClient(
        bootstrap_servers=servers, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(client.start(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await client.close()
        raise _unreachable(servers, exc) from None
    try:
        yield client
    finally:
        await client.close()


async def partitions_of(
    client: AIOKafkaConsumer, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[TopicPartition]:
    """The topic's partitions; a one-line error when the topic does not exist."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = client.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() >= deadline:
            raise UserError(f"topic {topic!r} does not exist (has a worker ever run?)")
        await refresh_metadata(client)
        await asyncio.sleep(0.2)


async def offsets(
    broker: BrokerConnection, client: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(beginning, end) offsets of each partition; the end from
    `BrokerConnection.end_offsets`, the offset after the last record, exact for every
    profile."""
    begin = await client.beginning_offsets(partitions)
    end = await broker.end_offsets(client, partitions)
    return dict(begin), end
