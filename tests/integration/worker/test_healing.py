"""Rejections that heal, against the strict emulator (issue 12): for each reference
Salesforce refuses, the Event ends with the fallback the rules give
(streams/salesforce/healing.py), the fallback metric moves, and nothing that could be
written reaches activity-projections.dlq.

The scenarios share one broker, one emulator and one worker (a worker takes seconds to
start); each uses its own bookings and its own records, so they cannot disturb each
other. The worker has a fallback owner configured.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.kafka import KafkaCluster
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.workers import WorkerProcess, worker_environment
from tests.factories import (
    ALICE,
    customer,
    owner,
    reassigned,
    rescheduled,
    scheduled,
    sfid,
)
from tests.fixtures import broker_namespace, event_records, produce, read_topic, run_cli, wait_until

pytestmark = pytest.mark.integration

EVENTS = "booking-events"
DLQ = "activity-projections.dlq"
FALLBACKS = "activity_sync_salesforce_fallbacks_total"
_numbers = itertools.count(1)


@dataclass
class Org:
    """The shared pipeline: one broker, the session's emulator, one worker."""

    broker: BrokerNamespace
    emulator: SalesforceEmulator
    worker: WorkerProcess
    fallback_owner: str

    def fallbacks(self, kind: str) -> float:
        return sum(
            s.value
            for s in self.worker.metrics()
            if s.name == FALLBACKS and s.labels.get("kind") == kind
        )

    def user(self, *, active: bool = True) -> str:
        n = next(_numbers)
        return self.emulator.insert(
            "User",
            {"Username": f"heal-{n}@org.example", "LastName": f"Heal {n}", "IsActive": active},
        )[0]

    def report(self, booking: str) -> dict[str, Any]:
        answer = requests.get(f"{self.worker.web_url}/bookings/{booking}/", timeout=10)
        answer.raise_for_status()
        report: dict[str, Any] = answer.json()
        return report

    def event(self, booking: str) -> dict[str, Any] | None:
        found = [r for r in self.emulator.records("Event") if r.get("Booking_Id__c") == booking]
        return found[0] if found else None


@pytest.fixture(scope="module")
def org(
    salesforce_emulator_session: SalesforceEmulator,
    kafka_cluster: KafkaCluster | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Org]:
    root = tmp_path_factory.mktemp("healing")
    emulator = salesforce_emulator_session
    if emulator.process is None:
        emulator.start()
    emulator.reset()
    fallback = emulator.insert(
        "User", {"Username": "fallback@org.example", "LastName": "Fallback"}
    )[0]
    with broker_namespace(kafka_cluster, root) as broker:
        env = worker_environment(
            broker, emulator, root / "worker", salesforce_fallback_owner_id=fallback
        )
        worker = WorkerProcess(env, root / "worker.log").start()
        try:
            worker.wait_ready()
            yield Org(broker, emulator, worker, fallback)
        finally:
            worker.stop()
    emulator.reset()


async def dead_lettered(org: Org, *bookings: str) -> list[Any]:
    return [r for r in await read_topic(org.broker, DLQ) if r.key in {b.encode() for b in bookings}]


