"""Scripted parts for the sink's unit tests, no I/O: the transport's record (`Rec`), a
consumer whose rebalances and revocations a test drives, and a writer answering each
attempt with the next scripted step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from streams.core.projection import Projection
from streams.core.sink_plan import Candidate
from streams.salesforce.healing import Fallback
from streams.salesforce.writer import Backpressure, BackpressureCode, WriteOutcome

POLL_S = 0.01


@dataclass(frozen=True)
class Rec:
    """The transport's record, as the driver carries it: its partition and offset."""

    booking: str
    partition: int = 0
    offset: int = 0


def candidate(
    booking: str, partition: int = 0, version: int = 1, offset: int = 0
) -> Candidate[Rec]:
    projection = Projection(
        booking_id=booking,
        version=version,
        external_id_field="Booking_Id__c",
        fields={"Booking_Id__c": booking},
        lookup_email=None,
        customer_name=None,
        related_type=None,
    )
    return Candidate(projection, Rec(booking, partition, offset))


class FakeConsumer:
    def __init__(self) -> None:
        self.rebalance_count = 0
        self.flow = True
        self.stop = False
        self.revoked: set[int] = set()

    def stopping(self) -> bool:
        return self.stop

    def rebalances(self) -> int:
        return self.rebalance_count

    def flow_active(self) -> bool:
        return self.flow

    def owns(self, record: Rec) -> bool:
        return record.partition not in self.revoked

    def rebalance_begins(self) -> None:
        self.rebalance_count += 1


Step = Callable[[list[str]], Awaitable[list[WriteOutcome]]]


def written(*, fallbacks: Sequence[Fallback] = (), retryable: Sequence[str] = ()) -> Step:
    async def step(bookings: list[str]) -> list[WriteOutcome]:
        return [
            WriteOutcome(b, "retryable")
            if b in retryable
            else WriteOutcome(b, "updated", fallbacks=tuple(fallbacks))
            for b in bookings
        ]

    return step


def backpressure(
    code: BackpressureCode, retry_after: float, *, finished: Sequence[str] = ()
) -> Step:
    async def step(bookings: list[str]) -> list[WriteOutcome]:
        raise Backpressure(
            code,
            retry_after,
            cause=RuntimeError(code),
            outcomes=[WriteOutcome(b, "created") for b in finished],
        )

    return step


def gated(gate: asyncio.Event, then: Step | None = None) -> Step:
    """An attempt that answers only once `gate` is set (a slow Salesforce)."""

    async def step(bookings: list[str]) -> list[WriteOutcome]:
        await gate.wait()
        return await (then or written())(bookings)

    return step


class ScriptedWriter:
    """Answers each attempt with the next step; past the script, every record is written."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls: list[list[str]] = []
        self.items: list[Projection] = []
        self.running = 0
        self.most_running = 0

    async def write(self, items: Sequence[Projection]) -> list[WriteOutcome]:
        bookings = [p.booking_id for p in items]
        self.calls.append(bookings)
        self.items.extend(items)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            step = self.steps.pop(0) if self.steps else written()
            return await step(bookings)
        finally:
            self.running -= 1


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(POLL_S)
