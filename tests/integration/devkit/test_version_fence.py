"""The version fence in the emulator: Projection_Version__c and its validation rule come
from the product's Salesforce DX project (salesforce/), and the emulator answers a
lower version as a real org with that metadata answers it; every write of the field
is in the write log (/__admin/writes)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from devkit.salesforce_emulator import metadata
from streams.salesforce import SalesforceClient
from streams.salesforce.fence import RULE_MESSAGE, VERSION_FIELD
from tests.fixtures import SalesforceEmulator
from tests.integration.devkit.test_salesforce_emulator import connect, event, upsert_collection

pytestmark = pytest.mark.integration

RULE_FILE = (
    "force-app/main/default/objects/Event/validationRules/"
    "Projection_Version_Never_Decreases.validationRule-meta.xml"
)


def versioned(booking_id: str, version: int, **fields: Any) -> dict[str, Any]:
    return event(booking_id, **{VERSION_FIELD: version}, **fields)


def test_a_lower_version_is_refused_per_record_and_the_event_keeps_the_newer_values(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    upsert_collection(sf, [versioned("b-1", 3, Event_Status__c="Canceled")])
    results = upsert_collection(
        sf,
        [
            versioned("b-1", 1, Event_Status__c="Scheduled"),  # older: refused
            versioned("b-2", 1),  # a new Event: PRIORVALUE is its own value
        ],
    )
    assert results[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": RULE_MESSAGE,
                "fields": [VERSION_FIELD],
            }
        ],
    }
    assert results[1]["success"] is True
    # The same version again (a replay) and a higher one pass.
    assert [
        r["success"]
        for r in upsert_collection(sf, [versioned("b-1", 3, Event_Status__c="Canceled")])
    ] == [True]
    by_id = {r["Booking_Id__c"]: r for r in salesforce_emulator.records()}
    assert by_id["b-1"]["Event_Status__c"] == "Canceled"
    assert by_id["b-1"][VERSION_FIELD] == 3
    writes = [
        (w["external_id"], w["old"], w["new"], w["outcome"]) for w in salesforce_emulator.writes()
    ]
    assert writes == [
        ("b-1", None, 3, "written"),
        ("b-1", 3, 1, "refused"),
        ("b-2", None, 1, "written"),
        ("b-1", 3, 3, "written"),
    ]
    assert (
        salesforce_emulator.writes(after=int(salesforce_emulator.writes()[1]["seq"]))[0][
            "external_id"
        ]
        == "b-2"
    )


def test_the_single_record_upsert_answers_the_refusal_too(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    sf.Event.upsert("Booking_Id__c/b-9", {**versioned("b-9", 4), "Booking_Id__c": "b-9"})
    answer = upsert_collection(sf, [versioned("b-9", 2)])
    assert answer[0]["errors"][0]["message"] == RULE_MESSAGE


async def test_the_client_reports_the_refusal_as_fenced(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    async with SalesforceClient(salesforce_emulator.settings()) as client:
        first = await client.upsert_events([versioned("b-1", 5)])
        second = await client.upsert_events([versioned("b-1", 4), versioned("b-2", 1)])
    assert [o.status for o in first] == ["created"]
    assert [o.status for o in second] == ["fenced", "created"]


def test_the_fence_comes_from_the_metadata_file(tmp_path: Path) -> None:
    """The same emulator with a changed copy of salesforce/: the rule in the file, not
    in the emulator's code, decides."""
    project = Path(shutil.copytree(metadata.DEFAULT_PROJECT, tmp_path / "salesforce"))
    rule = project / RULE_FILE
    rule.write_text(rule.read_text().replace("<active>true</active>", "<active>false</active>"))
    emulator = SalesforceEmulator(tmp_path / "emulator", "--metadata", str(project))
    try:
        sf = connect(emulator)
        upsert_collection(sf, [versioned("b-1", 3)])
        assert upsert_collection(sf, [versioned("b-1", 1)])[0]["success"] is True
        assert [w["outcome"] for w in emulator.writes()] == ["written", "written"]
    finally:
        emulator.close()


def test_a_formula_the_emulator_cannot_evaluate_stops_it_from_starting(tmp_path: Path) -> None:
    project = Path(shutil.copytree(metadata.DEFAULT_PROJECT, tmp_path / "salesforce"))
    rule = project / RULE_FILE
    rule.write_text(rule.read_text().replace("PRIORVALUE(", "ISCHANGED("))
    with pytest.raises(RuntimeError, match="cannot evaluate the formula"):
        SalesforceEmulator(tmp_path / "emulator", "--metadata", str(project))
