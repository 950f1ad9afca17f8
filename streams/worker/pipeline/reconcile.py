"""The reconcile timer: re-send projections that Salesforce stays behind. Runs on every
worker over its own partitions.

Every projection normally reaches the sink once. A few paths can still lose one: a
worker killed between writing the `bookings` changelog and sending the projection (its
events are read again by the partition's next owner, which re-sends the projection
then: `streams.worker.pipeline.ingest.resend_on_redelivery`; this timer is the backstop), or
Faust acknowledging a record the sink's batch had not yet taken when a worker stops.
The timer compares, per booking the fold changed, the version the fold has reached with
the version the sink has handled (`synced`, streams/core/synced.py), and re-sends a
projection that stayed behind for two sweep intervals: in-flight work catches up
meanwhile and is left alone. Each (booking, version) is re-sent at most once, so an
outage does not flood the topic.

The fold adds one sent entry to the due index per partition and batch, naming the
bookings whose projections the batch sent and their versions. A sweep reads only the
entries older than two sweep intervals (the time in-flight work needs to reach
Salesforce). A sent entry whose versions Salesforce has (the common case) is removed;
one with a booking this worker's sink has not read yet waits; otherwise each booking
still behind gets a reconcile entry of its own (at the batch's time) and the sent entry
goes. Per reconcile entry (`streams.core.due_index.reconcile_action`) the sweep then
removes it when Salesforce has caught up, leaves it while this worker's sink has not
read that far (`streams.core.sink_progress`), or re-sends the projection once. (Until
2026-12-05 the fold wrote a reconcile entry per projection; a due index written then
is swept as it stands.)

With registered orgs (streams/worker/pipeline/org_sinks.py), a booking whose org takes
no work now, or failed its last attempt, is parked: nothing re-sent, never given up, and
a re-send that met such an org is forgotten. The `reconcile-on-registry-change` timer
re-sends at once what waited for an org the registry just added or reconnected.

A partition's entries are in the order their projections were sent, and its sink reads
them in that order: at the first entry the sink has not read yet, the sweep leaves the
rest of that partition for a later sweep. During a backfill the sink trails the fold by
minutes, and reading every waiting entry on every sweep would cost the whole backlog
each time (hand-backs and clock steps can break the order: an entry then waits one
sweep longer, it is never skipped).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from streams.core.due_index import entry_key, reconcile_action, settle_sent, settled
from streams.core.fold import BookingState
from streams.core.projection import Projection, project
from streams.core.retention import is_marker
from streams.core.synced import handled_version
from streams.salesforce.org_registry import OrgConnection
from streams.worker.app import (
    app,
    bookings,
    due_table,
    org_directory,
    settings,
    sink_progress,
    synced,
)
from streams.worker.pipeline.org_sinks import orgs_written
from streams.worker.pipeline.projections import MAPPING, send_projection
from streams.worker.pipeline.sink import org_sinks
from streams.worker.pipeline.sweep import Sweep
from streams.worker.watch import metrics

log = logging.getLogger(__name__)

# How often the worker looks for orgs the registry added or reconnected.
REGISTRY_LOOK_S = 2.0


async def resend_lagging_projections(
    now_ms: int | None = None, *, for_orgs: frozenset[str] | None = None
) -> int:
    """One sweep. `for_orgs`: the orgs the registry just added or reconnected; the
    sweep then reads every entry however young, and re-sends only the projections that
    write to one of them (parked while their org was unknown), leaving the rest as they
    are, so a booking that waited for its org is written within seconds of `orgs add`."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    # Behind for two sweeps: in-flight work has had the time to catch up.
    until = now_ms - int(2 * settings.timers.reconcile_interval * 1000)
    if for_orgs is not None:
        until = now_ms
    sweep = Sweep()
    resent = 0
    parked: Counter[str] = Counter()  # by the org each parked booking waits for
    # Partitions whose sink is still behind the entry just read: their later entries
    # (sent later, so further on in the projections partition) are not read this sweep.
    waiting: set[int] = set()
    async for sent in due_table.due_sent(until, sweep, stopped=waiting):
        partition = sent.batch.partition
        # A registry change's sweep looks past projections still on their way to the
        # sink (as it does below): a booking parked for its org is re-sent now, whatever
        # else its batch sent.
        on_its_way = in_flight_to_sink(partition, looking_past=for_orgs is not None)
        lagging = settle_sent(sent.batch, synced.under(sent.anchor).get, on_its_way)
        if lagging is None:  # the sink has not read this batch's projections yet
            waiting.add(partition)
            continue
        for key, sent_at in lagging:
            # Read below in this sweep (the slice is read after these writes).
            due_table.under(sent.anchor).add(
                entry_key("reconcile", sent.entry.at_ms, key), version=sent_at
            )
        due_table.drop(sent)
    async for due in due_table.due("reconcile", until, sweep, stopped=waiting):
        key = due.entry.booking
        synced_value = synced.under(due.anchor).get(key) or 0
        if settled(due.value, synced_value):  # the common case: no need to read the booking
            due_table.drop(due)
            continue
        raw = bookings.under(due.anchor).get(key)
        version = None if raw is None or is_marker(raw) else BookingState.version_of(raw)
        in_flight = version is not None and sink_progress.in_flight(
            key, version, due.value.partition
        )
        # Projected only when behind and not in flight: whether its org is served yet.
        projection: Projection | None = None
        behind = version is not None and handled_version(synced_value) < version
        if raw is not None and behind and not in_flight:
            projection = project(BookingState.from_bytes(raw), MAPPING)
        if for_orgs is not None and (
            projection is None or for_orgs.isdisjoint(orgs_written(projection))
        ):
            continue  # not waiting for these orgs: the regular sweep's
        action = reconcile_action(
            version,
            synced_value,
            in_flight=in_flight,
            resent=due.value.resent,
            served=projection is None or org_sinks.writes_steadily(projection),
        )
        if action == "wait":
            waiting.add(due.value.partition)
            continue
        if action == "park":
            assert projection is not None  # parked: an org of it does not take it now
            parked.update(org_sinks.waits_for(projection))
            if due.value.resent:
                # A re-send that found its org not taking work (paused, down, removed)
                # does not count: once served it is re-sent again, not given up.
                due_table.under(due.anchor).add(due.key, version=due.value.version)
            continue
        due_table.drop(due)
        if action == "give-up":
            log.warning("reconcile: %r still behind after a re-send; left to its next change", key)
        if action != "resend" or raw is None:
            continue
        # None: a booking without an Event (e.g. it never got a start time): nothing to send.
        if projection is None:
            continue
        assert version is not None
        due_table.under(due.anchor).add(
            entry_key("reconcile", now_ms, key), resent=version, version=version
        )
        await send_projection(key, projection)
        resent += 1
    sink_progress.forget_read()
    metrics.record_sweep("reconcile", sweep.items, sweep.cpu_s, sweep.longest_slice_s)
    if resent:
        metrics.PROJECTIONS_RESENT.inc(resent)
        log.warning("reconcile: re-sent %d projections Salesforce stayed behind", resent)
    if for_orgs is None:
        # `orgs list` and GET /orgs/: how many of this worker's bookings wait, by org.
        org_directory.waiting = dict(parked)
    if parked:
        log.info(
            "reconcile: projections wait for their org to be served: %s",
            ", ".join(f"{n} for org {org}" for org, n in sorted(parked.items())),
        )
    return resent


