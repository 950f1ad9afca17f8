"""`activity-sync dlq list|show|redrive`: look into the dead-letter topics and redrive.

Both dead-letter topics keep the original key and bytes with headers that say why
(`streams/worker/pipeline/dead_letter.py`). Redrive, once the cause is fixed:
- `activity-projections.dlq` (Salesforce refused a record): each affected booking's
  *current* projection is rebuilt from booking-events and sent forced, as `replay` does
  (the dead-lettered copy may be stale by now);
- `booking-events.dlq` (bad input): the original records are sent to booking-events
  again (after a worker fix), or `--file` re-submits corrected events.

Kafka records cannot be edited, so a redriven message is marked by a small record
appended to the same dead-letter topic: no value, header `activity-sync.redrive-of`
naming the partition and offset it covers (and `activity-sync.redrive-origin`, where its
record came from). `list` and `redrive` skip marked messages and the markers
themselves, so a second redrive finds nothing left to do.

A dead letter is its origin, not its position (streams/worker/pipeline/dead_letter.py): a second
consumer group reading booking-events (another app id, a rebuild under a new app
version) dead-letters every bad record again, and those copies count once, and stay
redriven when the first copy was.

Re-sending a booking-events dead letter as it is only helps when the worker was at fault
(`internal-error`, after the fix): bad input (`not-json`, `schema`, ...) or an event its
booking refuses (`conflicting-duplicate`, `history-full`, `booking-expired`) would be
dead-lettered again, so those need `--file` with corrected events.

`--org NAME` (issue 23; `default`: the deployment's own org) keeps the dead letters the
record itself says are NAME's (`org_of`):
- activity-projections.dlq: the projection's `salesforce_org` (none: `default`); a
  value that is not a projection, by its `activity-sync.salesforce-org` header;
- booking-events.dlq: the event's `data.page.salesforce_org` (none: `default`), for a
  JSON record with a page (`scheduled`, `requested`, `reassigned`).
A record that does not say (not JSON, no page, an undecodable projection without the
header) matches no `--org`, not even `default`: a redrive for one org never re-sends
what may be another tenant's. `list` and `redrive` count them on a line of their own;
without `--org` they are listed and redriven as before.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from streams.commands.base import UsageError, UserError
from streams.commands.console import plural
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S, consumer, offsets, partitions_of, producer
from streams.commands.replay import (
    ReplayOptions,
    ReplaySummary,
    Selection,
    org_name,
    read_partitions,
)
from streams.commands.replay import replay as replay_bookings
from streams.core import projection_record
from streams.transport.connection import BrokerConnection
from streams.worker.pipeline.dead_letter import (
    EVENT_CODES,
    HEADER_PREFIX,
    INTERNAL_ERROR,
    UNDECODABLE,
    origin_of,
    read_headers,
)

REDRIVE_OF = "activity-sync.redrive-of"
REDRIVE_ORIGIN = "activity-sync.redrive-origin"
# booking-events.dlq codes whose records, re-sent as they are, are dead-lettered again.
FAILS_AGAIN: frozenset[str] = frozenset(EVENT_CODES) - {INTERNAL_ERROR}
# The shape of a Salesforce error code (activity-projections.dlq).
_SALESFORCE_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Positions `list` prints per reason; `--json dlq list` has them all.
LISTED_POSITIONS = 5


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
    def origin(self) -> str:
        """The dead letter's identity: where its record came from (`topic:partition:offset`),
        or its own position when it has no such headers."""
        return origin_of(self.error) or f"dlq:{self.ref}"

    def _header(self, wanted: str) -> str | None:
        for name, value in self.headers:
            if name == wanted:
                return value.decode("utf-8", "replace")
        return None

    @property
    def marks(self) -> str | None:
        """The `partition:offset` this record marks as redriven, when it is a marker."""
        return self._header(REDRIVE_OF)

    @property
    def marks_origin(self) -> str | None:
        """The origin of what this marker marks (markers written before it had none)."""
        return self._header(REDRIVE_ORIGIN)

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was dead-lettered."""
        return [(n, v) for n, v in self.headers if not n.startswith(HEADER_PREFIX)]


