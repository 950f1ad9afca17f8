"""The fold of docs/event-contract.md: statuses, reassignment rules, duplicates, bounds, storage."""

from __future__ import annotations

import random
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
    completion_event,
    fold,
    stored_event,
)
from streams.core.projection import project
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
                page=draw(st.sampled_from(_PAGES)),
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
                page=draw(st.sampled_from(_PAGES)),
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


def _fingerprint(state: BookingState) -> tuple[Any, ...]:
    projection = project(state)
    return (state.view, None if projection is None else projection.fields)


def _check_order_independence(data: st.DataObject, wires: list[dict[str, Any]]) -> None:
    reference = f.fold_dicts(wires)
    with_copies = wires + data.draw(st.lists(st.sampled_from(wires), max_size=len(wires)))
    shuffled = data.draw(st.permutations(with_copies))
    state = f.fold_dicts(shuffled)
    assert _fingerprint(state) == _fingerprint(reference)
    assert state.version == reference.version == len(wires)
    assert BookingState.from_bytes(state.to_bytes()).view == reference.view


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
