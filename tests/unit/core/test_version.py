"""The projection version (streams/core/fold.py, `BookingState.version`): the number of
distinct event copies folded. Salesforce's version fence refuses a lower version than
the Event has (streams/salesforce/fence.py), so the version must be the same for the
same set of copies on every worker, after any rebuild or replay, and must grow with
every copy that changes what the booking projects."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.fold import MAX_EVENTS_PER_BOOKING, BookingState, fold
from streams.core.projection import PRESETS, project
from tests import factories as f

_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lifecycle() -> list[dict[str, Any]]:
    return [f.scheduled(), f.rescheduled(2, reason="Sick"), f.canceled(3), f.no_show(4)]


def _conflicts() -> list[dict[str, Any]]:
    """Two producer-bug copies of event 3: same (source, id), other content."""
    return [f.canceled(3, reason="Travel"), f.canceled(3, reason="Moved")]


@_PROPERTY
@given(data=st.data())
def test_the_same_copies_in_any_order_and_repetition_reach_the_same_version(
    data: st.DataObject,
) -> None:
    copies = _lifecycle() + _conflicts()
    with_repeats = copies + data.draw(st.lists(st.sampled_from(copies), max_size=8))
    order = data.draw(st.permutations(with_repeats))
    state = f.fold_dicts(order)
    # 4 distinct events + 2 losing copies of event 3 (three copies of it in all).
    assert state.version == len(state.events) + len(state.losers) == 6
    assert state.events == f.fold_dicts(copies).events


@_PROPERTY
@given(data=st.data())
def test_the_version_grows_by_one_with_every_change_and_never_otherwise(
    data: st.DataObject,
) -> None:
    copies = _lifecycle() + _conflicts()
    order = data.draw(st.permutations(copies + copies[:3]))
    state: BookingState | None = None
    for wire in order:
        before = 0 if state is None else state.version
        result = fold(state, f.event(wire))
        state = result.state
        assert state.version == before + (1 if result.changed else 0)


def test_a_conflicting_copy_arriving_after_the_winner_still_counts() -> None:
    travel, moved = _conflicts()  # '"reason":"Moved"' sorts first: it is kept
    base = f.fold_dicts([f.scheduled(), f.rescheduled(2)])
    winner_first = fold(fold(base, f.event(moved)).state, f.event(travel))
    loser_first = fold(fold(base, f.event(travel)).state, f.event(moved))
    assert winner_first.outcome == loser_first.outcome == "conflicting-duplicate"
    assert winner_first.state.version == loser_first.state.version == base.version + 2
    assert winner_first.state.view == loser_first.state.view
    # Redelivered, the losing copy changes nothing.
    again = fold(winner_first.state, f.event(travel))
    assert (again.changed, again.state.version) == (False, winner_first.state.version)
    assert again.dead_letter == f.event(travel)


def test_the_version_and_the_losers_survive_the_changelog() -> None:
    state = f.fold_dicts([*_lifecycle(), *_conflicts()])
    loaded = BookingState.from_bytes(state.to_bytes())
    assert (loaded.version, loaded.losers) == (state.version, state.losers)
    assert BookingState.version_of(state.to_bytes()) == state.version
    travel, _ = _conflicts()
    assert fold(loaded, f.event(travel)).changed is False


def test_a_state_written_before_the_losers_existed_loads() -> None:
    state = f.fold_dicts(_lifecycle())
    assert b"losers" not in state.to_bytes()
    assert BookingState.from_bytes(state.to_bytes()).losers == ()


def test_losing_copies_are_counted_up_to_the_history_bound() -> None:
    state = f.fold_dicts([f.scheduled(), f.canceled(2, reason="r")])
    for n in range(MAX_EVENTS_PER_BOOKING + 5):
        state = fold(state, f.event(f.canceled(2, reason=f"z{n:04d}"))).state
    assert len(state.losers) == MAX_EVENTS_PER_BOOKING


def test_the_projection_writes_the_version_in_every_field_mapping() -> None:
    state = f.fold_dicts(_lifecycle())
    for mapping in PRESETS.values():
        projection = project(state, mapping)
        assert projection is not None
        assert projection.fields[mapping.version_field] == projection.version == state.version
        assert mapping.version_field == "Projection_Version__c"