def wait_for_event(
    org: Org, booking: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    last: dict[str, Any] | None = None

    def done() -> bool:
        nonlocal last
        last = org.event(booking)
        return last is not None and check(last)

    try:
        wait_until(done, 60, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; Event now: {last}") from None
    assert last is not None
    return last


# Each scenario: arrange the org and return (events to produce, expected Event fields);
# PHASE in the events: wait until what came before it is written.
PHASE: dict[str, Any] = {}
Scenario = Callable[[Org, str], tuple[list[dict[str, Any]], dict[str, Any]]]


def owner_inactive(org: Org, booking: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A new booking of an owner who left: no owner on the Event yet -> the fallback."""
    gone = org.user(active=False)
    events = [scheduled(booking_id=booking, owner=owner("u-gone", "Gone", gone))]
    return events, {"OwnerId": org.fallback_owner}


def owner_unknown(org: Org, booking: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Reassigned to a user id the org does not know: the owner already on the Event."""
    unknown = sfid("005", 999)  # well-formed, outside the seeded pool: no such User
    return [
        scheduled(booking_id=booking),
        PHASE,  # the Event exists, with its owner, before the reassignment arrives
        reassigned(2, booking_id=booking, owner=owner("u-x", "X", unknown)),
    ], {"OwnerId": ALICE["salesforce_user_id"]}


def who_deleted(org: Org, booking: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The related Contact was deleted and no other has the email: no WhoId."""
    email = f"{booking}@customer.example"
    contact = org.emulator.insert("Contact", {"LastName": "Gone", "Email": email})[0]
    org.emulator.delete("Contact", contact)
    events = [
        scheduled(
            booking_id=booking,
            customer=customer("Gone", email),
            related={"type": "Contact", "id": contact},
        )
    ]
    return events, {"WhoId": None}


def who_merged(org: Org, booking: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The related Contact was merged: the surviving Contact, found by the email."""
    email = f"{booking}@customer.example"
    master, duplicate = org.emulator.insert(
        "Contact",
        {"LastName": "Master", "Email": email},
        {"LastName": "Duplicate", "Email": email},
    )
    org.emulator.merge("Contact", master, duplicate)
    events = [
        scheduled(
            booking_id=booking,
            customer=customer("Merged", email),
            related={"type": "Contact", "id": duplicate},
        )
    ]
    return events, {"WhoId": master}


def lead_converted(org: Org, booking: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The related Lead was converted: the Contact it became, found by the email."""
    email = f"{booking}@customer.example"
    lead = org.emulator.insert("Lead", {"LastName": "Lead", "Company": "Acme", "Email": email})[0]
    contact = org.emulator.convert_lead(lead)
    events = [
        scheduled(
            booking_id=booking,
            customer=customer("Converted", email),
            related={"type": "Lead", "id": lead},
        )
    ]
    return events, {"WhoId": contact, "WhatId": None}


def what_stale(org: Org, booking: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The related Case was deleted: WhatId dropped, the rest written."""
    case = org.emulator.insert("Case", {"Subject": "Stale"})[0]
    org.emulator.delete("Case", case)
    events = [
        scheduled(
            booking_id=booking,
            customer=customer("Stale", f"{booking}@customer.example"),
            related={"type": "Case", "id": case},
        ),
        rescheduled(2, booking_id=booking, reason="Travel"),
    ]
    return events, {"WhatId": None, "Event_Status__c": "Rescheduled"}


SCENARIOS: list[tuple[str, Scenario, str]] = [
    ("owner-inactive", owner_inactive, "owner-fallback"),
    ("owner-unknown", owner_unknown, "owner-on-event"),
    ("who-deleted", who_deleted, "who-dropped"),
    ("who-merged", who_merged, "who-resolved"),
    ("lead-converted", lead_converted, "who-resolved"),
    ("what-stale", what_stale, "what-dropped"),
]


@pytest.mark.parametrize(("name", "arrange", "kind"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_a_refused_reference_heals_with_the_rules_fallback(
    org: Org, name: str, arrange: Scenario, kind: str
) -> None:
    booking = f"heal-{name}"
    events, expected = arrange(org, booking)
    before = org.fallbacks(kind)
    phases: list[list[dict[str, Any]]] = [[]]
    for item in events:
        if item is PHASE:
            phases.append([])
        else:
            phases[-1].append(item)
    events = [e for e in events if e is not PHASE]
    sent = 0
    for phase in phases:
        if sent:
            wait_for_event(
                org, booking, lambda e, sent=sent: e.get("Projection_Version__c") == sent, "a phase"
            )
        await produce(org.broker, EVENTS, event_records(phase))
        sent += len(phase)

    wait_for_event(
        org,
        booking,
        lambda e: (
            all(e.get(k) == v for k, v in expected.items())
            and e.get("Projection_Version__c") == len(events)
        ),
        f"{booking}'s Event with {expected}",
    )
    wait_until(lambda: org.fallbacks(kind) > before, 30, f"{FALLBACKS}{{kind={kind}}} to move")
    assert await dead_lettered(org, booking) == []
    # The booking's report (status) names the fallback its written version took.
    wait_until(
        lambda: org.report(booking)["sync"]["in_sync"], 30, f"{booking} in sync in its report"
    )
    assert org.report(booking)["sync"]["fallbacks"] == [kind]
    logged = org.worker.log_path.read_text().count(f"booking {booking}: Salesforce refused")
    assert logged == 1


async def test_an_owner_deactivated_mid_run_keeps_bookings_flowing_and_a_redrive_fixes_the_rest(
    org: Org,
) -> None:
    """Bookings of an owner who leaves mid-run keep reaching Salesforce with the fallback
    owner; one refused for another cause (a validation rule) waits in the DLQ, and a
    redrive once the rule is fixed leaves nothing to redrive and every Event right."""
    leaver = org.user()
    who = owner("u-leaver", "Leaver", leaver)
    first = [scheduled(booking_id=f"mid-{n}", owner=who, title=f"Call {n}") for n in range(5)]
    await produce(org.broker, EVENTS, event_records(first))
    for n in range(5):
        wait_for_event(org, f"mid-{n}", lambda e: e.get("OwnerId") == leaver, f"mid-{n} written")

    org.emulator.update("User", leaver, IsActive=False)
    org.emulator.set_faults(
        validation_rules=[
            {"sobject": "Event", "field": "Subject", "value": "Call 7", "message": "No."}
        ]
    )
    second = [scheduled(booking_id=f"mid-{n}", owner=who, title=f"Call {n}") for n in range(5, 10)]
    moved = [rescheduled(2, booking_id=f"mid-{n}", reason="Sick") for n in range(2)]
    await produce(org.broker, EVENTS, event_records(second + moved))
    for n in (5, 6, 8, 9):
        wait_for_event(
            org,
            f"mid-{n}",
            lambda e: e.get("OwnerId") == org.fallback_owner,
            f"mid-{n} with the fallback owner",
        )
    for n in range(2):
        wait_for_event(
            org,
            f"mid-{n}",
            lambda e: (
                e.get("Event_Status__c") == "Rescheduled"
                and e.get("OwnerId") in (leaver, org.fallback_owner)
            ),
            f"mid-{n} rescheduled",
        )
    dead = await read_topic(org.broker, DLQ, expect=1)
    assert [r.key for r in dead if r.key.startswith(b"mid-")] == [b"mid-7"]

    org.emulator.set_faults(validation_rules=[])  # the admin fixed the rule
    env = org.broker.env
    redrive = run_cli("dlq", "redrive", "--topic", "projections", env=env)
    assert redrive.returncode == 0, redrive.stderr
    assert "replayed 1 booking (forced upsert)" in redrive.stdout
    wait_for_event(
        org,
        "mid-7",
        lambda e: e.get("OwnerId") == org.fallback_owner and e.get("Subject") == "Call 7",
        "mid-7 redriven with the fallback owner",
    )
    again = run_cli("dlq", "redrive", "--topic", "projections", env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing to redrive" in again.stdout
    status = run_cli("status", "mid-7", "--worker", org.worker.web_url, env=env)
    assert status.returncode == 0, status.stderr
    assert "  owner-fallback: owner refused: ACTIVITY_SYNC_SALESFORCE_FALLBACK_OWNER_ID" in (
        status.stdout
    )
    for n in range(10):
        found = org.event(f"mid-{n}")
        assert found is not None, n
        assert found["Subject"] == f"Call {n}"
        # Rescheduled (mid-0, mid-1) or new after the owner left: the fallback owner.
        expected_owner = leaver if 2 <= n < 5 else org.fallback_owner
        assert found["OwnerId"] == expected_owner, (n, found)
