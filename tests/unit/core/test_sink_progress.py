"""In-flight projections: sent by this process and not yet read by its sink."""

from __future__ import annotations

import pytest

from streams.core.sink_progress import SinkProgress

KEY = b"booking-1"


@pytest.mark.parametrize(
    ("sent", "read", "asked", "in_flight"),
    [
        (None, [], 3, False),  # never sent by this process: not known to be in flight
        ((3, 0, 10), [], 3, True),
        ((3, 0, 10), [(0, 9)], 3, True),
        ((3, 0, 10), [(0, 10)], 3, False),  # the sink read it
        ((3, 0, 10), [(0, 11)], 3, False),
        ((3, 0, 10), [(1, 50)], 3, True),  # another partition's progress says nothing
        ((3, 0, 10), [(0, 12), (0, 4)], 3, False),  # progress never goes back
        ((3, 0, 10), [], 4, False),  # a newer version than the one sent
        ((4, 0, 10), [], 3, False),
    ],
)
def test_in_flight(
    sent: tuple[int, int, int] | None,
    read: list[tuple[int, int]],
    asked: int,
    in_flight: bool,
) -> None:
    progress = SinkProgress()
    if sent is not None:
        progress.sent(KEY, *sent)
    for partition, offset in read:
        progress.read(partition, offset)

    assert progress.in_flight(KEY, asked) is in_flight


def test_forget_read_keeps_only_what_is_in_flight() -> None:
    progress = SinkProgress()
    progress.sent(b"a", 1, 0, 5)
    progress.sent(b"b", 1, 0, 9)
    progress.sent(b"c", 2, 1, 3)
    progress.read(0, 7)

    progress.forget_read()

    assert len(progress) == 2
    assert progress.in_flight(b"b", 1)
    assert progress.in_flight(b"c", 2)
    assert not progress.in_flight(b"a", 1)


def test_the_cap_is_honoured_and_dropped_work_still_counts_as_in_flight() -> None:
    progress = SinkProgress(max_entries=100)
    for n in range(1_000):
        progress.sent(b"b-%d" % n, 1, n % 4, n)
    assert len(progress) == 100
    # Dropped at the cap, and the sink not past it yet: treated as in flight...
    assert progress.in_flight(b"b-0", 1, partition=0)
    assert not progress.in_flight(b"b-0", 1)  # (without its partition nothing is known)
    # ...until the sink has read past the highest dropped offset of that partition.
    progress.read(0, 896)
    progress.forget_read()
    assert not progress.in_flight(b"b-0", 1, partition=0)
    assert progress.in_flight(b"b-1", 1, partition=1)
    assert progress.in_flight(b"b-999", 1)  # kept: precise


def test_a_re_sent_booking_is_kept_as_the_newest_entry() -> None:
    progress = SinkProgress(max_entries=2)
    progress.sent(b"a", 1, 0, 1)
    progress.sent(b"b", 1, 0, 2)
    progress.sent(b"a", 2, 0, 3)  # a again: b is now the oldest
    progress.sent(b"c", 1, 0, 4)
    assert progress.in_flight(b"a", 2)
    assert progress.in_flight(b"c", 1)
    assert len(progress) == 2
