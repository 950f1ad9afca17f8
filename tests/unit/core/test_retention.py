"""When a booking's state expires, and its marker (streams/core/retention.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.core import retention as r
from streams.core.fold import BookingState
from tests import factories as f

RETENTION = timedelta(days=400)
END = f.START + timedelta(minutes=30)


@pytest.mark.parametrize("ending", [f.completed, f.canceled, f.no_show])
def test_a_terminal_synced_booking_expires_after_end_plus_retention(ending: object) -> None:
    state = f.fold_dicts([f.scheduled(), ending(2)])  # type: ignore[operator]
    after = END + RETENTION
    assert r.may_expire(state, after, RETENTION, synced=True)
    assert not r.may_expire(state, after - timedelta(seconds=1), RETENTION, synced=True)


def test_a_booking_within_retention_or_not_synced_or_not_terminal_is_kept() -> None:
    done = f.fold_dicts([f.scheduled(), f.completed(2)])
    later = END + RETENTION + timedelta(days=1)
    assert not r.may_expire(done, later, RETENTION, synced=False)
    live = f.fold_dicts([f.scheduled()])
    assert r.expires_at(live, RETENTION) is None
    assert not r.may_expire(live, later, RETENTION, synced=True)


def test_the_marker_is_a_few_dozen_bytes_and_reads_back() -> None:
    state = f.fold_dicts([f.scheduled(), f.rescheduled(2), f.canceled(3)])
    mark = r.marker(state)
    assert r.is_marker(mark)
    assert len(mark) <= 48 < len(state.to_bytes()) // 10
    expired = r.read_marker(mark)
    assert (expired.version, expired.phase) == (3, "Canceled")
    assert expired.end == state.view.end


def test_a_marker_is_no_state_and_a_state_is_no_marker() -> None:
    state = f.fold_dicts([f.scheduled(), f.completed(2)])
    with pytest.raises(ValueError, match="unexpected character"):  # not even JSON
        BookingState.from_bytes(r.marker(state))
    assert not r.is_marker(state.to_bytes())


def test_only_a_terminal_booking_has_a_marker() -> None:
    with pytest.raises(ValueError, match="not terminal"):
        r.marker(f.fold_dicts([f.scheduled()]))
