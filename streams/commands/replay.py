"""`activity-sync replay`: re-project chosen bookings to Salesforce with a forced upsert.

Design: the log is the source of truth, so the replay reads booking-events itself
(a plain consumer outside the workers' group, nothing committed), folds the chosen
bookings with the pure core (`fold_all`, `project`), exactly as the workers do, and
sends the projections to activity-projections with the header
`activity-sync.force: 1`. The sink writes a forced projection even when its `synced`
table says Salesforce already has that version: this repairs an Event someone edited
or deleted in Salesforce, or one written by a bad deploy, without touching the
workers' tables or offsets.

Choosing bookings: `--bookings ID...`, or `--since TIME`: every booking with at least
one record appended to booking-events at or after TIME (Kafka's record timestamp, found
with ListOffsets by time). Either way each chosen booking is folded from all its events
from the start of the topic, not just the recent ones. `--org NAME` keeps of those only
the bookings whose Event lives in org NAME (the view's `salesforce_org`; `default` for
the deployment's own org): a booking that has left NAME is replayed with its current
org, whose projection carries the mark for NAME too.

Each record is encoded as the workers encode theirs (`projection_record.encode`), so a
replayed projection names its org in the header as well as in its value.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from aiokafka.errors import KafkaError

from schemas import BookingEvent, EventRejected, parse_event
from streams.commands.base import UsageError, UserError, one_line
from streams.commands.console import plural
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S, consumer, offsets, partitions_of, producer
from streams.core import projection_record
from streams.core.fold import fold_all
from streams.core.projection import FieldMapping, project
from streams.salesforce.org_registry import DEFAULT_ORG, ORG_NAME_PATTERN
from streams.transport.connection import BrokerConnection
from streams.worker.settings import Settings

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_ORG_NAME = re.compile(ORG_NAME_PATTERN)


def parse_org(text: str) -> str:
    """An `--org` value: a registry name, or `default` for the default org."""
    if not _ORG_NAME.fullmatch(text):
        raise UsageError(
            f"--org {text[:60]!r}: not an org name (lowercase letters, digits and -; "
            f"{DEFAULT_ORG} for the default org)"
        )
    return text


def org_name(salesforce_org: str | None) -> str:
    """An org as `--org` names it: the registry name, `default` for None."""
    return salesforce_org or DEFAULT_ORG


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """ISO-8601 with a timezone (`2026-11-24T09:00:00Z`, `…+01:00`) or an age (`90m`,
    `2h`, `1d`). A time without a timezone is refused, as the event contract refuses
    one: whose 09:00 it is cannot be guessed."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: not a time; use ISO-8601 (2026-11-24T09:00:00Z) or an age (2h)"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(
            f"--since {text!r}: no timezone; add one (Z for UTC, or +01:00) or give an age (2h)"
        )
    return moment


@dataclass
class ReplaySummary:
    records_read: int = 0
    invalid_skipped: int = 0
    sent: int = 0
    without_event: list[str] = field(default_factory=list)  # requested, or no Event by rule
    unknown: list[str] = field(default_factory=list)  # asked for, but no event in the topic
    # With `--org`: the org, and the chosen bookings left out as another org's.
    org: str | None = None
    other_org: list[str] = field(default_factory=list)

    def line(self) -> str:
        without = len(self.without_event)
        other = (
            f"; {len(self.other_org)} left out (not in org {self.org})"
            if self.org is not None
            else ""
        )
        return (
            f"replayed {plural(self.sent, 'booking')} (forced upsert); {without} "
            f"{'has' if without == 1 else 'have'} no Salesforce Event; "
            f"{len(self.unknown)} unknown; read {plural(self.records_read, 'record')}, "
            f"skipped {self.invalid_skipped} invalid{other}"
        )


Progress = Callable[[int], None]


async def read_partitions(
    client: Any,
    starts: dict[Any, int],
    ends: dict[Any, int],
    on_record: Callable[[Any], None],
    progress: Progress = lambda _: None,
) -> None:
    """Every record from `starts` up to at least `ends`, per partition.

    `ends` are the offsets after the last records (from `BrokerConnection.end_offsets`,
    exact for every profile). Whole fetched batches are handed on, records past `ends`
    too (appended since `ends` were taken): the caller gets at least the records up to
    `ends`, never fewer.
    """
    wanted = [tp for tp in starts if ends[tp] > starts[tp]]
    if not wanted:
        return
    client.assign(wanted)
    for tp in wanted:
        client.seek(tp, starts[tp])
    remaining = set(wanted)
    while remaining:
        batch = await client.getmany(*remaining, timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                on_record(record)
            progress(len(records))
            if records and records[-1].offset + 1 >= ends[tp]:
                remaining.discard(tp)
        for tp in list(remaining):
            if await client.position(tp) >= ends[tp]:
                remaining.discard(tp)


def _progress_bar(length: int, label: str) -> Any:
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True)


