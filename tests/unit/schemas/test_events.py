"""The event contract: what `parse_event` accepts, and how it rejects everything else."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from schemas import (
    MAX_EVENT_BYTES,
    ORG_NAME_PATTERN,
    BookingCanceled,
    BookingRescheduled,
    BookingScheduled,
    EventRejected,
    parse_event,
)
from schemas.export import JSON_DIR, schema_files
from tests import factories as f


def _rejected(wire: Any, key: bytes | None = None) -> EventRejected:
    body = wire if isinstance(wire, bytes) else orjson.dumps(wire)
    with pytest.raises(EventRejected) as caught:
        parse_event(body, key)
    return caught.value


def _without(wire: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(wire)
    target = changed
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return changed


def _with(wire: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(wire)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    "wire",
    [
        f.scheduled(),
        f.requested(),
        f.rescheduled(2),
        f.reassigned(3),
        f.canceled(4, reason=None, by="owner"),
        f.completed(5),
        f.no_show(6, by="owner"),
        f.scheduled(related={"type": "Case", "id": f.sfid("500")}),
    ],
    ids=lambda wire: wire["type"],
)
def test_every_type_round_trips_through_to_json(wire: dict[str, Any]) -> None:
    event = parse_event(f.raw(wire), wire["subject"].encode())
    assert event.type == wire["type"]
    assert parse_event(event.to_json()) == event


def test_a_producer_builds_serializes_and_validates_in_three_lines() -> None:
    # The lines of docs/event-contract.md.
    event = BookingCanceled(
        id="b-1042-4",
        source="booking-pages/acme",
        subject="b-1042",
        sequence=4,
        time=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        data={"reason": "Sick", "by": "customer"},
    )
    value = event.to_json()
    assert parse_event(value, b"b-1042") == event
    assert orjson.loads(value)["specversion"] == "1.0"


def test_construction_validates_too() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        BookingRescheduled(
            id="x",
            source="s",
            subject="b",
            sequence=1,
            time=datetime(2026, 1, 1, tzinfo=UTC),
            data={
                "start": datetime(2026, 1, 2, tzinfo=UTC),
                "end": datetime(2026, 1, 1, tzinfo=UTC),
                "by": "owner",
            },
        )


def test_cloudevents_extension_attributes_are_accepted_and_dropped() -> None:
    wire = {**f.canceled(2), "traceparent": "00-abc-def-01", "partitionkey": "b-1042"}
    event = parse_event(f.raw(wire))
    assert event == parse_event(f.raw(f.canceled(2)))
    assert b"traceparent" not in event.to_json()


def test_times_keep_their_instant_whatever_the_offset() -> None:
    plus_two = datetime(2026, 11, 24, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    event = parse_event(f.raw(f.scheduled(start=plus_two)))
    assert isinstance(event, BookingScheduled)
    assert event.data.start == f.START


@pytest.mark.parametrize(
    ("wire", "code", "field"),
    [
        (b"\xff\xfe{not utf-8", "not-utf8", None),
        (b'{"id": "\xff"}', "not-utf8", None),
        (b"{definitely not json", "not-json", None),
        (b"[1, 2]", "schema", None),
        (_without(f.canceled(2), "id"), "schema", "id"),
        (_without(f.canceled(2), "time"), "schema", "time"),
        (_without(f.canceled(2), "subject"), "schema", "subject"),
        (_without(f.canceled(2), "source"), "schema", "source"),
        (_without(f.canceled(2), "sequence"), "schema", "sequence"),
        (_without(f.canceled(2), "specversion"), "schema", "specversion"),
        (_with(f.canceled(2), "0.3", "specversion"), "schema", "specversion"),
        (_without(f.canceled(2), "type"), "schema", "type"),
        (_with(f.canceled(2), "booking.archived", "type"), "unknown-type", "type"),
        (_with(f.canceled(2), "2026-11-24T09:30:00", "time"), "schema", "time"),
        (_with(f.scheduled(), "2026-11-24T09:30:00", "data", "start"), "schema", "data.start"),
        (_with(f.canceled(2), "3", "sequence"), "schema", "sequence"),
        (_with(f.canceled(2), -1, "sequence"), "schema", "sequence"),
        (_with(f.canceled(2), "", "id"), "schema", "id"),
        (_with(f.canceled(2), "somebody", "data", "by"), "schema", "data.by"),
        (_with(f.canceled(2), "Sick", "data", "reasn"), "schema", "data.reasn"),
        (_without(f.scheduled(), "data", "page"), "schema", "data.page"),
        (_with(f.scheduled(), "yes", "data", "page", "salesforce_connected"), "schema", None),
        (_with(f.scheduled(), "not-an-id", "data", "owner", "salesforce_user_id"), "schema", None),
        (
            _with(f.scheduled(), {"type": "Account", "id": f.sfid("001")}, "data", "related"),
            "schema",
            None,
        ),
        (_with(f.scheduled(), "b-9", "data", "booking_id"), "schema", None),
    ],
)
def test_bad_input_is_rejected_with_a_code_and_the_field(
    wire: Any, code: str, field: str | None
) -> None:
    rejected = _rejected(wire)
    assert rejected.code == code
    if field is not None:
        assert rejected.field == field
        assert field in rejected.message
    assert str(rejected) == rejected.message


def test_end_before_start_names_the_event_data() -> None:
    wire = f.rescheduled(2, start=f.START, duration=timedelta(minutes=-30))
    rejected = _rejected(wire)
    assert (rejected.code, rejected.field) == ("schema", "data")
    assert "end must be after start" in rejected.message
    equal = f.scheduled(duration=timedelta(0))
    assert "end must be after start" in _rejected(equal).message


def test_naive_time_message_says_a_timezone_is_needed() -> None:
    rejected = _rejected(_with(f.canceled(2), "2026-11-24T09:30:00", "time"))
    assert "timezone" in rejected.message


def test_oversized_message_is_rejected_before_parsing() -> None:
    wire = f.scheduled(description="x" * MAX_EVENT_BYTES)
    rejected = _rejected(wire)
    assert (rejected.code, rejected.field) == ("too-large", None)
    assert str(MAX_EVENT_BYTES) in rejected.message


def test_a_message_of_exactly_the_limit_is_accepted() -> None:
    wire = f.scheduled(description="")
    padding = MAX_EVENT_BYTES - len(f.raw(wire))
    wire = f.scheduled(description="d" * padding)
    assert len(f.raw(wire)) == MAX_EVENT_BYTES
    assert parse_event(f.raw(wire)).subject == f.BOOKING_ID


def test_key_must_equal_subject() -> None:
    rejected = _rejected(f.canceled(2), key=b"b-9999")
    assert (rejected.code, rejected.field) == ("key-mismatch", "subject")
    assert "b-9999" in rejected.message
    assert parse_event(f.raw(f.canceled(2)), b"b-1042").subject == "b-1042"


def test_long_text_is_accepted_by_the_schema() -> None:
    # Cutting to Salesforce limits is the projection's job, not a reason to reject.
    event = parse_event(f.raw(f.scheduled(title="t" * 5000)))
    assert isinstance(event, BookingScheduled)
    assert len(event.data.title) == 5000


def test_exported_json_schema_files_match_the_models() -> None:
    expected = schema_files()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in JSON_DIR.glob("*.json")}
    assert on_disk == expected, "schemas/json/ is stale: run `make schemas`"


def test_exported_union_schema_requires_the_tag_and_version() -> None:
    union = orjson.loads(schema_files()["booking-event.schema.json"])
    tags = set(union["discriminator"]["mapping"])
    assert tags == {
        "booking.scheduled",
        "booking.requested",
        "booking.rescheduled",
        "booking.reassigned",
        "booking.canceled",
        "booking.completed",
        "booking.no_show",
    }
    for definition in union["$defs"].values():
        if "sequence" in definition.get("properties", {}):
            assert {"specversion", "type", "id", "time", "subject"} <= set(definition["required"])


# --- page.salesforce_org: which org the booking's Event lives in. -------------------

ORG_PAGE = {**f.SALES_PAGE, "salesforce_org": "acme-eu-2"}


@pytest.mark.parametrize(
    "wire",
    [
        f.scheduled(page=ORG_PAGE),
        f.requested(page=ORG_PAGE),
        f.reassigned(2, page=ORG_PAGE),
    ],
    ids=lambda wire: wire["type"],
)
def test_a_page_may_name_its_salesforce_org(wire: dict[str, Any]) -> None:
    event = parse_event(f.raw(wire), wire["subject"].encode())
    assert event.data.page.salesforce_org == "acme-eu-2"  # type: ignore[union-attr]
    assert parse_event(event.to_json()) == event
    assert b'"salesforce_org":"acme-eu-2"' in event.to_json()


@pytest.mark.parametrize("org", ["a", "0", "org-b", "a" + "-" * 39, "x" * 40])
def test_org_names_the_registry_accepts(org: str) -> None:
    wire = f.reassigned(2, page={**f.SALES_PAGE, "salesforce_org": org})
    assert parse_event(f.raw(wire)).data.page.salesforce_org == org  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "org",
    ["", "Acme", "-acme", "acme_eu", "acme eu", "acme.eu", "x" * 41, "acme\n", "ünï", 7, True],
)
@pytest.mark.parametrize("builder", [f.scheduled, f.requested, lambda **kw: f.reassigned(2, **kw)])
def test_a_bad_org_name_is_rejected_naming_the_field(org: Any, builder: Any) -> None:
    rejected = _rejected(builder(page={**f.SALES_PAGE, "salesforce_org": org}))
    assert (rejected.code, rejected.field) == ("schema", "data.page.salesforce_org")
    assert "data.page.salesforce_org" in rejected.message


def test_an_absent_or_null_org_is_the_default_org_and_is_not_written() -> None:
    absent = parse_event(f.raw(f.scheduled()))
    null = parse_event(f.raw(f.scheduled(page={**f.SALES_PAGE, "salesforce_org": None})))
    assert absent == null
    assert absent.data.page.salesforce_org is None  # type: ignore[union-attr]
    assert b"salesforce_org" not in absent.to_json()
    dumped = absent.__pydantic_serializer__.to_python(absent, mode="json")
    assert "salesforce_org" not in dumped["data"]["page"]


def test_the_exported_schema_gives_the_page_its_org() -> None:
    for name in ("booking.scheduled", "booking.requested", "booking.reassigned"):
        exported = orjson.loads(schema_files()[f"{name}.schema.json"])
        org = exported["$defs"]["Page"]["properties"]["salesforce_org"]
        assert {"pattern": ORG_NAME_PATTERN, "type": "string"} in org["anyOf"]
        assert "salesforce_org" not in exported["$defs"]["Page"].get("required", [])
