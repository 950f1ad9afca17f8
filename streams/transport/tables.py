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
(streams/transport/acks.py): a commit waits for the writes made before it. A write the
broker refused (the producer gave up on it, e.g. its delivery timeout passed during a
long broker outage) is sent again, unless a newer write of its key followed it: the
guard skips the commit the failure falls in, and without the re-send the next commit,
not waiting for a write already failed, would go past it, and the state would lack that
write once restored from the changelog elsewhere. A write cancelled because the producer
stopped is not sent again: the worker is stopping, and the skipped commit leaves the
events to the partition's next owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

import faust
from faust.types import FutureMessage

log = logging.getLogger(__name__)

# `faust.App(..., Table=...)`: the class `app.Table(...)` builds.
TABLE_CLASS = f"{__name__}:Table"


class ChangelogWrites:
    """Changelog writes sent through Faust's producer buffer and not yet acknowledged by
    the broker (each a `FutureMessage`, resolved on the broker's ack); a failed one sent
    again while it is its key's newest (`track`'s `slot` and `resend`)."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        # The newest write of each slot (table, partition, key) not yet settled.
        self._newest: dict[Hashable, asyncio.Future[Any]] = {}
        self.resent = 0

    def track(
        self,
        write: asyncio.Future[Any],
        *,
        slot: Hashable | None = None,
        resend: Callable[[], asyncio.Future[Any]] | None = None,
    ) -> None:
        """Keep `write` until it is settled; if it fails while the newest of `slot`,
        `resend()` sends its record again (tracked in its place)."""
        if slot is not None:
            self._newest[slot] = write
        if write.done():
            self._settle(write, slot, resend)
            return
        self._pending.add(write)
        write.add_done_callback(lambda done: self._settle(done, slot, resend))

    def _settle(
        self,
        write: asyncio.Future[Any],
        slot: Hashable | None,
        resend: Callable[[], asyncio.Future[Any]] | None,
    ) -> None:
        newest = slot is not None and self._newest.get(slot) is write
        error = None if write.cancelled() else write.exception()
        if error is not None and newest and resend is not None:
            self.resent += 1
            log.warning("a table changelog write failed (%r); sending it again", error)
            # Tracked before the failed write is dropped: no commit sees neither.
            self.track(resend(), slot=slot, resend=resend)
        elif newest:
            del self._newest[slot]
        self._pending.discard(write)

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

        def resend() -> FutureMessage:
            again: FutureMessage = super(Table, self).send_changelog(
                partition, key, value, key_serializer, value_serializer
            )
            return again

        # Keys are bytes here; one that cannot be a dict key is tracked without re-sends.
        slot = (self.name, partition, key) if isinstance(key, Hashable) else None
        CHANGELOG_WRITES.track(write, slot=slot, resend=resend)
        return write

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return  # not in the consumer's metadata yet: checked on a later write
        super()._verify_source_topic_partitions(source_topic)