@dataclass(frozen=True)
class Selection:
    """The bookings to replay: these ids, or (`since`) every booking with a record
    appended to booking-events at or after that time; with `org`, only those whose
    Event lives in that org (`default`: the default org)."""

    bookings: tuple[str, ...] = ()
    since: datetime | None = None
    org: str | None = None

    def in_org(self, salesforce_org: str | None) -> bool:
        """Whether a booking whose view's org is `salesforce_org` (None: the default
        org) is chosen."""
        return self.org is None or org_name(salesforce_org) == self.org


@dataclass(frozen=True)
class ReplayOptions:
    """Where a replay reads and writes, and how it projects: as the running workers do."""

    events_topic: str
    projections_topic: str
    mapping: FieldMapping
    app_version: int  # the running version: its sink accepts only its own projections
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def of(cls, settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> ReplayOptions:
        """The running workers' topics, field mapping and app version."""
        return cls(
            events_topic=settings.topics.events,
            projections_topic=settings.topics.projections,
            mapping=settings.app.mapping(),
            app_version=settings.app.version,
            timeout_s=timeout_s,
        )


async def replay(
    broker: BrokerConnection, options: ReplayOptions, selection: Selection
) -> ReplaySummary:
    since, timeout_s = selection.since, options.timeout_s
    summary = ReplaySummary(org=selection.org)
    requested = set(selection.bookings)
    chosen = set(requested)
    async with consumer(broker, timeout_s) as client:
        partitions = await partitions_of(client, options.events_topic, timeout_s)
        begin, end = await offsets(broker, client, partitions)
        if since is not None:
            found = await client.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            starts = {tp: (end[tp] if hit is None else hit.offset) for tp, hit in found.items()}
            total = sum(end[tp] - starts[tp] for tp in partitions)
            with _progress_bar(total, f"finding bookings since {since.isoformat()}") as bar:
                await read_partitions(
                    client,
                    starts,
                    end,
                    lambda record: (
                        chosen.add(record.key.decode("utf-8", "replace")) if record.key else None
                    ),
                    bar.update,
                )
        keys = {booking.encode() for booking in chosen}
        events: dict[bytes, list[BookingEvent]] = {}

        def keep(record: Any) -> None:
            summary.records_read += 1
            if record.key not in keys:
                return
            try:
                event = parse_event(record.value or b"", key=record.key)
            except EventRejected:
                summary.invalid_skipped += 1  # it went to the DLQ when the workers read it
                return
            events.setdefault(record.key, []).append(event)

        if keys:
            total = sum(end[tp] - begin[tp] for tp in partitions)
            with _progress_bar(total, f"reading {options.events_topic}") as bar:
                await read_partitions(client, dict(begin), end, keep, bar.update)

    # Only bookings asked for by id can be unknown; --since found its keys in the topic.
    summary.unknown = sorted(booking for booking in requested if booking.encode() not in events)
    projections = []
    for key, booking_events in sorted(events.items()):
        state = fold_all(booking_events)
        if not selection.in_org(state.view.salesforce_org):
            summary.other_org.append(key.decode())
            continue
        projection = project(state, options.mapping)
        if projection is None:
            summary.without_event.append(key.decode())
        else:
            # Forced, tagged with the running app version so its sink accepts them, and
            # with the projection's org, as the workers' records are.
            value, headers = projection_record.encode(
                projection, app_version=options.app_version, forced=True
            )
            projections.append((key, value, headers))
    if projections:
        async with producer(broker, timeout_s) as out:
            with _progress_bar(len(projections), f"sending to {options.projections_topic}") as bar:
                try:
                    pending = [
                        await out.send(
                            options.projections_topic, value=value, key=key, headers=headers
                        )
                        for key, value, headers in projections
                    ]
                    for future in pending:
                        await future
                        summary.sent += 1
                        bar.update(1)
                except KafkaError as exc:
                    raise UserError(
                        f"sending to {options.projections_topic!r} failed after {summary.sent} "
                        f"projections: {one_line(exc)}"
                    ) from None
    return summary
