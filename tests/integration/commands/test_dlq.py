"""`activity-sync dlq list|show|redrive` against a running pipeline."""

from __future__ import annotations

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
    assert parse_table(listed) == [
        {
            "reason": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "count": "1",
            "oldest": parse_table(listed)[0]["oldest"],
        }
    ]
    shown = dlq(broker, "show", f"{dead[0].partition}:{dead[0].offset}", "--topic", "projections")
    assert "header activity-sync.error.message: FIELD_CUSTOM_VALIDATION_EXCEPTION" in shown

    salesforce_emulator.set_faults(validation_rules=[])  # the admin fixed the rule
    assert "redrove 1 dead letters; replayed 1 bookings" in dlq(
        broker, "redrive", "--topic", "projections"
    )
    wait_for_salesforce(salesforce_emulator, expected_events(events))
    assert "nothing to redrive" in dlq(broker, "redrive", "--topic", "projections")
    assert "nothing waiting" in dlq(broker, "list", "--topic", "projections")


async def test_bad_events_are_redriven_from_a_corrected_file(
    broker: BrokerNamespace,
    workers: Workers,
    salesforce_emulator: SalesforceEmulator,
    tmp_path: Path,
) -> None:
    good = scheduled(booking_id="fixed-1")
    broken = {k: v for k, v in good.items() if k != "time"}  # fails the schema
    workers.start()
    await produce(broker, "booking-events", [(b"fixed-1", orjson.dumps(broken))])
    await read_topic(broker, "booking-events.dlq", expect=1)
    assert parse_table(dlq(broker, "list", "--topic", "events"))[0]["reason"] == "schema"

    fixed = tmp_path / "fixed.jsonl"
    fixed.write_bytes(orjson.dumps(good) + b"\n")
    out = dlq(broker, "redrive", "--topic", "events", "--reason", "schema", "--file", str(fixed))
    assert "redrove 1 dead letters; re-submitted 1 events" in out
    wait_for_salesforce(salesforce_emulator, expected_events([good]))
    assert "nothing to redrive" in dlq(broker, "redrive", "--topic", "events", "--file", str(fixed))
