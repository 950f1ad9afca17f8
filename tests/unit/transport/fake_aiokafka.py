"""A fake of aiokafka's producer as the app's record batches use it
(streams/transport/record_batches.py `send_as_batches`): `create_batch` gives builders
that hold `capacity` records, `send_batch` answers with a future per batch, which the
test settles (`acknowledge_all`, or a failure of its own); its partitioner knows a
topic once `partitions_for` has fetched it."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from faust.types import TP

Record = tuple[bytes | None, bytes | None, Any]


class Metadata:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class Builder:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[Record] = []

    def append(
        self, *, timestamp: Any, key: bytes | None, value: bytes | None, headers: Any = ()
    ) -> object | None:
        if not isinstance(headers, list):  # as aiokafka's compiled builder
            raise TypeError(
                f"Argument 'headers' has incorrect type (expected list, got {type(headers)})"
            )
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value, headers))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    def __init__(self, capacity: int = 100, partitions: int = 4) -> None:
        self.capacity = capacity
        self.partitions = partitions
        self.sent: list[tuple[TP, list[Record], asyncio.Future[Any]]] = []
        self.next_offset: dict[TP, int] = {}
        # Topics whose partitions the producer's metadata holds (none until asked).
        self.known_topics: set[str] = set()

    async def partitions_for(self, topic: str) -> set[int]:
        await asyncio.sleep(0)  # a metadata request
        self.known_topics.add(topic)
        return set(range(self.partitions))

    def _partition(
        self,
        topic: str,
        partition: int | None,
        key: Any,
        value: Any,
        serialized_key: bytes | None,
        serialized_value: Any,
    ) -> int:
        if topic not in self.known_topics:  # as aiokafka's, over metadata without the topic
            raise TypeError("'NoneType' object is not iterable")
        return zlib.crc32(serialized_key or b"") % self.partitions

    def create_batch(self) -> Builder:
        return Builder(self.capacity)

    async def send_batch(
        self, batch: Builder, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((TP(topic, partition), batch.records, ack))
        return ack

    def acknowledge_all(self) -> None:
        for tp, records, ack in self.sent:
            if not ack.done():
                base = self.next_offset.get(tp, 0)
                self.next_offset[tp] = base + len(records)
                ack.set_result(Metadata(base))

    def records_sent(self) -> list[tuple[TP, list[tuple[bytes | None, bytes | None]]]]:
        """Each batch sent: its partition, keys and values."""
        return [(tp, [(key, value) for key, value, _ in records]) for tp, records, _ in self.sent]


async def settled() -> None:
    """Until the acks' callbacks have run (gather's, then the batch's)."""
    for _ in range(3):
        await asyncio.sleep(0)
