"""The due index's keys, slices and entry rules (streams/core/due_index.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.core import due_index as d
from streams.core.fold import MAX_EVENTS_PER_BOOKING, BookingState
from streams.core.synced import encode_synced
from tests import factories as f

BOOKING = f.BOOKING_ID.encode()
END = f.START + timedelta(minutes=30)  # the factories' default duration


def entry(kind: d.Kind, at: datetime) -> bytes:
    return d.entry_key(kind, d.epoch_ms(at), BOOKING)


def test_a_key_reads_back_as_its_entry() -> None:
    key = d.entry_key("completion", 1_767_225_600_123, b"b-1|odd|id")
    assert d.parse_key(key) == d.DueEntry("completion", 1_767_225_600_123, b"b-1|odd|id")


def test_keys_of_one_kind_sort_by_time_whatever_the_booking() -> None:
    times = [0, 9, 10, 1_000, 1_767_225_600_000, 99_999_999_999_999]
    keys = [d.entry_key("reconcile", t, b"zz-%d" % (len(times) - i)) for i, t in enumerate(times)]
    assert sorted(keys) == keys


@pytest.mark.parametrize("kind", ["completion", "reconcile", "retention", "sent"])
def test_the_due_slice_holds_exactly_the_entries_due_by_then(kind: d.Kind) -> None:
    keys = {t: d.entry_key(kind, t, b"b-%d" % t) for t in (5, 999, 1_000, 1_001, 50_000)}
    kinds: tuple[d.Kind, ...] = ("completion", "reconcile", "retention", "sent")
    others = [d.entry_key(k, 10, b"b") for k in kinds]
    start, end = d.slice_start(kind), d.slice_end(kind, 1_000)
    in_slice = sorted(k for k in [*keys.values(), *others] if start <= k < end)
    assert in_slice == sorted([keys[5], keys[999], keys[1_000], d.entry_key(kind, 10, b"b")])
    assert all(d.is_due(k, kind, 1_000) == (start <= k < end) for k in keys.values())


def test_a_scheduled_booking_waits_for_completion_at_its_end() -> None:
    state = f.fold_dicts([f.scheduled()])
    assert d.standing_entries(state) == {entry("completion", END)}


def test_a_booking_rescheduled_to_later_moves_its_completion_entry() -> None:
    before = f.fold_dicts([f.scheduled()])
    later = f.START + timedelta(days=3)
    after = f.fold_dicts([f.rescheduled(2, start=later)], before)
    changes = d.entry_changes(before, after)
    assert changes.remove == {entry("completion", END)}
    assert changes.add == {entry("completion", later + timedelta(minutes=30))}


def test_a_completed_booking_leaves_completion_for_retention() -> None:
    before = f.fold_dicts([f.scheduled()])
    after = f.fold_dicts([f.completed(2)], before)
    assert d.entry_changes(before, after) == d.IndexChanges(
        frozenset({entry("completion", END)}), frozenset({entry("retention", END)})
    )


@pytest.mark.parametrize("ending", [f.canceled, f.no_show])
def test_other_terminal_phases_wait_for_retention(ending: object) -> None:
    state = f.fold_dicts([f.scheduled(), ending(2)])  # type: ignore[operator]
    assert d.standing_entries(state) == {entry("retention", END)}


def test_a_reschedule_after_a_cancellation_waits_for_completion_again() -> None:
    canceled = f.fold_dicts([f.scheduled(), f.canceled(2)])
    later = f.START + timedelta(days=1)
    again = f.fold_dicts([f.rescheduled(3, start=later)], canceled)
    changes = d.entry_changes(canceled, again)
    assert changes.remove == {entry("retention", END)}
    assert changes.add == {entry("completion", later + timedelta(minutes=30))}


def test_a_change_that_keeps_the_end_changes_no_entry() -> None:
    before = f.fold_dicts([f.scheduled()])
    after = f.fold_dicts([f.reassigned(2)], before)
    assert d.entry_changes(before, after) == d.IndexChanges(frozenset(), frozenset())


def test_a_first_event_adds_its_entry_and_a_requested_booking_has_none() -> None:
    state = f.fold_dicts([f.scheduled()])
    assert d.entry_changes(None, state).add == {entry("completion", END)}
    assert d.standing_entries(f.fold_dicts([f.requested()])) == frozenset()


def test_a_full_history_is_never_due_for_completion() -> None:
    state = f.fold_dicts([f.scheduled()])
    full = BookingState(state.booking_id, state.events * MAX_EVENTS_PER_BOOKING, 1)
    assert full.full
    assert d.standing_entries(full) == frozenset()


def test_an_entry_value_names_its_partition_what_was_resent_and_its_version() -> None:
    assert d.parse_value(d.entry_value(3)) == d.EntryValue(3, 0, 0)
    assert d.parse_value(d.entry_value(0, resent=7)) == d.EntryValue(0, 7, 0)
    assert d.parse_value(d.entry_value(2, version=5)) == d.EntryValue(2, 0, 5)
    assert d.parse_value(d.entry_value(1, resent=5, version=5)) == d.EntryValue(1, 5, 5)


@pytest.mark.parametrize(
    ("version", "synced", "settled"),
    [
        (5, encode_synced(5), True),  # written
        (5, encode_synced(7), True),  # a later version written: this one is past
        (5, encode_synced(5, rejected=True), True),  # refused: handled, nothing to resend
        (5, encode_synced(4), False),  # behind: the booking's version decides
        (5, 0, False),  # never synced
        (0, encode_synced(9), False),  # an entry without a version: read the booking
    ],
)
def test_a_reconcile_entry_is_settled_once_salesforce_has_its_version(
    version: int, synced: int, settled: bool
) -> None:
    assert d.settled(d.EntryValue(0, 0, version), synced) is settled


def test_times_before_the_epoch_clamp_to_zero() -> None:
    assert d.epoch_ms(datetime(1960, 1, 1, tzinfo=UTC)) == 0


@pytest.mark.parametrize(
    ("version", "synced", "in_flight", "resent", "action"),
    [
        (3, 3, False, 0, "done"),  # written
        (3, -3, False, 0, "done"),  # rejected: handled too
        (3, 5, False, 0, "done"),
        (None, 0, False, 0, "done"),  # no state (or expired)
        (3, 2, True, 0, "wait"),  # the sink has not read it yet
        (3, 2, False, 0, "resend"),
        (3, 2, False, 2, "resend"),  # an older version was re-sent: this one not yet
        (3, 2, False, 3, "give-up"),  # re-sent once already
    ],
)
def test_the_reconcile_action(
    version: int | None, synced: int, in_flight: bool, resent: int, action: str
) -> None:
    assert d.reconcile_action(version, synced, in_flight=in_flight, resent=resent) == action


@pytest.mark.parametrize(
    ("version", "synced", "in_flight", "resent", "action"),
    [
        (3, 2, False, 0, "park"),  # its org is not served: nothing re-sent, kept
        (3, 2, False, 3, "park"),  # even after a re-send: never given up while it waits
        (3, 2, True, 0, "wait"),  # the sink has not read it yet
        (3, 3, False, 0, "done"),  # written meanwhile (another path)
    ],
)
def test_a_projection_whose_org_is_not_served_is_parked(
    version: int, synced: int, in_flight: bool, resent: int, action: str
) -> None:
    got = d.reconcile_action(version, synced, in_flight=in_flight, resent=resent, served=False)
    assert got == action


def test_a_batch_s_sent_entries_hold_its_bookings_in_order_a_thousand_an_entry() -> None:
    sent = [(b"b-%d" % i, i % 7 + 1) for i in range(d.SENT_ENTRY_MAX * 2 + 1)]
    entries = d.sent_entries(5_000, 3, 812, sent)
    assert [d.parse_key(key) for key, _ in entries] == [
        d.DueEntry("sent", 5_000, b"3-812-%d" % chunk) for chunk in range(3)
    ]
    batches = [d.parse_sent_value(value) for _, value in entries]
    assert {batch.partition for batch in batches} == {3}
    assert [len(batch.bookings) for batch in batches] == [d.SENT_ENTRY_MAX, d.SENT_ENTRY_MAX, 1]
    assert [pair for batch in batches for pair in batch.bookings] == sent
    # Another batch of the partition (a later offset) never overwrites this one's entries.
    assert not {k for k, _ in entries} & {k for k, _ in d.sent_entries(5_000, 3, 813, sent)}


def test_a_sent_entry_keeps_a_booking_id_that_is_any_text() -> None:
    odd = 'b-1|"quoted"\n\u00e9'.encode()
    ((_, value),) = d.sent_entries(1, 0, 0, [(odd, 4)])
    assert d.parse_sent_value(value).bookings == ((odd, 4),)


NOT_READ = {b"b-3"}  # the sink has not read b-3's projection yet


@pytest.mark.parametrize(
    ("synced", "expected"),
    [
        # Salesforce has every version, written or rejected: the entry just goes.
        ({b"b-1": 2, b"b-2": 5, b"b-3": 1}, []),
        ({b"b-1": encode_synced(2, rejected=True), b"b-2": 6, b"b-3": 1}, []),
        # Behind, and read by the sink: a reconcile entry each (b-3, not read yet, is
        # synced already, so it holds nothing up).
        ({b"b-1": 1, b"b-3": 1}, [(b"b-1", 2), (b"b-2", 5)]),
        # Behind and still on its way to the sink: the whole entry waits.
        ({b"b-1": 2, b"b-2": 5}, None),
    ],
)
def test_a_due_sent_entry_settles_from_synced_or_waits_for_the_sink(
    synced: dict[bytes, int], expected: list[tuple[bytes, int]] | None
) -> None:
    batch = d.SentBatch(0, ((b"b-1", 2), (b"b-2", 5), (b"b-3", 1)))
    assert d.settle_sent(batch, synced.get, lambda key, _: key in NOT_READ) == expected
