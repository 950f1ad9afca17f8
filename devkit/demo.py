"""`activity-sync demo`: the whole pipeline on this machine, in well under a minute.

Starts the embedded Kafka broker, the Salesforce emulator and one worker (each its own
process, configured exactly as in production), produces a hand-written set of booking
lifecycles plus one malformed message, waits until Salesforce shows what the fold
says it should, prints the Salesforce Events and the dead-letter count, and stops
everything. Logs and emulator data stay in the demo directory (default `var/demo`).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from devkit.broker import EmbeddedBroker
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.workers import WorkerProcess, worker_environment
from streams.commands.base import UserError, until_signal
from streams.commands.console import format_table
from streams.commands.generate import (
    booking_data,
    canceled_data,
    customer,
    envelope,
    owner,
    page,
    reassigned_data,
    rescheduled_data,
)
from streams.commands.kafka_io import consumer, offsets, partitions_of, producer
from streams.transport.connection import BrokerConnection

EVENTS_TOPIC = "booking-events"
DLQ_TOPIC = "booking-events.dlq"
TABLE_HEADERS = ("Booking", "Status", "Reason", "Owner", "Start (UTC)")
# The malformed message: cut off mid-way, as a crashed producer might leave it.
MALFORMED_KEY = b"demo-1099"
MALFORMED_VALUE = b'{"specversion": "1.0", "id": "demo-1099-1", "type": "booking.sched'
# The worker's settings beyond the broker, the emulator and its data dir (the rest: the
# production defaults): bookings that ended over 10 minutes ago become Completed,
# checked every second.
DEMO_SETTINGS = {"completion_grace": "600", "completion_check_interval": "1"}

Event = dict[str, Any]

ADA = owner("u-ada", "Ada Lovelace", "005Dn000001AdaLAAS")
GRACE = owner("u-grace", "Grace Hopper", "005Dn000002GrcHAAS")
ALAN = owner("u-alan", "Alan Turing", "005Dn000003AlnTAAS")
OWNERS = {str(person["salesforce_user_id"]): str(person["name"]) for person in (ADA, GRACE, ALAN)}

SALES = page("p-sales", "Sales demos")
ONBOARDING = page("p-onboarding", "Onboarding")
# The partner team syncs calendars with another tool: no Activity Event from us.
PARTNER_DESK = page("p-partner", "Partner desk", create=False)


@dataclass(frozen=True)
class DemoBooking:
    booking_id: str
    story: str
    expected_status: str | None  # None: no Salesforce Event must exist
    events: list[Event]


def _slot(now: datetime, days: float, hour: int) -> datetime:
    return (now + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def _past(now: datetime, hours: int) -> datetime:
    """A slot on the hour that started `hours` to `hours`+1 hours ago."""
    return (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)


def demo_bookings(now: datetime | None = None) -> list[DemoBooking]:
    """The lifecycles the demo produces; times are relative to now."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    bookings: list[DemoBooking] = []

    def booking(
        booking_id: str,
        story: str,
        expected: str | None,
        *,
        title: str,
        who: str,
        start: datetime,
        minutes: int = 30,
        on_page: Event = SALES,
        by: Event = ADA,
        later: Callable[[datetime], list[tuple[str, Event]]] = lambda _: [],
        first: str = "booking.scheduled",
    ) -> None:
        made = now - timedelta(hours=6)
        details = booking_data(
            booking_id,
            start=start,
            end=start + timedelta(minutes=minutes),
            page=on_page,
            owner=by,
            customer=customer(who),
            title=f"{title} with {who}",
            location="Zoom",
        )
        events = [envelope(first, booking_id, 1, made, details)]
        end = start + timedelta(minutes=minutes)
        for sequence, (kind, data) in enumerate(later(start), start=2):
            # Changes to a future booking happen before now; an outcome after its end.
            at = (
                made + timedelta(minutes=20 * sequence) if end > now else end + timedelta(minutes=5)
            )
            events.append(envelope(kind, booking_id, sequence, at, data))
        bookings.append(DemoBooking(booking_id, story, expected, events))

    booking(
        "demo-1001",
        "reassigned from Ada to Grace on a connected page",
        "Scheduled (Reassigned by User)",
        title="Discovery call",
        who="Edsger Dijkstra",
        start=_slot(now, 2, 9),
        later=lambda _: [("booking.reassigned", reassigned_data(GRACE, SALES, "admin"))],
    )
    booking(
        "demo-1002",
        "canceled by the customer, with a reason",
        "Canceled",
        title="Product demo",
        who="Barbara Liskov",
        start=_slot(now, 3, 14),
        by=GRACE,
        later=lambda _: [("booking.canceled", canceled_data("Sick", "customer"))],
    )
    booking(
        "demo-1003",
        "rescheduled by the owner",
        "Rescheduled",
        title="Quarterly review",
        who="Donald Knuth",
        start=_slot(now, 4, 10),
        minutes=60,
        by=ALAN,
        later=lambda start: [
            (
                "booking.rescheduled",
                rescheduled_data(
                    start + timedelta(days=1),
                    start + timedelta(days=1, minutes=60),
                    "Travel delay",
                    "owner",
                ),
            )
        ],
    )
    booking(
        "demo-1004",
        "the customer did not show up",
        "No-show",
        title="Onboarding session",
        who="Frances Allen",
        start=_past(now, 3),
        on_page=ONBOARDING,
        later=lambda _: [("booking.no_show", {"by": "owner"})],
    )
    booking(
        "demo-1005",
        "ended hours ago: the completion timer marks it Completed",
        "Completed",
        title="Support",
        who="Ken Thompson",
        start=_past(now, 2),
        on_page=ONBOARDING,
        by=GRACE,
    )
    booking(
        "demo-1006",
        "canceled, then given a new slot (the reschedule-request flow)",
        "Rescheduled",
        title="Product demo",
        who="Radia Perlman",
        start=_slot(now, 5, 16),
        later=lambda start: [
            ("booking.canceled", canceled_data("Double booked", "owner")),
            (
                "booking.rescheduled",
                rescheduled_data(
                    start + timedelta(days=2),
                    start + timedelta(days=2, minutes=30),
                    "New slot",
                    "customer",
                ),
            ),
        ],
    )
    booking(
        "demo-1007",
        "on a page with Activity Events off: no Event",
        None,
        title="Partner sync",
        who="Tim Berners-Lee",
        start=_slot(now, 2, 11),
        on_page=PARTNER_DESK,
        by=ALAN,
    )
    booking(
        "demo-1008",
        "requested, awaiting the owner's approval: no Event yet",
        None,
        title="Discovery call",
        who="Grace Murray",
        start=_slot(now, 6, 13),
        first="booking.requested",
    )
    return bookings


