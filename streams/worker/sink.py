"""The sink agent: activity-projections -> one sObject Collections upsert per batch.

Failure paths (docs/architecture.md, "The sink's failure paths"), each handled here
because Faust acknowledges a batch's events as soon as this agent stops looking at it,
raising or not:
- Salesforce down, 5xx, timeouts, UNABLE_TO_LOCK_ROW: the client retries with
  backoff; when its deadline passes we keep the batch and try again after the client's
  own backoff (`ACTIVITY_SYNC_SALESFORCE_RETRY_BASE_S`/`_CAP_S`). The stream is held
  meanwhile (back-pressure), nothing is skipped.
- 401: the client re-authenticates.
- REQUEST_LIMIT_EXCEEDED: pause `sink_limit_pause` seconds, report, try again.
- A record Salesforce rejects (validation): to activity-projections.dlq with
  Salesforce's error; the rest of the batch is written.
- The worker stopping while records are still unwritten: they are sent back to
  activity-projections before the batch is acknowledged (a SIGKILL acknowledges
  nothing, so those records are simply read again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import cast

import faust
from faust.types import EventT

from streams.core.projection import Projection, complete_related
from streams.core.sink_plan import Candidate, plan_writes
from streams.core.sync_gaps import encode_synced, handled_version
from streams.salesforce import (
    RequestLimitExceeded,
    SalesforceClient,
    SalesforceUnavailable,
    UpsertOutcome,
)
from streams.worker import headers, metrics
from streams.worker.app import (
    app,
    projections_dlq_topic,
    projections_topic,
    settings,
    sink_progress,
    synced,
)
from streams.worker.dead_letter import send_to_dead_letter

log = logging.getLogger(__name__)

_client: SalesforceClient | None = None


def salesforce() -> SalesforceClient:
    global _client
    if _client is None:
        _client = SalesforceClient(settings.salesforce)
    return _client


def _headers(event: EventT[bytes]) -> dict[str, bytes]:
    raw = event.message.headers or []
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    return {str(name): bytes(value) for name, value in pairs}


async def dead_letter_projection(event: EventT[bytes], code: str, message: str) -> None:
    await send_to_dead_letter(projections_dlq_topic, event, code, message)


async def _decode(batch: Sequence[EventT[bytes]]) -> list[Candidate[EventT[bytes]]]:
    candidates: list[Candidate[EventT[bytes]]] = []
    for event in batch:
        try:
            projection = Projection.from_bytes(event.message.value or b"")
        except Exception as exc:  # anything undecodable is set aside, never dropped
            await dead_letter_projection(event, "undecodable", repr(exc))
            continue
        found = _headers(event)
        version = found.get(headers.APP_VERSION)
        candidates.append(
            Candidate(
                projection,
                event,
                forced=found.get(headers.FORCE) == b"1",
                app_version=version.decode("utf-8", "replace") if version is not None else None,
            )
        )
    return candidates


async def _lookup_related(
    pending: dict[str, Candidate[EventT[bytes]]],
) -> dict[str, tuple[str, str]]:
    emails: dict[str, str] = {}
    for candidate in pending.values():
        email = candidate.projection.lookup_email
        if email:
            emails[email] = candidate.projection.customer_name or email
    if not emails:
        return {}
    client = salesforce()
    calls_before = client.api_calls
    found = await client.resolve_related(
        emails, names=emails, deadline=time.monotonic() + settings.sink_attempt_deadline
    )
    metrics.SALESFORCE_CALLS.labels("lookup").inc(client.api_calls - calls_before)
    return {email: (record.sobject, record.id) for email, record in found.items()}


def _record_handled(candidate: Candidate[EventT[bytes]], *, rejected: bool = False) -> None:
    """Remember in `synced` that this version is done: written, or (negative) rejected,
    so neither the sink nor the reconcile timer sends it to Salesforce again."""
    event = candidate.meta
    value = encode_synced(candidate.projection.version, rejected=rejected)
    synced.set(candidate.projection.booking_id.encode(), value, under=event)
    if rejected:
        return
    stamp = _headers(event).get(headers.EVENT_TIMESTAMP)
    if stamp is not None:
        metrics.END_TO_END_LATENCY.observe(max(0.0, time.time() - int(stamp) / 1000))


async def _apply_outcomes(
    pending: dict[str, Candidate[EventT[bytes]]],
    outcomes: Sequence[UpsertOutcome],
) -> None:
    # `synced` rows of partitions revoked meanwhile belong to their new owner.
    owned = app.consumer.assignment()
    for outcome in outcomes:
        metrics.SALESFORCE_RECORDS.labels(outcome.status).inc()
        candidate = pending.get(outcome.external_id)
        if candidate is None:
            continue
        for error in outcome.errors:  # none when written
            metrics.SALESFORCE_ERRORS.labels(error.status_code).inc()
        if outcome.status in ("created", "updated"):
            if candidate.meta.message.tp in owned:
                _record_handled(candidate)
            del pending[outcome.external_id]
        elif outcome.status == "rejected":
            message = "; ".join(f"{e.status_code}: {e.message}" for e in outcome.errors)
            code = outcome.errors[0].status_code if outcome.errors else "rejected"
            await dead_letter_projection(candidate.meta, code, message)
            if candidate.meta.message.tp in owned:
                _record_handled(candidate, rejected=True)
            del pending[outcome.external_id]
        # "retryable" (rows still locked at the deadline): kept in `pending`, tried again.


async def write_batch(batch: Sequence[EventT[bytes]]) -> None:
    candidates = await _decode(batch)
    # Each booking's `synced` row is read under its own (newest) projection event.
    newest_event = {c.projection.booking_id: c.meta for c in candidates}
    plan = plan_writes(
        candidates,
        lambda booking: handled_version(
            synced.get(booking.encode(), under=newest_event[booking]) or 0
        ),
        app_version=str(settings.app_version),
    )
    metrics.PROJECTIONS_SKIPPED.labels("superseded").inc(plan.superseded)
    metrics.PROJECTIONS_SKIPPED.labels("already-synced").inc(plan.already_synced)
    metrics.PROJECTIONS_SKIPPED.labels("other-app-version").inc(plan.other_app_version)
    pending = {c.projection.booking_id: c for c in plan.to_write}
    attempt = 0
    while pending:
        if app.should_stop:
            await _hand_back(pending)
            return
        _drop_revoked(pending)
        if not pending:
            return
        try:
            await _attempt(pending)
            attempt = 0
            continue
        except RequestLimitExceeded as exc:
            await _apply_outcomes(pending, exc.outcomes)
            metrics.SALESFORCE_ERRORS.labels("REQUEST_LIMIT_EXCEEDED").inc()
            log.error(
                "Salesforce API limit reached (%s); sink paused %.0fs, %d records held",
                exc,
                settings.sink_limit_pause,
                len(pending),
            )
            await app.sleep(settings.sink_limit_pause)
            continue
        except SalesforceUnavailable as exc:
            await _apply_outcomes(pending, exc.outcomes)
            metrics.SALESFORCE_ERRORS.labels("UNAVAILABLE").inc()
            log.warning("Salesforce unavailable (%s); holding %d records", exc, len(pending))
        except Exception:  # unknown failure: hold and retry rather than drop
            metrics.SALESFORCE_ERRORS.labels("UNEXPECTED").inc()
            log.exception("sink write failed; holding %d records", len(pending))
        attempt += 1
        # Returns early when the worker stops, so shutdown is not held up by backoff.
        await app.sleep(salesforce().backoff(attempt))


def _drop_revoked(pending: dict[str, Candidate[EventT[bytes]]]) -> None:
    """Leave projections of partitions this worker no longer owns to their new owner.

    A rebalance during an outage hands the partitions of a held batch to another
    worker, which reads them again from the committed offset and writes the newest
    versions. Writing our older copies after that would make Salesforce stale; the
    `synced` rows for those partitions are no longer ours to write either.
    """
    owned = app.consumer.assignment()
    revoked = [b for b, c in pending.items() if c.meta.message.tp not in owned]
    for booking in revoked:
        del pending[booking]
    if revoked:
        metrics.PROJECTIONS_SKIPPED.labels("partition-revoked").inc(len(revoked))
        log.warning("partitions revoked: left %d projections to their new owner", len(revoked))


async def _attempt(pending: dict[str, Candidate[EventT[bytes]]]) -> None:
    """One try at writing what is pending: related lookup, then the upserts."""
    found = await _lookup_related(pending)
    records = [complete_related(c.projection, found) for c in pending.values()]
    client = salesforce()
    calls_before = client.api_calls
    try:
        outcomes = await client.upsert_events(
            records, deadline=time.monotonic() + settings.sink_attempt_deadline
        )
    finally:
        metrics.SALESFORCE_CALLS.labels("upsert").inc(client.api_calls - calls_before)
        if client.remaining_api_calls is not None:
            metrics.SALESFORCE_API_REMAINING.set(client.remaining_api_calls)
    await _apply_outcomes(pending, outcomes)


async def _hand_back(pending: dict[str, Candidate[EventT[bytes]]]) -> None:
    """The worker is stopping with records unwritten (Salesforce down). Faust will
    acknowledge the batch when this agent returns, so send them back to the topic,
    for this worker after a restart or whoever owns the partition next."""
    for candidate in pending.values():
        msg = candidate.meta.message
        await projections_topic.send(key=msg.key, value=msg.value, headers=msg.headers)
    log.warning("stopping: handed %d unwritten projections back to the topic", len(pending))


@app.agent(projections_topic, name="sink")
async def sink(stream: faust.StreamT[bytes]) -> None:
    # The concrete Stream: StreamT's stub lacks take_events.
    concrete = cast(faust.Stream[bytes], stream)
    async for batch in concrete.take_events(
        settings.sink_batch_size, within=settings.sink_batch_window
    ):
        try:
            await write_batch(batch)
        except Exception as exc:  # Faust would ack the batch anyway: set it aside instead
            log.exception("sink batch failed; dead-lettering its %d records", len(batch))
            for event in batch:
                await dead_letter_projection(
                    event, "internal-error", f"{type(exc).__name__}: {exc}"
                )
        for event in batch:
            sink_progress.read(event.message.partition, event.message.offset)
