"""What a consumer knows and does not expose: offsets, and the cluster's metadata.

- `next_offset(consumer, tp)`: the offset Faust's consumer last committed for `tp`,
  the next record a restart would read (from its private `_committed_offset`: the
  group's committed offset at assignment, then each commit); None when it knows none.
  No broker round trip.
- `refresh_metadata(consumer)`: an aiokafka consumer asks the cluster for its metadata
  now (new topics, partitions), through its private client (`_client`); aiokafka's
  public API refreshes only on its own schedule.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.types import TP


def next_offset(consumer: Any, tp: TP) -> int | None:
    """The offset Faust's `consumer` last committed for `tp`, or None."""
    return consumer._committed_offset.get(tp)  # type: ignore[no-any-return]


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Fetch the cluster's metadata now (raises aiokafka's errors when unreachable)."""
    await consumer._client.force_metadata_update()
