"""The fold of docs/event-contract.md: statuses, reassignment rules, duplicates, bounds, storage."""

from __future__ import annotations

import hashlib
import random
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.fold import (
    MAX_EVENTS_PER_BOOKING,
    TIMER_SOURCE,
    BookingState,
    FoldResult,
    _Replay,
    completion_event,
    fold,
    stored_event,
)
from streams.core.projection import PRESETS, Projection, project
from streams.core.view import STATUSES, BookingView
from tests import factories as f

ALICE_ID = f.ALICE["salesforce_user_id"]
BOB_ID = f.BOB["salesforce_user_id"]
CAROL_ID = f.CAROL["salesforce_user_id"]
LATER = f.START + timedelta(days=1)
AFTER_END = f.START + timedelta(minutes=45)

# Each row: the events a producer sent (in arrival order) and what the view must say.
# `owner` is the Salesforce Event owner's User id; `page` the booking's page now.
SCENARIOS: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = [
    (
        "scheduled",
        [f.scheduled()],
        {"status": "Scheduled", "reason": None, "owner": ALICE_ID, "start": f.START},
    ),
    (
        "scheduled-completed",
        [f.scheduled(), f.completed(2)],
        {"status": "Completed", "reason": None, "owner": ALICE_ID},
    ),
    (
        "scheduled-rescheduled-completed: the reason stays",
        [f.scheduled(), f.rescheduled(2, start=LATER), f.completed(3)],
        {"status": "Completed", "reason": "Sick (customer)", "start": LATER},
    ),
    (
        "scheduled-canceled",
        [f.scheduled(), f.canceled(2, reason="Double booked", by="customer")],
        {"status": "Canceled", "reason": "Double booked (customer)", "owner": ALICE_ID},
    ),
    (
        "canceled by the owner without a reason",
        [f.scheduled(), f.canceled(2, reason=None, by="owner")],
        {"status": "Canceled", "reason": "No reason given (booking owner)"},
    ),
    (
        "rescheduled by the owner",
        [f.scheduled(), f.rescheduled(2, reason="Travel", by="owner")],
        {"status": "Rescheduled", "reason": "Travel (booking owner)", "start": LATER},
    ),
    (
        "scheduled-reassigned: both pages connected",
        [f.scheduled(), f.reassigned(2, owner=f.BOB, page=f.OTHER_SALES_PAGE)],
        {"status": "Scheduled (Reassigned by User)", "owner": BOB_ID, "page": "p-sales-eu"},
    ),
    (
        "rescheduled-reassigned",
        [f.scheduled(), f.rescheduled(2), f.reassigned(3)],
        {
            "status": "Rescheduled (Reassigned by User)",
            "owner": BOB_ID,
            "reason": "Sick (customer)",
        },
    ),
    (
        "reassigned twice stays reassigned",
        [f.scheduled(), f.reassigned(2), f.reassigned(3, owner=f.CAROL, page=f.SALES_PAGE)],
        {"status": "Scheduled (Reassigned by User)", "owner": CAROL_ID, "page": "p-sales"},
    ),
    (
        "reassigned to an unconnected page: owner and status kept, page moves",
        [f.scheduled(), f.reassigned(2, owner=f.BOB, page=f.SUPPORT_PAGE)],
        {"status": "Scheduled", "owner": ALICE_ID, "page": "p-support", "booking_owner": "u-bob"},
    ),
    (
        "reassigned from an unconnected page to a connected one: owner kept",
        [
            f.scheduled(),
            f.reassigned(2, owner=f.BOB, page=f.SUPPORT_PAGE),
            f.reassigned(3, owner=f.CAROL, page=f.OTHER_SALES_PAGE),
        ],
        {
            "status": "Scheduled",
            "owner": ALICE_ID,
            "page": "p-sales-eu",
            "booking_owner": "u-carol",
        },
    ),
    (
        "later events still update an Event whose owner was kept",
        [f.scheduled(), f.reassigned(2, page=f.SUPPORT_PAGE), f.canceled(3)],
        {"status": "Canceled", "owner": ALICE_ID, "reason": "Sick (customer)"},
    ),
    (
        "existing Event moved to a page with create_activity_event off changes nothing",
        [f.scheduled(), f.reassigned(2, owner=f.BOB, page=f.CIRRUS_PAGE)],
        {"status": "Scheduled (Reassigned by User)", "owner": BOB_ID, "creates_event": True},
    ),
    (
        "reassign after cancel is rejected and counted",
        [f.scheduled(), f.canceled(2), f.reassigned(3)],
        {"status": "Canceled", "owner": ALICE_ID, "page": "p-sales", "rejected": 1},
    ),
    (
        "reassign after completed is rejected",
        [f.scheduled(), f.completed(2), f.reassigned(3)],
        {"status": "Completed", "owner": ALICE_ID, "rejected": 1},
    ),
    (
        "reassign after no-show is rejected",
        [f.scheduled(), f.no_show(2), f.reassigned(3)],
        {"status": "No-show", "owner": ALICE_ID, "rejected": 1},
    ),
    (
        "reassign while only requested is rejected",
        [f.requested(), f.reassigned(2), f.scheduled(3)],
        {"status": "Scheduled", "owner": ALICE_ID, "page": "p-sales", "rejected": 1},
    ),
    (
        "canceled-rescheduled: the reschedule-request flow",
        [f.scheduled(), f.canceled(2, reason="Sick"), f.rescheduled(3, reason="Better now")],
        {"status": "Rescheduled", "reason": "Better now (customer)", "start": LATER},
    ),
    (
        "requested only: no Event yet",
        [f.requested()],
        {"status": None, "creates_event": False, "phase": "Requested"},
    ),
    (
        "requested-scheduled",
        [f.requested(), f.scheduled(2)],
        {"status": "Scheduled", "creates_event": True, "owner": ALICE_ID},
    ),
    (
        "requested-canceled: never an Event",
        [f.requested(), f.canceled(2, reason="Declined", by="owner")],
        {"status": None, "creates_event": False, "reason": "Declined (booking owner)"},
    ),
    (
        "no-show after completed wins",
        [f.scheduled(), f.completed(2), f.no_show(3)],
        {"status": "No-show"},
    ),
    (
        "scheduled-no-show",
        [f.scheduled(), f.no_show(2, by="owner")],
        {"status": "No-show"},
    ),
    (
        "page with create_activity_event false: no Event, ever",
        [f.scheduled(page=f.CIRRUS_PAGE), f.reassigned(2, page=f.SALES_PAGE), f.rescheduled(3)],
        {"status": None, "creates_event": False, "phase": "Rescheduled"},
    ),
    (
        "unconnected page: no Event",
        [f.scheduled(page=f.SUPPORT_PAGE), f.completed(2)],
        {"status": None, "creates_event": False, "phase": "Completed"},
    ),
    (
        "scheduled missing: events kept, nothing projected",
        [f.rescheduled(2), f.canceled(3)],
        {"status": None, "scheduled": False, "phase": "Canceled"},
    ),
    (
        "scheduled arriving last still sorts first",
        [f.rescheduled(2), f.canceled(3), f.scheduled(1)],
        {"status": "Canceled", "start": LATER, "reason": "Sick (customer)"},
    ),
    (
        "reassigned then rescheduled: plain Rescheduled, owner kept",
        [f.scheduled(), f.reassigned(2), f.rescheduled(3)],
        {"status": "Rescheduled", "owner": BOB_ID, "page": "p-sales-eu"},
    ),
    (
        "reassigned then completed: plain Completed",
        [f.scheduled(), f.reassigned(2), f.completed(3)],
        {"status": "Completed", "owner": BOB_ID},
    ),
    (
        "timer completed: an ordinary completed event",
        [f.scheduled(), f.timer_completed(1, time=AFTER_END)],
        {"status": "Completed"},
    ),
    (
        "timer completed then a late reschedule with a higher sequence wins",
        [f.scheduled(), f.timer_completed(1, time=AFTER_END), f.rescheduled(2, time=f.START)],
        {"status": "Rescheduled", "start": LATER},
    ),
    (
        "arrival order does not matter: sequence decides",
        [f.canceled(3), f.rescheduled(2), f.scheduled(1)],
        {"status": "Canceled"},
    ),
    (
        "same sequence: the later time wins",
        [
            f.scheduled(),
            f.canceled(2, time=f.START + timedelta(minutes=1)),
            f.rescheduled(2, time=f.START, event_id="r"),
        ],
        {"status": "Canceled"},
    ),
    (
        "same sequence and time: the id decides",
        [
            f.scheduled(),
            f.canceled(2, time=f.START, event_id="b"),
            f.rescheduled(2, time=f.START, event_id="a"),
        ],
        {"status": "Canceled"},
    ),
]


