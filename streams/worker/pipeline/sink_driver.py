"""The sink's driver: when to write, when to wait, when to let go of a batch.

`SinkDriver.write(held, candidates)` writes one batch's planned projections through a
writer (streams/salesforce/writer.py) and hands each outcome to `apply` (the agent:
`synced`, the dead-letter topic, metrics). It never holds a batch it has not handed
back while it waits, because Faust's revoke step waits for the agents
(`consumer.wait_empty`) and a held batch would hold every partition of the worker
hostage (docs/architecture.md, "The sink's failure paths"). Its rules:

- Outcomes: written, fenced or rejected records are done; "retryable" ones (rows still
  locked at the attempt's deadline) are tried again at once.
- Backpressure (the writer's `Backpressure`: REQUEST_LIMIT_EXCEEDED, Salesforce
  unavailable until the attempt's deadline, an unexpected error): the outcomes that came
  first are applied, the unwritten projections are handed back (`hand_back`: to the
  topic), and nothing is tried before `retry_after` has passed; a batch read meanwhile
  is handed back at once. The wait ends early when a rebalance begins or the worker
  stops. Nothing is dropped. While other orgs share the sink (`rests` False,
  streams/worker/pipeline/org_sinks.py) the driver does not wait out the pause: the
  unwritten projections go to `keep` (the org's lane, which tries them again after the
  pause in the background) instead of the topic, and the sink leaves this org's new
  projections waiting meanwhile.
- Let-go: when a rebalance begins while a batch is in hand (`Held.letting_go`), even
  mid-request or mid-pause, the driver stops waiting at once. Unwritten projections are
  handed back while the flow is active, and dropped once it is suspended: the ack guard
  (streams/transport/acks.py) then commits none of them and the partition's owner
  reads them again. The worker stopping hands them back.
- Revoked partitions: projections whose partition this worker no longer owns
  (`Consumer.owns`) are left to the new owner, neither written nor handed back; an
  outcome is applied with `Settled.owned()` false, so no `synced` row is written for
  a partition revoked meanwhile.
- The abandoned attempt: an attempt the driver stopped waiting for runs on (its request
  may still land, where the version fence refuses it if it became older than the
  Event); its outcomes are never applied, and the next attempt waits for it first, so
  the writer runs one attempt at a time.

The driver does no I/O of its own: the consumer's state, the hand-back and the writer
are given to it (tests/unit/worker/pipeline/test_sink_driver.py drives it with a scripted writer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from streams.core.projection import Projection
from streams.core.sink_plan import Candidate
from streams.salesforce.org_registry import DEFAULT_ORG
from streams.salesforce.writer import Backpressure, WriteOutcome
from streams.worker.watch import metrics

# The sink's logger: one log to read (and filter, streams/worker/process/log_filters.py) for it.
log = logging.getLogger("streams.worker.pipeline.sink")

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)

# How often a wait on Salesforce looks for a rebalance or a stop.
POLL_S = 0.1


class Consumer(Protocol[M_contra]):
    """What the driver reads of the consumer (the Faust app in the worker)."""

    def stopping(self) -> bool:
        """The worker is stopping."""

    def rebalances(self) -> int:
        """Rebalances begun so far (counted before the revoke step waits for agents)."""

    def flow_active(self) -> bool:
        """Records flow (False once a rebalance has suspended the flow)."""

    def owns(self, record: M_contra) -> bool:
        """The record's consumer generation is current and its partition assigned to
        this worker and not revoked."""


class Writer(Protocol):
    """One attempt at writing projections: outcomes in input order, or `Backpressure`."""

    async def write(self, items: Sequence[Projection]) -> list[WriteOutcome]: ...


class Held(Generic[M]):
    """The batch in hand: the rebalance it was taken in."""

    def __init__(self, consumer: Consumer[M]) -> None:
        self._consumer = consumer
        self.rebalances = consumer.rebalances()

    def letting_go(self) -> bool:
        """A rebalance has begun since the batch was taken, or the flow is suspended:
        hand everything back now, so the revoke step never waits."""
        return self._consumer.rebalances() != self.rebalances or not self._consumer.flow_active()

    def owns(self, record: M) -> bool:
        """Whether this worker still owns the record's partition, as the ack guard
        judges it: no rebalance since the batch was taken, and `Consumer.owns`."""
        return not self.letting_go() and self._consumer.owns(record)


@dataclass(frozen=True)
class Settled(Generic[M]):
    """One outcome for the agent to apply, with the projection it came from."""

    candidate: Candidate[M]
    outcome: WriteOutcome
    held: Held[M]

    def owned(self) -> bool:
        """Whether the record's `synced` row is still this worker's to write (judged
        when asked: the agent asks as it applies)."""
        return self.held.owns(self.candidate.meta)


class _LetGo(Exception):
    """The worker stops or a rebalance began during an attempt: stop waiting for it."""


class SinkDriver(Generic[M]):
    def __init__(
        self,
        writer: Writer,
        consumer: Consumer[M],
        *,
        hand_back: Callable[[Sequence[Candidate[M]]], Awaitable[None]],
        apply: Callable[[Sequence[Settled[M]]], Awaitable[None]],
        org: str = DEFAULT_ORG,
        rests: Callable[[], bool] = lambda: True,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        # The org it writes to: its metrics' `org` label, and named in its log lines.
        self.org = org
        # Whether a pause may hold the agent (one org); False while other orgs share
        # the sink (streams/worker/pipeline/org_sinks.py): their batches must not wait.
        self._rests = rests
        self.consumer = consumer
        self._send_back = hand_back
        self._apply = apply
        self._poll_s = poll_s
        self._clock = clock
        # Salesforce asked us to wait: nothing is tried before this `clock()` value.
        self.pause_until = 0.0
        # Where a pause sets unwritten projections aside while other orgs share the
        # sink (the org's lane, streams/worker/pipeline/org_sinks.py); None: the topic.
        self.keep: Callable[[Sequence[Candidate[M]]], None] | None = None
        # What `write` holds unwritten now (the commit cap reads it: org_sinks.py).
        self.in_hand: dict[str, Candidate[M]] = {}
        # The last attempt ended in backpressure (an outage, the limit, an error).
        self.failing = False
        # The last attempt the driver stopped waiting for, while it runs on.
        self.abandoned: asyncio.Future[list[WriteOutcome]] | None = None

    def rests(self) -> bool:
        """Whether a pause may hold the agent (no other org shares the sink)."""
        return self._rests()

    def paused(self) -> bool:
        """Salesforce asked this driver to wait and the wait is not over."""
        return self._clock() < self.pause_until

    def hold(self) -> Held[M]:
        """Call as a batch is taken (before decoding it): the rebalance it belongs to."""
        return Held(self.consumer)

    async def write(self, held: Held[M], candidates: Sequence[Candidate[M]]) -> None:
        """Write `candidates` (one per booking) until each is done, handed back or let
        go; returns when nothing of the batch is held."""
        pending = {c.projection.booking_id: c for c in candidates}
        self.in_hand = pending
        try:
            await self._write(held, pending)
        finally:
            self.in_hand = {}

    async def _write(self, held: Held[M], pending: dict[str, Candidate[M]]) -> None:
        while pending:
            if self.consumer.stopping():
                await self._hand_back(pending, "stopping")
                return
            if held.letting_go():
                await self._let_go(pending)
                return
            self._drop_revoked(pending, held)
            if not pending:
                return
            if self.paused():
                # Read during a pause: back to the topic (or its org's lane), for after it.
                await self._set_aside(pending, held, "paused")
                return
            try:
                outcomes = await self._attempt(pending, held)
            except _LetGo:
                if self.consumer.stopping():
                    await self._hand_back(pending, "stopping")
                else:
                    await self._let_go(pending)
                return
            except Backpressure as exc:
                self.failing = True
                await self._settle(pending, exc.outcomes, held)
                metrics.SALESFORCE_ERRORS.labels(exc.code, self.org).inc()
                self._report(exc, len(pending))
                await self._pause_and_hand_back(pending, held, exc.retry_after, _WHY[exc.code])
                return
            self.failing = False
            await self._settle(pending, outcomes, held)
            # Left in `pending`: rows still locked at the deadline; tried again at once.

    def _report(self, exc: Backpressure, unwritten: int) -> None:
        if exc.code == "REQUEST_LIMIT_EXCEEDED":
            log.error(
                "org %s: Salesforce API limit reached (%s); sink paused %.0fs, %d records "
                "unwritten",
                self.org,
                exc.cause,
                exc.retry_after,
                unwritten,
            )
        elif exc.code == "UNAVAILABLE":
            log.warning(
                "org %s: Salesforce unavailable (%s); %d records unwritten",
                self.org,
                exc.cause,
                unwritten,
            )
        else:
            log.error(
                "org %s: sink write failed; %d records unwritten",
                self.org,
                unwritten,
                exc_info=exc.cause,
            )

    async def _settle(
        self,
        pending: dict[str, Candidate[M]],
        outcomes: Sequence[WriteOutcome],
        held: Held[M],
    ) -> None:
        settled = [
            Settled(pending[o.external_id], o, held) for o in outcomes if o.external_id in pending
        ]
        await self._apply(settled)
        for item in settled:
            if item.outcome.status != "retryable":
                del pending[item.outcome.external_id]

    def _drop_revoked(self, pending: dict[str, Candidate[M]], held: Held[M]) -> None:
        """Leave projections of partitions this worker no longer owns to their new owner.

        Reached when a rebalance ended while the batch was in hand (its records belong to
        an older consumer generation): the ack guard does not commit them, so the owner
        reads them again from the committed offset and writes the newest versions.
        """
        revoked = [b for b, c in pending.items() if not held.owns(c.meta)]
        for booking in revoked:
            del pending[booking]
        if revoked:
            metrics.PROJECTIONS_SKIPPED.labels("partition-revoked").inc(len(revoked))
            log.warning("partitions revoked: left %d projections to their new owner", len(revoked))

    async def _pause_and_hand_back(
        self, pending: dict[str, Candidate[M]], held: Held[M], pause: float, why: str
    ) -> None:
        """Nothing more is tried for `pause` seconds. The unwritten projections go back
        to the topic first, so the wait holds nothing unwritten."""
        self.pause_until = max(self.pause_until, self._clock() + pause)
        await self._set_aside(pending, held, why)

    async def _set_aside(self, pending: dict[str, Candidate[M]], held: Held[M], why: str) -> None:
        """Unwritten projections during a pause: while other orgs share the sink, kept
        by this org's lane (`keep`), which tries them again after the pause without
        holding the agent; otherwise back to the topic, and the pause waited out."""
        if self.keep is not None and not self.rests():
            self.keep(list(pending.values()))
            metrics.PROJECTIONS_SKIPPED.labels("kept-for-after-pause").inc(len(pending))
            log.warning(
                "org %s: %s: kept %d unwritten projections for after the pause",
                self.org,
                why,
                len(pending),
            )
            pending.clear()
            return
        await self._hand_back(pending, why)
        await self._rest(held)

    async def _rest(self, held: Held[M]) -> None:
        """Wait out the pause, holding nothing unwritten; cut short by a rebalance or stop.

        The records of this batch stay unacknowledged meanwhile (Faust acknowledges when
        the agent is done with them), but they have been handed back. Not while other
        orgs share the sink (`rests`): then the pause only stops this driver's writes."""
        while self.paused():
            if self.consumer.stopping() or held.letting_go() or not self.rests():
                return
            await asyncio.sleep(min(self._poll_s, max(0.0, self.pause_until - self._clock())))

    async def _let_go(self, pending: dict[str, Candidate[M]]) -> None:
        """A rebalance has begun with projections unwritten. Once the flow is suspended
        the ack guard commits none of the batch, so each partition's owner after the
        rebalance reads them again: drop them. Before that, hand them back."""
        if self.consumer.flow_active():
            await self._hand_back(pending, "rebalance")
            return
        metrics.PROJECTIONS_SKIPPED.labels("partition-revoked").inc(len(pending))
        log.warning(
            "rebalance: dropped %d unwritten projections, read again by their owner", len(pending)
        )
        pending.clear()

    async def _attempt(self, pending: dict[str, Candidate[M]], held: Held[M]) -> list[WriteOutcome]:
        """One try at writing what is pending, as a task the driver stops waiting for
        as soon as the worker stops or a rebalance begins (`_LetGo`)."""
        if self.abandoned is not None and not self.abandoned.done():
            # The previous batch's abandoned attempt still has the writer: wait for it.
            await self._until_done(self.abandoned, held)
        projections = [c.projection for c in pending.values()]
        task = asyncio.ensure_future(self.writer.write(projections))
        try:
            await self._until_done(task, held)
        except _LetGo:
            task.add_done_callback(_forget)
            self.abandoned = task
            raise
        return task.result()

    async def _until_done(self, task: asyncio.Future[list[WriteOutcome]], held: Held[M]) -> None:
        while not task.done():
            if self.consumer.stopping() or held.letting_go():
                raise _LetGo
            await asyncio.wait({task}, timeout=self._poll_s)

    async def _hand_back(self, pending: dict[str, Candidate[M]], why: str) -> None:
        """Send unwritten projections back to the topic, for this worker after a pause
        or a restart, or for whoever owns the partition next."""
        await self._send_back(list(pending.values()))
        metrics.PROJECTIONS_SKIPPED.labels("handed-back").inc(len(pending))
        log.warning("%s: handed %d unwritten projections back to the topic", why, len(pending))
        pending.clear()


# The hand-back's reason in the log, by backpressure code.
_WHY = {"REQUEST_LIMIT_EXCEEDED": "limit", "UNAVAILABLE": "unavailable", "UNEXPECTED": "unexpected"}


def _forget(task: asyncio.Future[list[WriteOutcome]]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    exc = task.exception()
    log.info(
        "abandoned Salesforce attempt ended with %r",
        exc.cause if isinstance(exc, Backpressure) else exc,
    )
