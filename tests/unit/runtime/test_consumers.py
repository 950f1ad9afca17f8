"""What a consumer knows (streams/runtime/consumers.py), read from the installed Faust
and aiokafka: the internals it relies on are where it looks for them."""

from __future__ import annotations

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from faust.types import TP

from streams.runtime.consumers import next_offset, refresh_metadata

TP0 = TP("booking-events", 0)


async def test_the_next_offset_is_none_until_one_is_committed() -> None:
    # In a running loop, as in the worker: the app takes it rather than making one.
    consumer = faust.App("runtime-test", broker="kafka://localhost:1").consumer
    assert next_offset(consumer, TP0) is None
    # Faust records the group's committed offsets at assignment and after each commit.
    consumer._committed_offset.update({TP0: 42})
    assert next_offset(consumer, TP0) == 42
    assert next_offset(consumer, TP("booking-events", 1)) is None
    consumer._thread.thread_loop.close()  # the consumer thread's own loop, never started


async def test_a_metadata_refresh_asks_the_cluster() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="localhost:1", request_timeout_ms=1000)
    asked: list[str] = []

    async def force_metadata_update() -> bool:
        asked.append("metadata")
        return True

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(consumer._client, "force_metadata_update", force_metadata_update)
        await refresh_metadata(consumer)
    assert asked == ["metadata"]
    await consumer.stop()
