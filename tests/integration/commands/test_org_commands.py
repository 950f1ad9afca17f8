"""The operator commands by org (issue 23, "Operators see orgs"), against Apache Kafka,
the emulator's named orgs and a worker: `status` shows a booking's org and reads its
Event from that org (never from the default org), `check-salesforce --org` checks one
registered org, `replay --org` re-sends only that org's bookings, with the org header,
and `dlq list|redrive --org` cover only the dead letters that name that org."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from aiokafka import AIOKafkaProducer

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.workers import WorkerProcess
from streams.core.projection_record import FORCE, SALESFORCE_ORG
from streams.worker.pipeline.dead_letter import INTERNAL_ERROR, DeadLetter
from tests.factories import SALES_PAGE, raw, scheduled
from tests.fixtures import (
    Workers,
    assert_one_line_error,
    event_records,
    produce,
    read_topic,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.integration

ACME_PAGE = {**SALES_PAGE, "salesforce_org": "acme"}
GLOBEX_PAGE = {**SALES_PAGE, "salesforce_org": "globex"}
SECRET_VAR = "ACME_SF_SECRET"


def folded(worker: WorkerProcess, booking: str) -> bool:
    return requests.get(f"{worker.web_url}/bookings/{booking}/", timeout=10).status_code == 200


def status(worker: WorkerProcess, booking: str, *json_flag: str, **env: str) -> str:
    result = run_cli(
        *json_flag, "status", booking, "--worker", worker.web_url, env={**worker.env, **env}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def an_event(booking: str, version: int) -> dict[str, Any]:
    return {
        "Booking_Id__c": booking,
        "Subject": "Product demo",
        "Projection_Version__c": version,
        "StartDateTime": "2026-11-24T09:30:00Z",
        "EndDateTime": "2026-11-24T10:00:00Z",
    }


async def test_status_reads_the_event_from_the_booking_s_org_or_says_why_not(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    worker = workers.start()
    await produce(
        broker, "booking-events", event_records([scheduled(booking_id="b-acme", page=ACME_PAGE)])
    )
    wait_until(lambda: folded(worker, "b-acme"), 60, "the worker to fold b-acme")
    # The default org holds an Event with that booking id: status must not take it for
    # acme's (as it did when it read every booking from the default org).
    (in_default,) = salesforce_emulator.insert("Event", an_event("b-acme", 1))

    unregistered = status(worker, "b-acme").splitlines()
    assert "Org: acme" in unregistered
    (line,) = [line for line in unregistered if line.startswith("Salesforce")]
    assert line.startswith(
        "Salesforce: not checked (org acme is not registered: activity-sync orgs add acme "
    ), line

    acme = salesforce_emulator.add_org("acme")
    added = run_cli(
        "orgs",
        "add",
        "acme",
        "--login-url",
        acme.url,
        "--client-id",
        acme.client_id,
        "--client-secret",
        f"env:{SECRET_VAR}",
        "--ca-file",
        acme.ca_file,
        env=broker.env,
    )
    assert added.returncode == 0, added.stderr
    # The sink does not write acme's bookings yet: acme has no Event, whatever the
    # default org holds.
    secret = {SECRET_VAR: acme.client_secret}
    missing = status(worker, "b-acme", **secret)
    assert "Salesforce: no Event with Booking_Id__c b-acme in org acme" in missing.splitlines()
    assert "Salesforce (Event" not in missing
    assert in_default not in missing
    unresolved = status(worker, "b-acme").splitlines()
    assert f"Salesforce: not checked (org acme: env:{SECRET_VAR}: the variable is not set)" in (
        unresolved
    )

    (in_acme,) = acme.insert("Event", an_event("b-acme", 1))
    held = status(worker, "b-acme", **secret)
    assert f"Salesforce (org acme, Event {in_acme}, " in held
    as_json = json.loads(status(worker, "b-acme", "--json", **secret))
    assert as_json["org"] == {"name": "acme", "default": False, "left": [], "withdrawn": []}
    assert as_json["salesforce"]["org"] == "acme"
    assert as_json["salesforce"]["checked"] is True
    assert as_json["salesforce"]["event"]["Id"] == in_acme

    # check-salesforce --org: the preflight against that org, as `orgs check` runs it.
    checked = run_cli("check-salesforce", "--org", "acme", env={**worker.env, **secret})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[0].startswith("acme: ok "), checked.stdout
    assert_one_line_error(
        run_cli("check-salesforce", "--org", "globex", env=worker.env), "globex", "not registered"
    )


async def test_replay_by_org_re_sends_only_that_org_s_bookings_with_the_org_header(
    broker: BrokerNamespace, workers: Workers
) -> None:
    workers.start()
    events = [
        scheduled(booking_id="b-acme", page=ACME_PAGE),
        scheduled(booking_id="b-globex", page=GLOBEX_PAGE),
        scheduled(booking_id="b-default"),
    ]
    await produce(broker, "booking-events", event_records(events))
    chosen = ("--bookings", "b-acme", "--bookings", "b-globex", "--bookings", "b-default")

    acme = run_cli("replay", *chosen, "--org", "acme", env=broker.env)
    assert acme.returncode == 0, acme.stderr
    assert "replayed 1 booking (forced upsert)" in acme.stdout
    assert "2 left out (not in org acme)" in acme.stdout

    replayed = await forced_projections(broker)
    assert replayed == [(b"b-acme", b"acme")]

    default = run_cli("replay", "--since", "1h", "--org", "default", env=broker.env)
    assert default.returncode == 0, default.stderr
    assert "replayed 1 booking (forced upsert)" in default.stdout
    replayed = await forced_projections(broker)
    assert replayed == [(b"b-acme", b"acme"), (b"b-default", None)]
    assert_one_line_error(run_cli("replay", "--since", "1h", "--org", "Acme", env=broker.env))


async def forced_projections(broker: BrokerNamespace) -> list[tuple[bytes, bytes | None]]:
    """The replayed (forced) records of activity-projections, by key: (key, the org
    header). `replay` waits for the broker's acks, so they are all there when it exits."""
    found = []
    for record in await read_topic(broker, "activity-projections"):
        headers = dict(record.headers or ())
        if headers.get(FORCE) == b"1":
            found.append((record.key, headers.get(SALESFORCE_ORG)))
    return sorted(found)


