"""The embedded broker's end offsets, made exact.

Tansu (v0.6.0) answers ListOffsets(latest) with the *first* offset of a partition's
newest record batch + 1, not the offset after its last record: after one producer
batch of ten records it says 1, not 10. Anything that reads "up to the end" would stop
short of that batch's tail; Faust's table recovery is one (it would lose the newest
changelog records), the operator commands' lag and progress are others.

`exact_end_offsets` takes those answers and reads each partition's newest batch, from
its first record, to find the offset after its last one. Only for the embedded
profile: Apache Kafka's answer is already exact. Fetch responses' high-water marks
are exact on Tansu, so the consumer-lag gauge (streams/worker/lag.py) needs no correction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

FETCH_MAX_WAIT_MS = 50
PROBE_TIMEOUT_S = 10.0

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
    finally:
        await probe.stop()
    if pending:
        log.warning("no record read at the end of %s; keeping ListOffsets", sorted(pending))
    return exact
