"""Why projections are re-sent, and the `synced` value rule. Pure.

Every projection normally reaches the sink once. A few paths can still lose one: a
worker killed between writing the `bookings` changelog and sending the projection (its
events are read again by the partition's next owner, which re-sends the projection then:
`streams.worker.ingest.resend_on_redelivery`; this timer is the backstop), or Faust
acknowledging a record the sink's batch had not yet taken when a worker stops.
The reconcile timer compares, per booking the fold changed, the version the fold has
reached with the version the sink has handled (`synced`), and re-sends a projection that
stayed behind for two sweep intervals: in-flight work catches up meanwhile and is left
alone. Each (booking, version) is re-sent at most once, so an outage does not flood the
topic. The decision per booking is `streams.core.due_index.reconcile_action`.
"""

from __future__ import annotations

from collections.abc import Iterable

# The `synced` table's value for a booking: the projection version the sink has handled,
# as is when Salesforce wrote it, negated when Salesforce rejected it (the record went to
# activity-projections.dlq). No row reads as 0: nothing handled yet. Versions start at 1,
# so the sign is never ambiguous. Above the version's 32 bits, one bit per fallback the
# sink took to write that version (rejections that heal, streams/salesforce/healing.py;
# `FALLBACK_KINDS`); a value written before fallbacks existed has none. One more bit, far
# above the fallbacks' (room for more kinds below it), says the version fence refused
# that version: Salesforce already had a newer projection (streams/salesforce/fence.py),
# so the sink is done with it without having written it (`status` says so). These
# functions are the only readers and writers of that rule.

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
