"""The sink agent: activity-projections -> one sObject Collections upsert per batch.

Failure paths (docs/architecture.md, "The sink's failure paths"), each handled here
because Faust acknowledges a batch's events as soon as this agent stops looking at it,
raising or not. The sink never holds a batch while it waits: a rebalance waits for the
agents (Faust's revoke step, `consumer.wait_empty`), so a held batch would hold every
partition of the worker hostage.
- Salesforce down, 5xx, timeouts, UNABLE_TO_LOCK_ROW: the client retries with
  backoff until the attempt's deadline (`sink_attempt_deadline`); then the unwritten
  projections go back to activity-projections and the sink waits out the client's
  backoff (`ACTIVITY_SYNC_SALESFORCE_RETRY_BASE_S`/`_CAP_S`) holding nothing unwritten,
  before it tries again. Nothing is skipped, and a long outage re-sends a batch once
  per backoff, not in a loop.
- 401: the client re-authenticates.
- REQUEST_LIMIT_EXCEEDED: the same hand-back, with a pause of `sink_limit_pause`.
- A rebalance beginning, or the worker stopping, while a batch is in hand (even
  mid-request, or mid-pause): the sink stops waiting at once; unwritten projections
  are handed back, or dropped once the flow is suspended (then the ack guard commits
  none of them and their owner reads them again).
- A record Salesforce rejects (validation): to activity-projections.dlq with
  Salesforce's error; the rest of the batch is written.
- A record refused by the version fence (streams/salesforce/fence.py): Salesforce
  already has a newer projection; done, counted, never dead-lettered or retried.
- `synced` is written only for records whose partition the worker still owns, judged
  as the ack guard judges it (`_Batch.owns`), not by `consumer.assignment()`, which
  lags during the revoke step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence, Set
from functools import partial
from typing import Any, cast

import faust
from faust.types import TP, EventT

from streams.core.projection import Projection, complete_related
from streams.core.sink_plan import Candidate, plan_writes
from streams.core.sync_gaps import encode_synced, fallbacks_taken, handled_version
from streams.salesforce import (
    RequestLimitExceeded,
    SalesforceClient,
    SalesforceUnavailable,
    UpsertOutcome,
)
from streams.salesforce.healing import Fallback
from streams.worker import headers, metrics
from streams.worker.app import (
    app,
    projection_sent,
    projections_dlq_topic,
    projections_topic,
    settings,
    sink_progress,
    synced,
)
from streams.worker.dead_letter import send_to_dead_letter

log = logging.getLogger(__name__)

# How often a wait on Salesforce looks for a rebalance or a stop.
_POLL_S = 0.1

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


def _record_handled(
    candidate: Candidate[EventT[bytes]],
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
        before = set(fallbacks_taken(synced.get(key, under=event) or 0))
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
    synced.set(key, value, under=event)
    if rejected:
        return
    stamp = _headers(event).get(headers.EVENT_TIMESTAMP)
    if stamp is not None:
        metrics.END_TO_END_LATENCY.observe(max(0.0, time.time() - int(stamp) / 1000))


async def _apply_outcomes(
    pending: dict[str, Candidate[EventT[bytes]]],
    outcomes: Sequence[UpsertOutcome],
    held: _Batch,
) -> None:
    # `synced` rows of partitions revoked meanwhile belong to their new owner.
    for outcome in outcomes:
        metrics.SALESFORCE_RECORDS.labels(outcome.status).inc()
        candidate = pending.get(outcome.external_id)
        if candidate is None:
            continue
        for error in outcome.errors:  # none when written
            metrics.SALESFORCE_ERRORS.labels(error.status_code).inc()
        fallbacks = _fallbacks.pop(outcome.external_id, [])
        if outcome.status in ("created", "updated"):
            if held.owns(candidate.meta):
                _record_handled(candidate, fallbacks=fallbacks)
            del pending[outcome.external_id]
        elif outcome.status == "fenced":
            # Salesforce already has a newer projection (the version fence): done.
            metrics.PROJECTIONS_SKIPPED.labels("salesforce-newer").inc()
            if held.owns(candidate.meta):
                _record_handled(candidate, fenced=True)  # `status` tells the fence refused
            del pending[outcome.external_id]
        elif outcome.status == "rejected":
            message = "; ".join(f"{e.status_code}: {e.message}" for e in outcome.errors)
            code = outcome.errors[0].status_code if outcome.errors else "rejected"
            await dead_letter_projection(candidate.meta, code, message)
            if held.owns(candidate.meta):
                _record_handled(candidate, rejected=True)
            del pending[outcome.external_id]
        # "retryable" (rows still locked at the deadline): kept in `pending`, tried again.


class _Batch:
    """What the sink knows about the batch in hand: the rebalance it was taken in."""

    def __init__(self) -> None:
        self.rebalances = app.rebalancing_count

    def letting_go(self) -> bool:
        """A rebalance has begun since the batch was taken (the consumer's rebalance
        listener counts it before the revoke step starts waiting for agents), or the
        flow is suspended: hand everything back now, so the revoke step never waits."""
        return app.rebalancing_count != self.rebalances or not app.flow_control.is_active()

    def owns(self, event: EventT[bytes]) -> bool:
        """Whether this worker still owns the record's partition, as the ack guard
        (streams/transport/acks.py) judges it: no rebalance since the batch was taken,
        the record's consumer generation current, the partition assigned and not
        revoked. `app.consumer.assignment()` alone lags: it changes only once the
        revoke step is over."""
        msg = event.message
        return (
            not self.letting_go()
            and msg.generation_id in (None, app.consumer_generation_id)
            and msg.tp not in _revoked
            and msg.tp in app.consumer.assignment()
        )


# Partitions revoked and not assigned again (on_partitions_revoked/_assigned hooks).
_revoked: set[TP] = set()
# Salesforce asked us to wait (REQUEST_LIMIT_EXCEEDED, or backoff after an outage):
# nothing is tried before this `time.monotonic()` value.
_pause_until = 0.0
_failures = 0  # attempts failed in a row (the backoff's exponent)
_abandoned: asyncio.Future[list[UpsertOutcome]] | None = None


async def write_batch(batch: Sequence[EventT[bytes]]) -> None:
    global _failures
    held = _Batch()
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
    while pending:
        if app.should_stop:
            await _hand_back(pending, "stopping")
            return
        if held.letting_go():
            await _let_go(pending)
            return
        _drop_revoked(pending, held)
        if not pending:
            return
        if time.monotonic() < _pause_until:
            # Read during a pause: back to the topic, for after it.
            await _hand_back(pending, "paused")
            await _rest(held)
            return
        try:
            outcomes = await _attempt(pending, held)
        except _LetGo:
            if app.should_stop:
                await _hand_back(pending, "stopping")
            else:
                await _let_go(pending)
            return
        except RequestLimitExceeded as exc:
            await _apply_outcomes(pending, exc.outcomes, held)
            metrics.SALESFORCE_ERRORS.labels("REQUEST_LIMIT_EXCEEDED").inc()
            log.error(
                "Salesforce API limit reached (%s); sink paused %.0fs, %d records handed back",
                exc,
                settings.sink_limit_pause,
                len(pending),
            )
            await _pause_and_hand_back(pending, held, settings.sink_limit_pause, "limit")
            return
        except SalesforceUnavailable as exc:
            await _apply_outcomes(pending, exc.outcomes, held)
            metrics.SALESFORCE_ERRORS.labels("UNAVAILABLE").inc()
            _failures += 1
            log.warning("Salesforce unavailable (%s); handing back %d records", exc, len(pending))
            await _pause_and_hand_back(
                pending, held, salesforce().backoff(_failures), "unavailable"
            )
            return
        except Exception:  # unknown failure: hand back and retry rather than drop
            metrics.SALESFORCE_ERRORS.labels("UNEXPECTED").inc()
            _failures += 1
            log.exception("sink write failed; handing back %d records", len(pending))
            await _pause_and_hand_back(pending, held, salesforce().backoff(_failures), "unexpected")
            return
        _failures = 0
        await _apply_outcomes(pending, outcomes, held)
        # Left in `pending`: rows still locked at the deadline; tried again at once.


class _LetGo(Exception):
    """The worker stops or a rebalance began during an attempt: stop waiting for it."""


def _drop_revoked(pending: dict[str, Candidate[EventT[bytes]]], held: _Batch) -> None:
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
    pending: dict[str, Candidate[EventT[bytes]]], held: _Batch, pause: float, why: str
) -> None:
    """Nothing more is tried for `pause` seconds. The unwritten projections go back to
    the topic first, so the wait holds nothing unwritten, and it ends early when a
    rebalance begins or the worker stops: no rebalance ever waits for a pause."""
    global _pause_until
    _pause_until = max(_pause_until, time.monotonic() + pause)
    await _hand_back(pending, why)
    await _rest(held)


async def _rest(held: _Batch) -> None:
    """Wait out the pause, holding nothing unwritten; cut short by a rebalance or stop.

    The records of this batch stay unacknowledged meanwhile (Faust acknowledges on
    return), but they have been handed back, and a rebalance returns at once."""
    while time.monotonic() < _pause_until:
        if app.should_stop or held.letting_go():
            return
        await asyncio.sleep(min(_POLL_S, max(0.0, _pause_until - time.monotonic())))


async def _let_go(pending: dict[str, Candidate[EventT[bytes]]]) -> None:
    """A rebalance has begun with projections unwritten. Once the flow is suspended the
    ack guard (streams/transport/acks.py) commits none of the batch, so each
    partition's owner after the rebalance reads them again from the committed offset:
    drop them. Before that (the rebalance listener runs first), hand them back."""
    if app.flow_control.is_active():
        await _hand_back(pending, "rebalance")
        return
    metrics.PROJECTIONS_SKIPPED.labels("partition-revoked").inc(len(pending))
    log.warning(
        "rebalance: dropped %d unwritten projections, read again by their owner", len(pending)
    )
    pending.clear()


async def _attempt(
    pending: dict[str, Candidate[EventT[bytes]]], held: _Batch
) -> list[UpsertOutcome]:
    """One try at writing what is pending: related lookup, then the upserts.

    Runs as a task the sink stops waiting for as soon as the worker stops or a
    rebalance begins (`_LetGo`); the request may still land in Salesforce, where the
    version fence refuses it if it has become older than the Event.
    """
    global _abandoned
    if _abandoned is not None and not _abandoned.done():
        # The previous batch's abandoned attempt still has the client: wait for it first.
        await _until_done(_abandoned, held)
    task = asyncio.ensure_future(_call_salesforce(pending))
    try:
        await _until_done(task, held)
    except _LetGo:
        task.add_done_callback(_forget)
        _abandoned = task
        raise
    return task.result()


async def _until_done(task: asyncio.Future[list[UpsertOutcome]], held: _Batch) -> None:
    while not task.done():
        if app.should_stop or held.letting_go():
            raise _LetGo
        await asyncio.wait({task}, timeout=_POLL_S)


def _forget(task: asyncio.Future[list[UpsertOutcome]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("abandoned Salesforce attempt ended with %r", task.exception())


async def _call_salesforce(pending: dict[str, Candidate[EventT[bytes]]]) -> list[UpsertOutcome]:
    for booking in pending:
        _fallbacks.pop(booking, None)
    found = await _lookup_related(pending)
    records = [complete_related(c.projection, found) for c in pending.values()]
    client = salesforce()
    calls_before = client.api_calls
    deadline = time.monotonic() + settings.sink_attempt_deadline
    try:
        outcomes = await client.upsert_events(records, deadline=deadline)
        return await _heal(pending, records, outcomes, deadline)
    finally:
        metrics.SALESFORCE_CALLS.labels("upsert").inc(client.api_calls - calls_before)
        if client.remaining_api_calls is not None:
            metrics.SALESFORCE_API_REMAINING.set(client.remaining_api_calls)


# Rounds of healing per attempt: an owner on the Event may itself be inactive.
_HEAL_ROUNDS = 2
# The fallbacks of the records the last attempt healed and wrote, by booking id, until
# `_apply_outcomes` stores them in `synced` (and logs the new ones).
_fallbacks: dict[str, list[Fallback]] = {}


async def _heal(
    pending: dict[str, Candidate[EventT[bytes]]],
    records: Sequence[Mapping[str, object]],
    outcomes: list[UpsertOutcome],
    deadline: float,
) -> list[UpsertOutcome]:
    """Rejections that heal (streams/salesforce/healing.py): a record Salesforce refused
    because of a reference is written again with the fallback values; each fallback
    taken is counted and logged once with Salesforce's error. What still fails stays
    rejected (the dead-letter topic)."""
    client = salesforce()
    ext = settings.salesforce.external_id_field
    current = {str(r[ext]): dict(r) for r in records}
    taken: dict[str, list[Fallback]] = {}
    for _ in range(_HEAL_ROUNDS):
        refused = [o for o in outcomes if o.status == "rejected" and o.external_id in pending]
        if not refused:
            break
        healed = await client.heal(
            [
                (
                    current[o.external_id],
                    o.errors,
                    pending[o.external_id].projection.customer_email,
                )
                for o in refused
            ],
            deadline=deadline,
        )
        if not healed:
            break
        retried = await client.upsert_events(
            [record for record, _ in healed.values()], deadline=deadline
        )
        by_id = {o.external_id: o for o in retried}
        for booking, (record, fallbacks) in healed.items():
            current[booking] = record
            # A later round's fallback for a field replaces the earlier one.
            fields = {f.field for f in fallbacks}
            taken[booking] = [
                *(f for f in taken.get(booking, []) if f.field not in fields),
                *fallbacks,
            ]
            if by_id.get(booking) is not None and by_id[booking].status in ("created", "updated"):
                # Logged once per booking when stored (`_record_handled`).
                _fallbacks[booking] = taken[booking]
                for fallback in taken[booking]:
                    metrics.SALESFORCE_FALLBACKS.labels(fallback.kind).inc()
        outcomes = [by_id.get(o.external_id, o) for o in outcomes]
    return outcomes


async def _hand_back(pending: dict[str, Candidate[EventT[bytes]]], why: str) -> None:
    """Send unwritten projections back to activity-projections, for this worker after
    a pause or a restart, or for whoever owns the partition next. Faust acknowledges
    the batch when the agent returns; a SIGKILL acknowledges nothing, so those records
    are simply read again."""
    for candidate in pending.values():
        msg = candidate.meta.message
        await projections_topic.send(
            key=msg.key,
            value=msg.value,
            headers=msg.headers,
            callback=partial(projection_sent, msg.key, candidate.projection.version),
        )
    metrics.PROJECTIONS_SKIPPED.labels("handed-back").inc(len(pending))
    log.warning("%s: handed %d unwritten projections back to the topic", why, len(pending))
    pending.clear()


def _on_revoked(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
    """Faust sends this once its revoke step has waited for the agents, so the sink
    has let go long before (`_Batch.letting_go`); here the revoked partitions are
    remembered so no late outcome writes their `synced` rows."""
    revoked: Set[TP] = args[0]
    _revoked.update(revoked)


def _on_assigned(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
    assigned: Set[TP] = args[0]
    _revoked.difference_update(assigned)


# mode's stub types receivers too narrowly for a plain function taking the set.
app.on_partitions_revoked.connect(cast(Any, _on_revoked))
app.on_partitions_assigned.connect(cast(Any, _on_assigned))


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