def _observed(state: BookingState) -> dict[str, Any]:
    current = state.view
    return {
        "status": current.status,
        "phase": current.phase,
        "reason": current.reason,
        "owner": current.owner.salesforce_user_id if current.owner else None,
        "booking_owner": current.booking_owner.id if current.booking_owner else None,
        "page": current.page.id if current.page else None,
        "start": current.start,
        "creates_event": current.creates_event,
        "scheduled": current.scheduled,
        "rejected": len(current.rejected_reassignments),
    }


@pytest.mark.parametrize(
    ("events", "expected"),
    [pytest.param(events, expected, id=name) for name, events, expected in SCENARIOS],
)
def test_scenario(events: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    state = f.fold_dicts(events)
    observed = _observed(state)
    assert {name: observed[name] for name in expected} == expected
    assert (project(state) is None) == (expected.get("status", observed["status"]) is None)


def _in_org(page: dict[str, Any], org: str | None) -> dict[str, Any]:
    return {**page, "salesforce_org": org}


A_SALES = _in_org(f.SALES_PAGE, "org-a")
A_SALES_EU = _in_org(f.OTHER_SALES_PAGE, "org-a")
A_SUPPORT = _in_org(f.SUPPORT_PAGE, "org-a")
A_CIRRUS = _in_org(f.CIRRUS_PAGE, "org-a")
B_SALES = _in_org({**f.OTHER_SALES_PAGE, "id": "p-b-sales", "name": "B Sales"}, "org-b")
B_SUPPORT = _in_org({**f.SUPPORT_PAGE, "id": "p-b-support", "name": "B Support"}, "org-b")
TO_B = "Moved to another Salesforce org (page B Sales)"
TO_A = "Moved to another Salesforce org (page Sales)"
MOVED = "Scheduled (Reassigned by User)"

# Which org the booking's Event lives in (docs/event-contract.md, "The fold"). `org` is
# the view's salesforce_org; `left` the orgs it has left as (org, status, reason).
ORG_SCENARIOS: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = [
    ("no org anywhere: the default org", [f.scheduled()], {"org": None, "left": []}),
    (
        "scheduled in org a",
        [f.scheduled(page=A_SALES)],
        {"org": "org-a", "left": [], "withdrawn": []},
    ),
    (
        "requested in org a, then scheduled there",
        [f.requested(page=A_SALES), f.scheduled(2, page=A_SALES)],
        {"org": "org-a", "left": [], "status": "Scheduled"},
    ),
    (
        "reassigned within org a: nothing left behind",
        [f.scheduled(page=A_SALES), f.reassigned(2, page=A_SALES_EU)],
        {"org": "org-a", "left": [], "owner": BOB_ID, "status": MOVED},
    ),
    (
        "scheduled in a, reassigned to a page in b: Event in b, a marked",
        [f.scheduled(page=A_SALES), f.reassigned(2, page=B_SALES)],
        {"org": "org-b", "left": [("org-a", MOVED, TO_B)], "owner": BOB_ID, "status": MOVED},
    ),
    (
        "moved while Rescheduled: the mark says Rescheduled (Reassigned by User)",
        [f.scheduled(page=A_SALES), f.rescheduled(2), f.reassigned(3, page=B_SALES)],
        {"org": "org-b", "left": [("org-a", "Rescheduled (Reassigned by User)", TO_B)]},
    ),
    (
        "from the default org to org b: the default org is marked",
        [f.scheduled(), f.reassigned(2, page=B_SALES)],
        {"org": "org-b", "left": [(None, MOVED, TO_B)]},
    ),
    (
        "from org a to the default org",
        [f.scheduled(page=A_SALES), f.reassigned(2, page=f.OTHER_SALES_PAGE)],
        {
            "org": None,
            "left": [("org-a", MOVED, "Moved to another Salesforce org (page Sales EU)")],
        },
    ),
    (
        "reassignment rejected (canceled booking): org unchanged",
        [f.scheduled(page=A_SALES), f.canceled(2), f.reassigned(3, page=B_SALES)],
        {
            "org": "org-a",
            "left": [],
            "rejected": 1,
            "status": "Canceled",
            "page": "p-sales",
            "withdrawn": ["org-b"],
        },
    ),
    (
        "a move undone by an earlier cancel folded after it: b's Event is withdrawn",
        [f.scheduled(page=A_SALES), f.reassigned(3, page=B_SALES), f.canceled(2)],
        {"org": "org-a", "left": [], "status": "Canceled", "withdrawn": ["org-b"]},
    ),
    (
        "reassignment rejected while requested: org unchanged",
        [f.requested(page=A_SALES), f.reassigned(2, page=B_SALES), f.scheduled(3, page=A_SALES)],
        {"org": "org-a", "left": [], "rejected": 1},
    ),
    (
        "reassigned to a page of b that is not connected: org unchanged, page moves",
        [f.scheduled(page=A_SALES), f.reassigned(2, page=B_SUPPORT)],
        {"org": "org-a", "left": [], "owner": ALICE_ID, "page": "p-b-support"},
    ),
    (
        "from an unconnected page to a connected page of b: the Event stays in a",
        [
            f.scheduled(page=A_SALES),
            f.reassigned(2, page=A_SUPPORT),
            f.reassigned(3, owner=f.CAROL, page=B_SALES),
        ],
        {"org": "org-a", "left": [], "owner": ALICE_ID, "page": "p-b-sales"},
    ),
    (
        "A -> B -> A: the full Event in a again, b marked",
        [
            f.scheduled(page=A_SALES),
            f.reassigned(2, page=B_SALES),
            f.reassigned(3, owner=f.CAROL, page=A_SALES),
        ],
        {
            "org": "org-a",
            "left": [("org-b", MOVED, TO_A)],
            "owner": CAROL_ID,
            "status": MOVED,
            "withdrawn": [],
        },
    ),
    (
        "A -> B -> default: both a and b marked, the default org first",
        [
            f.scheduled(page=A_SALES),
            f.reassigned(2, page=B_SALES),
            f.rescheduled(3),
            f.reassigned(4, page=f.SALES_PAGE),
        ],
        {
            "org": None,
            "left": [
                ("org-a", MOVED, TO_B),
                ("org-b", "Rescheduled (Reassigned by User)", TO_A),
            ],
        },
    ),
    (
        "moved, then canceled: only the Event in b changes",
        [f.scheduled(page=A_SALES), f.reassigned(2, page=B_SALES), f.canceled(3)],
        {"org": "org-b", "left": [("org-a", MOVED, TO_B)], "status": "Canceled"},
    ),
    (
        "a late reassignment sorting before the cancel applies: moved",
        [f.scheduled(page=A_SALES), f.canceled(3), f.reassigned(2, page=B_SALES)],
        {"org": "org-b", "left": [("org-a", MOVED, TO_B)], "status": "Canceled", "rejected": 0},
    ),
    (
        "requested in a, scheduled in b: there never was an Event in a",
        [f.requested(page=A_SALES), f.scheduled(2, page=B_SALES)],
        {"org": "org-b", "left": [], "withdrawn": ["org-a"]},
    ),
    (
        "no Event (create_activity_event off): the org follows the page, nothing marked",
        [f.scheduled(page=A_CIRRUS), f.reassigned(2, page=B_SALES)],
        {"org": "org-b", "left": [], "status": None},
    ),
    (
        "a scheduled re-sent on b's page while canceled: a keeps Canceled",
        [f.scheduled(page=A_SALES), f.canceled(2), f.scheduled(3, page=B_SALES)],
        {
            "org": "org-b",
            "left": [("org-a", "Canceled", TO_B)],
            "status": "Scheduled",
        },
    ),
]


def _observed_org(state: BookingState) -> dict[str, Any]:
    current = state.view
    return _observed(state) | {
        "org": current.salesforce_org,
        "left": [(gone.salesforce_org, gone.status, gone.reason) for gone in current.left_orgs],
        "withdrawn": list(current.withdrawn_orgs),
    }


@pytest.mark.parametrize(
    ("events", "expected"),
    [pytest.param(events, expected, id=name) for name, events, expected in ORG_SCENARIOS],
)
def test_org_scenario(events: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    state = f.fold_dicts(events)
    observed = _observed_org(state)
    assert {name: observed[name] for name in expected} == expected
    projection = project(state)
    if projection is not None:
        assert projection.salesforce_org == expected["org"]
        assert [gone.salesforce_org for gone in projection.departures] == [
            org for org, _, _ in expected["left"]
        ]
        assert list(projection.withdrawals) == observed["withdrawn"]


def test_the_mark_is_the_event_as_it_stood_at_the_move() -> None:
    moved_at = f.fold_dicts([f.scheduled(page=A_SALES), f.rescheduled(2, start=LATER)])
    state = f.fold_dicts(
        [f.reassigned(3, page=B_SALES), f.rescheduled(4, start=LATER + timedelta(days=2))],
        moved_at,
    )
    (gone,) = state.view.left_orgs
    assert (gone.start, gone.end) == (LATER, LATER + timedelta(minutes=30))
    assert (gone.title, gone.location, gone.description) == (
        "Product demo",
        "Zoom",
        "Agenda: pricing",
    )
    # Its history ends with the move; the reschedule after it is b's alone.
    assert gone.history_length == 3
    assert state.view.history[gone.history_length - 1].type == "booking.reassigned"
    assert state.view.start == LATER + timedelta(days=2)


def test_related_records_are_used_only_in_the_org_the_booking_was_made_in() -> None:
    contact = {"type": "Contact", "id": f.sfid("003", 1)}
    made = f.fold_dicts([f.scheduled(page=A_SALES, related=contact)])
    assert made.view.related is not None
    moved = f.fold_dicts([f.reassigned(2, page=B_SALES)], made)
    assert moved.view.related is None  # a's record ids mean nothing in b
    back = f.fold_dicts([f.reassigned(3, page=A_SALES)], moved)
    assert back.view.related == made.view.related


def test_an_event_without_an_org_is_stored_as_before_orgs_existed() -> None:
    # Pinned from the code before page.salesforce_org: states in the tables, copies
    # redelivered after the upgrade and the fold's duplicate check all depend on it.
    state = f.fold_dicts(
        [
            f.scheduled(related={"type": "Case", "id": f.sfid("500", 1)}),
            f.rescheduled(2),
            f.reassigned(3),
        ]
    )
    digest = hashlib.sha256(state.to_bytes()).hexdigest()
    assert digest == "5a5c896260d644f34cb5792a4a8eb872f2caeaabdf6d9e612163fbfa2056560b"
    null_org = f.scheduled(page=_in_org(f.SALES_PAGE, None))
    assert fold(f.fold_dicts([f.scheduled()]), f.event(null_org)).outcome == "duplicate"
    assert b"salesforce_org" not in state.to_bytes()


def test_an_org_is_stored_and_loaded_with_its_event() -> None:
    state = f.fold_dicts([f.scheduled(page=A_SALES), f.reassigned(2, page=B_SALES)])
    loaded = BookingState.from_bytes(state.to_bytes())
    assert loaded.view == state.view
    assert loaded.view.salesforce_org == "org-b"
    # The same event in another org is another event: a conflicting copy, not a duplicate.
    other = f.scheduled(page=_in_org(f.SALES_PAGE, "org-c"))
    assert fold(loaded, f.event(other)).outcome == "conflicting-duplicate"


def test_rejected_reassignment_is_recorded_in_the_history() -> None:
    state = f.fold_dicts([f.scheduled(), f.canceled(2), f.reassigned(3)])
    (rejected,) = state.view.rejected_reassignments
    assert (rejected.source, rejected.id, rejected.phase) == (
        f.DEFAULT_SOURCE,
        "b-1042-3",
        "Canceled",
    )
    last = state.view.history[-1]
    assert (last.type, last.applied) == ("booking.reassigned", False)
    assert "rejected" in last.detail


def _fold_each(wires: list[dict[str, Any]]) -> list[FoldResult]:
    results: list[FoldResult] = []
    state: BookingState | None = None
    for wire in wires:
        results.append(fold(state, f.event(wire)))
        state = results[-1].state
    return results


@pytest.mark.parametrize(
    ("wires", "flags"),
    [
        pytest.param(
            [f.scheduled(), f.canceled(2), f.reassigned(3)],
            [False, False, True],
            id="after-cancel",
        ),
        pytest.param([f.requested(), f.reassigned(2)], [False, True], id="while-requested"),
        pytest.param([f.scheduled(), f.reassigned(2)], [False, False], id="applied"),
        # Arriving late, it sorts before the cancellation: applied.
        pytest.param(
            [f.scheduled(), f.canceled(3), f.reassigned(2)], [False, False, False], id="late"
        ),
        # Appended, but sorting before the last event: the out-of-order path of fold().
        pytest.param(
            [f.scheduled(), f.canceled(2), f.completed(4), f.reassigned(3)],
            [False, False, False, True],
            id="inserted",
        ),
        # A redelivered copy is a duplicate, not a second rejection.
        pytest.param(
            [f.scheduled(), f.canceled(2), f.reassigned(3), f.reassigned(3)],
            [False, False, True, False],
            id="redelivered",
        ),
    ],
)
def test_the_fold_result_says_when_a_reassignment_is_rejected(
    wires: list[dict[str, Any]], flags: list[bool]
) -> None:
    results = _fold_each(wires)
    assert [r.rejected_reassignment for r in results] == flags
    assert len(results[-1].state.view.rejected_reassignments) == sum(flags)


def test_history_lists_every_event_in_replay_order() -> None:
    state = f.fold_dicts([f.rescheduled(2), f.scheduled(1), f.timer_completed(2, time=LATER)])
    assert [entry.type for entry in state.view.history] == [
        "booking.scheduled",
        "booking.rescheduled",
        "booking.completed",
    ]
    assert "automatically" in state.view.history[-1].detail


def test_outcomes_and_version() -> None:
    first = fold(None, f.event(f.scheduled()))
    assert (first.outcome, first.changed, first.state.version) == ("accepted", True, 1)
    again = fold(first.state, f.event(f.scheduled()))
    assert (again.outcome, again.changed, again.dead_letter) == ("duplicate", False, None)
    assert again.state is first.state
    second = fold(first.state, f.event(f.canceled(2)))
    assert (second.outcome, second.state.version) == ("accepted", 2)
    earlier = fold(second.state, f.event(f.rescheduled(0)))  # inserted, not appended
    assert (earlier.outcome, earlier.state.version) == ("accepted", 3)
    assert earlier.state.view.status == "Canceled"


def test_a_copy_differing_only_in_extensions_is_an_identical_duplicate() -> None:
    state = f.fold_dicts([f.scheduled()])
    copy_with_trace = {**f.scheduled(), "traceparent": "00-1-2-01"}
    assert fold(state, f.event(copy_with_trace)).outcome == "duplicate"


def test_folding_another_booking_is_a_programming_error() -> None:
    state = f.fold_dicts([f.scheduled()])
    with pytest.raises(ValueError, match="b-9"):
        fold(state, f.event(f.canceled(2, booking_id="b-9")))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (f.canceled(2, reason="Sick"), f.canceled(2, reason="Travel")),
        (f.canceled(2, by="customer"), f.canceled(2, by="owner")),
        (f.rescheduled(2, start=LATER), f.rescheduled(2, start=LATER + timedelta(hours=1))),
        (f.canceled(2), f.canceled(5, event_id="b-1042-2")),  # the sort key differs too
    ],
)
def test_conflicting_duplicates_keep_the_same_copy_in_both_orders(
    one: dict[str, Any], other: dict[str, Any]
) -> None:
    base = f.fold_dicts([f.scheduled()])
    first = fold(base, f.event(one))
    forward = fold(first.state, f.event(other))
    second = fold(base, f.event(other))
    backward = fold(second.state, f.event(one))
    assert forward.outcome == backward.outcome == "conflicting-duplicate"
    assert forward.state.events == backward.state.events
    assert forward.state.view == backward.state.view
    (kept,) = [s for s in forward.state.events if s.id == "b-1042-2"]
    # One arrival order replaces the stored copy, the other sets the incoming aside;
    # both count the losing copy, so both reach the same version (the version fence).
    assert forward.changed
    assert backward.changed
    assert forward.state.version == backward.state.version == base.version + 2
    assert forward.state.losers == backward.state.losers
    losers = {forward.dead_letter, backward.dead_letter}
    assert len(losers) == 1
    (loser,) = losers
    assert loser is not None
    assert loser != kept.to_event()
    assert {loser, kept.to_event()} == {f.event(one), f.event(other)}
    assert kept.canonical_json() < stored_event(loser).canonical_json()


