"""The emulated org's ids, datetimes and record rules."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.schema import (
    CONTACT,
    EVENT,
    RequestError,
    ValidationRule,
    deserialize,
    format_datetime,
    id_checksum,
    is_well_formed_id,
    make_id,
    parse_datetime,
    validate,
)


@pytest.mark.parametrize(
    ("id15", "suffix"),
    [
        # The example id Salesforce's documentation and forums use: 001D000000IqhSLIAZ.
        ("001D000000IqhSL", "IAZ"),
        ("005000000000001", "AAA"),
        # By hand: Q at 2 -> 4 = E; no capitals = A; A, C, E at 0, 2, 4 -> 21 = V.
        ("00Q5g00000AbCdE", "EAV"),
    ],
)
def test_id_checksum(id15: str, suffix: str) -> None:
    assert id_checksum(id15) == suffix


def test_make_id_is_18_chars_with_prefix_and_checksum() -> None:
    ids = {make_id("00U", n) for n in (1, 61, 62, 62**5)}
    assert len(ids) == 4
    for record_id in ids:
        assert len(record_id) == 18
        assert record_id.startswith("00U")
        assert record_id[15:] == id_checksum(record_id[:15])
        assert is_well_formed_id(record_id, ("00U",))
        assert not is_well_formed_id(record_id, ("005",))
    assert not is_well_formed_id("00U12", ("00U",))
    assert not is_well_formed_id("00U5g000000000-AAA", ("00U",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T09:30:00Z", "2026-11-24T09:30:00.000+0000"),
        ("2026-11-24T09:30:00.123Z", "2026-11-24T09:30:00.123+0000"),
        ("2026-11-24T10:30:00+01:00", "2026-11-24T09:30:00.000+0000"),
        ("2026-11-24T10:30:00.000+0100", "2026-11-24T09:30:00.000+0000"),
        ("2026-11-24T09:30:00", "2026-11-24T09:30:00.000+0000"),
    ],
)
def test_datetimes_normalise_to_salesforce_output(text: str, expected: str) -> None:
    parsed = parse_datetime(text)
    assert parsed is not None
    assert format_datetime(parsed) == expected


def test_unparseable_datetime() -> None:
    assert parse_datetime("tomorrow") is None


def _event(**fields: Any) -> dict[str, object]:
    body = {
        "Booking_Id__c": "b-1",
        "StartDateTime": "2026-11-24T09:30:00Z",
        "EndDateTime": "2026-11-24T10:00:00Z",
        **fields,
    }
    return deserialize(EVENT, body)


def test_field_names_are_case_insensitive_and_canonicalised() -> None:
    assert deserialize(CONTACT, {"lastname": "Ng", "EMAIL": "ng@x.io"}) == {
        "LastName": "Ng",
        "Email": "ng@x.io",
    }


@pytest.mark.parametrize("body", [{"Nope": 1}, {"StartDateTime": 5}, {"DurationInMinutes": 1.5}])
def test_request_level_errors(body: dict[str, object]) -> None:
    with pytest.raises(RequestError):
        deserialize(EVENT, body)


def test_update_keeps_unchanged_fields_and_recomputes_duration() -> None:
    existing, errors = validate(EVENT, _event(Subject="Intro"), None)
    assert errors == []
    assert existing["DurationInMinutes"] == 30
    changes = deserialize(EVENT, {"EndDateTime": "2026-11-24T11:00:00Z"})
    merged, errors = validate(EVENT, changes, existing)
    assert errors == []
    assert (merged["Subject"], merged["DurationInMinutes"]) == ("Intro", 90)


def test_event_longer_than_14_days_is_rejected() -> None:
    _, errors = validate(EVENT, _event(EndDateTime="2026-12-24T10:00:00Z"), None)
    assert [e.code for e in errors] == ["FIELD_INTEGRITY_EXCEPTION"]


def test_read_only_fields_cannot_be_written() -> None:
    _, errors = validate(EVENT, _event(CreatedDate="2026-01-01T00:00:00Z"), None)
    assert [(e.code, e.fields) for e in errors] == [
        ("INVALID_FIELD_FOR_INSERT_UPDATE", ("CreatedDate",))
    ]


def test_validation_rule_applies_to_its_sobject_only() -> None:
    rule = ValidationRule("Event", "Subject", "x", "No x")
    _, errors = validate(EVENT, _event(Subject="x"), None, rules=(rule,))
    assert [e.code for e in errors] == ["FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    _, errors = validate(CONTACT, {"LastName": "x", "Email": None}, None, rules=(rule,))
    assert errors == []


def test_fault_counters_count_down_then_stop() -> None:
    state = FaultState(Faults.model_validate({"http_503": {"next": 2, "only": ["query"]}}))
    assert not state.fire("http_503", "collections_upsert")
    assert [state.fire("http_503", "query") for _ in range(3)] == [True, True, False]


def test_fault_merge_keeps_other_faults() -> None:
    state = FaultState()
    state.merge({"http_500": {"next": 1}})
    state.merge({"latency_ms": 5})
    assert state.snapshot()["http_500"]["next"] == 1
    assert state.latency_s == 0.005
    state.merge({"down_for_s": 60})
    assert state.is_down()
    state.merge({"latency_ms": 0})
    assert state.is_down()
    state.merge({"down_for_s": 0})
    assert not state.is_down()
