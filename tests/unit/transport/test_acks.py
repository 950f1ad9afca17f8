"""The commit guard (streams/transport/acks.py `acknowledged`, fed by
streams/transport/tables.py `CHANGELOG_WRITES`): a commit waits until the table
changelog writes made before it are acknowledged, and is skipped when they cannot be.
Plain futures stand for Faust's `FutureMessage`s. The commit cap (`capped`): no commit
past a record the sink holds unwritten. The head rule (`holds_commit`): no commit past
the record at the committed offset until it is acknowledged or known absent."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP
from intervaltree import IntervalTree

from streams.transport.acks import Consumer, acknowledged, capped, holds_commit
from streams.transport.tables import ChangelogWrites


def futures(n: int) -> list[asyncio.Future[Any]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(n)]


def running() -> bool:
    return True


async def test_writes_already_acknowledged_commit_at_once() -> None:
    writes = futures(2)
    for write in writes:
        write.set_result("metadata")
    assert await acknowledged(writes, running)
    assert await acknowledged([], running)


async def test_a_commit_waits_for_writes_still_on_their_way() -> None:
    writes = futures(3)
    loop = asyncio.get_running_loop()
    for delay, write in zip((0.05, 0.15, 0.3), writes, strict=True):
        loop.call_later(delay, write.set_result, "metadata")
    assert await acknowledged(writes, running)
    assert all(write.done() for write in writes)


async def test_a_failed_write_skips_the_commit() -> None:
    writes = futures(2)
    writes[0].set_result("metadata")
    writes[1].set_exception(ConnectionError("broker gone"))
    assert not await acknowledged(writes, running)
    cancelled = futures(1)
    cancelled[0].cancel()
    assert not await acknowledged(cancelled, running)


async def test_a_stopped_producer_or_no_answer_skips_the_commit() -> None:
    never = futures(1)
    assert not await acknowledged(never, lambda: False)
    assert not await acknowledged(never, running, patience_s=0.25)
    assert not never[0].done()


async def test_the_table_keeps_writes_until_the_broker_acknowledges_them() -> None:
    writes = ChangelogWrites()
    first, second = futures(2)
    writes.track(first)
    writes.track(second)
    assert set(writes.snapshot()) == {first, second}
    first.set_result("metadata")
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert writes.snapshot() == [second]


class Resends:
    """A table's re-send: the slots handed back, each call a new write."""

    def __init__(self, writes: ChangelogWrites) -> None:
        self.writes = writes
        self.sent: list[tuple[list[Hashable], asyncio.Future[Any]]] = []

    def __call__(self, slots: list[Hashable]) -> None:
        again = futures(1)[0]
        self.writes.track(again, resend=self)
        for slot in slots:
            self.writes.claim(again, slot)
        self.sent.append((slots, again))


B1, B2 = ("bookings", 0, b"b-1"), ("bookings", 0, b"b-2")


async def test_a_failed_write_is_sent_again_and_the_commit_waits_for_the_new_one() -> None:
    writes = ChangelogWrites()
    (first,) = futures(1)
    resend = Resends(writes)
    writes.track(first, resend=resend)
    writes.claim(first, B1)
    writes.claim(first, B2)
    first.set_exception(KafkaTimeoutError())
    await asyncio.sleep(0)
    assert [slots for slots, _ in resend.sent] == [[B1, B2]]
    again = resend.sent[0][1]
    assert writes.snapshot() == [again], "the failed write's place taken by its re-send"
    assert writes.resent == 2
    assert not await acknowledged(writes.snapshot(), running, patience_s=0.2)
    again.set_result("metadata")
    assert await acknowledged(writes.snapshot(), running)


async def test_a_failed_batch_sends_again_only_the_keys_no_newer_write_followed() -> None:
    writes = ChangelogWrites()
    old, newer = futures(2)
    resend = Resends(writes)
    writes.track(old, resend=resend)
    writes.claim(old, B1)
    writes.claim(old, B2)
    writes.track(newer, resend=resend)
    writes.claim(newer, B2)
    old.set_exception(KafkaTimeoutError())
    await asyncio.sleep(0)
    assert [slots for slots, _ in resend.sent] == [[B1]]


