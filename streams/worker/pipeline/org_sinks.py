"""The sink's lanes: one per Salesforce org, so one org's pause, outage or backlog never
holds another org's writes (issue 23).

A lane is one org's `SinkDriver` (streams/worker/pipeline/sink_driver.py) over its own
client: its own token, API usage (`Sforce-Limit-Info`), limit pause, outage backoff
and healing. `OrgSinks` keeps the lanes and routes a sink batch over them.

Guarantees:
- Lanes: the default org's lane is built from the worker's settings; a registered
  org's (streams/worker/org_directory.py) from its registry record, when first needed,
  and built again when the record changes (new login URL, rotated secret reference),
  or when a secret is rotated behind the same reference (what the references resolve
  to is compared every `SECRET_CHECK_S`): the next write uses the new connection, with
  no restart. An org whose record is removed gets no more writes. A record whose
  secrets do not resolve here gives no lane (logged once per record; `/health/` shows
  the org's check).
- `serves(projection)`: every org the projection writes to (its own and each org its
  Event left) has a lane that takes work now. With no registered org that is the
  default org's lane, always: a pause holds the stream, as it always did. With
  registered orgs, a lane with `max_queued` bookings queued does not take work; a lane
  in a pause (`SinkDriver.paused`) does, and writes it once the pause is over. What is
  not served waits: its `synced` row stays behind and the reconcile timer parks it
  until it is served, then re-sends it (streams/worker/pipeline/reconcile.py).
- `offer(held, candidates)`: a projection goes to its org's lane (its fields renamed
  for the org's field preset), each departure mark (streams/core/projection.py,
  `departure_mark`) to the lane of the org it marks. A lane queues by booking, the
  newest version kept, and writes what it has as one attempt at a time; what arrives
  meanwhile is the next attempt (one call for more records).
- Catching up (`catching_up()`: a backlog waits, the fold's or the sink's own), with
  registered orgs: each lane fills a call (200 bookings) or waits while the backlog
  lasts, at most 60 s, before it writes. A backfill spanning many orgs then costs a
  call per 200 bookings, or one per org once the backlog is gone, not one per few
  bookings; a booking folded several times meanwhile is written once, at its newest.
  The wait ends as soon as the backlog is gone.
- `settle(lanes)`: with no registered org, waits until the lanes are done (the stream
  holds through a pause). With registered orgs, it does not wait (`patience` 0): each
  lane writes in the background and what the next batches bring it is its next
  attempt, so a slow or failing org never holds another org's batch, and the sink
  takes its next batch while the last one's calls are in flight. A pause's unwritten
  projections stay in the lane (`SinkDriver.keep`), which tries them again once the
  pause is over; a lane the registry replaced hands what it has to its successor, a
  removed org's waits.
  Nothing a lane holds is lost with the worker: `held_offsets` keeps the consumer from
  committing past the lowest record a lane holds unwritten in each partition
  (streams/transport/acks.py), so the partition's next owner reads those records again.
- Withdrawals: a projection whose view names orgs the Event may have been written to
  by an earlier projection (streams/core/projection.py, `withdrawal`) sends a
  withdrawal, a delete fenced by version, to each such org's lane, like a mark. An org
  that is not registered (removed) gets none: the sink has no lane to delete with.
- `sort_out`: a projection with marks (departure marks and withdrawals) counts as
  handled (`synced`) only once its own write and every mark are done (written,
  deleted, fenced or rejected): a mark still unwritten keeps the booking behind, and
  the projection is re-sent with its marks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from streams.core.projection import (
    PRESETS,
    FieldMapping,
    Projection,
    departure_mark,
    for_mapping,
    withdrawal,
)
from streams.core.sink_plan import Candidate
from streams.salesforce.org_registry import DEFAULT_ORG, OrgConnection
from streams.worker.pipeline.sink_driver import POLL_S, Consumer, Held, Settled, SinkDriver

log = logging.getLogger("streams.worker.pipeline.sink")

M = TypeVar("M")

# How long a batch waits for the lanes while several orgs share the sink: not at all.
# Waiting up to 1 s for the healthy ones delayed the next batch by the slowest lane's
# call, for every org (bench-orgs, 200 orgs at 200 ev/s: p99 1.5 s, 0.62 s without).
PATIENCE_S = 0.0
# Bookings one lane queues behind its attempt before its org stops taking work: a
# slow org's backlog waits in Kafka and `bookings`, not in memory.
MAX_QUEUED = 5_000
# While a backlog waits (a backfill: the fold or the sink catching up), each lane fills
# a call (`FULL_CALL` bookings: one sObject Collections upsert) or waits while the
# backlog lasts, at most `LINGER_S` after its first booking queued: with many orgs a
# batch holds a few bookings per org, and writing each org's few at once would cost a
# call per few bookings (and the same booking again, version after version, as the fold
# catches up). Live traffic never lingers.
FULL_CALL = 200
LINGER_S = 60.0
# Projections with marks whose parts are not all done, remembered at most.
MAX_JOINTS = 10_000
# How often a lane compares what its org's secret references resolve to with what it was
# built with (an environment variable or a mounted file read; a file's new content is a
# secret rotated in place): a rotation is used within this many seconds.
SECRET_CHECK_S = 5.0


def org_of(projection: Projection) -> str:
    """The org a projection's own write goes to."""
    return projection.salesforce_org or DEFAULT_ORG


