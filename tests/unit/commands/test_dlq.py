"""Dead-letter listing, selection and redrive marks (streams/commands/dlq.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.commands.base import UsageError
from streams.commands.console import parse_table, plural
from streams.commands.dlq import (
    REDRIVE_OF,
    REDRIVE_ORIGIN,
    DeadLetterMessage,
    Pending,
    by_org,
    check_reason,
    list_json,
    list_lines,
    needs_file_line,
    org_of,
    org_unsaid_line,
    show_lines,
    split_resendable,
)
from streams.core.projection import project
from streams.core.projection_record import SALESFORCE_ORG
from streams.worker.pipeline.dead_letter import EVENT_CODES, DeadLetter
from tests.factories import canceled, fold_dicts, raw, reassigned, scheduled

T0 = int(datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
HOUR = 60 * MINUTE


def letter(
    offset: int,
    code: str,
    booking: str,
    minutes: int,
    partition: int = 0,
    *,
    origin: int | None = None,
) -> DeadLetterMessage:
    """A dead letter at `partition:offset` of a record from booking-events 2:`origin`
    (default 40 + offset)."""
    source = 40 + offset if origin is None else origin
    error = DeadLetter(code, f"{code} happened", "booking-events", 2, source)
    return DeadLetterMessage(
        partition=partition,
        offset=offset,
        timestamp_ms=T0 + minutes * MINUTE,
        key=booking.encode(),
        value=b'{"id": "x"}',
        headers=(("traceparent", b"00-abc"), *error.headers()),
    )


def marker(offset: int, marks: str, booking: str, origin: str | None = None) -> DeadLetterMessage:
    headers = [(REDRIVE_OF, marks.encode())]
    if origin is not None:
        headers.append((REDRIVE_ORIGIN, origin.encode()))
    return DeadLetterMessage(0, offset, T0 + HOUR, booking.encode(), None, tuple(headers))


LETTERS = [
    letter(0, "schema", "b-1", minutes=10),
    letter(1, "not-json", "b-2", minutes=0),
    letter(2, "schema", "b-3", minutes=20),
    letter(3, "schema", "b-4", minutes=30),
]


def test_markers_and_what_they_mark_are_not_pending() -> None:
    pending = Pending.of([*LETTERS, marker(4, "0:2", "b-3")])
    assert [m.ref for m in pending.messages] == ["0:1", "0:0", "0:3"]  # oldest first


# A second consumer group (another app id, a rebuild under a new app version) reads
# booking-events again and dead-letters every bad record again, redriven ones included:
# `dlq list` went from 2 to 15. A dead letter is where its record came from.
SECOND_GROUP = [
    letter(10, "not-json", "b-2", minutes=90, origin=41),  # a copy of 0:1
    letter(11, "schema", "b-1", minutes=90, origin=40),  # a copy of 0:0
]


@pytest.mark.parametrize(
    ("records", "waiting", "repeats"),
    [
        ([*LETTERS[:2], *SECOND_GROUP], ["0:1", "0:0"], 2),
        # 0:1 redriven (marked) before the second group copied it: the copy stays done.
        ([*LETTERS[:2], marker(5, "0:1", "b-2", "booking-events:2:41"), *SECOND_GROUP], ["0:0"], 1),
        # A marker of the old kind (position only) covers the copies too.
        ([*LETTERS[:2], marker(5, "0:1", "b-2"), *SECOND_GROUP], ["0:0"], 1),
        # The marked original gone (retention), its origin still known from the marker.
        ([LETTERS[0], marker(5, "0:1", "b-2", "booking-events:2:41"), *SECOND_GROUP], ["0:0"], 1),
    ],
)
def test_another_consumer_groups_copies_are_one_dead_letter(
    records: list[DeadLetterMessage], waiting: list[str], repeats: int
) -> None:
    pending = Pending.of(records)
    assert [m.ref for m in pending.messages] == waiting
    assert pending.repeats == repeats


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
        "positions": "0:0 0:2 0:3",  # for `dlq show P:O`, oldest first
    }
    assert list_lines("x.dlq", Pending.of([])) == ["x.dlq: nothing waiting"]
    again = list_lines("booking-events.dlq", Pending.of([*LETTERS[:2], *SECOND_GROUP]))
    assert again[0].startswith("booking-events.dlq: 2 waiting (and 2 copies another")


def test_list_shows_the_oldest_positions_and_json_has_them_all() -> None:
    many = [letter(n, "schema", f"b-{n}", minutes=n) for n in range(8)]
    (row,) = parse_table(list_lines("booking-events.dlq", Pending.of(many))[1])
    assert row["positions"] == "0:0 0:1 0:2 0:3 0:4 (+3 more)"
    listed = list_json("booking-events.dlq", Pending.of(many))
    assert listed["waiting"] == 8
    assert listed["reasons"][0]["positions"] == [f"0:{n}" for n in range(8)]


@pytest.mark.parametrize(
    ("reason", "which", "known"),
    [
        ("schema", "events", True),
        ("internal-error", "all", True),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "projections", True),
        ("undecodable", "projections", True),
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "all", True),
        ("bad-schema", "events", False),  # used to say "nothing to redrive", exit 0
        ("schmea", "all", False),
        ("schema", "projections", False),  # booking-events.dlq's, not this topic's
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "events", False),
    ],
)
def test_a_reason_must_be_a_code_of_the_chosen_topics(reason: str, which: str, known: bool) -> None:
    if known:
        check_reason(reason, which)
        return
    with pytest.raises(UsageError) as refused:
        check_reason(reason, which)
    assert refused.value.exit_code == 2
    assert "not-json" in str(refused.value) or "Salesforce error code" in str(refused.value)


@pytest.mark.parametrize(
    ("code", "resent"),
    [
        ("internal-error", True),  # a worker bug, fixed: the same bytes fold now
        ("not-json", False),
        ("not-utf8", False),
        ("schema", False),
        ("too-large", False),
        ("key-mismatch", False),
        ("unknown-type", False),
        ("conflicting-duplicate", False),
        ("history-full", False),
        ("booking-expired", False),
    ],
)
def test_only_what_a_worker_fix_cures_is_re_sent_without_a_file(code: str, resent: bool) -> None:
    assert code in EVENT_CODES
    message = letter(0, code, "b-1", minutes=0)
    assert split_resendable([message]) == (([message], []) if resent else ([], [message]))


def test_what_would_fail_again_is_said_in_one_line() -> None:
    line = needs_file_line("booking-events.dlq", [LETTERS[0], LETTERS[1], LETTERS[2]])
    assert "\n" not in line
    assert line.startswith("booking-events.dlq: 3 dead letters not re-sent (not-json 1, schema 2)")
    assert "--file" in line


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 dead letters"), (1, "1 dead letter"), (2, "2 dead letters")],
)
def test_counts_are_singular_or_plural(count: int, text: str) -> None:
    assert plural(count, "dead letter") == text


def test_show_prints_the_headers_and_the_value() -> None:
    text = "\n".join(show_lines("booking-events.dlq", LETTERS[1]))
    assert "booking-events.dlq 0:1 at 2026-11-24T09:00:00+00:00" in text
    assert "header activity-sync.error.code: not-json" in text
    assert 'value (11 bytes): {"id": "x"}' in text


# --org (issue 23) ---------------------------------------------------------------------

ACME_PAGE = {**scheduled()["data"]["page"], "salesforce_org": "acme"}


def with_value(offset: int, value: bytes, *headers: tuple[str, bytes]) -> DeadLetterMessage:
    found = letter(offset, "internal-error", f"b-{offset}", minutes=offset)
    return replace(found, value=value, headers=(*headers, *found.headers))


def test_a_booking_event_s_org_is_its_page_s_and_unsaid_without_a_page() -> None:
    def org(wire: Any) -> str | None:
        return org_of(with_value(0, raw(wire) if isinstance(wire, dict) else wire), False)

    assert org(scheduled(page=ACME_PAGE)) == "acme"
    assert org(reassigned(2, page=ACME_PAGE)) == "acme"
    assert org(scheduled()) == "default"  # no salesforce_org: the default org
    assert org(canceled(2)) is None  # no page: the record does not say
    assert org(b"not json") is None
    assert org(b'["a list"]') is None
    assert org(b'{"data": {"page": {"salesforce_org": 7}}}') is None


def test_a_projection_s_org_is_its_value_s_or_for_an_undecodable_one_its_header_s() -> None:
    acme = project(fold_dicts([scheduled(page=ACME_PAGE)]))
    default = project(fold_dicts([scheduled()]))
    assert acme is not None
    assert default is not None
    assert org_of(with_value(0, acme.to_bytes()), True) == "acme"
    assert org_of(with_value(0, default.to_bytes()), True) == "default"
    named = (SALESFORCE_ORG, b"acme")
    assert org_of(with_value(0, b"garbage", named), True) == "acme"
    assert org_of(with_value(0, b"garbage"), True) is None


def test_by_org_keeps_one_org_s_dead_letters_and_the_markers() -> None:
    records = [
        with_value(0, raw(scheduled(page=ACME_PAGE, booking_id="b-0"))),
        with_value(1, raw(scheduled(booking_id="b-1"))),
        with_value(2, b"not json"),
        with_value(3, raw(scheduled(page=ACME_PAGE, booking_id="b-3"))),
        marker(4, "0:3", "b-3"),
    ]
    acme, unsaid = by_org(records, "acme", projections=False)
    assert [m.ref for m in Pending.of(acme).messages] == ["0:0"]  # 0:3 was redriven
    assert [m.ref for m in Pending.of(unsaid).messages] == ["0:2"]
    default, _ = by_org(records, "default", projections=False)
    assert [m.ref for m in Pending.of(default).messages] == ["0:1"]
    line = org_unsaid_line("booking-events.dlq", "acme", 1)
    assert line.startswith("booking-events.dlq: 1 more dead letter whose org the record does")
