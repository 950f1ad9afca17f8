from __future__ import annotations

from streams.core.sync_gaps import SyncGaps, handled_version


def test_in_flight_work_is_left_alone_for_one_sweep() -> None:
    gaps = SyncGaps()
    assert gaps.sweep([(b"a", 3, 2)]) == []
    assert gaps.sweep([(b"a", 3, 3)]) == []  # the sink caught up meanwhile


def test_a_booking_behind_for_two_sweeps_is_resent_once() -> None:
    gaps = SyncGaps()
    assert gaps.sweep([(b"a", 3, 2), (b"b", 1, 1)]) == []
    assert gaps.sweep([(b"a", 3, 2), (b"b", 1, 1)]) == [b"a"]
    assert gaps.sweep([(b"a", 3, 2)]) == []  # still behind: Salesforce down, not resent


def test_a_newer_version_restarts_the_count() -> None:
    gaps = SyncGaps()
    gaps.sweep([(b"a", 3, 2)])
    assert gaps.sweep([(b"a", 4, 2)]) == []
    assert gaps.sweep([(b"a", 4, 2)]) == [b"a"]


def test_rejected_versions_count_as_handled() -> None:
    gaps = SyncGaps()
    assert handled_version(-5) == 5
    assert gaps.sweep([(b"a", 5, -5)]) == []
    assert gaps.sweep([(b"a", 5, -5)]) == []
