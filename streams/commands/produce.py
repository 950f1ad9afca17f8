"""`activity-sync produce`: validate booking events and send them to booking-events.

Input is JSON lines (one CloudEvent per line, from a file or stdin) or generated
events (`streams.commands.generate`). Each line is checked with `schemas.parse_event`, the
consumer's own check, before it is sent with its `subject` as the Kafka key: a bad
line is reported with its line number and skipped, the rest still go out.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

import orjson
from aiokafka.errors import KafkaError

from schemas import EventRejected, parse_event
from streams.commands.base import UsageError, UserError, one_line
from streams.commands.generate import generate_events
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S, producer
from streams.transport.connection import BrokerConnection

# Sends in flight before waiting for their acknowledgements (bounds memory).
WINDOW = 5000


@dataclass
class ProduceSummary:
    sent: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)

    @property
    def failed(self) -> int:
        return len(self.rejected)


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line; numbering counts blank lines too."""
    for number, line in enumerate(stream, start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def generated_lines(
    count: int, seed: int, id_prefix: str | None = None
) -> Iterator[tuple[int, bytes]]:
    """`count` generated bookings' events as lines; booking ids `id_prefix` + a number
    (default: the seed's prefix, `b-s7-`, so two seeds never share a booking id)."""
    for number, event in enumerate(generate_events(count, seed=seed, id_prefix=id_prefix), start=1):
        yield number, orjson.dumps(event)


def check_id_prefix(id_prefix: str) -> None:
    """A `UsageError` unless booking ids with this prefix pass the event contract."""
    sample = next(generate_events(1, id_prefix=id_prefix))
    try:
        parse_event(orjson.dumps(sample))
    except EventRejected as exc:
        raise UsageError(f"--id-prefix {id_prefix[:40]!r}: {rejection_text(exc)}") from None


def validate(raw: bytes) -> tuple[bytes, bytes]:
    """(key, value) for a valid event line; raises EventRejected otherwise."""
    event = parse_event(raw)
    return event.subject.encode(), raw


def rejection_text(exc: EventRejected) -> str:
    where = f" at {exc.field}" if exc.field else ""
    return f"{exc.code}{where}: {one_line(exc)}"


async def produce_lines(
    broker: BrokerConnection,
    topic: str,
    lines: Iterable[tuple[int, bytes]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    report: IO[str] | None = None,
) -> ProduceSummary:
    """Validate and send every line; bad lines are reported to `report` and skipped."""
    summary = ProduceSummary()
    async with producer(broker, timeout_s) as client:
        in_flight: list[asyncio.Future[object]] = []

        async def settle() -> None:
            for future in in_flight:
                try:
                    await future
                except Exception as exc:  # the broker refused it: say so, count it
                    raise UserError(f"the broker refused a record: {one_line(exc)}") from None
                summary.sent += 1
            in_flight.clear()

        for number, raw in lines:
            try:
                key, value = validate(raw)
            except EventRejected as exc:
                summary.rejected.append((number, rejection_text(exc)))
                if report is not None:
                    print(f"line {number}: {rejection_text(exc)}", file=report)
                continue
            try:
                in_flight.append(await client.send(topic, value=value, key=key))
            except KafkaError as exc:  # e.g. no metadata for the topic in time
                raise UserError(f"cannot send to topic {topic!r}: {one_line(exc)}") from None
            if len(in_flight) >= WINDOW:
                await settle()
        await settle()
    return summary


def open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by the caller
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or one_line(exc)}") from None
