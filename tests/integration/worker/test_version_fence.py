"""The version fence end to end, and a sink that never holds partitions hostage
(issue 16): an older projection is refused by Salesforce and counted as done, and a
worker paused by REQUEST_LIMIT_EXCEEDED (the production 60 s pause) lets a rebalance
through at once when the other worker restarts; no Event ever goes backwards (the
emulator's write log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess
from schemas import event_from_dict
from streams.commands.generate import generate_events
from streams.core.fold import fold_all
from streams.core.projection import project
from streams.core.projection_record import encode_headers
from streams.salesforce.fence import VERSION_FIELD
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
PROJECTIONS = "activity-projections"
# The embedded profile's session timeout (streams/transport/connection.py).
SESSION_TIMEOUT_S = 6.0


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in worker.metrics()
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def regressions(emulator: SalesforceEmulator) -> list[dict[str, Any]]:
    """Written versions lower than the Event had: what the fence must make impossible."""
    return [
        w
        for w in emulator.writes()
        if w["outcome"] == "written" and w["old"] is not None and w["new"] < w["old"]
    ]


async def send_projection(broker: BrokerNamespace, key: bytes, value: bytes) -> None:
    """As `activity-sync replay` sends one: forced past `synced`, this app version."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            broker.topic(PROJECTIONS),
            value,
            key=key,
            headers=encode_headers(app_version=1, forced=True),
        )
    finally:
        await producer.stop()


async def test_an_older_projection_is_refused_by_salesforce_counted_and_not_dead_lettered(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = [scheduled(), rescheduled(2, reason="Sick"), canceled(3, reason="Travel")]
    worker = workers.start()
    await produce(broker, EVENTS, event_records(events))
    expected = expected_events(events)
    wait_for_salesforce(salesforce_emulator, expected)
    assert expected["b-1042"][VERSION_FIELD] == 3

    older = project(fold_all([event_from_dict(dict(events[0]))]))
    assert older is not None
    assert older.version == 1
    await send_projection(broker, b"b-1042", older.to_bytes())

    skipped = "activity_sync_projections_skipped_total"
    wait_until(
        lambda: metric(worker, skipped, why="salesforce-newer") == 1,
        30,
        "the sink to count the fence's refusal",
    )
    (event,) = salesforce_emulator.records()
    assert (event["Event_Status__c"], event[VERSION_FIELD]) == ("Canceled", 3)
    wait_for_salesforce(salesforce_emulator, expected, timeout=5)
    refused = [w for w in salesforce_emulator.writes() if w["outcome"] == "refused"]
    assert [(w["old"], w["new"]) for w in refused] == [(3, 1)]
    assert await read_topic(broker, f"{PROJECTIONS}.dlq", wait_s=3) == []
    assert metric(worker, "activity_sync_salesforce_records_total", outcome="fenced") == 1
    assert regressions(salesforce_emulator) == []


def logged_at(text: str, needle: str, start: int = 0) -> datetime:
    """When the first log line from `start` holding `needle` was written (Faust's log
    lines begin `[2026-12-04 23:36:24,971]`)."""
    line = next(line for line in text[start:].splitlines() if needle in line)
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")


def _ready_after(worker: WorkerProcess, offset: int) -> bool:
    """Recovery done after a rebalance (the first start logs READY_MARKER as well)."""
    return "[^---Recovery]: Worker ready" in worker.log_text()[offset:]


async def test_a_restart_completes_while_the_other_worker_is_in_a_limit_pause(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    """Before issue 16 the paused sink slept 60 s holding its batch; Faust's revoke step
    waited for it ("Task timed out!"), the group went on without that worker, and its
    held batch later wrote older versions over the new owner's."""
    first_events = list(generate_events(120, seed=16, duplicate_rate=0.0))
    one = workers.start("worker-1", sink_limit_pause="60")
    two = workers.start("worker-2", sink_limit_pause="60")
    await produce(broker, EVENTS, event_records(first_events))
    wait_for_salesforce(salesforce_emulator, expected_events(first_events), timeout=60)

    # The next upsert is refused for the daily limit; then every booking moves on.
    salesforce_emulator.set_faults(
        request_limit_exceeded={"next": 1, "only": ["collections_upsert"]}
    )
    bookings = sorted({str(e["subject"]) for e in first_events})
    later = [rescheduled(50, booking_id=b, reason="Moved", event_id=f"{b}-moved") for b in bookings]
    await produce(broker, EVENTS, event_records(later))
    wait_until(
        lambda: any("API limit reached" in w.log_text() for w in (one, two)),
        30,
        "a sink to hit the limit",
    )
    paused, other = (one, two) if "API limit reached" in one.log_text() else (two, one)
    paused_log = len(paused.log_text())

    other.stop()
    other.start()
    other.wait_ready(timeout=60)
    # The paused worker went through the rebalance with it, within its 60 s pause, not
    # after it: judged by its own log's clock, not by how fast this machine is.
    wait_until(lambda: _ready_after(paused, paused_log), 60, "the paused worker to rejoin")
    text = paused.log_text()
    assert "Task timed out" not in text[paused_log:]
    paused_at = logged_at(text, "API limit reached")
    rejoined_at = logged_at(text, "[^---Recovery]: Worker ready", start=paused_log)
    assert (rejoined_at - paused_at).total_seconds() < 60, (paused_at, rejoined_at)

    everything = first_events + later
    wait_for_salesforce(salesforce_emulator, expected_events(everything), timeout=90)
    assert regressions(salesforce_emulator) == []
    assert metric(paused, "activity_sync_projections_skipped_total", why="handed-back") > 0