def orgs_written(
    projection: Projection, withdrawals: Iterable[str | None] | None = None
) -> list[str]:
    """Every org the projection writes to: its own first, then each org it left, then
    each it withdraws the Event from (its `withdrawals`, or those given)."""
    withdrawn = projection.withdrawals if withdrawals is None else withdrawals
    return [
        org_of(projection),
        *(d.salesforce_org or DEFAULT_ORG for d in projection.departures),
        *(org or DEFAULT_ORG for org in withdrawn),
    ]


class OrgLane(Generic[M]):
    """One org's driver, the bookings queued for it, and the task writing them."""

    def __init__(
        self,
        org: str,
        driver: SinkDriver[M],
        connection: OrgConnection | None,
        *,
        failed: Callable[[Sequence[Candidate[M]], Exception], Awaitable[None]],
        full: int = FULL_CALL,
        linger_s: float = 0.0,
        lingers: Callable[[], bool] = lambda: False,
        poll_s: float = POLL_S,
    ) -> None:
        self.org = org
        self.driver = driver
        self.connection = connection
        self.queued: dict[str, Candidate[M]] = {}
        self._held: Held[M] | None = None
        self._failed = failed
        self._poll_s = poll_s
        self.task: asyncio.Future[None] | None = None
        # Set when the registry replaced or removed the org: what it still has goes to
        # the successor (the lane on the new connection), or waits (removed).
        self.retired = False
        self.successor: OrgLane[M] | None = None
        # The digest of the secrets the lane was built with (`OrgConnection.secret_digest`;
        # None for the default org) and when it was last compared with the references.
        self.secrets: str | None = None
        self.secrets_checked = 0.0
        driver.keep = self.requeue
        # While `lingers()` (a backlog waits), the lane fills a call before writing
        # (`full` bookings), for at most `linger_s` after its first one queued.
        self.full = full
        self.linger_s = linger_s
        self._lingers = lingers
        self._first_queued: float | None = None

    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def offer(self, held: Held[M], candidates: Iterable[Candidate[M]]) -> None:
        """Queue `candidates` (newest version per booking) and start writing; while
        `lingering`, not before the lane holds a full call."""
        if not self.queued:
            self._first_queued = time.monotonic()
        self._merge(candidates)
        # Records of older batches keep their own consumer generation: `Held.owns`
        # judges each by it, so the newest batch's hold serves them all.
        self._held = held
        if not self.busy() and self.queued:
            self.task = asyncio.ensure_future(self._write_queued())

    def requeue(self, candidates: Sequence[Candidate[M]]) -> None:
        """Take back what a pause left unwritten (`SinkDriver.keep`): tried again once
        the pause is over, unless a newer version of the booking came meanwhile."""
        self._merge(candidates)

    def retire(self, successor: OrgLane[M] | None) -> None:
        self.retired = True
        self.successor = successor
        self._hand_over()

    def _merge(self, candidates: Iterable[Candidate[M]]) -> None:
        for candidate in candidates:
            booking = candidate.projection.booking_id
            current = self.queued.get(booking)
            if current is None or candidate.projection.version >= current.projection.version:
                self.queued[booking] = candidate

    def _hand_over(self) -> None:
        if self.successor is not None and self._held is not None and self.queued:
            self.successor.offer(self._held, self.queued.values())
        self.queued = {}

    async def _wait_while(self, waiting: Callable[[], bool]) -> None:
        """Wait while `waiting()` holds; a stop or the lane's retirement cuts it short."""
        while waiting():
            if self.driver.consumer.stopping() or self.retired:
                return
            await asyncio.sleep(self._poll_s)

    def lingering(self) -> bool:
        """Waiting to fill a call while a backlog waits (see `offer`)."""
        first = self._first_queued
        return (
            first is not None
            and 0 < len(self.queued) < self.full
            and time.monotonic() - first < self.linger_s
            and self._lingers()
        )

    async def _write_queued(self) -> None:
        while self.queued and self._held is not None and not self.retired:
            # What a pause kept is tried after it; not when the driver rests (one org):
            # it then hands a batch read during a pause back and rests itself, letting
            # go at once when a rebalance begins.
            await self._wait_while(lambda: self.driver.paused() and not self.driver.rests())
            await self._wait_while(self.lingering)  # filling a call while catching up
            if self.retired:
                break
            batch, held = list(self.queued.values()), self._held
            self.queued = {}
            self._first_queued = None
            try:
                await self.driver.write(held, batch)
            except Exception as exc:  # the batch is set aside, never dropped
                log.exception("org %s: sink write failed unexpectedly", self.org)
                await self._failed(batch, exc)
        if self.retired:
            self._hand_over()


