"""Dead-letter listing, selection and redrive marks (streams/commands/dlq.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.commands.console import parse_table
from streams.commands.dlq import REDRIVE_OF, DeadLetterMessage, Pending, list_lines, show_lines
from streams.worker.dead_letter import DeadLetter

T0 = int(datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000


def letter(
    offset: int, code: str, booking: str, minutes: int, partition: int = 0
) -> DeadLetterMessage:
    error = DeadLetter(code, f"{code} happened", "booking-events", 2, 40 + offset)
    return DeadLetterMessage(
        partition=partition,
        offset=offset,
        timestamp_ms=T0 + minutes * MINUTE,
        key=booking.encode(),
        value=b'{"id": "x"}',
        headers=(("traceparent", b"00-abc"), *error.headers()),
    )


def marker(offset: int, marks: str, booking: str) -> DeadLetterMessage:
    return DeadLetterMessage(0, offset, T0, booking.encode(), None, ((REDRIVE_OF, marks.encode()),))


LETTERS = [
    letter(0, "schema", "b-1", minutes=10),
    letter(1, "not-json", "b-2", minutes=0),
    letter(2, "schema", "b-3", minutes=20),
    letter(3, "schema", "b-4", minutes=30),
]


def test_markers_and_what_they_mark_are_not_pending() -> None:
    pending = Pending.of([*LETTERS, marker(4, "0:2", "b-3")])
    assert [m.ref for m in pending.messages] == ["0:0", "0:1", "0:3"]


def test_reasons_are_counted_with_the_oldest_reason_first() -> None:
    rows = Pending.of(LETTERS).by_reason()
    assert [(code, count) for code, count, _ in rows] == [("not-json", 1), ("schema", 3)]
    assert rows[1][2] == datetime(2026, 11, 24, 9, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reason", "since_minutes", "bookings", "refs"),
    [
        (None, None, (), ["0:1", "0:0", "0:2", "0:3"]),
        ("schema", None, (), ["0:0", "0:2", "0:3"]),
        (None, 15, (), ["0:2", "0:3"]),
        (None, None, ("b-2", "b-4"), ["0:1", "0:3"]),
        ("not-json", 15, (), []),
    ],
)
def test_a_redrive_selects_by_reason_time_and_booking_oldest_first(
    reason: str | None, since_minutes: int | None, bookings: tuple[str, ...], refs: list[str]
) -> None:
    since = None
    if since_minutes is not None:
        since = datetime.fromtimestamp((T0 + since_minutes * MINUTE) / 1000, UTC)
    chosen = Pending.of(LETTERS).select(reason, since, bookings)
    assert [m.ref for m in chosen] == refs


def test_a_redriven_event_gets_back_its_own_headers_only() -> None:
    assert LETTERS[0].original_headers() == [("traceparent", b"00-abc")]
    assert LETTERS[0].error["offset"] == "40"


def test_list_prints_a_table_per_topic_and_says_when_nothing_waits() -> None:
    lines = list_lines("booking-events.dlq", Pending.of(LETTERS))
    assert lines[0] == "booking-events.dlq: 4 waiting"
    assert parse_table(lines[1])[1] == {
        "reason": "schema",
        "count": "3",
        "oldest": "2026-11-24T09:10:00+00:00",
    }
    assert list_lines("x.dlq", Pending.of([])) == ["x.dlq: nothing waiting"]


def test_show_prints_the_headers_and_the_value() -> None:
    text = "\n".join(show_lines("booking-events.dlq", LETTERS[1]))
    assert "booking-events.dlq 0:1 at 2026-11-24T09:00:00+00:00" in text
    assert "header activity-sync.error.code: not-json" in text
    assert 'value (11 bytes): {"id": "x"}' in text
