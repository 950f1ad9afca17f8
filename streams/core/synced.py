"""The `synced` table's value: what the sink is done with for a booking. Pure.

One int per booking (JSON in the changelog), bit-packed:
- bits 0-31: the projection version the sink has handled; no row reads as 0, nothing
  handled yet (versions start at 1);
- the sign: negative when Salesforce rejected that version (the record went to
  activity-projections.dlq), positive when Salesforce wrote it;
- bits 32 and up: one bit per fallback the sink took to write that version
  (rejections that heal, streams/salesforce/healing.py; `FALLBACK_KINDS`, in bit
  order); a row without them reads as no fallback;
- bit 52: the version fence refused that version (streams/salesforce/fence.py):
  Salesforce already had a newer projection, so the sink is done with it without
  having written it (`status` says so). Below 2**53, the value stays exact in any
  JSON reader of the changelog, and there is room for more fallback kinds below it.

This module is the only reader and writer of that rule: `encode_synced` and the
accessors (`handled_version` on the sink's and the timers' hot paths), or `decode` into
a `SyncedValue` for a reader that wants all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The kinds of fallback, in bit order (append only: the bits are stored).
FALLBACK_KINDS = (
    "owner-on-event",
    "owner-fallback",
    "owner-integration-user",
    "who-resolved",
    "who-dropped",
    "what-dropped",
)
_VERSION_BITS = 32
_VERSION_MASK = (1 << _VERSION_BITS) - 1
# Below 2**53: the value stays exact in any JSON reader of the changelog.
_FENCED_BIT = 1 << 52


def encode_synced(
    version: int, *, rejected: bool = False, fallbacks: Iterable[str] = (), fenced: bool = False
) -> int:
    """The `synced` value for `version`: written, or (negative) rejected, with the
    fallbacks taken to write it (kinds of `FALLBACK_KINDS`), or refused by the version
    fence (`fenced`: Salesforce already had a newer version; not written)."""
    if version < 1:
        raise ValueError(f"projection versions start at 1, not {version}")
    if version > _VERSION_MASK:
        raise ValueError(f"projection version {version} does not fit {_VERSION_BITS} bits")
    flags = 0
    for kind in fallbacks:
        if kind not in FALLBACK_KINDS:
            raise ValueError(f"unknown fallback kind {kind!r}")
        flags |= 1 << FALLBACK_KINDS.index(kind)
    value = version | (flags << _VERSION_BITS) | (_FENCED_BIT if fenced else 0)
    return -value if rejected else value


def handled_version(synced: int) -> int:
    """The version the sink is done with, written or rejected (0: none yet)."""
    return abs(synced) & _VERSION_MASK


def is_rejected(synced: int) -> bool:
    """Whether Salesforce rejected the handled version (rather than wrote it)."""
    return synced < 0


def fallbacks_taken(synced: int) -> tuple[str, ...]:
    """The fallbacks the sink took to write the handled version, in `FALLBACK_KINDS` order."""
    flags = (abs(synced) & ~_FENCED_BIT) >> _VERSION_BITS
    return tuple(kind for bit, kind in enumerate(FALLBACK_KINDS) if flags & (1 << bit))


def was_fenced(synced: int) -> bool:
    """Whether the version fence refused the handled version: Salesforce already had a
    newer projection of the booking when the sink wrote it."""
    return bool(abs(synced) & _FENCED_BIT)


@dataclass(frozen=True, slots=True)
class SyncedValue:
    """A `synced` value decoded: `version` 0 when nothing is handled yet."""

    version: int
    rejected: bool = False
    fallbacks: tuple[str, ...] = ()
    fenced: bool = False

    def encode(self) -> int:
        return encode_synced(
            self.version, rejected=self.rejected, fallbacks=self.fallbacks, fenced=self.fenced
        )


def decode(synced: int) -> SyncedValue:
    """The `synced` value (0 for no row) as a record."""
    return SyncedValue(
        handled_version(synced), is_rejected(synced), fallbacks_taken(synced), was_fenced(synced)
    )