@dataclass
class _Joint(Generic[M]):
    """A projection written to several orgs: its own outcome, and the marks not done."""

    org: str
    marks_left: set[str]
    own: Settled[M] | None = None


class OrgSinks(Generic[M]):
    """The lanes of this worker's sink, by org name (`DEFAULT_ORG`: the default org)."""

    def __init__(
        self,
        consumer: Consumer[M],
        build: Callable[[str, OrgConnection | None], SinkDriver[M]],
        registered: Callable[[], Mapping[str, OrgConnection]],
        *,
        mapping: FieldMapping,
        failed: Callable[[Sequence[Candidate[M]], Exception], Awaitable[None]],
        position: Callable[[M], tuple[Any, int]],
        catching_up: Callable[[], bool] = lambda: False,
        patience: float = PATIENCE_S,
        max_queued: int = MAX_QUEUED,
        full_call: int = FULL_CALL,
        linger_s: float = LINGER_S,
        secrets: Callable[[OrgConnection], str] = OrgConnection.secret_digest,
        secret_check_s: float = SECRET_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        # What a registered org's references resolve to (a digest), asked at most every
        # `secret_check_s` per lane: a secret rotated in place rebuilds the lane.
        self._secrets = secrets
        self.secret_check_s = secret_check_s
        self._clock = clock
        # A record's (partition, offset): what `held_offsets` keeps from being committed.
        self._position = position
        # Lanes the registry replaced or removed while their attempt still runs.
        self._retiring: list[OrgLane[M]] = []
        self._build = build
        self._registered = registered
        self._mapping = mapping
        self._failed = failed
        self.patience = patience
        self.max_queued = max_queued
        self.full_call = full_call
        self.linger_s = linger_s
        # Whether a backlog waits (the fold's or the sink's): lanes then fill their calls.
        self._catching_up = catching_up
        self.lanes: dict[str, OrgLane[M]] = {}
        # Registry records that gave no lane (secrets not resolvable): logged once.
        self._unbuildable: dict[str, OrgConnection | None] = {}
        self._joints: OrderedDict[tuple[str, int], _Joint[M]] = OrderedDict()

    def shared(self) -> bool:
        """Registered orgs share the sink: no lane may hold the stream."""
        return bool(self._registered())

    def hold(self) -> Held[M]:
        """Call as a batch is taken (before decoding it): the rebalance it belongs to."""
        return Held(self.consumer)

    def lane(self, org: str) -> OrgLane[M] | None:
        """The org's lane, built (again) from its current registry record; None for an
        org that is not registered or whose secrets do not resolve here."""
        connection: OrgConnection | None = None
        if org != DEFAULT_ORG:
            connection = self._registered().get(org)
            if connection is None:
                removed = self.lanes.pop(org, None)
                if removed is not None:  # its attempt in flight ends on its own
                    removed.retire(None)
                    self._retiring.append(removed)
                return None
        lane = self.lanes.get(org)
        if lane is not None and lane.connection == connection and not self._rotated(lane):
            return lane
        if org in self._unbuildable and self._unbuildable[org] == connection:
            return None
        try:
            secrets = self._secrets(connection) if connection is not None else None
            driver = self._build(org, connection)
        except Exception as exc:  # e.g. OrgSecretError: the org's check says more
            self._unbuildable[org] = connection
            log.error("org %s: cannot connect its sink: %s", org, exc)
            return None
        self._unbuildable.pop(org, None)
        replaced = lane
        lane = OrgLane(
            org,
            driver,
            connection,
            failed=self._failed,
            full=self.full_call,
            linger_s=self.linger_s,
            lingers=self.lingers,
        )
        lane.secrets, lane.secrets_checked = secrets, self._clock()
        self.lanes[org] = lane
        if replaced is not None:
            if replaced.connection == connection:
                log.info("org %s: a secret changed behind its reference; the sink uses it", org)
            else:
                log.info("org %s: connection changed; the sink uses the new one", org)
            # Its attempt in flight finishes on its own (its outcomes apply); what it
            # has queued, or kept through a pause, is the new lane's.
            replaced.retire(lane)
            self._retiring.append(replaced)
        return lane

    def _rotated(self, lane: OrgLane[M]) -> bool:
        """Whether a registered org's references now resolve to other secrets than its
        lane was built with, asked at most every `secret_check_s`. A reference that does
        not resolve right now (a mounted file being replaced) keeps the lane as it is."""
        if lane.connection is None:
            return False
        now = self._clock()
        if now - lane.secrets_checked < self.secret_check_s:
            return False
        lane.secrets_checked = now
        try:
            return self._secrets(lane.connection) != lane.secrets
        except Exception:  # e.g. OrgSecretError: the lane keeps the secrets it has
            return False

    def takes_work(self, org: str) -> bool:
        """The org has a lane with room: with registered orgs, a lane in a pause still
        queues (up to `max_queued`) what it writes once the pause is over."""
        lane = self.lane(org)
        if lane is None:
            return False
        if not self.shared():
            return True
        return len(lane.queued) < self.max_queued

    def held_offsets(self) -> dict[Any, int]:
        """Per partition (`position`'s first part), the lowest offset of a record a lane
        holds unwritten: queued, or in its attempt. The consumer commits no further
        (streams/transport/acks.py), so a worker killed with records in its lanes leaves
        them to be read again by the partition's next owner."""
        lowest: dict[Any, int] = {}
        for lane in [*self.lanes.values(), *self._retiring]:
            for candidate in [*lane.queued.values(), *lane.driver.in_hand.values()]:
                where, offset = self._position(candidate.meta)
                if offset < lowest.get(where, offset + 1):
                    lowest[where] = offset
        self._retiring = [lane for lane in self._retiring if lane.busy()]
        return lowest

    def withdrawals(self, projection: Projection) -> list[str | None]:
        """The orgs the sink withdraws the projection's Event from: those of its
        `withdrawals` that are the default org or registered. An org not registered has
        no lane to delete with; it was removed, so the sink writes nothing there."""
        registered = self._registered()
        return [org for org in projection.withdrawals if org is None or org in registered]

    def _orgs(self, projection: Projection) -> list[str]:
        """The orgs `projection` needs a lane in: its own, those it left, and those
        it withdraws from (`withdrawals`)."""
        if not projection.withdrawals:
            return orgs_written(projection)
        return orgs_written(projection, self.withdrawals(projection))

    def serves(self, projection: Projection) -> bool:
        """Whether the sink can write `projection` now (every org it writes to)."""
        return all(self.takes_work(org) for org in self._orgs(projection))

    def writes_steadily(self, projection: Projection) -> bool:
        """`serves`, and while orgs share the sink, every org's last attempt succeeded:
        what the reconcile timer may re-send and give up on after one re-send. A
        projection of a failing org is parked instead (its lane keeps what it was given
        and tries again; a re-send would only be given up while the org is down)."""
        return not self.waits_for(projection)

    def waits_for(self, projection: Projection) -> list[str]:
        """The orgs `projection` waits for: those that take no work now, and while orgs
        share the sink, those whose last attempt failed."""
        shared = self.shared()
        return [
            org
            for org in self._orgs(projection)
            if not self.takes_work(org)
            or (shared and (lane := self.lanes.get(org)) is not None and lane.driver.failing)
        ]

    def lingers(self) -> bool:
        """Whether lanes fill their calls before writing: a backlog waits and registered
        orgs share the sink (alone, a sink batch already fills the default org's calls)."""
        return self.shared() and self._catching_up()

    def offer(self, held: Held[M], candidates: Sequence[Candidate[M]]) -> list[OrgLane[M]]:
        """Queue each candidate's writes in their lanes (all `serves`d) and start them;
        returns the lanes given work (which fill a call first while `lingers`)."""
        by_org: dict[str, list[Candidate[M]]] = {}
        for candidate in candidates:
            projection = candidate.projection
            by_org.setdefault(org_of(projection), []).append(candidate)
            if not projection.departures and not projection.withdrawals:
                continue
            marks = [departure_mark(projection, d) for d in projection.departures]
            marks += [
                withdrawal(projection, org, self._mapping) for org in self.withdrawals(projection)
            ]
            if not marks:
                continue
            key = (projection.booking_id, projection.version)
            self._joints[key] = _Joint(org_of(projection), {org_of(mark) for mark in marks})
            self._joints.move_to_end(key)
            for mark in marks:
                by_org.setdefault(org_of(mark), []).append(
                    replace(candidate, projection=mark, mark=True)
                )
        while len(self._joints) > MAX_JOINTS:
            self._joints.popitem(last=False)  # never completed: reconcile re-sends it
        given: list[OrgLane[M]] = []
        for org, items in by_org.items():
            lane = self.lane(org)
            if lane is None:  # the registry changed since `serves`: reconcile parks it
                log.warning("org %s: no longer served; %d projections wait", org, len(items))
                continue
            lane.offer(held, [self._for_org(lane, item) for item in items])
            given.append(lane)
        return given

    def _for_org(self, lane: OrgLane[M], candidate: Candidate[M]) -> Candidate[M]:
        if lane.connection is None:
            return candidate
        target = PRESETS[lane.connection.field_mapping]
        return replace(
            candidate, projection=for_mapping(candidate.projection, self._mapping, target)
        )

    async def settle(self, lanes: Sequence[OrgLane[M]]) -> None:
        """Wait for `lanes`: until done with no registered org, else at most `patience`
        (0: not at all)."""
        shared = self.shared()
        # Shared: a lane waiting out a pause or filling a call is not waited for, nor
        # one whose last attempt failed (an org down: its attempt runs to its deadline,
        # and each batch that gave it work would wait out the whole patience; bench-orgs
        # with one org down: every other org's p99 1.6 s at 200 ev/s). Alone, the lane
        # resting through a pause is the stream holding: waited for.
        tasks = [
            lane.task
            for lane in lanes
            if lane.task is not None
            and lane.busy()
            and not (shared and (lane.driver.paused() or lane.driver.failing or lane.lingering()))
        ]
        if not tasks or (shared and self.patience <= 0):
            return
        if shared:
            await asyncio.wait(tasks, timeout=self.patience)
        else:
            await asyncio.wait(tasks)

    def sort_out(
        self, org: str, settled: Sequence[Settled[M]]
    ) -> tuple[list[Settled[M]], list[Settled[M]]]:
        """Split a lane's outcomes: (projections' own outcomes ready to apply, marks).
        A projection with marks is ready once its own write and every mark are done."""
        own: list[Settled[M]] = []
        marks: list[Settled[M]] = []
        for item in settled:
            projection = item.candidate.projection
            joint = self._joints.get((projection.booking_id, projection.version))
            done = item.outcome.status != "retryable"
            if item.candidate.mark:
                # Counted (and dead-lettered when refused) even when its joint was
                # evicted; never taken for the projection's own outcome.
                marks.append(item)
                if joint is None:
                    continue
                if done:
                    joint.marks_left.discard(org)
            elif joint is None:
                own.append(item)
                continue
            elif done:
                joint.own = item
            else:
                own.append(item)  # tried again by the lane: nothing to apply yet
            if joint.own is not None and not joint.marks_left:
                own.append(joint.own)
                del self._joints[(projection.booking_id, projection.version)]
        return own, marks

    def paused_orgs(self) -> list[str]:
        """Orgs whose lane is in a pause now (for logs and metrics)."""
        return sorted(org for org, lane in self.lanes.items() if lane.driver.paused())
