"""The sink's driver (streams/worker/pipeline/sink_driver.py) with a scripted writer, no I/O:
pause on the API limit, back-off on an outage, let-go on a rebalance, revoked
partitions, the abandoned attempt, and the healing's fallbacks reaching the agent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import pytest

from streams.core.sink_plan import Candidate
from streams.salesforce.healing import Fallback
from streams.salesforce.session import RecordError
from streams.salesforce.writer import WriteOutcome
from streams.worker.pipeline.sink_driver import Settled, SinkDriver
from tests.unit.worker.pipeline.scripted_sink import (
    POLL_S,
    FakeConsumer,
    Rec,
    ScriptedWriter,
    backpressure,
    candidate,
    gated,
    until,
    written,
)


class Sink:
    """The agent's side: what went back to the topic, what was applied, `synced`."""

    def __init__(self, writer: ScriptedWriter, consumer: FakeConsumer | None = None) -> None:
        self.writer = writer
        self.consumer = consumer or FakeConsumer()
        self.handed_back: list[str] = []
        self.applied: list[Settled[Rec]] = []
        self.synced: dict[str, int] = {}
        self.driver: SinkDriver[Rec] = SinkDriver(
            writer, self.consumer, hand_back=self._hand_back, apply=self._apply, poll_s=POLL_S
        )

    async def _hand_back(self, candidates: Sequence[Candidate[Rec]]) -> None:
        self.handed_back += [c.projection.booking_id for c in candidates]

    async def _apply(self, settled: Sequence[Settled[Rec]]) -> None:
        for item in settled:
            self.applied.append(item)
            if item.outcome.status != "retryable" and item.owned():
                self.synced[item.candidate.projection.booking_id] = (
                    item.candidate.projection.version
                )

    async def batch(self, *candidates: Candidate[Rec]) -> None:
        held = self.driver.hold()
        await asyncio.wait_for(self.driver.write(held, candidates), timeout=5)

    def start(self, *candidates: Candidate[Rec]) -> asyncio.Task[None]:
        return asyncio.ensure_future(self.batch(*candidates))


async def test_the_api_limit_pauses_hands_back_and_retries_after_the_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(
        ScriptedWriter(backpressure("REQUEST_LIMIT_EXCEEDED", 0.3, finished=["a"]), written())
    )
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="streams.worker.pipeline.sink"):
        await sink.batch(candidate("a"), candidate("b"), candidate("c"))
    # What finished before the limit is applied; the rest went back before the wait.
    assert sink.synced == {"a": 1}
    assert sink.handed_back == ["b", "c"]
    assert time.monotonic() - start >= 0.3, "the pause is waited out, holding nothing"
    assert "Salesforce API limit reached" in caplog.text
    assert "limit: handed 2 unwritten projections back" in caplog.text
    # The handed-back records come again: written after the pause, nothing dropped.
    await sink.batch(candidate("b"), candidate("c"))
    assert sink.writer.calls == [["a", "b", "c"], ["b", "c"]]
    assert sink.synced == {"a": 1, "b": 1, "c": 1}


async def test_an_outage_hands_back_with_backoff_until_salesforce_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The writer gives up at its attempt deadline with its backoff as `retry_after`.
    sink = Sink(
        ScriptedWriter(
            backpressure("UNAVAILABLE", 0.2), backpressure("UNAVAILABLE", 0.4), written()
        )
    )
    with caplog.at_level(logging.INFO, logger="streams.worker.pipeline.sink"):
        for wait in (0.2, 0.4):
            start = time.monotonic()
            await sink.batch(candidate("a"), candidate("b", partition=1))
            assert time.monotonic() - start >= wait
    assert sink.handed_back == ["a", "b", "a", "b"]
    assert sink.synced == {}
    assert "Salesforce unavailable" in caplog.text
    assert "unavailable: handed 2 unwritten projections back" in caplog.text
    assert "unavailable: handed 2 unwritten projections back" in caplog.text
    await sink.batch(candidate("a"), candidate("b", partition=1))
    assert sink.synced == {"a": 1, "b": 1}
    assert len(sink.writer.calls) == 3


async def test_a_batch_read_during_a_pause_goes_back_untried() -> None:
    consumer = FakeConsumer()
    sink = Sink(ScriptedWriter(backpressure("UNAVAILABLE", 0.6), written()), consumer)
    first = sink.start(candidate("a"))
    await until(lambda: sink.handed_back == ["a"])
    consumer.rebalance_begins()  # cuts the wait short: the revoke step never waits
    await first
    start = time.monotonic()
    await sink.batch(candidate("b"))
    assert sink.writer.calls == [["a"]], "nothing is tried before retry_after"
    assert sink.handed_back == ["a", "b"]
    assert time.monotonic() - start > 0.2, "the rest of the pause is waited out"


async def test_a_rebalance_mid_attempt_hands_back_at_once_and_ignores_the_late_answer() -> None:
    consumer = FakeConsumer()
    gate = asyncio.Event()
    sink = Sink(ScriptedWriter(gated(gate)), consumer)
    task = sink.start(candidate("a"), candidate("b"))
    await until(lambda: sink.writer.calls != [])
    consumer.rebalance_begins()
    await asyncio.wait_for(task, timeout=1)  # without waiting for Salesforce
    assert sink.handed_back == ["a", "b"]
    gate.set()  # Salesforce answers the abandoned attempt
    await until(lambda: sink.writer.running == 0)
    await asyncio.sleep(POLL_S)
    assert sink.applied == []
    assert sink.synced == {}


