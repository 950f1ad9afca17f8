"""The due index: which bookings need a timer's attention, and from when. Pure.

A timer's sweep (completion, reconcile, retention) costs what is due, not what the
worker holds: each booking that will need a timer has an entry in a table sorted by
the time it needs it, and a sweep reads only the entries whose time has come (a key
range), whatever the table's size.

An entry's key is `kind | time (ms since the epoch, zero-padded) | booking id`, so in
a sorted store (RocksDB) the entries of one kind are in time order, and "everything
of kind k due by t" is the key range [`slice_start(k)`, `slice_end(k, t)`).

- completion (`c`): a Scheduled/Rescheduled booking, at its end time. The sweep adds
  the grace when it reads (`until = now - grace`), so a changed grace needs no rewrite.
- retention (`x`): a terminal booking (Completed, Canceled, No-show), at its end time;
  the sweep reads `until = now - retention`.
  Both derive from the state alone: `standing_entries(before)` and
  `standing_entries(after)` say which entry a fold removes and which it adds (a
  reschedule to later moves the completion entry; completing swaps it for a retention
  entry).
- sent (`s`): the projections one fold batch sent from one partition, at the time it
  sent them: one entry for the batch's bookings and versions (`sent_entries`), not one
  per booking, since an entry is a table write and a changelog record and a batch
  sends one projection per booking it changed. Not derivable from the state (it
  depends on the clock and on `synced`). The reconcile sweep reads a due one, drops it
  when Salesforce has every version in it (the common case), and otherwise leaves a
  reconcile entry for each booking behind (`settle_sent`).
- reconcile (`r`): one booking whose projection Salesforce may stay behind, at the time
  its batch sent it: left by the sweep for the bookings of a `sent` entry that were
  behind, and by a re-send; removed once Salesforce has caught up (`reconcile_action`).

An entry's value names the partition the booking lives in (a timer outside a stream
writes and deletes under it) and, for a reconcile entry, the projection version it was
added for (once `synced` has it, the sweep removes the entry without reading the
booking) and the version already re-sent. A sent entry's key names its batch instead
of a booking (`<partition>-<offset of the batch's last event there>-<chunk>`), and its
value lists the bookings and versions (`sent_value`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, NamedTuple

import orjson

from streams.core.fold import BookingState, to_epoch_us
from streams.core.retention import TERMINAL_PHASES
from streams.core.synced import handled_version
from streams.core.view import REASSIGNABLE_PHASES

Kind = Literal["completion", "reconcile", "retention", "sent"]

_PREFIX: dict[Kind, bytes] = {
    "completion": b"c|",
    "reconcile": b"r|",
    "retention": b"x|",
    "sent": b"s|",
}
_KIND = {prefix[:1]: kind for kind, prefix in _PREFIX.items()}
_WIDTH = 15  # milliseconds since the epoch, zero-padded: sorts as numbers until year 33658


class DueEntry(NamedTuple):
    kind: Kind
    at_ms: int
    booking: bytes


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (times before it clamp to 0)."""
    return max(0, to_epoch_us(moment) // 1000)


def entry_key(kind: Kind, at_ms: int, booking: bytes) -> bytes:
    return b"%s%0*d|%s" % (_PREFIX[kind], _WIDTH, max(0, at_ms), booking)


def parse_key(key: bytes) -> DueEntry:
    prefix, at, booking = key.split(b"|", 2)
    return DueEntry(_KIND[prefix], int(at), booking)


def slice_start(kind: Kind) -> bytes:
    """The first key an entry of `kind` can have."""
    return _PREFIX[kind]


def slice_end(kind: Kind, until_ms: int) -> bytes:
    """The first key after every entry of `kind` due at or before `until_ms`."""
    return b"%s%0*d" % (_PREFIX[kind], _WIDTH, max(0, until_ms) + 1)


def is_due(key: bytes, kind: Kind, until_ms: int) -> bool:
    """Whether `key` lies in the due slice of `kind` (for stores that are not sorted)."""
    return slice_start(kind) <= key < slice_end(kind, until_ms)


def standing_entries(state: BookingState | None) -> frozenset[bytes]:
    """The completion and retention entries a booking in `state` has in the index."""
    if state is None:
        return frozenset()
    view = state.view
    if view.end is None:
        return frozenset()
    booking = state.booking_id.encode()
    end_ms = epoch_ms(view.end)
    if view.scheduled and view.phase in REASSIGNABLE_PHASES and not state.full:
        # A full history cannot take the completion event: never due.
        return frozenset({entry_key("completion", end_ms, booking)})
    if view.phase in TERMINAL_PHASES:
        return frozenset({entry_key("retention", end_ms, booking)})
    return frozenset()


class IndexChanges(NamedTuple):
    remove: frozenset[bytes]
    add: frozenset[bytes]


def entry_changes(before: BookingState | None, after: BookingState) -> IndexChanges:
    """The entries a fold from `before` to `after` removes and adds (none if unchanged)."""
    old, new = standing_entries(before), standing_entries(after)
    return IndexChanges(old - new, new - old)


# Values: b"<partition>" (completion, retention), b"<partition>:<version re-sent>:<version>"
# (reconcile: the projection version it was added for; 0: re-sent none, or not recorded).


def entry_value(partition: int, resent: int = 0, version: int = 0) -> bytes:
    if version:
        return b"%d:%d:%d" % (partition, resent, version)
    return b"%d:%d" % (partition, resent) if resent else b"%d" % partition


class EntryValue(NamedTuple):
    partition: int
    resent: int = 0
    version: int = 0  # a reconcile entry's projection version (0: not recorded)


def parse_value(raw: bytes) -> EntryValue:
    return EntryValue(*(int(field) for field in raw.split(b":")))


def settled(entry: EntryValue, synced: int) -> bool:
    """A reconcile entry whose version Salesforce has (written or rejected): done, with
    no need to read the booking. A later change of the booking added its own entry.
    False for an entry without a version (then the booking's version decides)."""
    return 0 < entry.version <= handled_version(synced)


# At most this many bookings in one sent entry: a catch-up batch can change thousands of
# one partition's bookings, and an entry is one Kafka record (~30 bytes a booking here).
SENT_ENTRY_MAX = 1000


class SentBatch(NamedTuple):
    """A sent entry's value: the partition, and each booking with the version sent."""

    partition: int
    bookings: tuple[tuple[bytes, int], ...]


def sent_value(partition: int, bookings: Sequence[tuple[bytes, int]]) -> bytes:
    # Booking ids are event subjects (text), so JSON holds them as they are.
    return orjson.dumps([partition, [[key.decode(), version] for key, version in bookings]])


def parse_sent_value(raw: bytes) -> SentBatch:
    partition, bookings = orjson.loads(raw)
    return SentBatch(partition, tuple((key.encode(), version) for key, version in bookings))


def sent_entries(
    at_ms: int, partition: int, offset: int, bookings: Sequence[tuple[bytes, int]]
) -> list[tuple[bytes, bytes]]:
    """The sent entries (key, value) for the projections a batch sent from `partition`:
    `bookings` (booking, version) in the order sent, at most `SENT_ENTRY_MAX` an entry.
    `offset` (the batch's last event in the partition) makes the keys the batch's own.

    >>> [(k, parse_sent_value(v)) for k, v in sent_entries(1000, 2, 41, [(b"b-1", 3)])]
    [(b's|000000000001000|2-41-0', SentBatch(partition=2, bookings=((b'b-1', 3),)))]
    """
    return [
        (
            entry_key("sent", at_ms, b"%d-%d-%d" % (partition, offset, chunk)),
            sent_value(partition, bookings[start : start + SENT_ENTRY_MAX]),
        )
        for chunk, start in enumerate(range(0, len(bookings), SENT_ENTRY_MAX))
    ]


def settle_sent(
    batch: SentBatch,
    synced_of: Callable[[bytes], int | None],
    in_flight: Callable[[bytes, int], bool],
) -> list[tuple[bytes, int]] | None:
    """What the reconcile sweep does with a due sent entry: None to leave it (a booking
    Salesforce does not have yet is still on its way to this worker's sink: `in_flight`),
    else the bookings still behind, each to get a reconcile entry before the sent entry
    goes (none: Salesforce has every version, written or rejected, by `synced_of`).

    >>> batch = SentBatch(0, ((b"b-1", 2), (b"b-2", 5)))
    >>> settle_sent(batch, {b"b-1": 2, b"b-2": 4}.get, lambda key, version: False)
    [(b'b-2', 5)]
    >>> settle_sent(batch, {b"b-1": 2, b"b-2": 4}.get, lambda key, version: True) is None
    True
    """
    behind = [
        (key, version)
        for key, version in batch.bookings
        if handled_version(synced_of(key) or 0) < version
    ]
    if any(in_flight(key, version) for key, version in behind):
        return None
    return behind


ReconcileAction = Literal["done", "wait", "park", "resend", "give-up"]


def reconcile_action(
    version: int | None, synced: int, *, in_flight: bool, resent: int, served: bool = True
) -> ReconcileAction:
    """What the reconcile sweep does with a due reconcile entry (see
    streams/worker/pipeline/reconcile.py for why projections can stay behind).

    version: the booking's state version (None: no state, or expired); synced: its
    `synced` value; in_flight: this worker's sink has not read that projection yet;
    resent: the version this entry already re-sent (0: none); served: the sink can write
    the booking's projection now (False: its org is not served, streams/core/sink_plan.py).
    - done: Salesforce has that version (written or rejected): remove the entry;
    - wait: the sink is still on its way to it: leave the entry for the next sweep;
    - park: behind because the sink cannot write it yet: leave the entry, re-send
      nothing, look again next sweep (once the org is served it is re-sent, so a
      booking that waited for its org is written without a new event or a replay; the
      sweep forgets an earlier re-send of a parked entry: it met an org that was not
      taking work, so it is not a reason to give up);
    - resend: behind, not in flight: re-send it once, and check again later;
    - give-up: behind after one re-send: remove the entry (each version is re-sent at
      most once, so an outage does not flood the topic); the next change adds a new one.
    """
    if version is None or handled_version(synced) >= version:
        return "done"
    if in_flight:
        return "wait"
    if not served:
        return "park"
    if resent == version:
        return "give-up"
    return "resend"
