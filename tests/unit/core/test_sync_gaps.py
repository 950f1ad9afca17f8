from __future__ import annotations

import pytest

from streams.core.sync_gaps import SyncGaps, encode_synced, handled_version, is_rejected


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
    rejected = encode_synced(5, rejected=True)
    assert gaps.sweep([(b"a", 5, rejected)]) == []
    assert gaps.sweep([(b"a", 5, rejected)]) == []


@pytest.mark.parametrize("rejected", [False, True])
@pytest.mark.parametrize("version", [1, 2, 7_000_000])
def test_a_synced_value_decodes_to_what_was_encoded(version: int, rejected: bool) -> None:
    value = encode_synced(version, rejected=rejected)
    assert handled_version(value) == version
    assert is_rejected(value) is rejected


def test_the_written_and_rejected_encodings_differ() -> None:
    assert encode_synced(3) == 3  # rows written before the rule had a home read the same
    assert encode_synced(3, rejected=True) == -3
    assert encode_synced(3) != encode_synced(3, rejected=True)


def test_no_row_means_nothing_handled() -> None:
    assert handled_version(0) == 0
    assert not is_rejected(0)


def test_version_zero_cannot_be_encoded() -> None:
    # -0 == 0: a rejected version 0 would read back as written.
    with pytest.raises(ValueError, match="start at 1"):
        encode_synced(0, rejected=True)
