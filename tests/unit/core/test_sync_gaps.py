from __future__ import annotations

import pytest

from streams.core.sync_gaps import encode_synced, handled_version, is_rejected


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