def in_flight_to_sink(partition: int, *, looking_past: bool) -> Callable[[bytes, int], bool]:
    """Whether a booking's projection (key, version) of `partition` is still on its way
    to this worker's sink; never, for a sweep `looking_past` work in flight."""
    if looking_past:
        return lambda key, version: False
    return lambda key, version: sink_progress.in_flight(key, version, partition)


@app.timer(settings.timers.reconcile_interval, name="reconcile-timer")  # type: ignore[untyped-decorator]
async def reconcile_timer() -> None:
    await resend_lagging_projections()


class RegistryWatch:
    """The orgs added or reconnected since the last look (not the registry's first
    reading at start: bookings parked before that are the regular sweep's)."""

    def __init__(self) -> None:
        self.seen: dict[str, OrgConnection] | None = None

    def changed(self, orgs: dict[str, OrgConnection], caught_up: bool) -> frozenset[str]:
        if not caught_up:
            return frozenset()
        before, self.seen = self.seen, dict(orgs)
        if before is None:
            return frozenset()
        return frozenset(name for name, conn in orgs.items() if before.get(name) != conn)


registry_watch = RegistryWatch()


@app.timer(REGISTRY_LOOK_S, name="reconcile-on-registry-change")  # type: ignore[untyped-decorator]
async def reconcile_on_registry_change() -> None:
    """Re-send at once what waited for an org the registry just added or reconnected."""
    directory = org_directory
    changed = registry_watch.changed(directory.registry.orgs, directory.caught_up.is_set())
    if changed:
        resent = await resend_lagging_projections(for_orgs=changed)
        log.info("org registry: %s added or changed; re-sent %d waiting", sorted(changed), resent)
