"""The timers' due index and retention, on real workers (RocksDB) and the embedded broker.

The index is the `due` table; the tests read it as the broker holds it (its changelog,
last value per key), which is also what a worker taking the partition over recovers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess
from streams.core.due_index import DueEntry, epoch_ms, parse_key
from streams.core.retention import is_marker
from streams.worker.pipeline.dead_letter import read_headers
from tests.factories import canceled, rescheduled, scheduled
from tests.fixtures import (
    Workers,
    event_records,
    produce,
    read_topic,
    wait_for_salesforce,
    wait_until,
)

pytestmark = pytest.mark.integration

EVENTS = "booking-events"
DUE_CHANGELOG = "booking-activity-sync-due-changelog"
BOOKINGS_CHANGELOG = "booking-activity-sync-bookings-changelog"
HOUR = timedelta(hours=1)


async def table_rows(broker: BrokerNamespace, changelog: str) -> dict[bytes, bytes]:
    """A table as its changelog holds it: the last value per key, tombstones removed."""
    rows: dict[bytes, bytes] = {}
    for record in await read_topic(broker, changelog):
        if record.value is None:
            rows.pop(record.key, None)
        else:
            rows[record.key] = record.value
    return rows


async def due_entries(broker: BrokerNamespace) -> set[DueEntry]:
    return {parse_key(key) for key in await table_rows(broker, DUE_CHANGELOG)}


# How long a timer's work may take to show. The timers run every second here; a wait
# returns as soon as the work shows, so this bounds only a machine too loaded to run them
# (two test processes and chaos beside them: 30 s and 60 s were each missed once at load
# 6-12).
PATIENCE_S = 120.0


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.5)


def statuses(emulator: SalesforceEmulator) -> dict[str, str]:
    return {str(r["Booking_Id__c"]): str(r["Event_Status__c"]) for r in emulator.records()}


async def test_the_due_index_follows_reschedules_and_completions(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ended = scheduled(booking_id="b-ended", start=now - 3 * HOUR)
    moved = scheduled(booking_id="b-moved", start=now + 24 * HOUR)
    later = now + 72 * HOUR
    workers.start(completion_grace="3600", completion_check_interval="1")
    await produce(broker, EVENTS, event_records([ended, moved]))
    move = rescheduled(2, booking_id="b-moved", start=later)
    await produce(broker, EVENTS, event_records([move]))

    wait_until(
        lambda: statuses(salesforce_emulator) == {"b-ended": "Completed", "b-moved": "Rescheduled"},
        PATIENCE_S,
        "the timer to complete b-ended",
    )
    # b-moved waits for its new end (30 min after its start), its old entry gone;
    # b-ended left completion for retention; reconcile entries leave once synced (2 × 2 s).
    expected = {
        DueEntry("completion", epoch_ms(later + timedelta(minutes=30)), b"b-moved"),
        DueEntry("retention", epoch_ms(now - 3 * HOUR + timedelta(minutes=30)), b"b-ended"),
    }
    last: set[DueEntry] = set()

    async def index_is_expected() -> bool:
        nonlocal last
        last = await due_entries(broker)
        return last == expected

    try:
        await wait_for(index_is_expected, PATIENCE_S, "the due index")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {sorted(last)}") from None


async def test_a_partition_moving_to_another_worker_brings_its_due_index(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    now = datetime.now(UTC)
    ids = [f"moving-{n}" for n in range(16)]  # spread over all four partitions
    events = [scheduled(booking_id=b, start=now - 3 * HOUR) for b in ids]
    # The first worker never completes anything (grace of 20 years)...
    first = workers.start("worker-1")
    await produce(broker, EVENTS, event_records(events))
    wait_for_salesforce(salesforce_emulator, expected_events(events))
    # ...the second one does, and it starts empty: the bookings it completes are the
    # ones whose due entries it recovered with their partitions (timers read only the
    # index, never the whole table).
    workers.start("worker-2", completion_grace="3600", completion_check_interval="1")
    first.stop()
    wait_until(
        lambda: statuses(salesforce_emulator) == dict.fromkeys(ids, "Completed"),
        1.5 * PATIENCE_S,
        "the second worker to complete every booking",
    )


async def test_an_expired_booking_shrinks_to_its_marker_and_refuses_late_events(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    now = datetime.now(UTC)
    old = [scheduled(booking_id="b-old", start=now - 72 * HOUR), canceled(2, booking_id="b-old")]
    recent = [
        scheduled(booking_id="b-recent", start=now - 3 * HOUR),
        canceled(2, booking_id="b-recent"),
    ]
    live = [scheduled(booking_id="b-live", start=now - 72 * HOUR)]  # not terminal
    worker = workers.start(state_retention_days="1", retention_check_interval="1")
    await produce(broker, EVENTS, event_records(old + recent + live))
    wait_for_salesforce(salesforce_emulator, expected_events(old + recent + live))

    rows: dict[bytes, bytes] = {}

    async def old_has_expired() -> bool:
        nonlocal rows
        rows = await table_rows(broker, BOOKINGS_CHANGELOG)
        return is_marker(rows.get(b"b-old", b""))

    await wait_for(old_has_expired, PATIENCE_S, "b-old to expire")
    assert len(rows[b"b-old"]) < 64
    assert not is_marker(rows[b"b-recent"])  # within retention: untouched
    assert not is_marker(rows[b"b-live"])  # not terminal: untouched
    assert {e.booking for e in await due_entries(broker) if e.kind == "retention"} == {b"b-recent"}

    late = rescheduled(3, booking_id="b-old", start=now + 24 * HOUR)
    await produce(broker, EVENTS, event_records([late]))
    dead = await read_topic(broker, "booking-events.dlq", expect=1)
    assert [(r.key, read_headers(r.headers)["code"]) for r in dead] == [
        (b"b-old", "booking-expired")
    ]
    # Never folded onto an empty history: the Event stays as the fold left it.
    wait_for_salesforce(salesforce_emulator, expected_events(old + recent + live))
    assert statuses(salesforce_emulator)["b-old"] == "Canceled"
    # Its page says so: 410 Gone, not a crash on the marker.
    status, error = booking_page(worker, "b-old")
    assert status == 410
    assert "expired" in error


def booking_page(worker: WorkerProcess, booking: str) -> tuple[int, str]:
    answer = requests.get(f"{worker.web_url}/bookings/{booking}/", timeout=10)
    return answer.status_code, str(answer.json().get("error", ""))
