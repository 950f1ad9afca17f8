"""`activity-sync check-salesforce` and the worker's org check at start, against the
emulator: an org without a field is named, the worker refuses to start with the same
line, and once the field is deployed the worker starts and every booking arrives. An
integration user without read on Case fails the check; one without Modify All Data gets
a `warn` line that fails nothing, neither the check nor a worker's start."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import worker_environment
from streams.commands.generate import generate_events
from tests.fixtures import Workers, event_records, produce, run_cli, wait_for_salesforce

pytestmark = pytest.mark.integration

MISSING = "Event.Event_Status__c: missing"
PERMISSION_SET = Path(
    "force-app/main/default/permissionsets/Booking_Activity_Sync.permissionset-meta.xml"
)
MODIFY_ALL_WARNING = "warn user permission Modify All Data: not granted; "


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
    for line in (
        "ok   Contact: readable",
        "ok   Lead: readable",
        "ok   Case: readable",
        "ok   user permission Edit Events: granted",
        "ok   user permission Modify All Data: granted (Events of every owner)",
    ):
        assert line in lines


def test_without_modify_all_data_the_check_warns_and_passes(tmp_path: Path) -> None:
    emulator = SalesforceEmulator(tmp_path / "emulator", "--without-modify-all-data")
    try:
        result = run_cli("check-salesforce", env=_env(emulator))
    finally:
        emulator.close()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    (warned,) = [line for line in lines if not line.startswith("ok")]
    assert warned.startswith(MODIFY_ALL_WARNING), warned
    for words in ("owned by other users", "sharing", "Modify All Data"):
        assert words in warned.removeprefix(MODIFY_ALL_WARNING)


def test_a_permission_set_without_case_read_fails_the_check(tmp_path: Path) -> None:
    """Issue 21, item 12: the permission set granted no read on Case, the object an
    Event's WhatId names; the emulator, reading the same set, hides Case as an org
    would, and the check names it."""
    project = Path(shutil.copytree(metadata.DEFAULT_PROJECT, tmp_path / "salesforce"))
    path = project / PERMISSION_SET
    path.write_text(path.read_text().replace("<object>Case</object>", "<object>Account</object>"))
    emulator = SalesforceEmulator(tmp_path / "emulator", "--metadata", str(project))
    try:
        result = run_cli("check-salesforce", env=_env(emulator))
    finally:
        emulator.close()
    assert result.returncode == 1, result.stdout + result.stderr
    (failed,) = [line for line in result.stdout.splitlines() if not line.startswith("ok")]
    assert failed.startswith("FAIL Case: this user may not read it (describe: 404 NOT_FOUND); ")
    assert "permission set Booking_Activity_Sync" in failed


async def test_a_warning_does_not_stop_a_worker(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.admin("POST", "user-permissions", {"ModifyAllData": False})
    worker = workers.start()
    answer = await asyncio.to_thread(requests.get, f"{worker.web_url}/health/", timeout=10)
    health = answer.json()
    assert health["salesforce_org"].endswith("checks passed at start, 1 with a warning)"), health
    assert any(line.startswith(MODIFY_ALL_WARNING) for line in health["salesforce_org_checks"])
    log = worker.log_path.read_text()
    assert f"activity-sync worker: {MODIFY_ALL_WARNING}" in log


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
