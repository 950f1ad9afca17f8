"""A deployed worker: booking data behind the bearer token (forwarding between workers
included), an honest /health/, and a refused Salesforce login as one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import worker_environment
from streams.commands.generate import generate_events
from tests.fixtures import (
    Workers,
    assert_one_line_error,
    event_records,
    produce,
    run_cli,
    wait_for_salesforce,
    wait_until,
)

pytestmark = pytest.mark.integration

TOKEN = "test-token-7f3a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_wrong_salesforce_credentials_stop_the_worker_with_one_line(
    broker: BrokerNamespace, salesforce_emulator: SalesforceEmulator, tmp_path: Path
) -> None:
    env = worker_environment(broker, salesforce_emulator, tmp_path / "w")
    env["ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET"] = "not-the-secret"
    # A refused login is final: the worker must not retry it until a startup timeout
    # this long (it would then outlive run_cli's timeout and fail the test).
    env["ACTIVITY_SYNC_STARTUP_TIMEOUT"] = "3600"
    result = run_cli("worker", "-l", "info", env=env, timeout=240)
    assert_one_line_error(result, "refused the credentials", "invalid_client")
    assert "not-the-secret" not in result.stdout + result.stderr
    assert "Ready" not in result.stdout + result.stderr


def test_booking_data_needs_the_token_and_health_tells_the_truth(
    broker: BrokerNamespace, salesforce_emulator: SalesforceEmulator, workers: Workers
) -> None:
    events = list(generate_events(12, seed=11, duplicate_rate=0.0))
    expected = expected_events(events)
    first = workers.start("worker-1", web_token=TOKEN, wait=False)
    second = workers.start("worker-2", web_token=TOKEN, wait=False)
    first.wait_ready()
    second.wait_ready()
    asyncio.run(produce(broker, "booking-events", event_records(events)))
    wait_for_salesforce(salesforce_emulator, expected)

    base = first.web_url
    booking = sorted(expected)[0]
    # Without the token: nothing that holds booking data or table internals.
    for path in (f"/bookings/{booking}/", "/router/", "/table/", f"/router/bookings/{booking}/"):
        refused = requests.get(base + path, timeout=5)
        assert refused.status_code == 401, path
        assert booking not in refused.text
        wrong = requests.get(base + path, headers={"Authorization": "Bearer x"}, timeout=5)
        assert wrong.status_code == 401, path
    # Open, without the token; a missing trailing slash redirects.
    assert requests.get(f"{base}/metrics/", timeout=5).status_code == 200
    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    assert health.json()["broker"] == "ok"

    # With it, from either worker: Faust forwards to the owner, header included.
    owners = {
        requests.get(f"{base}/router/bookings/{b}/", headers=BEARER, timeout=5).json()
        for b in expected
    }
    # Every booking has one owner: asking the other worker for it is a forwarded request.
    assert owners <= {first.web_url, second.web_url}, owners
    for worker in (first, second):
        for b in expected:
            found = requests.get(f"{worker.web_url}/bookings/{b}/", headers=BEARER, timeout=5)
            assert found.status_code == 200, (worker.web_url, b, found.text)
            assert found.json()["booking_id"] == b

    assert first.env["ACTIVITY_SYNC_WEB_TOKEN"] == TOKEN  # `status` reads the same setting
    shown = run_cli("status", booking, "--worker", second.web_url, env=first.env)
    assert shown.returncode == 0, shown.stderr
    assert f"Booking {booking}" in shown.stdout
    no_token = {**first.env, "ACTIVITY_SYNC_WEB_TOKEN": ""}
    without = run_cli("status", booking, "--worker", second.web_url, env=no_token)
    assert_one_line_error(without, "ACTIVITY_SYNC_WEB_TOKEN")

    # Salesforce down: writes fail, /health/ says so; back up: ok again. One log line
    # per failed attempt, never a traceback.
    salesforce_emulator.down(for_s=12)
    more = list(generate_events(3, seed=12, duplicate_rate=0.0, id_prefix="late-"))
    asyncio.run(produce(broker, "booking-events", event_records(more)))

    def unhealthy() -> bool:
        answers = [requests.get(f"{w.web_url}/health/", timeout=5) for w in (first, second)]
        return any(a.status_code == 503 for a in answers)

    wait_until(unhealthy, 20, "an unhealthy /health/ during the outage")
    sick = [requests.get(f"{w.web_url}/health/", timeout=5) for w in (first, second)]
    assert any(a.json()["salesforce"].startswith("failing") for a in sick if a.status_code == 503)
    wait_for_salesforce(salesforce_emulator, expected_events(events + more), timeout=60)

    def healthy() -> bool:
        return all(
            requests.get(f"{w.web_url}/health/", timeout=5).status_code == 200
            for w in (first, second)
        )

    wait_until(healthy, 20, "a healthy /health/ after the outage")
    for worker in (first, second):
        assert "Traceback" not in worker.log_text()
        assert TOKEN not in worker.log_text()
