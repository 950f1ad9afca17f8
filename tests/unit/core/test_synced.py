"""The `synced` table's value (streams/core/synced.py): what it encodes and decodes."""

from __future__ import annotations

import pytest

from streams.core.synced import (
    FALLBACK_KINDS,
    SyncedValue,
    decode,
    encode_synced,
    fallbacks_taken,
    handled_version,
    is_rejected,
    was_fenced,
)


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


@pytest.mark.parametrize("rejected", [False, True])
def test_the_fallbacks_taken_decode_with_the_version(rejected: bool) -> None:
    value = encode_synced(5, rejected=rejected, fallbacks=["who-resolved", "owner-fallback"])
    assert handled_version(value) == 5
    assert is_rejected(value) is rejected
    assert fallbacks_taken(value) == ("owner-fallback", "who-resolved")  # FALLBACK_KINDS order


def test_every_fallback_kind_round_trips_and_old_rows_have_none() -> None:
    for kind in FALLBACK_KINDS:
        assert fallbacks_taken(encode_synced(2**32 - 1, fallbacks=[kind])) == (kind,)
    assert fallbacks_taken(encode_synced(3)) == ()
    assert fallbacks_taken(3) == fallbacks_taken(-3) == fallbacks_taken(0) == ()


def test_an_unknown_fallback_or_a_version_too_large_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="unknown fallback"):
        encode_synced(1, fallbacks=["owner-somewhere"])
    with pytest.raises(ValueError, match="32 bits"):
        encode_synced(2**32)


def test_the_sinks_fallback_kinds_are_the_stored_ones() -> None:
    from streams.salesforce.healing import heal_record
    from streams.salesforce.session import RecordError

    def kinds(field: str, code: str = "ENTITY_IS_DELETED", **known: str | None) -> set[str]:
        record = {"OwnerId": "005A", "WhoId": "003A", "WhatId": "500A"}
        healed = heal_record(
            record,
            [RecordError(code, "gone", (field,))],
            owner_on_event=known.get("owner_on_event"),
            fallback_owner_id=known.get("fallback_owner_id"),
            integration_user_id="005I",
            who_found=known.get("who_found"),
        )
        assert healed is not None
        return {f.kind for f in healed[1]}

    seen = (
        kinds("OwnerId", owner_on_event="005E")
        | kinds("OwnerId", fallback_owner_id="005F")
        | kinds("OwnerId")
        | kinds("WhoId", who_found="003B")
        | kinds("WhoId")
        | kinds("WhatId")
    )
    assert seen == set(FALLBACK_KINDS)


@pytest.mark.parametrize("fallbacks", [(), ("owner-fallback",), FALLBACK_KINDS])
def test_a_fence_refusal_decodes_apart_from_the_version_and_the_fallbacks(
    fallbacks: tuple[str, ...],
) -> None:
    value = encode_synced(2**32 - 1, fenced=True, fallbacks=fallbacks)
    assert was_fenced(value)
    assert handled_version(value) == 2**32 - 1
    assert not is_rejected(value)
    assert fallbacks_taken(value) == tuple(k for k in FALLBACK_KINDS if k in fallbacks)
    assert not was_fenced(encode_synced(3, fallbacks=fallbacks))
    assert [was_fenced(old) for old in (3, -3, 0)] == [False] * 3  # rows written before it
    assert value < 2**53  # exact in any JSON reader of the changelog


@pytest.mark.parametrize(
    "value",
    [
        SyncedValue(1),
        SyncedValue(7, rejected=True),
        SyncedValue(2**32 - 1, fallbacks=("owner-fallback", "what-dropped")),
        SyncedValue(4, fenced=True, fallbacks=FALLBACK_KINDS),
        SyncedValue(9, rejected=True, fenced=True, fallbacks=("who-dropped",)),
    ],
)
def test_a_synced_record_round_trips_through_the_int(value: SyncedValue) -> None:
    assert decode(value.encode()) == value
    assert value.encode() == encode_synced(
        value.version, rejected=value.rejected, fallbacks=value.fallbacks, fenced=value.fenced
    )


def test_no_row_decodes_as_nothing_handled() -> None:
    assert decode(0) == SyncedValue(0)
