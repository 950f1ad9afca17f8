"""A fake of aiokafka's producer as the app's record batches use it
(streams/transport/record_batches.py `send_as_batches`): `create_batch` gives builders
that hold `capacity` records, `send_batch` answers with a future per batch, which the
test settles (`acknowledge_all`, or a failure of its own)."""

from __future__ import annotations

import asyncio
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
    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self.sent: list[tuple[TP, list[Record], asyncio.Future[Any]]] = []
        self.next_offset: dict[TP, int] = {}

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