def test_conflicting_duplicate_keeps_the_canonically_first_copy() -> None:
    sick, travel = f.canceled(2, reason="Sick"), f.canceled(2, reason="Travel")
    state = f.fold_dicts([f.scheduled(), travel])
    result = fold(state, f.event(sick))
    # '"reason":"Sick"' sorts before '"reason":"Travel"' in canonical JSON.
    assert result.changed
    assert result.state.version == state.version + 1
    assert result.state.view.reason == "Sick (customer)"
    assert result.dead_letter == f.event(travel)


def test_history_is_bounded_and_a_full_booking_refuses_new_events() -> None:
    state = f.fold_dicts([f.scheduled()])
    for sequence in range(2, MAX_EVENTS_PER_BOOKING + 1):
        state = fold(state, f.event(f.rescheduled(sequence))).state
    assert len(state.events) == MAX_EVENTS_PER_BOOKING
    assert state.full
    late = f.event(f.canceled(MAX_EVENTS_PER_BOOKING + 1))
    refused = fold(state, late)
    assert (refused.outcome, refused.changed, refused.dead_letter) == ("history-full", False, late)
    assert refused.state is state
    assert fold(state, f.event(f.rescheduled(7))).outcome == "duplicate"


def test_state_round_trips_through_bytes_exactly() -> None:
    events = [
        f.scheduled(related={"type": "Case", "id": f.sfid("500")}, location=None),
        f.reassigned(2, page=f.SUPPORT_PAGE),
        f.rescheduled(3, reason="Ünïcødé ✓"),
        f.canceled(4, reason=None),
        f.reassigned(5),
    ]
    state = f.fold_dicts(events)
    loaded = BookingState.from_bytes(state.to_bytes())
    assert loaded == state
    assert loaded.version == state.version == 5
    assert BookingState.version_of(state.to_bytes()) == 5
    assert loaded.view == state.view
    assert loaded.to_bytes() == state.to_bytes()
    # A loaded state folds on exactly like the original.
    more = f.event(f.completed(6))
    assert fold(loaded, more).state.view == fold(state, more).state.view