async def send_dead_letters(broker: BrokerNamespace, letters: list[tuple[bytes, bytes]]) -> None:
    """Dead letters as a worker writes them for a fault of its own (internal-error), from
    booking-events 0:0, 0:1, ..."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for offset, (key, value) in enumerate(letters):
            error = DeadLetter(INTERNAL_ERROR, "a bug", broker.topic("booking-events"), 0, offset)
            await producer.send_and_wait(
                broker.topic("booking-events.dlq"), value, key=key, headers=error.headers()
            )
    finally:
        await producer.stop()


async def test_dlq_lists_and_redrives_one_org_only(
    broker: BrokerNamespace, workers: Workers
) -> None:
    workers.start()  # its topics
    await send_dead_letters(
        broker,
        [
            (b"b-acme", raw(scheduled(booking_id="b-acme", page=ACME_PAGE))),
            (b"b-default", raw(scheduled(booking_id="b-default"))),
            (b"b-junk", b"{not json"),
        ],
    )

    def listed(*org: str) -> dict[str, Any]:
        result = run_cli("--json", "dlq", "list", "--topic", "events", *org, env=broker.env)
        assert result.returncode == 0, result.stderr
        (found,) = json.loads(result.stdout)
        assert isinstance(found, dict)
        return found

    acme = listed("--org", "acme")
    assert (acme["waiting"], acme["org"], acme["org_not_said"]) == (1, "acme", 1)
    assert listed("--org", "default")["waiting"] == 1
    assert listed()["waiting"] == 3

    redrive = run_cli("dlq", "redrive", "--topic", "events", "--org", "acme", env=broker.env)
    assert redrive.returncode == 0, redrive.stderr
    assert "redrove 1 dead letter; re-sent 1 event" in redrive.stdout
    assert "1 more dead letter whose org the record does not say" in redrive.stdout
    resent = [r.key for r in await read_topic(broker, "booking-events") if r.key == b"b-acme"]
    assert resent == [b"b-acme"]
    assert listed("--org", "acme")["waiting"] == 0
    assert listed()["waiting"] == 2  # the default org's and the one that names no org