async def test_once_the_flow_is_suspended_unwritten_projections_are_let_go() -> None:
    consumer = FakeConsumer()
    gate = asyncio.Event()
    sink = Sink(ScriptedWriter(gated(gate)), consumer)
    task = sink.start(candidate("a"), candidate("b", partition=1))
    await until(lambda: sink.writer.calls != [])
    consumer.rebalance_begins()
    consumer.flow = False
    await asyncio.wait_for(task, timeout=1)
    # Neither written nor handed back: the ack guard commits none of them, and each
    # partition's owner reads them again.
    assert sink.handed_back == []
    assert sink.applied == []
    gate.set()


async def test_records_of_revoked_partitions_are_left_to_their_new_owner() -> None:
    consumer = FakeConsumer()
    consumer.revoked = {1}
    sink = Sink(ScriptedWriter(written()), consumer)
    await sink.batch(candidate("a"), candidate("b", partition=1))
    assert sink.writer.calls == [["a"]]
    assert sink.handed_back == []
    assert sink.synced == {"a": 1}


async def test_a_partition_revoked_during_the_attempt_gets_no_synced_row() -> None:
    consumer = FakeConsumer()

    async def revoking(bookings: list[str]) -> list[WriteOutcome]:
        consumer.revoked.add(1)
        return await written()(bookings)

    sink = Sink(ScriptedWriter(revoking), consumer)
    await sink.batch(candidate("a"), candidate("b", partition=1))
    assert [s.candidate.projection.booking_id for s in sink.applied] == ["a", "b"]
    assert sink.synced == {"a": 1}, "b's row belongs to the partition's new owner"
    assert sink.handed_back == []


async def abandoned_attempt(consumer: FakeConsumer, gate: asyncio.Event) -> Sink:
    """A sink whose attempt at "a" a rebalance made it stop waiting for: the attempt runs
    on until `gate` is set, then writes whatever it is given next."""
    sink = Sink(ScriptedWriter(gated(gate), written()), consumer)
    first = sink.start(candidate("a"))
    await until(lambda: sink.writer.calls != [])
    consumer.rebalance_begins()
    await asyncio.wait_for(first, timeout=1)
    return sink


async def test_the_next_attempt_waits_for_the_abandoned_one() -> None:
    consumer = FakeConsumer()
    gate = asyncio.Event()
    sink = await abandoned_attempt(consumer, gate)
    # The handed-back record comes again while the abandoned attempt still runs.
    second = sink.start(candidate("a"))
    await asyncio.sleep(0.2)
    assert not second.done(), "one attempt at a time"
    assert len(sink.writer.calls) == 1
    gate.set()
    await asyncio.wait_for(second, timeout=1)
    assert sink.writer.calls == [["a"], ["a"]]
    assert sink.writer.most_running == 1
    assert len(sink.applied) == 1, "the abandoned attempt's outcome is never applied"
    assert sink.synced == {"a": 1}


async def test_a_rebalance_while_waiting_for_the_abandoned_attempt_lets_go() -> None:
    consumer = FakeConsumer()
    gate = asyncio.Event()
    sink = await abandoned_attempt(consumer, gate)
    second = sink.start(candidate("b"))
    await asyncio.sleep(0.05)
    consumer.rebalance_begins()
    await asyncio.wait_for(second, timeout=1)
    assert sink.handed_back == ["a", "b"]
    assert len(sink.writer.calls) == 1
    gate.set()


async def test_the_healing_fallbacks_reach_the_agent_with_their_outcome() -> None:
    fallback = Fallback("OwnerId", "owner-fallback", "005OLD", "005NEW", "INACTIVE_OWNER_OR_USER")
    sink = Sink(ScriptedWriter(written(fallbacks=[fallback])))
    await sink.batch(candidate("a"))
    assert [s.outcome.fallbacks for s in sink.applied] == [(fallback,)]


async def test_retryable_records_are_tried_again_at_once() -> None:
    sink = Sink(ScriptedWriter(written(retryable=["b"]), written()))
    await sink.batch(candidate("a"), candidate("b"))
    assert sink.writer.calls == [["a", "b"], ["b"]]
    assert sink.synced == {"a": 1, "b": 1}
    assert sink.handed_back == []


async def test_rejected_and_fenced_records_are_done() -> None:
    async def refused(bookings: list[str]) -> list[WriteOutcome]:
        error = RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", "no")
        return [WriteOutcome("a", "rejected", errors=[error]), WriteOutcome("b", "fenced")]

    sink = Sink(ScriptedWriter(refused))
    await sink.batch(candidate("a"), candidate("b"))
    assert len(sink.writer.calls) == 1
    assert sink.handed_back == []
    assert [s.outcome.status for s in sink.applied] == ["rejected", "fenced"]


async def test_stopping_mid_attempt_hands_everything_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer()
    gate = asyncio.Event()
    sink = Sink(ScriptedWriter(gated(gate)), consumer)
    with caplog.at_level(logging.INFO, logger="streams.worker.pipeline.sink"):
        task = sink.start(candidate("a"), candidate("b"))
        await until(lambda: sink.writer.calls != [])
        consumer.stop = True
        await asyncio.wait_for(task, timeout=1)
    assert sink.handed_back == ["a", "b"]
    assert "stopping: handed 2 unwritten projections back" in caplog.text
    gate.set()
