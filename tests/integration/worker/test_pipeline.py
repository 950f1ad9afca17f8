"""The whole pipeline: embedded broker, real worker processes, the Salesforce emulator.

Each test checks Salesforce against the pure fold of what was produced (`expected_events`),
so a lost, stale or duplicated update shows up as a named difference.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess
from streams.commands.generate import generate_events
from streams.worker.pipeline.dead_letter import read_headers
from tests.factories import TIMER_SOURCE, canceled, rescheduled, scheduled
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


def bookings_with_events(count: int, seed: int) -> list[list[dict[str, Any]]]:
    """`count` generated bookings that each end with a Salesforce Event, grouped."""
    by_booking: dict[str, list[dict[str, Any]]] = {}
    for event in generate_events(count * 2, seed=seed, duplicate_rate=0.0):
        by_booking.setdefault(str(event["subject"]), []).append(event)
    with_event = [
        events for booking, events in by_booking.items() if booking in expected_events(events)
    ]
    assert len(with_event) >= count, "generator gave too few bookings with an Event"
    return with_event[:count]


def shuffled_with_duplicates(
    bookings: list[list[dict[str, Any]]], rng: random.Random
) -> list[dict[str, Any]]:
    """Each booking's events in a random order with random re-sends, bookings interleaved."""
    queues = []
    for events in bookings:
        copies = events + [e for e in events if rng.random() < 0.3]
        rng.shuffle(copies)
        queues.append(copies)
    out = []
    while queues:
        queue = rng.choice(queues)
        out.append(queue.pop())
        if not queue:
            queues.remove(queue)
    return out