@dataclass(frozen=True)
class Pending:
    """A topic's dead letters not yet redriven: one per origin (the oldest copy), the
    markers and what they mark left out. `repeats`: later copies of a waiting dead
    letter (another consumer group's), not counted."""

    messages: tuple[DeadLetterMessage, ...]
    repeats: int = 0

    @classmethod
    def of(cls, records: Iterable[DeadLetterMessage]) -> Pending:
        records = sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        at = {r.ref: r for r in records}
        marked: set[str] = set()
        for marker in records:
            if marker.marks is None:
                continue
            if marker.marks_origin is not None:
                marked.add(marker.marks_origin)
            target = at.get(marker.marks)
            if target is not None:
                marked.add(target.origin)
        waiting: dict[str, DeadLetterMessage] = {}
        repeats = 0
        for record in records:
            if record.marks is not None or record.origin in marked:
                continue
            if record.origin in waiting:
                repeats += 1
            else:
                waiting[record.origin] = record
        return cls(tuple(waiting.values()), repeats)

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

    def positions(self, code: str) -> list[str]:
        """The `partition:offset` of each waiting message of this reason, oldest first."""
        return [m.ref for m in self.messages if m.code == code]


def _event_org(value: bytes | None) -> str | None:
    try:
        event = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    data = event.get("data") if isinstance(event, dict) else None
    page = data.get("page") if isinstance(data, dict) else None
    if not isinstance(page, dict):
        return None
    org = page.get("salesforce_org")
    if org is None:
        return org_name(None)
    return org if isinstance(org, str) else None


def _projection_org(message: DeadLetterMessage) -> str | None:
    headers = message.original_headers()
    try:
        record = projection_record.decode(message.value, headers)
    except projection_record.UndecodableProjection:
        return projection_record.decode_headers(headers).salesforce_org
    return org_name(record.salesforce_org)


def org_of(message: DeadLetterMessage, projections: bool) -> str | None:
    """The org a dead letter is for as its record says (`default` for the default org),
    or None when the record does not say (see the module's docstring). `projections`:
    the message is from activity-projections.dlq, else from booking-events.dlq."""
    return _projection_org(message) if projections else _event_org(message.value)


def by_org(
    records: Iterable[DeadLetterMessage], org: str, *, projections: bool
) -> tuple[list[DeadLetterMessage], list[DeadLetterMessage]]:
    """(the records of org `org`, the records whose org is not said), the redrive
    markers in both, so `Pending.of` of either leaves out what was redriven."""
    mine: list[DeadLetterMessage] = []
    unsaid: list[DeadLetterMessage] = []
    for record in records:
        if record.marks is not None:
            mine.append(record)
            unsaid.append(record)
            continue
        found = org_of(record, projections)
        if found is None:
            unsaid.append(record)
        elif found == org:
            mine.append(record)
    return mine, unsaid


def org_unsaid_line(topic: str, org: str, count: int) -> str:
    """What `--org` left out because the records do not say their org."""
    return (
        f"{topic}: {plural(count, 'more dead letter')} whose org the record does not say "
        f"(not JSON, no page, or not a projection): not in --org {org}; "
        "dlq list without --org shows them"
    )


def check_reason(reason: str | None, which: str) -> None:
    """A `UsageError` (exit 2) naming the known codes when `reason` is none of the
    chosen topics' (`events`, `projections` or `all`)."""
    if reason is None:
        return
    events_code = reason in EVENT_CODES
    projections_code = reason == UNDECODABLE or bool(_SALESFORCE_CODE.match(reason))
    if {"events": events_code, "projections": projections_code}.get(which, False) or (
        which == "all" and (events_code or projections_code)
    ):
        return
    known = []
    if which in ("events", "all"):
        known.append(f"booking-events.dlq: {', '.join(EVENT_CODES)}")
    if which in ("projections", "all"):
        known.append(
            f"activity-projections.dlq: {UNDECODABLE} or a Salesforce error code "
            "(FIELD_CUSTOM_VALIDATION_EXCEPTION, ...)"
        )
    raise UsageError(f"--reason {reason[:60]!r} is no dead-letter code; {'; '.join(known)}")


