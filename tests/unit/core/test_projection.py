"""The projection of docs/event-contract.md: Salesforce Event fields from a booking's state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streams.core.fold import BookingState
from streams.core.projection import (
    DESCRIPTION_MAX,
    PRESETS,
    Departure,
    FieldMapping,
    Projection,
    complete_related,
    for_mapping,
    project,
    withdrawal,
)
from tests import factories as f

CONTACT = f.sfid("003", 1)
LEAD = f.sfid("00Q", 1)
CASE = f.sfid("500", 1)
EMAIL = f.CUSTOMER["email"]


def _projection(
    *wires: dict[str, object], mapping: FieldMapping = PRESETS["default"]
) -> Projection:
    projection = project(f.fold_dicts(wires), mapping)
    assert projection is not None
    return projection


def test_default_fields() -> None:
    projection = _projection(f.scheduled(related={"type": "Contact", "id": CONTACT}), f.canceled(2))
    fields = projection.fields
    description = fields.pop("Description")
    assert fields == {
        "Booking_Id__c": "b-1042",
        "Projection_Version__c": 2,
        "Event_Status__c": "Canceled",
        "Cancel_Reschedule_Reason__c": "Sick (customer)",
        "Subject": "Product demo",
        "StartDateTime": "2026-11-24T09:30:00Z",
        "EndDateTime": "2026-11-24T10:00:00Z",
        "OwnerId": f.ALICE["salesforce_user_id"],
        "Location": "Zoom",
        "WhoId": CONTACT,
        "WhatId": None,
    }
    assert description is not None
    assert description.startswith("Agenda: pricing\n\nBooking history (UTC):\n")
    assert "Canceled: Sick (customer)" in description
    assert (projection.booking_id, projection.version, projection.lookup_email) == (
        "b-1042",
        2,
        None,
    )
    assert projection.customer_name == "Dana Diaz"


def test_oncehub_preset_renames_status_and_reason() -> None:
    projection = _projection(f.scheduled(), f.rescheduled(2), mapping=PRESETS["oncehub"])
    assert projection.fields["ScheduleOnce__Event_status__c"] == "Rescheduled"
    assert projection.fields["ScheduleOnce__Cancel_reschedule_reason__c"] == "Sick (customer)"
    assert projection.fields["Booking_Id__c"] == "b-1042"
    assert "Event_Status__c" not in projection.fields
    assert projection.external_id_field == "Booking_Id__c"


def test_custom_mapping() -> None:
    mapping = FieldMapping("Ext_Id__c", "Status__c", "Reason__c")
    fields = _projection(f.scheduled(), mapping=mapping).fields
    assert (fields["Ext_Id__c"], fields["Status__c"], fields["Reason__c"]) == (
        "b-1042",
        "Scheduled",
        None,
    )


@pytest.mark.parametrize(
    "wires",
    [
        [f.requested()],
        [f.requested(), f.canceled(2)],
        [f.rescheduled(2)],
        [f.scheduled(page=f.SUPPORT_PAGE)],
        [f.scheduled(page=f.CIRRUS_PAGE)],
    ],
    ids=["requested", "requested-canceled", "scheduled-missing", "unconnected", "no-event-page"],
)
def test_no_projection_when_no_event_should_exist(wires: list[dict[str, object]]) -> None:
    assert project(f.fold_dicts(wires)) is None


def test_times_are_utc_with_z_whatever_the_offset() -> None:
    minus_five = timezone(timedelta(hours=-5))
    start = datetime(2026, 11, 24, 23, 30, 15, 250_000, tzinfo=minus_five)
    fields = _projection(f.scheduled(start=start, duration=timedelta(hours=1))).fields
    assert fields["StartDateTime"] == "2026-11-25T04:30:15Z"
    assert fields["EndDateTime"] == "2026-11-25T05:30:15Z"


def test_text_is_cut_to_salesforce_limits() -> None:
    long = "x" * 40_000
    fields = _projection(
        f.scheduled(title="T" * 300, location="L" * 300, description=long),
        f.canceled(2, reason="R" * 300),
    ).fields
    assert len(fields["Subject"] or "") == 255
    assert (fields["Subject"] or "").endswith("T…")
    assert len(fields["Location"] or "") == 255
    assert len(fields["Cancel_Reschedule_Reason__c"] or "") == 255
    assert len(fields["Description"] or "") == DESCRIPTION_MAX


def test_text_at_the_limit_is_kept_whole() -> None:
    fields = _projection(f.scheduled(title="T" * 255)).fields
    assert fields["Subject"] == "T" * 255


def test_description_without_booking_description_is_the_history() -> None:
    fields = _projection(f.scheduled(description=None), f.reassigned(2)).fields
    assert fields["Description"] == (
        "Booking history (UTC):\n"
        "2026-11-20 09:00 Scheduled: on page Sales with Alice Archer\n"
        "2026-11-20 10:00 Reassigned: to Bob Baker on page Sales EU (by admin)"
    )


def test_owner_follows_the_reassignment_rule() -> None:
    moved = _projection(f.scheduled(), f.reassigned(2)).fields
    assert moved["OwnerId"] == f.BOB["salesforce_user_id"]
    kept = _projection(f.scheduled(), f.reassigned(2, page=f.SUPPORT_PAGE)).fields
    assert kept["OwnerId"] == f.ALICE["salesforce_user_id"]


def test_version_grows_with_the_state() -> None:
    state = f.fold_dicts([f.scheduled()])
    versions = []
    for wire in [f.rescheduled(2), f.reassigned(3), f.completed(4)]:
        state = f.fold_dicts([wire], state)
        projection = project(state)
        assert projection is not None
        versions.append(projection.version)
    assert versions == [2, 3, 4]


def test_lead_gives_who_id_and_forbids_what_id() -> None:
    projection = _projection(f.scheduled(related={"type": "Lead", "id": LEAD}))
    assert (projection.fields["WhoId"], projection.fields["WhatId"]) == (LEAD, None)
    assert projection.lookup_email is None
    # A lookup result cannot override a given related record.
    assert complete_related(projection, {EMAIL: ("Contact", CONTACT)}) == projection.fields


def test_case_gives_what_id_and_who_id_from_a_contact_found_by_email() -> None:
    projection = _projection(f.scheduled(related={"type": "Case", "id": CASE}))
    assert (projection.fields["WhoId"], projection.fields["WhatId"]) == (None, CASE)
    assert projection.lookup_email == EMAIL
    with_contact = complete_related(projection, {EMAIL: ("Contact", CONTACT)})
    assert (with_contact["WhoId"], with_contact["WhatId"]) == (CONTACT, CASE)
    # A Lead cannot go with a Case (WhatId): WhoId stays empty.
    with_lead = complete_related(projection, {EMAIL: ("Lead", LEAD)})
    assert (with_lead["WhoId"], with_lead["WhatId"]) == (None, CASE)
    assert complete_related(projection, {})["WhoId"] is None


def test_without_related_the_record_is_found_by_email() -> None:
    projection = _projection(f.scheduled())
    assert (projection.lookup_email, projection.customer_name) == (EMAIL, "Dana Diaz")
    as_contact = complete_related(projection, {EMAIL.upper(): ("Contact", CONTACT)})
    assert (as_contact["WhoId"], as_contact["WhatId"]) == (CONTACT, None)
    as_lead = complete_related(projection, {EMAIL: ("Lead", LEAD)})
    assert (as_lead["WhoId"], as_lead["WhatId"]) == (LEAD, None)
    nothing = complete_related(projection, {"other@example.com": ("Contact", CONTACT)})
    assert (nothing["WhoId"], nothing["WhatId"]) == (None, None)
    # complete_related never changes the projection it was given.
    assert projection.fields["WhoId"] is None


def test_projection_round_trips_through_bytes() -> None:
    projection = _projection(f.scheduled(related={"type": "Case", "id": CASE}), f.rescheduled(2))
    assert Projection.from_bytes(projection.to_bytes()) == projection


def test_projection_of_a_loaded_state_is_identical() -> None:
    state = f.fold_dicts([f.scheduled(), f.rescheduled(2), f.reassigned(3)])
    assert project(BookingState.from_bytes(state.to_bytes())) == project(state)


# --- Orgs (docs/event-contract.md, "The fold": a move to another org). ---------------

A_SALES = {**f.SALES_PAGE, "salesforce_org": "org-a"}
B_SALES = {**f.OTHER_SALES_PAGE, "name": "B Sales", "salesforce_org": "org-b"}

# project() of the default-org booking below, as written before orgs existed: records
# already in activity-projections look like this, and a default-org booking still does.
TODAYS_BYTES = (
    b'{"format":1,"booking_id":"b-1042","version":3,"external_id_field":"Booking_Id__c",'
    b'"fields":{"Booking_Id__c":"b-1042","Projection_Version__c":3,'
    b'"Event_Status__c":"Rescheduled (Reassigned by User)",'
    b'"Cancel_Reschedule_Reason__c":"Sick (customer)","Subject":"Product demo",'
    b'"StartDateTime":"2026-11-25T09:30:00Z","EndDateTime":"2026-11-25T10:00:00Z",'
    b'"OwnerId":"0058Wgp3jxBP51oQAD","Location":"Zoom","Description":"Agenda: pricing'
    b"\\n\\nBooking history (UTC):\\n2026-11-20 09:00 Scheduled: on page Sales with Alice "
    b"Archer\\n2026-11-20 10:00 Rescheduled: Sick (customer); new time 2026-11-25 09:30 "
    b'UTC\\n2026-11-20 11:00 Reassigned: to Bob Baker on page Sales EU (by admin)",'
    b'"WhoId":null,"WhatId":"500RhcVzM1WI5YqIKL"},"lookup_email":"dana@customer.example",'
    b'"customer_name":"Dana Diaz","related_type":"Case","customer_email":"dana@customer.example"}'
)


def _default_org_booking() -> list[dict[str, object]]:
    return [f.scheduled(related={"type": "Case", "id": CASE}), f.rescheduled(2), f.reassigned(3)]


def test_a_default_org_projection_is_byte_identical_to_before_orgs() -> None:
    projection = _projection(*_default_org_booking())
    assert projection.to_bytes() == TODAYS_BYTES
    assert (projection.salesforce_org, projection.departures) == (None, ())


def test_projection_bytes_written_before_orgs_decode_as_the_default_org() -> None:
    decoded = Projection.from_bytes(TODAYS_BYTES)
    assert decoded == _projection(*_default_org_booking())
    assert (decoded.salesforce_org, decoded.departures) == (None, ())


def test_an_org_booking_projects_for_its_org() -> None:
    projection = _projection(f.scheduled(page=A_SALES))
    assert (projection.salesforce_org, projection.departures) == ("org-a", ())
    assert projection.fields["Event_Status__c"] == "Scheduled"
    assert b'"salesforce_org":"org-a"' in projection.to_bytes()
    assert Projection.from_bytes(projection.to_bytes()) == projection


def test_a_move_to_another_org_gives_b_the_event_and_marks_a() -> None:
    contact = {"type": "Contact", "id": CONTACT}
    projection = _projection(
        f.scheduled(page=A_SALES, related=contact), f.reassigned(2, page=B_SALES)
    )
    assert projection.salesforce_org == "org-b"
    fields = projection.fields
    assert (fields["Event_Status__c"], fields["OwnerId"]) == (
        "Scheduled (Reassigned by User)",
        f.BOB["salesforce_user_id"],
    )
    # a's Contact id means nothing in b: WhoId comes from b's lookup by email.
    assert (fields["WhoId"], projection.lookup_email) == (None, EMAIL)
    (departure,) = projection.departures
    assert departure == Departure(
        "org-a",
        {
            "Booking_Id__c": "b-1042",
            "Projection_Version__c": 2,
            "Event_Status__c": "Scheduled (Reassigned by User)",
            "Cancel_Reschedule_Reason__c": "Moved to another Salesforce org (page B Sales)",
            "Subject": "Product demo",
            "StartDateTime": "2026-11-24T09:30:00Z",
            "EndDateTime": "2026-11-24T10:00:00Z",
            "Location": "Zoom",
            "Description": "Agenda: pricing\n\nBooking history (UTC):\n"
            "2026-11-20 09:00 Scheduled: on page Sales with Alice Archer\n"
            "2026-11-20 10:00 Reassigned: to Bob Baker on page B Sales (by admin)",
        },
    )
    assert Projection.from_bytes(projection.to_bytes()) == projection


def test_the_mark_stays_as_it_was_while_its_version_follows_the_projection() -> None:
    moved = _projection(f.scheduled(page=A_SALES), f.reassigned(2, page=B_SALES))
    later = _projection(
        f.scheduled(page=A_SALES),
        f.reassigned(2, page=B_SALES),
        f.rescheduled(3, start=f.START + timedelta(days=3)),
        f.canceled(4),
    )
    assert later.fields["Event_Status__c"] == "Canceled"
    (before,), (after,) = moved.departures, later.departures
    assert after.fields["Projection_Version__c"] == later.version == 4
    assert {**after.fields, "Projection_Version__c": 2} == before.fields


def test_a_booking_moved_back_gets_the_full_event_again_and_b_is_marked() -> None:
    projection = _projection(
        f.scheduled(page=A_SALES),
        f.reassigned(2, page=B_SALES),
        f.reassigned(3, owner=f.CAROL, page=A_SALES),
    )
    assert projection.salesforce_org == "org-a"
    assert projection.fields["Booking_Id__c"] == "b-1042"  # the same external id row
    assert projection.fields["OwnerId"] == f.CAROL["salesforce_user_id"]
    assert [
        (d.salesforce_org, d.fields["Cancel_Reschedule_Reason__c"]) for d in projection.departures
    ] == [("org-b", "Moved to another Salesforce org (page Sales)")]


def test_departures_use_the_mapping_of_the_projection() -> None:
    projection = _projection(
        f.scheduled(), f.reassigned(2, page=B_SALES), mapping=PRESETS["oncehub"]
    )
    (departure,) = projection.departures
    assert departure.salesforce_org is None  # the default org was left
    assert departure.fields["ScheduleOnce__Event_status__c"] == "Scheduled (Reassigned by User)"
    assert "Event_Status__c" not in departure.fields
    assert departure.fields["Booking_Id__c"] == projection.booking_id


def test_a_move_undone_by_an_earlier_event_withdraws_the_event_from_that_org() -> None:
    # The reassignment to b's page (seq 3) was projected to b before the cancellation
    # (seq 2) arrived; with both folded it is rejected, and b's Event is withdrawn.
    projection = _projection(
        f.scheduled(page=A_SALES), f.reassigned(3, page=B_SALES), f.canceled(2)
    )
    assert (projection.salesforce_org, projection.departures) == ("org-a", ())
    assert projection.withdrawals == ("org-b",)
    assert b'"withdrawals":["org-b"]' in projection.to_bytes()
    assert Projection.from_bytes(projection.to_bytes()) == projection
    gone = withdrawal(projection, "org-b", FieldMapping())
    assert (gone.salesforce_org, gone.withdraw, gone.version) == ("org-b", True, 3)
    assert gone.fields == {"Booking_Id__c": projection.booking_id, "Projection_Version__c": 3}
    assert (gone.lookup_email, gone.withdrawals, gone.departures) == (None, (), ())
    # The org's preset renames nothing a withdrawal writes, and keeps it a withdrawal.
    assert for_mapping(gone, PRESETS["default"], PRESETS["oncehub"]) == gone


def test_a_booking_that_never_left_its_org_withdraws_nothing() -> None:
    projection = _projection(
        f.scheduled(page=A_SALES), f.reassigned(2, page=A_SALES), f.canceled(3)
    )
    assert projection.withdrawals == ()
    assert b"withdraw" not in projection.to_bytes()
