"""The expected Salesforce state by org (devkit/verification.py): the full Event in the
booking's org, the mark in the org it left, and a mark's owner left uncompared."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from devkit.verification import (
    Comparison,
    RunningComparison,
    compare_salesforce,
    expected_by_org,
    expected_events,
)
from tests.factories import ALICE, BOB, SALES_PAGE, reassigned, rescheduled, scheduled

GLOBEX_PAGE = {**SALES_PAGE, "id": "p-globex", "name": "Globex sales", "salesforce_org": "globex"}


def test_a_booking_of_the_default_org_is_expected_there_only() -> None:
    events = [scheduled(1), rescheduled(2)]
    assert expected_by_org(events) == {"default": expected_events(events)}


def test_a_moved_booking_has_its_event_in_the_new_org_and_a_mark_in_the_old() -> None:
    events = [scheduled(1, owner=ALICE), reassigned(2, owner=BOB, page=GLOBEX_PAGE)]
    expected = expected_by_org(events)
    full = expected["globex"]["b-1042"]
    mark = expected["default"]["b-1042"]
    assert full["OwnerId"] == BOB["salesforce_user_id"]
    assert full["Event_Status__c"] == "Scheduled (Reassigned by User)"
    assert mark["Event_Status__c"] == "Scheduled (Reassigned by User)"
    assert (
        mark["Cancel_Reschedule_Reason__c"] == "Moved to another Salesforce org (page Globex sales)"
    )
    assert mark["Projection_Version__c"] == full["Projection_Version__c"] == 2
    assert "OwnerId" not in mark


def test_a_mark_keeps_the_owner_it_had_and_a_full_event_must_have_its_owner() -> None:
    events = [scheduled(1, owner=ALICE), reassigned(2, owner=BOB, page=GLOBEX_PAGE)]
    expected = expected_by_org(events)
    # The old org's Event still names the owner it had there (the mark does not write it).
    in_default = {**expected["default"]["b-1042"], "OwnerId": ALICE["salesforce_user_id"]}
    assert compare_salesforce([in_default], expected["default"]).ok
    wrong_owner = {**expected["globex"]["b-1042"], "OwnerId": ALICE["salesforce_user_id"]}
    stale = compare_salesforce([wrong_owner], expected["globex"])
    assert stale.stale == ["b-1042"]


def test_an_event_in_an_org_the_booking_never_was_in_is_unexpected() -> None:
    events = [scheduled(1, page=GLOBEX_PAGE)]
    expected = expected_by_org(events)
    assert set(expected) == {"globex"}
    misplaced = compare_salesforce([dict(expected["globex"]["b-1042"])], {})
    assert misplaced.unexpected == ["b-1042"]


# --- RunningComparison: compare_salesforce over changes -------------------------------


def _kinds(comparison: Comparison) -> dict[str, set[str]]:
    return {
        kind: set(getattr(comparison, kind))
        for kind in ("lost", "stale", "duplicate", "unexpected")
    }


def _event(booking: str, version: int) -> dict[str, Any]:
    return {"Booking_Id__c": booking, "Projection_Version__c": version, "Subject": "Demo"}


@settings(max_examples=400)
@example(  # a deleted Id written again sorts after every record seen before it
    [
        ("expect", 0, 0, 1),
        ("write", 0, 0, 1),
        ("write", 1, 1, 1),
        ("delete", 0, 0, 1),
        ("write", 0, 0, 1),
        ("write", 0, 1, 2),
    ]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["expect", "write", "delete"]),
            st.integers(0, 5),  # booking
            st.integers(0, 7),  # record id
            st.integers(1, 3),  # version
        ),
        max_size=40,
    )
)
def test_a_running_comparison_answers_as_a_full_one_after_every_change(
    steps: list[tuple[str, int, int, int]],
) -> None:
    running = RunningComparison()
    expected: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    for action, booking_n, record_n, version in steps:
        booking, record_id = f"b-{booking_n}", f"00U{record_n}"
        if action == "expect":
            expected[booking] = _event(booking, version)
            running.expect({booking: _event(booking, version)})
        elif action == "write":  # an insert, or an update (possibly to another booking)
            records[record_id] = {"Id": record_id, **_event(booking, version)}
            running.apply([dict(records[record_id])])
        else:
            records.pop(record_id, None)
            running.apply([{"Id": record_id, "IsDeleted": True}])
        assert _kinds(running.compare()) == _kinds(
            compare_salesforce(list(records.values()), expected)
        )


def test_a_running_comparison_judges_again_only_what_changed() -> None:
    running = RunningComparison()
    running.expect({"b-1": _event("b-1", 2)})
    running.apply([{"Id": "00U1", **_event("b-1", 1)}])
    assert running.compare().stale == ["b-1"]
    running.apply([{"Id": "00U1", **_event("b-1", 2)}])
    assert running.compare().ok
    running.apply([{"Id": "00U2", **_event("b-1", 2)}])
    assert running.compare().duplicate == ["b-1"]
    running.apply([{"Id": "00U2", "IsDeleted": True}])
    assert running.compare().ok
