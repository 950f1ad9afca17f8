"""A booking of another Salesforce org (`page.salesforce_org`, issue 23) never lands in
the default org: until the sink routes by org, its projection waits unwritten, counted
and logged, while the default org's bookings are written as before."""

from __future__ import annotations

import re

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from streams.commands.generate import page
from tests.factories import scheduled
from tests.fixtures import Workers, event_records, produce, wait_until

pytestmark = pytest.mark.integration

WAITING = re.compile(r'activity_sync_projections_skipped_total\{why="org-not-served"\} (\S+)')


async def test_a_booking_of_another_org_waits_instead_of_landing_in_the_default_org(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    worker = workers.start()
    acme_page = {**page("p-acme", "Acme sales"), "salesforce_org": "acme"}
    events = [
        scheduled(booking_id="b-acme", page=acme_page),
        scheduled(booking_id="b-default"),
    ]
    await produce(broker, "booking-events", event_records(events))

    def waiting() -> float:
        text = requests.get(f"{worker.web_url}/metrics/", timeout=5).text
        found = WAITING.search(text)
        return float(found.group(1)) if found else 0.0

    wait_until(lambda: waiting() >= 1, 60, "the acme projection to wait")
    wait_until(
        lambda: "b-default" in {r["Booking_Id__c"] for r in salesforce_emulator.records()},
        60,
        "the default org's Event",
    )
    assert "b-acme" not in {r["Booking_Id__c"] for r in salesforce_emulator.records()}
    assert "not written yet: 1 for org acme" in worker.log_text()