async def test_lifecycles_shuffled_and_duplicated_end_as_the_fold_says(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    bookings = bookings_with_events(200, seed=11)
    events = shuffled_with_duplicates(bookings, random.Random(5))
    expected = expected_events(events)
    assert len(expected) == 200

    workers.start()
    await produce(broker, EVENTS, event_records(events))

    wait_for_salesforce(salesforce_emulator, expected)
    assert len(salesforce_emulator.records("Event")) == 200


def _event(booking: str, **changes: Any) -> dict[str, Any]:
    """A valid `booking.scheduled` for `booking`, with envelope fields overridden."""
    return {**scheduled(booking_id=booking, event_id=f"{booking}-1"), **changes}


async def test_bad_input_goes_to_the_dead_letter_topic_with_reasons(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    good = [_event(f"good-{n}") for n in range(3)]
    naive = _event("bad-naive")
    naive["time"] = "2026-11-24T09:30:00"
    conflicting = dict(good[0], time="2026-11-24T10:00:00Z")  # same (source, id), new content
    bad: list[tuple[str, bytes | None, bytes]] = [
        ("not-utf8", b"bad-1", b"\xff\xfe{}"),
        ("not-json", b"bad-2", b"{not json"),
        ("schema", b"bad-3", orjson.dumps({k: v for k, v in good[1].items() if k != "id"})),
        ("schema", b"bad-naive", orjson.dumps(naive)),
        ("unknown-type", b"bad-4", orjson.dumps(dict(_event("bad-4"), type="booking.exploded"))),
        ("key-mismatch", b"someone-else", orjson.dumps(_event("bad-5"))),
        ("key-mismatch", None, orjson.dumps(_event("bad-6"))),
        ("too-large", b"bad-7", orjson.dumps(_event("bad-7", padding="x" * 70_000))),
        ("conflicting-duplicate", b"good-0", orjson.dumps(conflicting)),
    ]
    records = event_records(good[:1])
    for _, key, value in bad:
        records.append((key, value))
    records += event_records(good[1:])

    worker = workers.start()
    await produce(broker, EVENTS, records)

    dead = await read_topic(broker, "booking-events.dlq", expect=len(bad))
    got = sorted((read_headers(r.headers)["code"], r.key or b"", r.value) for r in dead)
    assert [g[:2] for g in got] == sorted((code, key or b"") for code, key, _ in bad)
    # Original bytes kept; for a conflict the loser is whichever copy sorts second.
    assert {g[2] for g in got if g[0] != "conflicting-duplicate"} == {
        value for code, _, value in bad if code != "conflicting-duplicate"
    }
    for record in dead:
        headers = read_headers(record.headers)
        assert headers["topic"] == broker.topic(EVENTS)
        assert int(headers["offset"]) >= 0
        assert headers["message"]
    # The conflicting copy is folded too (it loses, and counts in the version).
    wait_for_salesforce(salesforce_emulator, expected_events([*good, conflicting]))
    assert worker.process is not None
    assert worker.process.poll() is None, "worker died"


async def test_worker_killed_mid_stream_recovers_its_tables(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = list(generate_events(400, seed=21, duplicate_rate=0.05))
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    worker = workers.start()
    await produce(broker, EVENTS, event_records(first))
    wait_for_salesforce(salesforce_emulator, expected_events(first))

    worker.kill()
    # Most of these continue bookings begun in `first`: they only fold right if the
    # restarted worker recovered the `bookings` table from its changelog.
    await produce(broker, EVENTS, event_records(second))
    workers.start("worker-1-restarted")

    wait_for_salesforce(salesforce_emulator, expected_events(events))


async def fold_spread_bookings_across_a_restart(
    broker: BrokerNamespace, workers: Workers, emulator: SalesforceEmulator, **settings: str
) -> None:
    """40 bookings over every partition, three lifecycle steps with a restart before the
    last, in small (so full) fold batches; Salesforce and each booking's stored events
    must follow the fold."""
    ids = [f"spread-{n}" for n in range(40)]
    first = [scheduled(booking_id=b) for b in ids]
    second = [rescheduled(2, booking_id=b) for b in ids]
    third = [canceled(3, booking_id=b) for b in ids]
    worker = workers.start(fold_batch_size="10", **settings)
    await produce(broker, EVENTS, event_records(first))
    wait_for_salesforce(emulator, expected_events(first))
    await produce(broker, EVENTS, event_records(second))
    wait_for_salesforce(emulator, expected_events(first + second))

    worker.stop()
    await produce(broker, EVENTS, event_records(third))
    restarted = workers.start("worker-1-restarted", fold_batch_size="10", **settings)
    wait_for_salesforce(emulator, expected_events(first + second + third))
    assert {b: stored_sequences(restarted, b) for b in ids} == {b: [1, 2, 3] for b in ids}


def stored_sequences(worker: WorkerProcess, booking: str) -> list[int]:
    """The sequences of the events the worker's `bookings` table holds for `booking`."""
    report = requests.get(f"{worker.web_url}/bookings/{booking}/", timeout=10).json()
    return [event["sequence"] for event in report["events"]]


async def test_bookings_of_every_partition_in_one_batch_fold_right_and_survive_a_restart(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    # On RocksDB a table row is found only under its own partition: a fold batch mixing
    # bookings of all four partitions read all but one partition's rows as empty, folded
    # them from scratch, and filed the writes in the wrong partition store. It showed
    # when batches fill up (Faust's current event is then left set, as in any backlog):
    # small batches make every batch here a full one.
    await fold_spread_bookings_across_a_restart(broker, workers, salesforce_emulator)


async def test_a_second_worker_joining_loses_nothing(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = list(generate_events(400, seed=31, duplicate_rate=0.05))
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    workers.start("worker-1")
    await produce(broker, EVENTS, event_records(first))
    wait_for_salesforce(salesforce_emulator, expected_events(first))

    # Partitions move to the newcomer, which must recover their state from changelogs.
    workers.start("worker-2")
    await produce(broker, EVENTS, event_records(second))

    wait_for_salesforce(salesforce_emulator, expected_events(events))


def catch_up_batches(worker: WorkerProcess) -> float:
    """Fold batches larger than a live one (1,000 events) the worker has taken so far."""
    name = "activity_sync_fold_batch_events"
    counts = {
        sample.labels.get("le", "all"): sample.value
        for sample in worker.metrics()
        if sample.name in (f"{name}_bucket", f"{name}_count")
    }
    return counts.get("all", 0.0) - counts.get("1000.0", 0.0)


async def test_a_worker_joining_while_the_fold_catches_up_loses_nothing(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    # A backlog of ~30,000 events: the first worker folds it in catch-up batches, and
    # the second one takes over half the partitions while one of those is in progress.
    events = list(generate_events(12_000, seed=61, duplicate_rate=0.05))
    await produce(broker, EVENTS, event_records(events))
    first = workers.start("worker-1")
    wait_until(lambda: catch_up_batches(first) > 0, 60, "a catch-up batch")
    second = workers.start("worker-2")

    wait_for_salesforce(
        salesforce_emulator, expected_events(events), timeout=240, workers=[first, second]
    )


async def test_salesforce_outage_holds_the_stream_and_delivers_everything(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = list(generate_events(150, seed=41))
    worker = workers.start()
    salesforce_emulator.down(20)
    await produce(broker, EVENTS, event_records(events))

    wait_for_salesforce(salesforce_emulator, expected_events(events), timeout=90)
    assert salesforce_emulator.total_api_calls() > 0
    # The reconcile timer (every 2 s here) saw the sink behind for 20 s and left alone
    # what the sink had not read yet: nothing was lost, so nothing was re-sent.
    resent = [
        s.value for s in worker.metrics() if s.name == "activity_sync_projections_resent_total"
    ]
    assert resent == [0.0]


async def test_the_completion_timer_completes_bookings_past_their_end(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    now = datetime.now(UTC)
    ended = scheduled(booking_id="b-ended", start=now - timedelta(hours=3))
    upcoming = scheduled(booking_id="b-upcoming", start=now + timedelta(days=1))
    # Grace one hour: b-ended (ended 2.5 h ago) is due, b-upcoming is not.
    workers.start(completion_grace="3600", completion_check_interval="1")
    await produce(broker, EVENTS, event_records([ended, upcoming]))

    def statuses() -> dict[str, str]:
        return {
            str(r["Booking_Id__c"]): str(r["Event_Status__c"])
            for r in salesforce_emulator.records()
        }

    wait_until(
        lambda: statuses() == {"b-ended": "Completed", "b-upcoming": "Scheduled"},
        60,
        "the timer to complete b-ended only",
    )
    # The timer's event went through booking-events, so a replay reaches the same state
    # (a second copy would be harmless: identical, and folded once).
    values = [orjson.loads(r.value) for r in await read_topic(broker, EVENTS, expect=3)]
    from_timer = {(e["subject"], e["type"]) for e in values if e["source"] == TIMER_SOURCE}
    assert from_timer == {("b-ended", "booking.completed")}


async def test_a_worker_stopped_during_an_outage_hands_its_unwritten_records_back(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = list(generate_events(100, seed=43))
    expected = expected_events(events)
    worker = workers.start()
    salesforce_emulator.down(120)
    await produce(broker, EVENTS, event_records(events))
    # Let the sink take the projections and start retrying, then stop it cleanly while
    # Salesforce is still down: what it took and did not write must not be lost.
    wait_until(
        lambda: "unwritten projections back to the topic" in worker.log_text(),
        20,
        "the sink to hand records back",
    )
    worker.stop(timeout=20)
    assert worker.process is not None
    assert worker.process.returncode == 0, "the worker did not stop cleanly"
    assert "handed" in worker.log_text()
    assert salesforce_emulator.records("Event") == []
    salesforce_emulator.down(0)

    workers.start("worker-after-outage")
    wait_for_salesforce(salesforce_emulator, expected, timeout=90)


async def test_a_record_failing_validation_is_dead_lettered_and_its_batch_written(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = [scheduled(booking_id=f"v-{n}", title=f"Meeting {n}") for n in range(5)]
    salesforce_emulator.set_faults(
        validation_rules=[
            {"sobject": "Event", "field": "Subject", "value": "Meeting 3", "message": "No."}
        ]
    )
    workers.start()
    await produce(broker, EVENTS, event_records(events))

    dead = await read_topic(broker, "activity-projections.dlq", expect=1)
    assert [r.key for r in dead] == [b"v-3"]
    assert read_headers(dead[0].headers)["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    expected = expected_events(events)
    del expected["v-3"]
    wait_for_salesforce(salesforce_emulator, expected)


async def test_backfill_from_an_empty_salesforce_costs_few_api_calls(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = list(generate_events(5000, seed=51))
    expected = expected_events(events)
    await produce(broker, EVENTS, event_records(events))
    # What is checked is how the sink packs a backlog into calls. With the production
    # 0.5 s take window, a loaded 2-core machine folds fewer projections per window and
    # the count follows the load (33 quiet, 70 under two CPU hogs); a 2 s window keeps
    # every take full on any machine. `make bench` reports API calls per event with the
    # production settings.
    worker = workers.start(sink_batch_window="2")

    wait_until(
        lambda: len(salesforce_emulator.records("Event")) >= len(expected),
        180,
        "the backfill to reach Salesforce",
    )
    wait_for_salesforce(salesforce_emulator, expected)
    calls = salesforce_emulator.total_api_calls()
    print(f"backfill: 5000 bookings, {calls} API calls, {calls / 5000:.4f} per booking")
    assert calls <= 5000 / 100
    # The backlog made the fold take catch-up batches, larger than a live one (1000).
    assert catch_up_batches(worker) > 0


async def test_a_worker_started_during_a_salesforce_outage_starts_and_catches_up(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    # A restart during an outage must not end the worker (chaos seed 5: the restarted
    # worker gave up at start and its partitions waited): it starts with one warning.
    events = list(generate_events(30, seed=45))
    salesforce_emulator.down(15)
    worker = workers.start(startup_timeout="2")
    assert "warning: cannot reach Salesforce" in worker.log_text()
    await produce(broker, EVENTS, event_records(events))
    wait_for_salesforce(salesforce_emulator, expected_events(events), timeout=90)