def demo_records(bookings: list[DemoBooking]) -> list[tuple[bytes, bytes]]:
    """Kafka records: every event, one at-least-once re-send, and the malformed message."""
    records = [
        (str(event["subject"]).encode(), orjson.dumps(event))
        for booking in bookings
        for event in booking.events
    ]
    records.append(records[0])  # a duplicate re-send: the fold counts it once
    records.append((MALFORMED_KEY, MALFORMED_VALUE))
    return records


def salesforce_time(value: Any) -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("+0000", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def event_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for record in sorted(records, key=lambda r: str(r.get("Booking_Id__c"))):
        owner_id = str(record.get("OwnerId") or "")
        rows.append(
            [
                str(record.get("Booking_Id__c")),
                str(record.get("Event_Status__c") or "-"),
                str(record.get("Cancel_Reschedule_Reason__c") or "-"),
                OWNERS.get(owner_id, owner_id or "-"),
                salesforce_time(record.get("StartDateTime")),
            ]
        )
    return rows


def mismatches(bookings: list[DemoBooking], records: list[dict[str, Any]]) -> list[str]:
    """What still differs between Salesforce and the expected statuses."""
    found: dict[str, list[str]] = {}
    for record in records:
        found.setdefault(str(record.get("Booking_Id__c")), []).append(
            str(record.get("Event_Status__c"))
        )
    problems = []
    for booking in bookings:
        statuses = found.pop(booking.booking_id, [])
        want = [] if booking.expected_status is None else [booking.expected_status]
        if statuses != want:
            problems.append(f"{booking.booking_id}: want {want}, Salesforce has {statuses}")
    problems.extend(f"{booking}: unexpected Event" for booking in found)
    return problems


async def dead_letter_count(broker: BrokerConnection) -> int:
    async with consumer(broker) as client:
        partitions = await partitions_of(client, DLQ_TOPIC, timeout_s=1.0)
        begin, end = await offsets(broker, client, partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)


async def send_records(broker: BrokerConnection, records: list[tuple[bytes, bytes]]) -> None:
    async with producer(broker) as client:
        for key, value in records:
            await client.send_and_wait(EVENTS_TOPIC, value=value, key=key)


def seed_demo_users(emulator: SalesforceEmulator) -> None:
    """The demo's owners as Users of the org (their ids are not in the default seed)."""
    users = [
        {"Id": user_id, "Username": f"{user_id}@demo.example", "LastName": name}
        for user_id, name in OWNERS.items()
    ]
    emulator.insert("User", *users)


def demo_settings(broker: BrokerConnection) -> dict[str, str]:
    """The demo worker's settings by name: `DEMO_SETTINGS` and the profile of the broker
    it runs on (the default profile is production's, Apache Kafka)."""
    return {**DEMO_SETTINGS, "broker_profile": broker.profile.name}


def _say(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:5.1f}s] {message}", flush=True)