def test_unknown_state_format_is_refused() -> None:
    unknown = b'{"format": 99, "booking_id": "b", "version": 1, "events": []}'
    with pytest.raises(ValueError, match="format"):
        BookingState.from_bytes(unknown)
    with pytest.raises(ValueError, match="format"):
        BookingState.version_of(unknown)


def test_the_view_says_when_the_completion_timer_is_due() -> None:
    state = f.fold_dicts([f.scheduled(), f.rescheduled(2, start=LATER)])
    assert state.view.status == "Rescheduled"
    assert state.view.end == LATER + timedelta(minutes=30)
    grace = timedelta(minutes=10)
    assert not state.view.completion_due(LATER + timedelta(minutes=40), grace)
    assert state.view.completion_due(LATER + timedelta(minutes=41), grace)
    canceled = f.fold_dicts([f.canceled(3)], state)
    assert not canceled.view.completion_due(LATER + timedelta(days=9), grace)


def test_completion_event_completes_and_repeats_as_a_plain_duplicate() -> None:
    state = f.fold_dicts([f.scheduled(), f.reassigned(2)])
    timer = completion_event(state, timedelta(minutes=15))
    assert timer.source == TIMER_SOURCE
    assert timer.sequence == 2
    assert timer.time == f.START + timedelta(minutes=45)
    done = fold(state, timer)
    assert done.state.view.status == "Completed"
    assert fold(done.state, completion_event(state, timedelta(minutes=15))).outcome == "duplicate"
    # A late reschedule from the producer (higher sequence) still wins.
    moved = f.fold_dicts([f.rescheduled(3, start=LATER)], done.state)
    assert moved.view.status == "Rescheduled"
    assert completion_event(moved, timedelta(minutes=15)).id != timer.id


