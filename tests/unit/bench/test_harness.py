"""The benches' live latency from Salesforce (bench/harness.py): a booking's latency runs
from the send of the last event that changed its fold to its Event's SystemModstamp; a
duplicate changes nothing, and a booking Salesforce does not hold has no sample. And what
they compute from CPU snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench import harness as h
from streams.commands.generate import (
    booking_data,
    customer,
    envelope,
    owner,
    page,
    rescheduled_data,
)

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _scheduled(booking: str) -> h.Event:
    data = booking_data(
        booking,
        start=BASE + timedelta(days=1),
        end=BASE + timedelta(days=1, minutes=30),
        page=page("p-1", "Sales"),
        owner=owner("u-1", "Ada Lovelace", None),
        customer=customer("Grace Hopper"),
    )
    return envelope("booking.scheduled", booking, 1, BASE, data)


def _rescheduled(booking: str) -> h.Event:
    start = BASE + timedelta(days=2)
    data = rescheduled_data(start, start + timedelta(minutes=30), "Sick", "customer")
    return envelope("booking.rescheduled", booking, 2, BASE + timedelta(hours=1), data)


def _record(booking: str, modstamp: str) -> dict[str, str]:
    return {"Booking_Id__c": booking, "SystemModstamp": modstamp}


def test_the_last_change_of_a_booking_ignores_duplicates() -> None:
    a1, a2, b1 = _scheduled("a"), _rescheduled("a"), _scheduled("b")
    # a's reschedule (index 2) is its last change; its re-sent copy (index 3) is not.
    assert h.last_changes([a1, b1, a2, dict(a2)]) == {"a": 2, "b": 1}


def test_latency_runs_from_the_changing_send_to_the_modstamp() -> None:
    sent_at = [1000.0, 1001.0, 1002.0]
    stamp = datetime.fromtimestamp(1002.75, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    records = [_record("a", stamp), {"Booking_Id__c": "c"}]  # c: no modstamp, no sample
    assert h.latencies({"a": 2, "b": 1}, sent_at, records) == [pytest.approx(0.75)]
    events = [_scheduled("a"), _scheduled("b"), _rescheduled("a")]
    assert h.latencies_from_salesforce(events, sent_at, records) == [pytest.approx(0.75)]


def test_a_quantile_is_the_value_at_its_rank() -> None:
    assert h.quantile([], 0.99) is None
    values = [float(n) for n in range(100, 0, -1)]
    assert h.quantile(values, 0.5) == 51.0
    assert h.quantile(values, 0.99) == 100.0
    assert h.quantile([0.2], 0.99) == 0.2


def test_a_verdict_names_a_missed_target() -> None:
    assert [h.verdict(True), h.verdict(False), h.verdict(None)] == ["met", "MISSED", "n/a"]


BEFORE = {"worker": 10.0, "broker": 2.0}
AFTER = {"worker": 12.5, "broker": 2.5}


@pytest.mark.parametrize(
    ("seconds", "cores"),
    [(2.5, {"worker": 1.0, "broker": 0.2}), (5.0, {"worker": 0.5, "broker": 0.1})],
)
def test_cores_used_are_cpu_seconds_over_the_window(
    seconds: float, cores: dict[str, float]
) -> None:
    assert h.cores_used(BEFORE, AFTER, seconds) == cores


@pytest.mark.parametrize(
    ("events", "per_event"),
    [(10_000, {"worker": 250, "broker": 50}), (25_000, {"worker": 100, "broker": 20})],
)
def test_cpu_per_event_is_cpu_seconds_over_the_events_whatever_the_window(
    events: int, per_event: dict[str, int]
) -> None:
    assert h.cpu_us_per_event(BEFORE, AFTER, events) == per_event
