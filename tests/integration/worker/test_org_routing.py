"""The sink routes by org (issue 23; streams/worker/pipeline/org_sinks.py), against
Apache Kafka, the emulator's named orgs over HTTPS and worker processes:

- a booking of an org that is not registered waits (never in the default org) and is
  written in its org within seconds of `orgs add`, with no new event and no replay;
- one org over its API limit never holds another org's Events, and `orgs list --worker`
  counts the bookings waiting for it;
- a rotated client secret takes effect with `orgs add` again, without a restart;
- a reassignment to another org's page moves the Event: full in the new org, the old
  org's Event marked; a move that an earlier event, arriving later, undoes is withdrawn
  (the Event deleted from the org the booking never lived in).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import OrgAdmin, SalesforceEmulator
from devkit.workers import WorkerProcess
from streams.commands.generate import page
from tests.factories import canceled, reassigned, scheduled
from tests.fixtures import Workers, event_records, produce, register_org, run_cli, wait_until

pytestmark = pytest.mark.integration

WAITING = re.compile(r'activity_sync_projections_skipped_total\{why="org-not-served"\} (\S+)')
ACME_PAGE = {**page("p-acme", "Acme sales"), "salesforce_org": "acme"}
GLOBEX_PAGE = {**page("p-globex", "Globex sales"), "salesforce_org": "globex"}
ACME_SECRET = "ACTIVITY_SYNC_TEST_ACME_SECRET"
GLOBEX_SECRET = "ACTIVITY_SYNC_TEST_GLOBEX_SECRET"


def events_in(org: OrgAdmin) -> dict[str, dict[str, Any]]:
    return {r["Booking_Id__c"]: r for r in org.records() if r.get("Booking_Id__c")}


def waiting(worker: WorkerProcess) -> float:
    found = WAITING.search(requests.get(f"{worker.web_url}/metrics/", timeout=5).text)
    return float(found.group(1)) if found else 0.0


def secret_settings(**orgs: OrgAdmin) -> dict[str, str]:
    """Worker settings that put each org's client secret in the variable its registry
    record names (ACTIVITY_SYNC_TEST_<ORG>_SECRET)."""
    return {f"test_{name}_secret": org.client_secret for name, org in orgs.items()}


async def test_a_booking_waits_for_its_org_and_is_written_there_once_it_is_added(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    acme = salesforce_emulator.add_org("acme")
    # A reconcile interval far past the test: only the registry change re-sends it.
    worker = workers.start(reconcile_interval="600", **secret_settings(acme=acme))
    events = [scheduled(booking_id="b-acme", page=ACME_PAGE), scheduled(booking_id="b-default")]
    await produce(broker, "booking-events", event_records(events))

    wait_until(lambda: waiting(worker) >= 1, 60, "the acme projection to wait")
    wait_until(lambda: "b-default" in events_in(salesforce_emulator), 60, "the default Event")
    assert "not written yet: 1 for org acme" in worker.log_text()
    assert "b-acme" not in events_in(salesforce_emulator)
    assert events_in(acme) == {}

    register_org(broker, acme, "acme", ACME_SECRET)
    wait_until(lambda: "b-acme" in events_in(acme), 60, "b-acme in org acme")
    assert "b-acme" not in events_in(salesforce_emulator), "never in the default org"
    assert events_in(acme)["b-acme"]["Projection_Version__c"] == 1
    assert "b-default" not in events_in(acme)


async def test_one_org_over_its_api_limit_never_holds_another_orgs_events(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    acme = salesforce_emulator.add_org("acme")
    globex = salesforce_emulator.add_org("globex")
    globex.set_daily_limit(0)  # every call answers REQUEST_LIMIT_EXCEEDED
    worker = workers.start(**secret_settings(acme=acme, globex=globex))
    register_org(broker, acme, "acme", ACME_SECRET)
    register_org(broker, globex, "globex", GLOBEX_SECRET)

    first = [scheduled(booking_id=f"b-globex-{i}", page=GLOBEX_PAGE) for i in range(3)]
    await produce(broker, "booking-events", event_records(first))
    wait_until(
        lambda: "org globex: Salesforce API limit reached" in worker.log_text(),
        60,
        "globex to hit its limit",
    )
    # globex keeps answering REQUEST_LIMIT_EXCEEDED; acme's and the default org's
    # bookings are written meanwhile, each in its own org.
    later = [scheduled(booking_id=f"b-acme-{i}", page=ACME_PAGE) for i in range(3)]
    later += [scheduled(booking_id="b-default")]
    await produce(broker, "booking-events", event_records(later))
    wait_until(lambda: len(events_in(acme)) == 3, 60, "acme's Events")
    wait_until(lambda: "b-default" in events_in(salesforce_emulator), 60, "the default Event")
    assert events_in(globex) == {}
    assert set(events_in(salesforce_emulator)) == {"b-default"}
    # `orgs list --worker` counts what waits for globex (parked by the reconcile timer).

    def listed() -> str:
        result = run_cli("orgs", "list", "--worker", worker.web_url, env=worker.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    wait_until(lambda: "waiting=3" in listed(), 60, "orgs list to count globex's waiting")
    lines = listed().splitlines()
    assert next(line for line in lines if line.startswith("globex ")).endswith("waiting=3")
    assert next(line for line in lines if line.startswith("acme ")).endswith("waiting=0")

    globex.set_daily_limit(100_000)  # the next day: globex catches up, nothing lost
    wait_until(lambda: len(events_in(globex)) == 3, 90, "globex's Events after its limit")
    assert set(events_in(globex)) == {f"b-globex-{i}" for i in range(3)}


async def test_a_rotated_client_secret_takes_effect_without_a_restart(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    acme = salesforce_emulator.add_org("acme")
    new_secret = "rotated-" + acme.client_secret[::-1]
    worker = workers.start(test_acme_secret_2=new_secret, **secret_settings(acme=acme))
    register_org(broker, acme, "acme", ACME_SECRET)
    await produce(
        broker, "booking-events", event_records([scheduled(booking_id="b-1", page=ACME_PAGE)])
    )
    wait_until(lambda: "b-1" in events_in(acme), 60, "b-1 in acme")

    # The admin rotates the secret in Salesforce and ends the sessions: the old one is
    # refused, so b-2 waits...
    acme.rotate_client_secret(new_secret)
    acme.expire_tokens()
    await produce(
        broker, "booking-events", event_records([scheduled(booking_id="b-2", page=ACME_PAGE)])
    )
    wait_until(lambda: "invalid_client" in worker.log_text(), 60, "the old secret refused")
    assert "b-2" not in events_in(acme)
    # ...until the registry names the new one; the same worker picks it up.
    register_org(broker, acme, "acme", ACME_SECRET + "_2")
    wait_until(lambda: "b-2" in events_in(acme), 60, "b-2 in acme with the new secret")
    assert worker.process.poll() is None, "no restart"


async def test_a_reassignment_to_another_orgs_page_moves_the_event(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    acme = salesforce_emulator.add_org("acme")
    workers.start(**secret_settings(acme=acme))
    register_org(broker, acme, "acme", ACME_SECRET)
    await produce(broker, "booking-events", event_records([scheduled(booking_id="b-1")]))
    wait_until(lambda: "b-1" in events_in(salesforce_emulator), 60, "b-1 in the default org")
    owner_before = events_in(salesforce_emulator)["b-1"]["OwnerId"]

    await produce(
        broker,
        "booking-events",
        event_records([reassigned(2, booking_id="b-1", page=ACME_PAGE)]),
    )
    wait_until(lambda: "b-1" in events_in(acme), 60, "b-1 in acme")
    wait_until(
        lambda: "(Reassigned by User)" in str(events_in(salesforce_emulator)["b-1"]),
        60,
        "the default org's Event marked",
    )
    moved = events_in(acme)["b-1"]  # the full Event, as a reassignment writes it
    assert moved["Event_Status__c"] == "Scheduled (Reassigned by User)"
    assert moved["Projection_Version__c"] == 2
    assert not str(moved["Cancel_Reschedule_Reason__c"] or "").startswith("Moved to another")
    left = events_in(salesforce_emulator)["b-1"]
    assert left["Event_Status__c"] == "Scheduled (Reassigned by User)"
    reason = left["Cancel_Reschedule_Reason__c"]
    assert reason == "Moved to another Salesforce org (page Acme sales)"
    assert left["Projection_Version__c"] == 2
    assert left["OwnerId"] == owner_before, "the old org's Event keeps its owner"

    # A move that an earlier event undoes: b-2's reassignment to acme (seq 3) is
    # written before its cancellation (seq 2) arrives, which makes it rejected; acme's
    # Event is withdrawn, the default org's is Canceled.
    await produce(
        broker,
        "booking-events",
        event_records(
            [
                scheduled(booking_id="b-2"),
                reassigned(3, booking_id="b-2", page=ACME_PAGE),
            ]
        ),
    )
    wait_until(lambda: "b-2" in events_in(acme), 60, "b-2 in acme, for a moment")
    await produce(broker, "booking-events", event_records([canceled(2, booking_id="b-2")]))
    wait_until(lambda: "b-2" not in events_in(acme), 60, "b-2 withdrawn from acme")
    wait_until(
        lambda: events_in(salesforce_emulator)["b-2"]["Event_Status__c"] == "Canceled",
        60,
        "b-2 Canceled in the default org",
    )
    assert events_in(salesforce_emulator)["b-2"]["Projection_Version__c"] == 3
    assert "b-1" in events_in(acme), "b-1 stays in acme"