def test_completion_event_sorts_after_an_event_later_than_the_end() -> None:
    late_reassign = f.reassigned(2, time=f.START + timedelta(days=3))
    state = f.fold_dicts([f.scheduled(), late_reassign])
    timer = completion_event(state, timedelta(minutes=15))
    assert timer.time > f.START + timedelta(days=3)
    assert fold(state, timer).state.view.status == "Completed"


# --- The invariant: the view depends only on the set of events. ---------------------

_PAGES = [f.SALES_PAGE, f.OTHER_SALES_PAGE, f.SUPPORT_PAGE, f.CIRRUS_PAGE]
# Most pages in the default org; some in two others, so reassignments cross orgs.
_ORGS = [None, None, "org-a", "org-b"]
_OWNERS = [f.ALICE, f.BOB, f.CAROL]
_KINDS = ["scheduled", "requested", "rescheduled", "reassigned", "canceled", "completed", "no_show"]


@st.composite
def adversarial_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Any mix of types with colliding sequences and times: ties must still be ordered."""
    events = []
    for index in range(draw(st.integers(1, 9))):
        kind = draw(st.sampled_from(_KINDS))
        common: dict[str, Any] = {
            "time": f.START + timedelta(minutes=draw(st.integers(0, 3))),
            "source": draw(st.sampled_from([f.DEFAULT_SOURCE, TIMER_SOURCE])),
            "event_id": f"e{draw(st.integers(0, 3))}-{index}",
        }
        sequence = draw(st.integers(0, 4))
        if kind in ("scheduled", "requested"):
            builder = f.scheduled if kind == "scheduled" else f.requested
            wire = builder(
                sequence,
                page=_in_org(draw(st.sampled_from(_PAGES)), draw(st.sampled_from(_ORGS))),
                owner=draw(st.sampled_from(_OWNERS)),
                start=f.START + timedelta(hours=draw(st.integers(0, 5))),
                **common,
            )
        elif kind == "rescheduled":
            wire = f.rescheduled(
                sequence,
                start=f.START + timedelta(hours=draw(st.integers(0, 5))),
                reason=draw(st.sampled_from(["Sick", None, "Travel"])),
                by=draw(st.sampled_from(["customer", "owner"])),
                **common,
            )
        elif kind == "reassigned":
            wire = f.reassigned(
                sequence,
                owner=draw(st.sampled_from(_OWNERS)),
                page=_in_org(draw(st.sampled_from(_PAGES)), draw(st.sampled_from(_ORGS))),
                **common,
            )
        elif kind == "canceled":
            reason = draw(st.sampled_from(["Sick", None]))
            wire = f.canceled(sequence, reason=reason, **common)
        elif kind == "completed":
            wire = f.completed(sequence, **common)
        else:
            wire = f.no_show(sequence, **common)
        events.append(wire)
    return events


def _realistic_events(seed: int) -> list[dict[str, Any]]:
    return f.random_lifecycle(random.Random(seed), f.BOOKING_ID)


def _realistic_events_in_orgs(seed: int) -> list[dict[str, Any]]:
    """A generated lifecycle whose pages each belong to one of three orgs (the default
    among them), so its reassignments cross orgs as a multi-org tenant's would."""
    wires = _realistic_events(seed)
    for wire in wires:
        page = (wire.get("data") or {}).get("page")
        if page is not None:
            page["salesforce_org"] = _ORGS[1:][zlib.crc32(page["id"].encode()) % 3]
    return wires


