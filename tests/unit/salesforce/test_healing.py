"""The healing rules (streams/salesforce/healing.py): which refusals heal, and how."""

from __future__ import annotations

from streams.salesforce.healing import heal_record, refused_references
from streams.salesforce.session import RecordError

INACTIVE = RecordError("INACTIVE_OWNER_OR_USER", "operation performed with inactive user")
GONE_WHO = RecordError("ENTITY_IS_DELETED", "entity is deleted", ("WhoId",))
BAD_WHAT = RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ("WhatId",))
RECORD = {"Booking_Id__c": "b-1", "OwnerId": "005A", "WhoId": "003A", "WhatId": "500A"}


def _heal(errors: list[RecordError], **given: str | None) -> tuple[dict[str, object], list[str]]:
    args = {"owner_on_event": None, "fallback_owner_id": None, "integration_user_id": "005I"}
    args.update(given)
    result = heal_record(
        RECORD,
        errors,
        who_found=given.get("who_found"),
        **{k: v for k, v in args.items() if k != "who_found"},
    )
    assert result is not None
    record, fallbacks = result
    return record, [f.kind for f in fallbacks]


def test_only_reference_errors_heal() -> None:
    assert refused_references([INACTIVE, GONE_WHO]) == {"OwnerId", "WhoId"}
    assert refused_references([RecordError("STRING_TOO_LONG", "x", ("Subject",))]) is None
    assert refused_references([INACTIVE, RecordError("REQUIRED_FIELD_MISSING", "x")]) is None


def test_owner_falls_back_in_order() -> None:
    assert _heal([INACTIVE], owner_on_event="005E")[0]["OwnerId"] == "005E"
    assert _heal([INACTIVE], fallback_owner_id="005F")[0]["OwnerId"] == "005F"
    record, kinds = _heal([INACTIVE])
    assert (record["OwnerId"], kinds) == ("005I", ["owner-integration-user"])


def test_who_is_resolved_again_or_dropped_and_what_dropped() -> None:
    record, kinds = _heal([GONE_WHO], who_found="003B")
    assert (record["WhoId"], kinds) == ("003B", ["who-resolved"])
    record, kinds = _heal([GONE_WHO, BAD_WHAT])
    assert (record["WhoId"], record["WhatId"], kinds) == (
        None,
        None,
        ["who-dropped", "what-dropped"],
    )
