"""The sink agent: activity-projections -> one sObject Collections upsert per batch and org.

The agent takes a batch, decodes it, plans the writes (streams/core/sink_plan.py: the
newest projection per booking, not yet synced, of this app version) and hands them to
the lanes of their orgs (streams/worker/pipeline/org_sinks.py), each a `SinkDriver`
(streams/worker/pipeline/sink_driver.py: hand-back, pause, let-go on a rebalance, the
abandoned attempt), which writes them through an `EventWriter`
(streams/salesforce/writer.py: related lookup, upserts, healing). The outcomes are
applied here:
- written: `synced` remembers the version, with the fallbacks taken to write it; a
  fallback is logged once per booking;
- refused by the version fence (streams/salesforce/fence.py): Salesforce already has a
  newer projection; done, counted, never dead-lettered or retried;
- rejected (validation): to activity-projections.dlq with Salesforce's error, and
  `synced` remembers the refused version; the rest of the batch is written;
- undecodable: to activity-projections.dlq, never dropped;
- by org: each projection goes to its org's lane, each mark for an org the booking
  left to that org's lane (streams/worker/pipeline/org_sinks.py: one driver, client,
  pause and backoff per org); a projection whose org is not registered, not connected
  or has a full lane is not written, counted (`org-not-served`) and logged; `synced`
  stays behind and the reconcile timer keeps the booking parked until it is served.
`synced` is written only for records whose partition the worker still owns, judged as
the ack guard judges it (`Settled.owned`), not by `consumer.assignment()`, which lags
during the revoke step. A batch that fails in an unexpected way is dead-lettered:
Faust acknowledges a batch whether the agent raises or not. The failure paths as a
whole: docs/architecture.md, "The sink's failure paths".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import cast

import faust
from faust.types import EventT

from streams.core import projection_record
from streams.core.projection import complete_related
from streams.core.projection_record import UndecodableProjection
from streams.core.sink_plan import Candidate, plan_writes
from streams.core.synced import encode_synced, fallbacks_taken, handled_version
from streams.runtime.batches import AdaptiveStream
from streams.salesforce import SalesforceClient, call_threads
from streams.salesforce.healing import Fallback
from streams.salesforce.org_registry import OrgConnection
from streams.salesforce.writer import CallKind, EventWriter, WriteOutcome
from streams.transport.acks import hold_commits
from streams.worker.app import (
    app,
    org_directory,
    ownership,
    projection_sent,
    projections_dlq_topic,
    projections_topic,
    send_record,
    settings,
    sink_progress,
    synced,
)
from streams.worker.pipeline.dead_letter import send_to_dead_letter
from streams.worker.pipeline.ingest import fold_policy
from streams.worker.pipeline.org_sinks import OrgSinks, orgs_written
from streams.worker.pipeline.sink_driver import Held, Settled, SinkDriver
from streams.worker.watch import metrics

log = logging.getLogger(__name__)

Record = EventT[bytes]

# How long the sink waits for the org registry before its first batch (the registry
# topic is read from its start; a broker outage must not stop the sink for good).
REGISTRY_WAIT_S = 30.0


async def dead_letter_projection(event: Record, code: str, message: str) -> None:
    await send_to_dead_letter(projections_dlq_topic, event, code, message)


async def _decode(batch: Sequence[Record]) -> list[Candidate[Record]]:
    """The batch's projections (streams/core/projection_record.py); a record whose value
    is not one goes to activity-projections.dlq with the reason, never dropped."""
    candidates: list[Candidate[Record]] = []
    for event in batch:
        try:
            record = projection_record.decode(event.message.value, event.message.headers)
        except UndecodableProjection as exc:
            await dead_letter_projection(event, "undecodable", exc.reason)
            continue
        candidates.append(
            Candidate(
                record.projection,
                event,
                forced=record.headers.forced,
                app_version=record.headers.app_version,
            )
        )
    return candidates


def _record_handled(
    candidate: Candidate[Record],
    *,
    rejected: bool = False,
    fallbacks: Sequence[Fallback] = (),
    fenced: bool = False,
) -> None:
    """Remember in `synced` that this version is done: written, (negative) rejected, or
    refused by the version fence (`fenced`), so neither the sink nor the reconcile timer
    sends it to Salesforce again; with the fallbacks taken to write it (`status` shows
    them). A fallback is logged, with Salesforce's error, when the booking's previous
    write did not take it already: once per booking, not once per write."""
    event = candidate.meta
    key = candidate.projection.booking_id.encode()
    if fallbacks:
        before = set(fallbacks_taken(synced.under(event).get(key) or 0))
        for fallback in fallbacks:
            if fallback.kind not in before:
                log.warning(
                    "booking %s: Salesforce refused %s %s (%s); wrote %s instead (%s)",
                    candidate.projection.booking_id,
                    fallback.field,
                    fallback.old,
                    fallback.error,
                    fallback.new,
                    fallback.kind,
                )
    value = encode_synced(
        candidate.projection.version,
        rejected=rejected,
        fallbacks=[f.kind for f in fallbacks],
        fenced=fenced,
    )
    synced.under(event).set(key, value)
    if rejected:
        return
    stamp = projection_record.decode_headers(event.message.headers).event_timestamp_ms
    if stamp is not None:
        metrics.END_TO_END_LATENCY.observe(max(0.0, time.time() - stamp / 1000))


def _error_code(outcome: WriteOutcome) -> str:
    return outcome.errors[0].status_code if outcome.errors else "rejected"


def _error_text(outcome: WriteOutcome) -> str:
    return "; ".join(f"{e.status_code}: {e.message}" for e in outcome.errors)


async def apply_outcomes(org: str, settled: Sequence[Settled[Record]]) -> None:
    """Apply what came of each record of one org's lane (the driver drops the done ones
    from its batch). `synced` rows of partitions revoked meanwhile belong to their new
    owner. A departure mark's outcome is counted (and dead-lettered when refused); the
    projection it belongs to is applied once its own write and every mark are done."""
    for item in settled:
        metrics.SALESFORCE_RECORDS.labels(item.outcome.status, org).inc()
        for error in item.outcome.errors:  # none when written
            metrics.SALESFORCE_ERRORS.labels(error.status_code, org).inc()
    own, marks = org_sinks.sort_out(org, settled)
    for item in marks:
        if item.outcome.status == "rejected":
            what = "withdrawal" if item.candidate.projection.withdraw else "mark"
            await dead_letter_projection(
                item.candidate.meta,
                _error_code(item.outcome),
                f"the {what} in org {org}: {_error_text(item.outcome)}",
            )
    for item in own:
        outcome, candidate = item.outcome, item.candidate
        if outcome.written:
            if item.owned():
                _record_handled(candidate, fallbacks=outcome.fallbacks)
        elif outcome.status == "fenced":
            # Salesforce already has a newer projection (the version fence): done.
            metrics.PROJECTIONS_SKIPPED.labels("salesforce-newer").inc()
            if item.owned():
                _record_handled(candidate, fenced=True)  # `status` tells the fence refused
        elif outcome.status == "rejected":
            await dead_letter_projection(candidate.meta, _error_code(outcome), _error_text(outcome))
            if item.owned():
                _record_handled(candidate, rejected=True)
        # "retryable" (rows still locked at the deadline): the driver tries it again.


async def hand_back(candidates: Sequence[Candidate[Record]]) -> None:
    """Send unwritten projections back to activity-projections, for this worker after
    a pause or a restart, or for whoever owns the partition next. Faust acknowledges
    the batch when the agent returns; a SIGKILL acknowledges nothing, so those records
    are simply read again."""
    for candidate in candidates:
        msg = candidate.meta.message
        await send_record(
            projections_topic,
            msg.key,
            msg.value,
            list(msg.headers.items()) if isinstance(msg.headers, Mapping) else msg.headers or (),
            partial(projection_sent, msg.key, candidate.projection.version),
        )


async def write_batch(sinks: OrgSinks[Record], batch: Sequence[Record]) -> None:
    """One sink batch: decoded, planned, offered to the org lanes."""
    held: Held[Record] = sinks.hold()
    candidates = await _decode(batch)
    # Each booking's `synced` row is read under its own (newest) projection event.
    newest_event = {c.projection.booking_id: c.meta for c in candidates}
    plan = plan_writes(
        candidates,
        lambda booking: handled_version(
            synced.under(newest_event[booking]).get(booking.encode()) or 0
        ),
        app_version=str(settings.app.version),
        served=sinks.serves,
    )
    if plan.waiting:
        metrics.PROJECTIONS_SKIPPED.labels("org-not-served").inc(len(plan.waiting))
        orgs = Counter(
            org
            for c in plan.waiting
            for org in orgs_written(c.projection)
            if not sinks.takes_work(org)
        )
        log.warning(
            "not written yet: %s (not registered, not connected, or its lane full)",
            ", ".join(f"{n} for org {org}" for org, n in sorted(orgs.items())),
        )
    metrics.PROJECTIONS_SKIPPED.labels("superseded").inc(plan.superseded)
    metrics.PROJECTIONS_SKIPPED.labels("already-synced").inc(plan.already_synced)
    metrics.PROJECTIONS_SKIPPED.labels("other-app-version").inc(plan.other_app_version)
    await sinks.settle(sinks.offer(held, plan.to_write))


class AppConsumer:
    """The Faust app as the driver reads it; whether a record's partition is still this
    worker's is the one rule of streams/runtime/ownership.py (`ownership`)."""

    def stopping(self) -> bool:
        return bool(app.should_stop)

    def rebalances(self) -> int:
        # Raised by the consumer's rebalance listener before the revoke step waits.
        return int(app.rebalancing_count)

    def flow_active(self) -> bool:
        return bool(app.flow_control.is_active())

    def owns(self, record: Record) -> bool:
        return ownership.owns(record.message)