def _fingerprint(state: BookingState) -> tuple[Any, ...]:
    projection = project(state)
    if projection is None:
        return (state.view, None)
    return (state.view, projection.fields, projection.salesforce_org, projection.departures)


def _check_org_invariants(state: BookingState) -> None:
    current = state.view
    left = [gone.salesforce_org for gone in current.left_orgs]
    assert current.salesforce_org not in left
    assert left == sorted(set(left), key=lambda org: (org is not None, org or ""))
    if left:  # only an Event that exists can leave an org
        assert current.scheduled
        assert current.creates_event
    for gone in current.left_orgs:
        assert gone.status in STATUSES
        assert gone.reason.startswith("Moved to another Salesforce org (page ")
        assert 0 < gone.history_length <= len(current.history)
        assert current.history[gone.history_length - 1].applied
    projection = project(state)
    if projection is None:
        return
    assert projection.salesforce_org == current.salesforce_org
    assert [gone.salesforce_org for gone in projection.departures] == left
    mapping = PRESETS["default"]
    for gone in projection.departures:
        # The same external id and the projection's version: the fence orders them.
        assert gone.fields[mapping.external_id_field] == state.booking_id
        assert gone.fields[mapping.version_field] == projection.version == state.version
        assert not {"OwnerId", "WhoId", "WhatId"} & set(gone.fields)
    assert Projection.from_bytes(projection.to_bytes()) == projection