def _clear(directory: Path) -> None:
    """Remove what an earlier demo left here (only our own files)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("salesforce-emulator", "worker-1"):
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in ("worker-1.log", "broker.log"):
        (directory / name).unlink(missing_ok=True)


async def run_demo(directory: Path, timeout_s: float = 60.0, keep_running: bool = False) -> int:
    started = time.monotonic()
    _clear(directory)
    bookings = demo_bookings()
    broker = EmbeddedBroker(log_path=directory / "broker.log")
    emulator: SalesforceEmulator | None = None
    worker: WorkerProcess | None = None
    try:
        await asyncio.to_thread(broker.start)
        _say(f"embedded Kafka broker (Tansu) on {broker.bootstrap}", started)
        emulator = await asyncio.to_thread(SalesforceEmulator, directory / "salesforce-emulator")
        _say(f"Salesforce emulator on {emulator.url}", started)
        # A strict org: the owners the demo's bookings name must be its active Users.
        await asyncio.to_thread(seed_demo_users, emulator)
        env = worker_environment(
            broker, emulator, directory / "worker-1", demo_settings(broker.connection)
        )
        worker = WorkerProcess(env, directory / "worker-1.log")
        _say(f"starting a worker (web {worker.web_url}); this takes a few seconds", started)
        await asyncio.to_thread(worker.start)
        try:
            await asyncio.to_thread(worker.wait_ready, 60.0)
        except RuntimeError as exc:
            raise UserError(str(exc)) from None
        records = demo_records(bookings)
        _say(
            f"worker ready; producing {len(records)} records for {len(bookings)} bookings "
            "(one re-sent, one malformed)",
            started,
        )
        await send_records(broker.connection, records)
        _say("waiting for Salesforce to catch up", started)
        deadline = time.monotonic() + timeout_s
        problems = ["not checked yet"]
        dead = 0
        while time.monotonic() < deadline:
            found = await asyncio.to_thread(emulator.records, "Event")
            problems = mismatches(bookings, found)
            dead = await dead_letter_count(broker.connection)
            if not problems and dead >= 1:
                break
            await asyncio.sleep(0.5)
        else:
            raise UserError(
                f"Salesforce did not catch up in {timeout_s:.0f}s ({'; '.join(problems[:3])}); "
                f"see {directory}/worker-1.log"
            )
        _say("Salesforce is in step with the bookings", started)
        print()
        print("Salesforce Events (sObject Event, one per booking, upserted by Booking_Id__c):")
        print(format_table(TABLE_HEADERS, event_rows(found)))
        print()
        for booking in bookings:
            print(f"  {booking.booking_id}  {booking.story}")
        calls = await asyncio.to_thread(emulator.api_calls)
        print()
        print(f"Dead-lettered to {DLQ_TOPIC}: {dead} (the malformed message)")
        print(f"Salesforce API calls spent: {calls['total']}")
        if keep_running:
            print()
            print("Still running; try, in another shell:")
            print(f"  activity-sync status demo-1001 --worker {worker.web_url}")
            print(f"  curl {worker.web_url}/metrics/")
            print("Press Ctrl-C to stop.")
            await until_signal()
    finally:
        _say("shutting down", started)
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        if emulator is not None:
            await asyncio.to_thread(emulator.close)
        await asyncio.to_thread(broker.stop)
        _say(f"done; logs in {directory}", started)
    return 0