@pytest.mark.parametrize(
    "case", ["a newer write of the key followed", "cancelled (the producer stopped)"]
)
async def test_a_failed_write_is_not_sent_again(case: str) -> None:
    writes = ChangelogWrites()
    old, newer = futures(2)
    resend = Resends(writes)
    writes.track(old, resend=resend)
    writes.claim(old, B1)
    if case.startswith("a newer"):
        writes.track(newer, resend=resend)
        writes.claim(newer, B1)
        old.set_exception(KafkaTimeoutError())
    else:
        old.cancel()
    await asyncio.sleep(0)
    assert resend.sent == []
    assert writes.snapshot() == ([newer] if case.startswith("a newer") else [])


P0, P1, OTHER = TP("activity-projections", 0), TP("activity-projections", 1), TP("events", 0)


@pytest.mark.parametrize(
    ("offsets", "held", "committed"),
    [
        ({P0: 120, P1: 40}, [], {P0: 120, P1: 40}),  # nothing held: as Faust asks
        ({P0: 120, P1: 40}, [{P0: 97}], {P0: 97, P1: 40}),  # not past a held record
        ({P0: 120}, [{P0: 130}], {P0: 120}),  # held beyond the commit: no change
        ({P0: 120}, [{P0: 110}, {P0: 100, OTHER: 3}], {P0: 100}),  # the lowest of all
        ({OTHER: 9}, [{P0: 1}], {OTHER: 9}),  # another partition's hold: no change
    ],
)
def test_the_commit_cap_never_commits_past_a_record_the_sink_holds(
    offsets: dict[TP, int], held: list[dict[TP, int]], committed: dict[TP, int]
) -> None:
    assert capped(offsets, held) == committed


@pytest.mark.parametrize(
    ("committed", "lowest_acked", "gap_begins", "held"),
    [
        (2585, 2585, [], False),  # the committed record is acknowledged
        (2585, 2586, [], True),  # it is not: Faust 0.15.3 committed past it
        (2585, 2590, [], True),
        (2585, 2590, [2585], False),  # 2585.. are not in the log
        (2585, 2590, [2587], True),
    ],
)
def test_no_commit_passes_an_unacknowledged_record_at_the_committed_offset(
    committed: int, lowest_acked: int, gap_begins: list[int], held: bool
) -> None:
    assert holds_commit(committed, lowest_acked, gap_begins) is held


def consumer_with(committed: int | None, acked: list[int], gap: tuple[int, int] | None) -> Any:
    """The app's consumer with only what `_new_offset` reads (Faust's state for one
    partition)."""
    consumer = object.__new__(Consumer)
    consumer._acked = defaultdict(list, {TP_EVENTS: list(acked)})
    consumer._acked_index = defaultdict(set, {TP_EVENTS: set(acked)})
    consumer._committed_offset = defaultdict(lambda: None, {TP_EVENTS: committed})
    consumer._gap = defaultdict(IntervalTree)
    if gap is not None:
        consumer._gap[TP_EVENTS].addi(*gap)
    return consumer


TP_EVENTS = TP("booking-events", 0)


@pytest.mark.parametrize(
    ("committed", "acked", "gap", "new_offset"),
    [
        (10, [10, 11, 12], None, 13),
        (10, [11, 12, 13], None, None),  # faust-streaming#606: Faust gives 14, losing 10
        (10, [12, 13], (10, 12), 14),  # 10 and 11 are not in the log
        (10, [10, 11, 13], None, 12),
        (None, [5, 6], None, 7),  # nothing committed yet: Faust's rule
    ],
)
def test_the_offset_to_commit_starts_at_the_committed_record(
    committed: int | None, acked: list[int], gap: tuple[int, int] | None, new_offset: int | None
) -> None:
    assert consumer_with(committed, acked, gap)._new_offset(TP_EVENTS) == new_offset