def _check_order_independence(data: st.DataObject, wires: list[dict[str, Any]]) -> None:
    reference = f.fold_dicts(wires)
    with_copies = wires + data.draw(st.lists(st.sampled_from(wires), max_size=len(wires)))
    shuffled = data.draw(st.permutations(with_copies))
    state = f.fold_dicts(shuffled)
    assert _fingerprint(state) == _fingerprint(reference)
    assert state.version == reference.version == len(wires)
    assert BookingState.from_bytes(state.to_bytes()).view == reference.view
    _check_org_invariants(state)


_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(data=st.data(), wires=adversarial_events())
def test_any_order_with_duplicates_gives_the_same_view_adversarial(
    data: st.DataObject, wires: list[dict[str, Any]]
) -> None:
    _check_order_independence(data, wires)


@_PROPERTY
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_any_order_with_duplicates_gives_the_same_view_realistic(
    data: st.DataObject, seed: int
) -> None:
    _check_order_independence(data, _realistic_events(seed))


@_PROPERTY
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_any_order_with_duplicates_gives_the_same_view_realistic_in_orgs(
    data: st.DataObject, seed: int
) -> None:
    _check_order_independence(data, _realistic_events_in_orgs(seed))


@_PROPERTY
@given(data=st.data(), wires=adversarial_events())
def test_conflicting_duplicates_resolve_the_same_in_any_order(
    data: st.DataObject, wires: list[dict[str, Any]]
) -> None:
    victim = data.draw(st.sampled_from(wires))
    conflicting = {**victim, "sequence": victim["sequence"] + 1}  # same (source, id)
    everything = [*wires, conflicting, victim]
    orders = [data.draw(st.permutations(everything)) for _ in range(2)]
    states = [f.fold_dicts(order) for order in orders]
    assert states[0].events == states[1].events
    assert _fingerprint(states[0]) == _fingerprint(states[1])
    assert states[0].version == states[1].version