class _Metrics:
    """One org's writer's API calls and fallbacks, as Prometheus metrics."""

    def __init__(self, org: str) -> None:
        self.org = org

    def api_calls(self, kind: CallKind, count: int) -> None:
        metrics.SALESFORCE_CALLS.labels(kind, self.org).inc(count)

    def api_remaining(self, count: int) -> None:
        metrics.SALESFORCE_API_REMAINING.labels(self.org).set(count)

    def fallback(self, kind: str) -> None:
        metrics.SALESFORCE_FALLBACKS.labels(kind, self.org).inc()


def new_driver(org: str, connection: OrgConnection | None) -> SinkDriver[Record]:
    """The driver of one org's lane: the default org from the worker's settings, a
    registered org from its registry record (its secrets resolved here)."""
    client_settings = (
        settings.salesforce if connection is None else connection.settings(settings.salesforce)
    )
    writer = EventWriter(
        SalesforceClient(client_settings),
        complete_related,
        attempt_deadline=settings.sink.attempt_deadline,
        limit_pause=settings.sink.limit_pause,
        meter=_Metrics(org),
    )
    return SinkDriver(
        writer,
        consumer,
        hand_back=hand_back,
        apply=partial(apply_outcomes, org),
        org=org,
        rests=lambda: not org_sinks.shared(),
    )


