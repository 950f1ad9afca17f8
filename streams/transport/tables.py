"""The app's Faust table: its changelog check waits for the consumer's metadata.

Before its first write from a source topic, a Faust table checks that its changelog
topic has as many partitions as the source (`PartitionsMismatch` otherwise). It reads
both counts from the consumer's metadata snapshot of the last rebalance. On Apache
Kafka a fresh deployment's first rebalance runs before Faust has created the changelog
topics (aiokafka logs "Topic ... not found in cluster metadata"), so the snapshot says
the changelog has 0 partitions until the consumer's next metadata refresh; the check then
fails every write for that window, and the fold dead-lettered valid events as an
internal error (found by the integration suite's first run on Apache Kafka). No Kafka
topic has 0 partitions: 0 means "not known yet", so the check waits for a count it can
compare, and a real mismatch is still refused.

It also keeps the changelog writes sent and not yet acknowledged by the broker
(`CHANGELOG_WRITES`, one set per worker process), for the commit guard
(streams/transport/acks.py): a commit waits for the writes made before it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage

# `faust.App(..., Table=...)`: the class `app.Table(...)` builds.
TABLE_CLASS = f"{__name__}:Table"


class ChangelogWrites:
    """Changelog writes sent through Faust's producer buffer and not yet acknowledged by
    the broker (each a `FutureMessage`, resolved on the broker's ack)."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()

    def track(self, write: asyncio.Future[Any]) -> None:
        if not write.done():
            self._pending.add(write)
            write.add_done_callback(self._pending.discard)

    def snapshot(self) -> list[asyncio.Future[Any]]:
        """The writes not acknowledged now."""
        return list(self._pending)


CHANGELOG_WRITES = ChangelogWrites()


class Table(faust.Table):  # type: ignore[type-arg]  # faust declares Table generic, untyped
    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> FutureMessage:
        write: FutureMessage = super().send_changelog(
            partition, key, value, key_serializer, value_serializer
        )
        CHANGELOG_WRITES.track(write)
        return write

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return  # not in the consumer's metadata yet: checked on a later write
        super()._verify_source_topic_partitions(source_topic)
