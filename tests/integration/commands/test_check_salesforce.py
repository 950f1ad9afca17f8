"""`activity-sync check-salesforce` and the worker's org check at start, against the
emulator: an org without a field is named, the worker refuses to start with the same
line, and once the field is deployed the worker starts and every booking arrives."""

from __future__ import annotations

import asyncio

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import worker_environment
from streams.commands.generate import generate_events
from tests.fixtures import Workers, event_records, produce, run_cli, wait_for_salesforce

pytestmark = pytest.mark.integration

MISSING = "Event.Event_Status__c: missing"


def _env(emulator: SalesforceEmulator) -> dict[str, str]:
    return {
        "ACTIVITY_SYNC_SALESFORCE_LOGIN_URL": emulator.url,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID": emulator.client_id,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET": emulator.client_secret,
        "ACTIVITY_SYNC_SALESFORCE_CA_FILE": emulator.ca_file,
    }


def test_a_ready_org_passes_every_check(salesforce_emulator: SalesforceEmulator) -> None:
    result = run_cli("check-salesforce", env=_env(salesforce_emulator))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("ok") for line in lines), lines
    text = "\n".join(lines)
    for name in ("API version 62.0", "Booking_Id__c", "Event_Status__c", "daily API requests"):
        assert name in text


async def test_a_missing_field_stops_the_check_and_the_worker_until_it_is_deployed(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.admin("DELETE", "fields/Event/Event_Status__c")
    result = run_cli("check-salesforce", env=_env(salesforce_emulator))
    assert result.returncode == 1
    (failed,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert MISSING in failed
    assert "sf project deploy start" in failed

    env = worker_environment(broker, salesforce_emulator, workers.root / "refused")
    refused = run_cli("worker", "-l", "info", env=env, timeout=90)
    assert refused.returncode == 1
    assert f"activity-sync worker: {failed}" in refused.stderr.splitlines()
    assert "Traceback" not in refused.stderr
    assert salesforce_emulator.records("Event") == []

    salesforce_emulator.admin("POST", "deploy")
    events = list(generate_events(40, seed=3, duplicate_rate=0.0))
    expected = expected_events(events)
    worker = workers.start()
    answer = await asyncio.to_thread(requests.get, f"{worker.web_url}/health/", timeout=10)
    health = answer.json()
    assert health["salesforce_org"].startswith("ok"), health
    await produce(broker, "booking-events", event_records(events))
    wait_for_salesforce(salesforce_emulator, expected)
