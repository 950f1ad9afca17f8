"""The app's Faust table: writes in batches, a changelog check that waits for metadata.

A row's write goes to its changelog partition's open batch at the app's producer
(streams/transport/changelog.py) instead of Faust's per-record `send_changelog`.

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

It also keeps the changelog writes not yet acknowledged by the broker
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
import functools
import logging
from collections.abc import Callable, Hashable
from typing import Any, Protocol, cast

import faust
from faust.types import TP

log = logging.getLogger(__name__)

# `faust.App(..., Table=...)`: the class `app.Table(...)` builds.
TABLE_CLASS = f"{__name__}:Table"


class ChangelogWrites:
    """Changelog writes not yet acknowledged by the broker: each a future (a batch of
    records, streams/transport/changelog.py) resolved on the broker's ack. A write is
    the newest of each slot (table partition, key) it `claim`s until a later write
    claims that slot; when it fails, its slots of which it is still the newest go to
    its `resend`, which writes them again (tracked in its place)."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        # The newest write of each slot not yet settled, and each write's claimed slots.
        self._newest: dict[Hashable, asyncio.Future[Any]] = {}
        self._slots: dict[asyncio.Future[Any], list[Hashable]] = {}
        self.resent = 0

    def track(
        self,
        write: asyncio.Future[Any],
        *,
        resend: Callable[[list[Hashable]], None] | None = None,
    ) -> None:
        """Keep `write` until it is settled; if it fails, `resend(slots)` writes again
        the slots it was still the newest write of."""
        self._slots[write] = []
        self._pending.add(write)
        write.add_done_callback(functools.partial(self._settle, resend=resend))

    def claim(self, write: asyncio.Future[Any], slot: Hashable) -> None:
        """`write` (tracked, not settled) is now `slot`'s newest write; once per slot."""
        self._newest[slot] = write
        self._slots[write].append(slot)

    def _settle(
        self, write: asyncio.Future[Any], resend: Callable[[list[Hashable]], None] | None
    ) -> None:
        newest = [slot for slot in self._slots.pop(write, ()) if self._newest.get(slot) is write]
        for slot in newest:
            del self._newest[slot]
        error = None if write.cancelled() else write.exception()
        if error is not None and newest and resend is not None:
            self.resent += len(newest)
            log.warning(
                "%d table changelog writes failed (%r); sending them again", len(newest), error
            )
            # Tracked before the failed write is dropped: no commit sees neither.
            resend(newest)
        self._pending.discard(write)

    def snapshot(self) -> list[asyncio.Future[Any]]:
        """The writes not acknowledged now."""
        return list(self._pending)


CHANGELOG_WRITES = ChangelogWrites()


class ChangelogWriter(Protocol):
    """Where a table's writes go: the app's producer (streams/transport/producer.py)."""

    def write_changelog(self, store: Any, tp: TP, key: bytes, value: bytes | None) -> None: ...


class Table(faust.Table):  # type: ignore[type-arg]  # faust declares Table generic, untyped
    # A row's write goes to its changelog partition's batch (streams/transport/changelog.py)
    # instead of Faust's `send_changelog`, one record at a time.
    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self._write_partition(key)
        self._write_changelog(partition, key, value, self.value_serializer)
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        partition = self._write_partition(key)
        self._write_changelog(partition, key, None, "raw")
        self._maybe_del_key_ttl(key, partition)
        self._sensor_on_del(self, key)

    def _write_partition(self, key: Any) -> int:
        partition: int | None = self.partition_for_key(key)
        if partition is None:  # only with `use_partitioner`, which no table here sets
            raise TypeError(f"table {self.name}: a write needs the current event's partition")
        return partition

    def _write_changelog(self, partition: int, key: Any, value: Any, serializer: Any) -> None:
        topic = self.changelog_topic
        key_bytes, _ = topic.prepare_key(key, self.key_serializer)
        value_bytes, _ = (
            topic.prepare_value(value, serializer) if value is not None else (None, None)
        )
        writer = cast(ChangelogWriter, self.app.producer)
        writer.write_changelog(
            self.data, TP(topic.get_topic_name(), partition), key_bytes, value_bytes
        )

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return  # not in the consumer's metadata yet: checked on a later write
        super()._verify_source_topic_partitions(source_topic)
