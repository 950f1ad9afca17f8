"""`activity-sync status` output (streams/commands/status.py): times in UTC, WhoId
explained, and the Sync line judged against the Event Salesforce holds (issue 21: it said
"in sync" while Salesforce held a newer version with another title)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from streams.commands.status import (
    WHO_ID_AT_WRITE,
    SalesforceCheck,
    check_salesforce,
    differences,
    org_connection,
    org_json,
    render_report,
    salesforce_json,
    sync_state,
    utc,
)
from streams.core.booking_report import booking_report
from streams.core.projection import PRESETS
from streams.core.synced import encode_synced
from streams.salesforce.org_registry import OrgConnection, OrgRegistry
from streams.salesforce.settings import SalesforceSettings
from tests.factories import canceled, fold_dicts, reassigned, requested, rescheduled, scheduled

DEFAULT = PRESETS["default"]
NOT_ASKED = SalesforceCheck.skipped("--no-salesforce")


def report(**view: Any) -> dict[str, Any]:
    return {
        "booking_id": "b-1",
        "version": 2,
        "events": [
            {
                "sequence": 1,
                "time": "2026-11-24T18:30:00+09:00",
                "type": "booking.scheduled",
                "source": "s",
                "id": "e-1",
            }
        ],
        "view": {"status": "Scheduled", "scheduled": True, **view},
        "projection": {"version": 2, "fields": {"Event_Status__c": "Scheduled", "WhoId": None}},
        "sync": {"synced_version": 2, "rejected": False, "in_sync": True},
    }


def test_utc() -> None:
    assert utc("2026-11-25T09:30:00+09:00") == "2026-11-25T00:30:00Z"
    assert utc("2026-11-25T00:30:00+00:00") == "2026-11-25T00:30:00Z"
    assert utc("2026-11-25T00:30:00.000+0000") == "2026-11-25T00:30:00Z"  # Salesforce's form
    assert utc("not a time") == "not a time"


def test_start_and_end_are_both_shown_in_utc() -> None:
    text = render_report(
        report(start="2026-11-25T09:30:00+09:00", end="2026-11-25T01:00:00+00:00"), NOT_ASKED
    )
    lines = [line.split() for line in text.splitlines()]
    assert ["start", "2026-11-25T00:30:00Z"] in lines
    assert ["end", "2026-11-25T01:00:00Z"] in lines
    assert "2026-11-24T09:30:00Z" in text  # the event's time too


def test_who_id_says_it_is_looked_up_when_written() -> None:
    text = render_report(report(), NOT_ASKED)
    assert f"WhoId            - ({WHO_ID_AT_WRITE})" in text


# The Sync line against Salesforce ---------------------------------------------------------


def booking(synced: int | None = None) -> dict[str, Any]:
    """The report of a rescheduled booking (version 2) as the worker serves it; `synced`
    defaults to version 2 written."""
    state = fold_dicts([scheduled(), rescheduled(2, reason="Sick", by="customer")])
    assert state.version == 2
    return booking_report(state, state.version if synced is None else synced, DEFAULT)


def held(report: dict[str, Any], **changes: Any) -> SalesforceCheck:
    """Salesforce holding the report's projection as Salesforce returns it (a number as
    3.0, datetimes with milliseconds and +0000), then `changes`."""
    fields = dict(report["projection"]["fields"])
    event: dict[str, Any] = {
        "Id": "00U000000000001AAA",
        "LastModifiedDate": "2026-11-24T09:31:02.000+0000",
        **{name: fields[name] for name in ("Event_Status__c", "Subject")},
        "Cancel_Reschedule_Reason__c": fields["Cancel_Reschedule_Reason__c"],
        "Projection_Version__c": float(fields["Projection_Version__c"]),
        "StartDateTime": str(fields["StartDateTime"]).replace("Z", ".000+0000"),
        "EndDateTime": str(fields["EndDateTime"]).replace("Z", ".000+0000"),
        "OwnerId": fields["OwnerId"],
    }
    event.update(changes)
    return SalesforceCheck(event=event)


@dataclass(frozen=True)
class Case:
    name: str
    report: dict[str, Any]
    salesforce: SalesforceCheck
    kind: str
    line: str  # the Sync line starts so
    says: tuple[str, ...] = ()  # and the Sync section names these


def _cases() -> list[Case]:
    written = booking()
    fenced = booking(encode_synced(2, fenced=True))
    never = booking(0)
    behind = booking(1)
    rejected = booking(encode_synced(2, rejected=True))
    nothing = booking_report(fold_dicts([requested()]), 0, DEFAULT)
    return [
        Case(
            "the issue: the fence refused version 2, Salesforce holds 3 with another title",
            fenced,
            held(fenced, Projection_Version__c=3.0, Subject="Another title"),
            "salesforce-newer",
            "Salesforce is newer: it has version 3, the worker's projection is version 2",
            (
                "The version fence refused the worker's write of version 2",
                "version 3 now, last modified 2026-11-24T09:31:02Z",
                "the booking id b-1042 was reused",
                "another deployment writes the same Booking_Id__c",
                "--id-prefix",
                "activity-sync replay --bookings b-1042",
            ),
        ),
        Case(
            "a worker without the fence flag: written, then Salesforce got a newer version",
            written,
            held(written, Projection_Version__c=3.0),
            "salesforce-newer",
            "Salesforce is newer: it has version 3",
            ("Salesforce got version 3 after it", "refuses the worker's writes until"),
        ),
        Case(
            "not written yet and Salesforce already newer",
            never,
            held(never, Projection_Version__c=5.0),
            "salesforce-newer",
            "Salesforce is newer: it has version 5",
            ("The version fence refuses the worker's version 2",),
        ),
        Case(
            "in sync",
            written,
            held(written),
            "in-sync",
            "in sync (Salesforce has version 2)",
        ),
        Case(
            "same version, another title and status",
            written,
            held(written, Subject="Edited by hand", Event_Status__c="Canceled"),
            "differs",
            "out of sync: Salesforce has version 2, but its Event_Status__c, Subject differ",
            ("activity-sync replay --bookings b-1042",),
        ),
        Case(
            "no Event in Salesforce, though the worker wrote it",
            written,
            SalesforceCheck(event=None),
            "missing",
            "Salesforce has no Event with Booking_Id__c b-1042, though the worker wrote version 2",
            ("Deleted in Salesforce?", "activity-sync replay --bookings b-1042"),
        ),
        Case(
            "no Event yet, nothing written yet",
            never,
            SalesforceCheck(event=None),
            "pending",
            "pending (Salesforce has no Event yet, latest is version 2)",
        ),
        Case(
            "Salesforce one version behind, the sink not there yet",
            behind,
            held(behind, Projection_Version__c=1.0),
            "pending",
            "pending (Salesforce has version 1, latest is 2)",
        ),
        Case(
            "Salesforce older than what the worker wrote",
            written,
            held(written, Projection_Version__c=1.0),
            "behind",
            "out of sync: Salesforce has version 1, older than the version 2",
            ("activity-sync replay --bookings b-1042",),
        ),
        Case(
            "rejected, Salesforce has no Event",
            rejected,
            SalesforceCheck(event=None),
            "rejected",
            "rejected by Salesforce at version 2 (see activity-projections.dlq)",
        ),
        Case(
            "no Event wanted, none there",
            nothing,
            SalesforceCheck(event=None),
            "nothing-to-write",
            "nothing to write (Salesforce has no Event either)",
        ),
        Case(
            "no Event wanted, yet Salesforce has one under this id",
            nothing,
            SalesforceCheck(event={"Id": "00U1", "Projection_Version__c": 4.0}),
            "unexpected-event",
            "Salesforce has an Event with Booking_Id__c b-1042 (version 4)",
            ("same booking id",),
        ),
        Case(
            "not checked, written: claims no more than the worker knows",
            written,
            NOT_ASKED,
            "written",
            "written by the worker (version 2, the latest); not confirmed",
        ),
        Case(
            "not checked, fenced: still says the fence refused",
            fenced,
            SalesforceCheck.skipped("Salesforce at https://x: query: giving up"),
            "salesforce-newer",
            "refused by the version fence: Salesforce already had a newer version",
        ),
        Case(
            "not checked, pending",
            behind,
            NOT_ASKED,
            "pending",
            "pending (version 1 handled, latest is 2)",
        ),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_sync_line_compares_with_what_salesforce_holds(case: Case) -> None:
    state = sync_state(case.report, case.salesforce, DEFAULT)
    assert state.kind == case.kind
    assert state.line.startswith(case.line), state.line
    text = render_report(case.report, case.salesforce, DEFAULT)
    sync = text[text.index("\nSync: ") :]
    for words in case.says:
        assert words in " ".join(sync.split()), sync
    if case.kind != "in-sync":
        assert "in sync" not in text
    as_json = salesforce_json(case.report, case.salesforce, DEFAULT)
    json.dumps(as_json)
    assert as_json["sync"] == case.kind
    assert as_json["checked"] is case.salesforce.checked


def test_the_issue_salesforce_newer_is_shown_beside_the_projection() -> None:
    """`status b-000006` printed `Sync: in sync (Salesforce has version 2)` while
    Salesforce held version 3 with another title."""
    fenced = booking(encode_synced(2, fenced=True))
    assert fenced["sync"]["fenced"] is True
    text = render_report(fenced, held(fenced, Projection_Version__c=3.0, Subject="Other"), DEFAULT)
    title = fenced["projection"]["fields"]["Subject"]
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "Salesforce (Event 00U000000000001AAA, last modified 2026-11-24T09:31:02Z):" in lines
    assert "Projection_Version__c 3 (projection: 2)" in lines
    assert f"Subject Other (projection: {title})" in lines
    assert "Sync: Salesforce is newer: it has version 3, the worker's projection is version 2" in (
        lines
    )
    assert "in sync" not in text


def test_an_unchecked_salesforce_is_one_line_saying_why() -> None:
    why = "no Salesforce org configured: set ACTIVITY_SYNC_SALESFORCE_CLIENT_ID"
    text = render_report(booking(), SalesforceCheck.skipped(why), DEFAULT)
    assert f"Salesforce: not checked ({why})" in text.splitlines()
    assert "Salesforce (Event" not in text


def test_an_event_missing_in_salesforce_is_named() -> None:
    text = render_report(booking(), SalesforceCheck(event=None), DEFAULT)
    assert "Salesforce: no Event with Booking_Id__c b-1042" in text.splitlines()


def test_values_compare_as_salesforce_returns_them() -> None:
    written = booking()
    fields = written["projection"]["fields"]
    event = held(written).event
    assert event is not None
    assert differences(fields, event, DEFAULT) == []
    # A 15-character OwnerId is the same user as its 18-character form; another is not.
    assert len(str(fields["OwnerId"])) == 18
    assert differences(fields, {**event, "OwnerId": str(fields["OwnerId"])[:15]}, DEFAULT) == []
    other_owner = {**event, "OwnerId": "005000000000099AAA"}
    assert differences(fields, other_owner, DEFAULT) == ["OwnerId"]
    # The sink wrote another owner on purpose (an owner fallback): not a difference.
    assert differences(fields, other_owner, DEFAULT, ["owner-fallback"]) == []
    # No owner projected: Salesforce sets the integration user.
    assert differences({**fields, "OwnerId": None}, other_owner, DEFAULT) == []
    # Times compare as instants, whatever the offset.
    assert fields["StartDateTime"] == "2026-11-25T09:30:00Z"
    same = {**event, "StartDateTime": "2026-11-25T10:30:00.000+0100"}
    assert differences(fields, same, DEFAULT) == []
    moved = {**event, "StartDateTime": "2026-11-25T09:30:00.000+0100"}
    assert differences(fields, moved, DEFAULT) == ["StartDateTime"]
    blank_reason = {**fields, "Cancel_Reschedule_Reason__c": None}
    assert differences(blank_reason, {**event, "Cancel_Reschedule_Reason__c": ""}, DEFAULT) == []


def test_the_oncehub_fields_are_the_ones_compared() -> None:
    state = fold_dicts([scheduled()])
    oncehub = PRESETS["oncehub"]
    written = booking_report(state, state.version, oncehub)
    fields = written["projection"]["fields"]
    event = {
        "Projection_Version__c": 1.0,
        "ScheduleOnce__Event_status__c": "Canceled",
        **{name: fields[name] for name in ("Subject", "StartDateTime", "EndDateTime", "OwnerId")},
        "ScheduleOnce__Cancel_reschedule_reason__c": None,
    }
    state_line = sync_state(written, SalesforceCheck(event=event), oncehub)
    assert state_line.differences == ["ScheduleOnce__Event_status__c"]


def test_an_org_not_configured_is_not_checked_and_says_why() -> None:
    found = asyncio.run(
        check_salesforce(SalesforceSettings(client_id=""), DEFAULT, "b-1", timeout_s=1.0)
    )
    assert not found.checked
    assert found.not_checked is not None
    assert "no Salesforce org configured" in found.not_checked


# Orgs (issue 23) --------------------------------------------------------------------------

ACME_PAGE = {**scheduled()["data"]["page"], "salesforce_org": "acme"}


def moved_to_acme() -> dict[str, Any]:
    """A booking scheduled in the default org, then reassigned to a page of org acme."""
    state = fold_dicts([scheduled(), reassigned(2, page=ACME_PAGE)])
    return booking_report(state, 0, DEFAULT)


def test_the_booking_s_org_and_the_orgs_it_left_are_shown() -> None:
    lines = render_report(moved_to_acme(), NOT_ASKED).splitlines()
    assert "Org: acme" in lines
    (left,) = [line for line in lines if line.startswith("  left ")]
    assert left.startswith("  left default: its Event there says "), left
    assert "Org: default (ACTIVITY_SYNC_SALESFORCE_*)" in render_report(booking(), NOT_ASKED)
    assert org_json(moved_to_acme()) == {
        "name": "acme",
        "default": False,
        "left": ["default"],
        "withdrawn": [],
    }
    assert org_json(booking()) == {"name": "default", "default": True, "left": [], "withdrawn": []}


def test_an_org_the_event_is_withdrawn_from_is_shown() -> None:
    # The reassignment to acme (seq 3) is rejected once the cancellation (seq 2) is in.
    state = fold_dicts([scheduled(), reassigned(3, page=ACME_PAGE), canceled(2)])
    report = booking_report(state, 0, DEFAULT)
    lines = render_report(report, NOT_ASKED).splitlines()
    assert "Org: default (ACTIVITY_SYNC_SALESFORCE_*)" in lines
    assert "  withdrawn from acme: a move there was undone; no Event stays" in lines
    assert org_json(report)["withdrawn"] == ["acme"]


def test_an_event_missing_in_another_org_names_that_org() -> None:
    written = booking()
    missing = SalesforceCheck(event=None, org="acme")
    text = render_report(written, missing, DEFAULT)
    assert "Salesforce: no Event with Booking_Id__c b-1042 in org acme" in text.splitlines()
    assert "Salesforce has no Event with Booking_Id__c b-1042 in org acme, though" in text
    assert salesforce_json(written, missing, DEFAULT)["org"] == "acme"
    found = render_report(written, replace(held(written), org="acme"), DEFAULT)
    assert "Salesforce (org acme, Event 00U000000000001AAA, last modified " in found
    assert salesforce_json(written, held(written), DEFAULT)["org"] == "default"


def test_another_org_is_read_with_its_registered_connection_or_not_at_all() -> None:
    base = SalesforceSettings(login_url="https://default.example", client_id="default-id")
    acme = OrgConnection(
        name="acme",
        login_url="https://acme.example",
        client_id="acme-id",
        client_secret="env:ACME_SECRET",
        field_mapping="oncehub",
    )
    nothing = org_connection(OrgRegistry(), "acme", base)
    assert nothing == (
        "org acme is not registered: activity-sync orgs add acme --login-url URL "
        "--client-id ID --client-secret env:VARIABLE"
    )
    registered = OrgRegistry(orgs={"acme": acme})
    unresolved = org_connection(registered, "acme", base, environ={})
    assert unresolved == "org acme: env:ACME_SECRET: the variable is not set"
    found = org_connection(registered, "acme", base, environ={"ACME_SECRET": "s3cret"})
    assert not isinstance(found, str)
    settings, mapping = found
    assert (settings.login_url, settings.client_id) == ("https://acme.example", "acme-id")
    assert settings.client_secret.get_secret_value() == "s3cret"
    assert mapping == PRESETS["oncehub"]
