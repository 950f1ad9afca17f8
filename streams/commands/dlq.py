"""`activity-sync dlq list|show|redrive`: look into the dead-letter topics and redrive.

Both dead-letter topics keep the original key and bytes with headers that say why
(`streams/worker/dead_letter.py`). Redrive, once the cause is fixed:
- `activity-projections.dlq` (Salesforce refused a record): each affected booking's
  *current* projection is rebuilt from booking-events and sent forced, as `replay` does
  (the dead-lettered copy may be stale by now);
- `booking-events.dlq` (bad input): the original records are sent to booking-events
  again (after a worker fix), or `--file` re-submits corrected events.

Kafka records cannot be edited, so a redriven message is marked by a small record
appended to the same dead-letter topic: no value, header `activity-sync.redrive-of`
naming the partition and offset it covers. `list` and `redrive` skip marked messages
and the markers themselves, so a second redrive finds nothing left to do.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from streams.commands.base import UserError
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S, consumer, offsets, partitions_of, producer
from streams.commands.replay import ReplayOptions, ReplaySummary, Selection, read_partitions
from streams.commands.replay import replay as replay_bookings
from streams.transport.connection import BrokerConnection
from streams.worker.dead_letter import HEADER_PREFIX, read_headers

REDRIVE_OF = "activity-sync.redrive-of"


@dataclass(frozen=True)
class DeadLetterMessage:
    """One record of a dead-letter topic, its error headers decoded."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def error(self) -> dict[str, str]:
        return read_headers(list(self.headers))

    @property
    def code(self) -> str:
        return self.error.get("code", "?")

    @property
    def booking(self) -> str | None:
        return self.key.decode("utf-8", "replace") if self.key is not None else None

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def marks(self) -> str | None:
        """The `partition:offset` this record marks as redriven, when it is a marker."""
        for name, value in self.headers:
            if name == REDRIVE_OF:
                return value.decode("utf-8", "replace")
        return None

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was dead-lettered."""
        return [(n, v) for n, v in self.headers if not n.startswith(HEADER_PREFIX)]


@dataclass(frozen=True)
class Pending:
    """A topic's dead letters not yet redriven (markers left out)."""

    messages: tuple[DeadLetterMessage, ...]

    @classmethod
    def of(cls, records: Iterable[DeadLetterMessage]) -> Pending:
        records = list(records)
        marked = {r.marks for r in records if r.marks is not None}
        return cls(tuple(r for r in records if r.marks is None and r.ref not in marked))

    def by_reason(self) -> list[tuple[str, int, datetime]]:
        """(reason, count, oldest) per reason, the reason with the oldest message first."""
        counts = Counter(m.code for m in self.messages)
        oldest: dict[str, datetime] = {}
        for message in self.messages:
            oldest[message.code] = min(oldest.get(message.code, message.time), message.time)
        return sorted(
            ((code, counts[code], oldest[code]) for code in counts), key=lambda row: row[2]
        )

    def select(
        self,
        reason: str | None = None,
        since: datetime | None = None,
        bookings: Sequence[str] = (),
    ) -> list[DeadLetterMessage]:
        """The messages a redrive with these filters covers, oldest first."""
        chosen = [
            m
            for m in self.messages
            if (reason is None or m.code == reason)
            and (since is None or m.time >= since)
            and (not bookings or m.booking in bookings)
        ]
        return sorted(chosen, key=lambda m: (m.timestamp_ms, m.partition, m.offset))

    def find(self, ref: str) -> DeadLetterMessage | None:
        return next((m for m in self.messages if m.ref == ref), None)


async def read_dead_letters(
    broker: BrokerConnection, topic: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[DeadLetterMessage]:
    """Every record of the dead-letter `topic`, from its start to its end now."""
    found: list[DeadLetterMessage] = []

    def keep(record: Any) -> None:
        found.append(
            DeadLetterMessage(
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp,
                key=record.key,
                value=record.value,
                headers=tuple((str(n), bytes(v)) for n, v in record.headers or ()),
            )
        )

    async with consumer(broker, timeout_s) as client:
        partitions = await partitions_of(client, topic, timeout_s)
        begin, end = await offsets(broker, client, partitions)
        await read_partitions(client, dict(begin), end, keep)
    # A fetch may run past the end read above (whole batches): keep what was asked for.
    return [m for m in found if m.offset < end[_tp(partitions, m.partition)]]


def _tp(partitions: Sequence[Any], partition: int) -> Any:
    return next(tp for tp in partitions if tp.partition == partition)


async def mark_redriven(
    broker: BrokerConnection,
    topic: str,
    messages: Sequence[DeadLetterMessage],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Append a marker per message (same key, so same partition; no value)."""
    async with producer(broker, timeout_s) as out:
        for message in messages:
            await out.send_and_wait(
                topic, key=message.key, value=None, headers=[(REDRIVE_OF, message.ref.encode())]
            )


async def resend_events(
    broker: BrokerConnection,
    events_topic: str,
    messages: Sequence[DeadLetterMessage],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    """Send dead-lettered booking events back to `events_topic`, bytes and headers as
    they first arrived."""
    async with producer(broker, timeout_s) as out:
        with click.progressbar(
            length=len(messages), label=f"sending to {events_topic}", file=sys.stderr
        ) as bar:
            for message in messages:
                await out.send_and_wait(
                    events_topic,
                    key=message.key,
                    value=message.value,
                    headers=message.original_headers(),
                )
                bar.update(1)
    return len(messages)


async def redrive_projections(
    broker: BrokerConnection, options: ReplayOptions, messages: Sequence[DeadLetterMessage]
) -> ReplaySummary:
    """Re-send the current projection of every booking these messages are about."""
    bookings = sorted({m.booking for m in messages if m.booking is not None})
    if not bookings:
        raise UserError("the chosen dead letters name no booking (no key)")
    return await replay_bookings(broker, options, Selection(bookings=tuple(bookings)))


@dataclass(frozen=True)
class DeadLetterTopics:
    """The two dead-letter topics and the topics their records came from."""

    events: str
    events_dlq: str
    projections: str
    projections_dlq: str

    def chosen(self, which: str) -> list[str]:
        """`events`, `projections` or `all` -> dead-letter topic names."""
        return {
            "events": [self.events_dlq],
            "projections": [self.projections_dlq],
            "all": [self.events_dlq, self.projections_dlq],
        }[which]


def list_lines(topic: str, pending: Pending) -> list[str]:
    """What `dlq list` prints for one topic: a table of reasons, oldest first."""
    from streams.commands.console import format_table

    rows = [
        [code, str(count), oldest.isoformat(timespec="seconds")]
        for code, count, oldest in pending.by_reason()
    ]
    if not rows:
        return [f"{topic}: nothing waiting"]
    return [
        f"{topic}: {len(pending.messages)} waiting",
        format_table(["reason", "count", "oldest"], rows),
    ]


def show_lines(topic: str, message: DeadLetterMessage) -> list[str]:
    """What `dlq show` prints: where the message is, its key, headers and value."""
    lines = [
        f"{topic} {message.ref} at {message.time.isoformat(timespec='seconds')}",
        f"key: {message.booking}",
    ]
    lines += [
        f"header {name}: {value.decode('utf-8', 'replace')}" for name, value in message.headers
    ]
    value = (message.value or b"").decode("utf-8", "replace")
    lines.append(f"value ({len(message.value or b'')} bytes): {value[:4000]}")
    return lines