def test_generated_lifecycles_cover_every_status() -> None:
    statuses = set()
    for seed in range(300):
        statuses.add(f.fold_dicts(_realistic_events(seed)).view.status)
    assert statuses >= {
        None,
        "Scheduled",
        "Rescheduled",
        "Canceled",
        "Completed",
        "No-show",
        "Scheduled (Reassigned by User)",
        "Rescheduled (Reassigned by User)",
    }


def test_generated_events_cross_orgs() -> None:
    # The strategies above reach the cases they are there for.
    moved = [f.fold_dicts(_realistic_events_in_orgs(seed)).view for seed in range(300)]
    assert sum(1 for view in moved if view.left_orgs) >= 10
    assert {view.salesforce_org for view in moved} == set(_ORGS)


def test_times_in_other_offsets_sort_by_instant_not_by_text() -> None:
    # 10:30+01:00 is 09:30Z: earlier than 09:45Z although its text sorts later.
    plus_one = datetime(2026, 11, 24, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    state = f.fold_dicts(
        [
            f.scheduled(),
            f.canceled(2, time=plus_one),
            f.rescheduled(2, time=f.START + timedelta(minutes=15), event_id="z"),
        ]
    )
    assert state.view.status == "Rescheduled"


def _check_incremental_equals_replay(data: st.DataObject, wires: list[dict[str, Any]]) -> None:
    """Each fold continues the previous state's replay when the event sorts last (and
    the first event starts one): after every step, the view and projection must be what
    replaying the kept events from scratch gives, as a state loaded from bytes does.
    Old states are folded again (a branch), so continuing one never changes another."""
    with_copies = wires + data.draw(st.lists(st.sampled_from(wires), max_size=len(wires)))
    arrival = data.draw(st.permutations(with_copies))
    state: BookingState | None = None
    states: list[BookingState] = []
    for wire in arrival:
        state = fold(state, f.event(wire)).state
        states.append(state)
        assert _fingerprint(state) == _fingerprint(_replayed(state))
        assert BookingState.from_bytes(state.to_bytes()).view == state.view
    branch = data.draw(st.sampled_from(states))
    before = _fingerprint(branch)
    for wire in data.draw(st.lists(st.sampled_from(wires), min_size=2, max_size=2)):
        grown = fold(branch, f.event(wire)).state
        assert _fingerprint(grown) == _fingerprint(_replayed(grown))
        assert _fingerprint(branch) == before == _fingerprint(_replayed(branch))


def _replayed(state: BookingState) -> BookingState:
    """The same state without the fold's cached replay: its view is a replay from scratch."""
    return BookingState(state.booking_id, state.events, state.version, None, state.losers)


@_PROPERTY
@given(data=st.data(), wires=adversarial_events())
def test_the_incremental_fold_equals_the_full_replay_adversarial(
    data: st.DataObject, wires: list[dict[str, Any]]
) -> None:
    _check_incremental_equals_replay(data, wires)


@_PROPERTY
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_the_incremental_fold_equals_the_full_replay_realistic_in_orgs(
    data: st.DataObject, seed: int
) -> None:
    _check_incremental_equals_replay(data, _realistic_events_in_orgs(seed))


def test_view_fields_are_built_in_order() -> None:
    # The fold builds the view positionally (a named tuple without its __new__): every
    # field must get its own value, whichever of the same type it sits next to.
    replay = _Replay("b-1")
    for name in _Replay.__slots__:
        if name not in (
            "booking_id",
            "history",
            "rejected",
            "left",
            "related_org",
            "named",
            "only_named",
        ):
            setattr(replay, name, f"<{name}>")
    replay.related_org = replay.salesforce_org
    replay.named = {"<salesforce_org>", None, "x"}
    current = replay.view()
    assert current.status == "<phase> (Reassigned by User)"
    assert str(current.related) == "<related>"
    for name in set(_Replay.__slots__) & set(BookingView._fields):
        if name not in ("history", "related"):  # last_sequence among them
            assert getattr(current, name) == (f"<{name}>" if name != "booking_id" else "b-1")
    assert (current.history, current.rejected_reassignments, current.left_orgs) == ((), (), ())
    assert current.withdrawn_orgs == (None, "x")
    assert current.last_time is None