async def _set_aside(candidates: Sequence[Candidate[Record]], exc: Exception) -> None:
    """A lane's write failed in an unexpected way: its records to the dead-letter topic."""
    for candidate in candidates:
        await dead_letter_projection(
            candidate.meta, "internal-error", f"{type(exc).__name__}: {exc}"
        )


class Backlogs:
    """Whether a backlog waits (the org lanes then fill their calls): the fold is
    catching up (its batch policy, streams/worker/pipeline/batching.py), or at least a
    sink batch waits behind the sink's last (the consumer's high-water mark), or one of
    them did less than `AFTERGLOW_S` ago: the fold's last catch-up batch is done before
    its projections have all reached the sink (bench-orgs: they trickled in for 5 s
    after it, and each lane wrote what it had at the fold's end, then again)."""

    AFTERGLOW_S = 5.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.sink_backlog = 0
        self._clock = clock
        self._seen = float("-inf")

    def __call__(self) -> bool:
        now = self._clock()
        if fold_policy.catching_up or self.sink_backlog >= settings.sink.batch_size:
            self._seen = now
            return True
        return now - self._seen < self.AFTERGLOW_S


consumer = AppConsumer()
backlogs = Backlogs()
# The sink's lanes, one per org (streams/worker/pipeline/org_sinks.py); the reconcile
# timer asks them too (`writes_steadily`, `waits_for`).
org_sinks: OrgSinks[Record] = OrgSinks(
    consumer,
    new_driver,
    lambda: org_directory.registry.orgs,
    mapping=settings.app.mapping(),
    failed=_set_aside,
    position=lambda event: (event.message.tp, event.message.offset),
    catching_up=backlogs,
)
# What the lanes hold unwritten is never committed (streams/transport/acks.py).
hold_commits(org_sinks.held_offsets)
# The threads every org's Salesforce calls share.
call_threads.configure(settings.sink.max_calls)


@app.agent(projections_topic, name="sink")
async def sink(stream: faust.StreamT[bytes]) -> None:
    # A restarted worker knows its orgs before its first batch: until the registry is
    # read, every registered org's bookings would wait for the reconcile timer.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(org_directory.caught_up.wait(), REGISTRY_WAIT_S)
    # The concrete Stream: StreamT's stub lacks take_events.
    concrete = cast(AdaptiveStream, stream)
    async for batch in concrete.take_events(
        settings.sink.batch_size, within=settings.sink.batch_window
    ):
        try:
            # How much waits behind this batch: with a backlog (a backfill), the org
            # lanes fill their calls (org_sinks.py).
            backlogs.sink_backlog = concrete.backlog_behind(batch)
            await write_batch(org_sinks, batch)
        except Exception as exc:  # Faust would ack the batch anyway: set it aside
            log.exception("sink batch failed; dead-lettering its %d records", len(batch))
            for event in batch:
                await dead_letter_projection(
                    event, "internal-error", f"{type(exc).__name__}: {exc}"
                )
        for event in batch:
            sink_progress.read(event.message.partition, event.message.offset)
