"""`activity-sync status` against what Salesforce holds (issue 21): a real worker, the
emulator and the command as an operator runs it.

The issue: after a restart, reused booking ids made Salesforce refuse writes as older
(`projections_skipped{why="salesforce-newer"}`), yet `status` printed `Sync: in sync
(Salesforce has version 2)` while Salesforce held version 3 with another title: it
reported what the worker had handled, never what Salesforce held.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from devkit.broker import free_port
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess
from streams.salesforce.fence import VERSION_FIELD
from tests.factories import rescheduled, scheduled
from tests.fixtures import Workers, event_records, produce, run_cli, wait_for_salesforce, wait_until

pytestmark = pytest.mark.integration

BOOKING = "b-1042"


def report(worker: WorkerProcess) -> dict[str, Any]:
    answer = requests.get(f"{worker.web_url}/bookings/{BOOKING}/", timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def refusals(emulator: SalesforceEmulator) -> list[tuple[int, int]]:
    """(Salesforce's version, the refused one) of each write the fence refused."""
    return [(w["old"], w["new"]) for w in emulator.writes() if w["outcome"] == "refused"]


def status(worker: WorkerProcess, *args: str, **env: str) -> str:
    json_flag = ("--json",) if "--json" in args else ()
    rest = [a for a in args if a != "--json"]
    result = run_cli(
        *json_flag, "status", BOOKING, "--worker", worker.web_url, *rest, env={**worker.env, **env}
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # Salesforce's answers are the output's, once
    return result.stdout


async def written_at_version_2(workers: Workers, emulator: SalesforceEmulator) -> WorkerProcess:
    """A worker that wrote BOOKING at version 2; then the Event's id in Salesforce."""
    events = [scheduled(), rescheduled(2, reason="Sick", by="customer")]
    worker = workers.start()
    await produce(workers.broker, "booking-events", event_records(events))
    wait_for_salesforce(emulator, expected_events(events))
    assert "Sync: in sync (Salesforce has version 2)" in status(worker)
    return worker


async def test_status_names_salesforces_newer_version_and_the_fence(
    workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    worker = await written_at_version_2(workers, salesforce_emulator)
    (event,) = salesforce_emulator.records()
    # Another run with the same booking id wrote its version 3 (another title) since.
    salesforce_emulator.update("Event", event["Id"], **{VERSION_FIELD: 3, "Subject": "Reused"})
    # The worker writes its version 2 again (as after a restart): the fence refuses it.
    replayed = run_cli("replay", "--bookings", BOOKING, env=worker.env)
    assert replayed.returncode == 0, replayed.stderr
    wait_until(lambda: refusals(salesforce_emulator) == [(3, 2)], 60, "the fence's refusal")
    wait_until(lambda: report(worker)["sync"]["fenced"], 60, "the sink to record the refusal")

    text = status(worker)
    flat = [" ".join(line.split()) for line in text.splitlines()]
    assert "in sync" not in text
    assert "Projection_Version__c 3 (projection: 2)" in flat
    assert any(line.startswith("Subject Reused (projection: ") for line in flat), text
    assert (
        "Sync: Salesforce is newer: it has version 3, the worker's projection is version 2" in flat
    )
    prose = " ".join(text.split())
    assert "The version fence refused the worker's write of version 2" in prose
    assert f"the booking id {BOOKING} was reused" in prose
    assert f"activity-sync replay --bookings {BOOKING}" in prose

    as_json = json.loads(status(worker, "--json"))
    assert as_json["sync"]["fenced"] is True
    assert as_json["salesforce"]["sync"] == "salesforce-newer"
    assert as_json["salesforce"]["event"][VERSION_FIELD] == 3
    assert as_json["salesforce"]["event"]["Subject"] == "Reused"

    offline = status(worker, "--no-salesforce")
    assert "Salesforce: not checked (--no-salesforce)" in offline.splitlines()
    assert "Sync: refused by the version fence" in offline
    assert "in sync" not in offline


async def test_status_says_when_salesforce_lost_the_event_or_was_not_checked(
    workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    worker = await written_at_version_2(workers, salesforce_emulator)
    (event,) = salesforce_emulator.records()
    salesforce_emulator.delete("Event", event["Id"])

    text = status(worker)
    assert f"Salesforce: no Event with Booking_Id__c {BOOKING}" in text.splitlines()
    assert (
        f"Sync: Salesforce has no Event with Booking_Id__c {BOOKING}, though the worker "
        "wrote version 2" in text
    )
    assert "Deleted in Salesforce?" in text

    unconfigured = status(worker, ACTIVITY_SYNC_SALESFORCE_CLIENT_ID="")
    assert "Salesforce: not checked (no Salesforce org configured" in unconfigured
    assert "Sync: written by the worker (version 2, the latest); not confirmed" in unconfigured

    nobody = f"https://127.0.0.1:{free_port()}"
    unreachable = status(
        worker, "--timeout", "2", ACTIVITY_SYNC_SALESFORCE_LOGIN_URL=nobody
    ).splitlines()
    (line,) = [line for line in unreachable if line.startswith("Salesforce: not checked")]
    assert f"Salesforce at {nobody}" in line
    assert "Sync: written by the worker (version 2, the latest); not confirmed" in unreachable
