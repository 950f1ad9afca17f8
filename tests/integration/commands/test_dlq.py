"""`activity-sync dlq list|show|redrive` against a running pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from streams.commands.console import parse_table
from tests.factories import scheduled
from tests.fixtures import (
    Workers,
    assert_one_line_error,
    event_records,
    produce,
    read_topic,
    run_cli,
    wait_for_salesforce,
)

pytestmark = pytest.mark.integration


def dlq(broker: BrokerNamespace, *args: str) -> str:
    result = run_cli("dlq", *args, env=broker.env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_a_refused_record_is_listed_redriven_once_fixed_and_not_again(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    events = [scheduled(booking_id=f"r-{n}", title=f"Meeting {n}") for n in range(3)]
    salesforce_emulator.set_faults(
        validation_rules=[
            {"sobject": "Event", "field": "Subject", "value": "Meeting 1", "message": "No."}
        ]
    )
    workers.start()
    await produce(broker, "booking-events", event_records(events))
    dead = await read_topic(broker, "activity-projections.dlq", expect=1)
    assert [r.key for r in dead] == [b"r-1"]

    listed = dlq(broker, "list", "--topic", "projections")
    position = f"{dead[0].partition}:{dead[0].offset}"
    assert parse_table(listed) == [
        {
            "reason": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "count": "1",
            "oldest": parse_table(listed)[0]["oldest"],
            "positions": position,  # what `dlq show` takes
        }
    ]
    shown = dlq(broker, "show", position, "--topic", "projections")
    assert "header activity-sync.error.message: FIELD_CUSTOM_VALIDATION_EXCEPTION" in shown

    salesforce_emulator.set_faults(validation_rules=[])  # the admin fixed the rule
    assert "redrove 1 dead letter; replayed 1 booking (forced upsert)" in dlq(
        broker, "redrive", "--topic", "projections"
    )
    wait_for_salesforce(salesforce_emulator, expected_events(events))
    assert "nothing to redrive" in dlq(broker, "redrive", "--topic", "projections")
    assert "nothing waiting" in dlq(broker, "list", "--topic", "projections")


async def test_bad_events_are_redriven_from_a_corrected_file_and_stay_redriven(
    broker: BrokerNamespace,
    workers: Workers,
    salesforce_emulator: SalesforceEmulator,
    tmp_path: Path,
) -> None:
    good = scheduled(booking_id="fixed-1")
    broken = {k: v for k, v in good.items() if k != "time"}  # fails the schema
    workers.start()
    await produce(
        broker, "booking-events", [(b"fixed-1", orjson.dumps(broken)), (b"junk-1", b"{nope")]
    )
    await read_topic(broker, "booking-events.dlq", expect=2)
    as_json = run_cli("--json", "dlq", "list", "--topic", "events", env=broker.env)
    (listed,) = json.loads(as_json.stdout)
    positions = {reason["reason"]: reason["positions"] for reason in listed["reasons"]}
    assert sorted(positions) == ["not-json", "schema"]
    shown = dlq(broker, "show", positions["not-json"][0], "--topic", "events")
    assert "value (5 bytes): {nope" in shown

    # Sent again as they are, bad input would only be dead-lettered again.
    as_they_are = run_cli("dlq", "redrive", "--topic", "events", env=broker.env)
    assert_one_line_error(
        as_they_are, "2 dead letters not re-sent (not-json 1, schema 1)", "--file"
    )
    assert len(await read_topic(broker, "booking-events")) == 2

    fixed = tmp_path / "fixed.jsonl"
    fixed.write_bytes(orjson.dumps(good) + b"\n")
    out = dlq(broker, "redrive", "--topic", "events", "--reason", "schema", "--file", str(fixed))
    assert "redrove 1 dead letter; re-submitted 1 event from" in out
    wait_for_salesforce(salesforce_emulator, expected_events([good]))

    # A second consumer group (another app id; a new app version is one too) reads
    # booking-events from the start and dead-letters both bad records again: one is
    # still the one dead letter waiting, the redriven one stays redriven.
    workers.start("worker-2", app_id=broker.prefix + "second-group")
    await read_topic(broker, "booking-events.dlq", expect=5)  # 2, a marker, 2 copies
    again = dlq(broker, "list", "--topic", "events")
    assert f"{broker.topic('booking-events.dlq')}: 1 waiting (and 1 copy" in again, again
    assert [row["reason"] for row in parse_table(again)] == ["not-json"]
    nothing = dlq(
        broker, "redrive", "--topic", "events", "--reason", "schema", "--file", str(fixed)
    )
    assert "nothing to redrive" in nothing