def split_resendable(
    messages: Sequence[DeadLetterMessage],
) -> tuple[list[DeadLetterMessage], list[DeadLetterMessage]]:
    """(messages worth re-sending as they are, messages that would fail again)."""
    again = [m for m in messages if m.code in FAILS_AGAIN]
    return [m for m in messages if m.code not in FAILS_AGAIN], again


def needs_file_line(topic: str, messages: Sequence[DeadLetterMessage]) -> str:
    """Why these booking-events dead letters were not re-sent, and what to do."""
    counts = Counter(m.code for m in messages)
    reasons = ", ".join(f"{code} {count}" for code, count in sorted(counts.items()))
    return (
        f"{topic}: {plural(len(messages), 'dead letter')} not re-sent ({reasons}): sent as "
        "they are they would be dead-lettered again; redrive them with --file FILE of "
        "corrected events (dlq show P:O --topic events shows each)"
    )


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
    """Append a marker per message (same key, so same partition; no value), naming its
    position and its origin (which covers other groups' copies of it)."""
    async with producer(broker, timeout_s) as out:
        for message in messages:
            marker = [(REDRIVE_OF, message.ref.encode()), (REDRIVE_ORIGIN, message.origin.encode())]
            await out.send_and_wait(topic, key=message.key, value=None, headers=marker)


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


def _positions_cell(refs: list[str]) -> str:
    shown = " ".join(refs[:LISTED_POSITIONS])
    more = len(refs) - LISTED_POSITIONS
    return f"{shown} (+{more} more)" if more > 0 else shown


def list_lines(topic: str, pending: Pending) -> list[str]:
    """What `dlq list` prints for one topic: a table of reasons, oldest first, with the
    positions (`PARTITION:OFFSET`, for `dlq show`) of the oldest messages of each."""
    from streams.commands.console import format_table

    rows = [
        [
            code,
            str(count),
            oldest.isoformat(timespec="seconds"),
            _positions_cell(pending.positions(code)),
        ]
        for code, count, oldest in pending.by_reason()
    ]
    if not rows:
        return [f"{topic}: nothing waiting"]
    repeated = (
        f" (and {plural(pending.repeats, 'copy', 'copies')} another consumer group "
        "dead-lettered again, counted once)"
        if pending.repeats
        else ""
    )
    return [
        f"{topic}: {len(pending.messages)} waiting{repeated}",
        format_table(["reason", "count", "oldest", "positions"], rows),
    ]


def list_json(topic: str, pending: Pending) -> dict[str, Any]:
    """`--json dlq list` for one topic: every waiting message's position by reason."""
    return {
        "topic": topic,
        "waiting": len(pending.messages),
        "repeats": pending.repeats,
        "reasons": [
            {
                "reason": code,
                "count": count,
                "oldest": oldest.isoformat(timespec="seconds"),
                "positions": pending.positions(code),
            }
            for code, count, oldest in pending.by_reason()
        ],
    }


def show_json(topic: str, message: DeadLetterMessage) -> dict[str, Any]:
    """`--json dlq show`: the message with its headers and value (as text)."""
    return {
        "topic": topic,
        "position": message.ref,
        "time": message.time.isoformat(timespec="seconds"),
        "key": message.booking,
        "origin": message.origin,
        "headers": {name: value.decode("utf-8", "replace") for name, value in message.headers},
        "value": (message.value or b"").decode("utf-8", "replace"),
    }


def show_lines(topic: str, message: DeadLetterMessage) -> list[str]:
    """What `dlq show` prints: where the message is, its key, headers and value."""
    lines = [
        f"{topic} {message.ref} at {message.time.isoformat(timespec='seconds')}",
        f"key: {message.booking}",
        f"from: {message.origin}",
    ]
    lines += [
        f"header {name}: {value.decode('utf-8', 'replace')}" for name, value in message.headers
    ]
    value = (message.value or b"").decode("utf-8", "replace")
    lines.append(f"value ({len(message.value or b'')} bytes): {value[:4000]}")
    return lines
