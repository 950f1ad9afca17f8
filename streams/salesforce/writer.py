"""The sink's writer: one attempt at writing a batch of Events, and what came of each.

`EventWriter.write(items)` makes one attempt: the related records by the customers'
emails (streams/salesforce/related.py), the upserts (streams/salesforce/upserts.py),
then up to `HEAL_ROUNDS` rounds of healing for records Salesforce refused because of a
reference (streams/salesforce/healing.py). It returns one `WriteOutcome` per item, in
input order, each with the fallbacks that were taken to write it.

When Salesforce asks the caller to wait, it raises `Backpressure` instead, carrying
`retry_after` (seconds) and the outcomes of the records that finished before it:
- REQUEST_LIMIT_EXCEEDED: `retry_after` is the configured `limit_pause`;
- UNAVAILABLE (whole calls kept failing until the attempt's deadline: 5xx, timeouts,
  closed connections, rows still locked): the client's backoff for the number of
  attempts failed in a row;
- UNEXPECTED (any other error, e.g. a configuration error Salesforce answered): the same
  backoff; `cause` holds the error, for its traceback.
A successful attempt ends the run of failures. Nothing here waits out `retry_after` or
knows about partitions: the caller (streams/worker/pipeline/sink_driver.py) does.

The writer knows nothing of the projection's type: an item gives the emails it needs
(`EventItem`), and `complete(item, found)` (streams.core.projection.complete_related)
makes its Salesforce fields from the related records found.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

from streams.salesforce.client import SalesforceClient
from streams.salesforce.errors import RequestLimitExceeded, SalesforceUnavailable
from streams.salesforce.healing import Fallback
from streams.salesforce.session import RecordError
from streams.salesforce.upserts import UpsertOutcome, UpsertStatus

# Rounds of healing per attempt: an owner on the Event may itself be inactive.
HEAL_ROUNDS = 2

BackpressureCode = Literal["REQUEST_LIMIT_EXCEEDED", "UNAVAILABLE", "UNEXPECTED"]
# What the writer's API calls did, for the meter: related lookups, upserts (with their
# healing), withdrawals (their query and delete).
CallKind = Literal["lookup", "upsert", "withdraw"]


class EventItem(Protocol):
    """What the writer reads of an item besides its fields (a projection has these)."""

    @property
    def lookup_email(self) -> str | None:
        """The email whose Contact (or Lead) becomes WhoId; None: no lookup."""

    @property
    def customer_name(self) -> str | None:
        """The name of a Lead created for an email with neither (when configured)."""

    @property
    def customer_email(self) -> str | None:
        """The email looked up again when Salesforce refuses the WhoId."""

    @property
    def withdraw(self) -> bool:
        """True: the item's Event is deleted (unless newer), not upserted; its fields
        are the external id and the version (streams/salesforce/withdrawals.py)."""


Item = TypeVar("Item", bound=EventItem)


@dataclass(frozen=True)
class WriteOutcome:
    """What came of one record: the upsert's status and errors, and the fallbacks taken
    to write it (empty unless it was healed and written)."""

    external_id: str
    status: UpsertStatus
    salesforce_id: str | None = None
    errors: list[RecordError] = field(default_factory=list)
    fallbacks: tuple[Fallback, ...] = ()

    @classmethod
    def of(cls, outcome: UpsertOutcome, fallbacks: Sequence[Fallback] = ()) -> WriteOutcome:
        return cls(
            outcome.external_id,
            outcome.status,
            outcome.salesforce_id,
            list(outcome.errors),
            tuple(fallbacks),
        )

    @property
    def written(self) -> bool:
        return self.status in ("created", "updated")


class Backpressure(Exception):
    """Salesforce asked for a wait: try nothing more for `retry_after` seconds.

    `outcomes` lists the records that finished before it (applied like any outcome);
    the rest of the attempt's records are unwritten. `cause` is the client's error."""

    def __init__(
        self,
        code: BackpressureCode,
        retry_after: float,
        *,
        cause: BaseException,
        outcomes: Sequence[WriteOutcome] = (),
    ) -> None:
        super().__init__(f"{code}: {cause}")
        self.code: BackpressureCode = code
        self.retry_after = retry_after
        self.cause = cause
        self.outcomes = list(outcomes)


class WriteMeter(Protocol):
    """Where the writer reports its API calls and fallbacks (the worker's metrics)."""

    def api_calls(self, kind: CallKind, count: int) -> None: ...

    def api_remaining(self, count: int) -> None: ...

    def fallback(self, kind: str) -> None: ...


class _NoMeter:
    def api_calls(self, kind: CallKind, count: int) -> None:
        pass

    def api_remaining(self, count: int) -> None:
        pass

    def fallback(self, kind: str) -> None:
        pass


class EventWriter(Generic[Item]):
    """Writes items through one `SalesforceClient`; one attempt at a time (the caller
    starts the next when the previous is done)."""

    def __init__(
        self,
        client: SalesforceClient,
        complete: Callable[[Item, Mapping[str, tuple[str, str]]], Mapping[str, object]],
        *,
        attempt_deadline: float,
        limit_pause: float,
        meter: WriteMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.complete = complete
        self.attempt_deadline = attempt_deadline
        self.limit_pause = limit_pause
        self.meter: WriteMeter = meter or _NoMeter()
        self.clock = clock
        self.failures = 0  # attempts failed in a row: the backoff's exponent

    async def write(self, items: Sequence[Item]) -> list[WriteOutcome]:
        """One attempt at `items` (one per external id): outcomes in input order, or
        `Backpressure`."""
        attempt = _Attempt(self, items)
        try:
            outcomes = await attempt.run()
        except RequestLimitExceeded as exc:
            raise Backpressure(
                "REQUEST_LIMIT_EXCEEDED",
                self.limit_pause,
                cause=exc,
                outcomes=attempt.finished(exc.outcomes),
            ) from exc
        except SalesforceUnavailable as exc:
            self.failures += 1
            raise Backpressure(
                "UNAVAILABLE",
                self.client.backoff(self.failures),
                cause=exc,
                outcomes=attempt.finished(exc.outcomes),
            ) from exc
        except Exception as exc:  # unknown: back off and try again rather than drop
            self.failures += 1
            raise Backpressure("UNEXPECTED", self.client.backoff(self.failures), cause=exc) from exc
        self.failures = 0
        return outcomes


class _Attempt(Generic[Item]):
    """One `EventWriter.write`: the records as last sent, and the fallbacks taken."""

    def __init__(self, writer: EventWriter[Item], items: Sequence[Item]) -> None:
        self.writer = writer
        self.all_items = list(items)
        # The items upserted (with lookups and healing); withdrawals are written first.
        self.items = [item for item in items if not item.withdraw]
        self.client = writer.client
        self.meter = writer.meter
        # By external id: the fallbacks of the record as last sent (healed).
        self.taken: dict[str, list[Fallback]] = {}
        # Withdrawals done before the upserts; a call cut short reports them too.
        self.withdrawn: list[WriteOutcome] = []

    def finished(self, outcomes: Sequence[UpsertOutcome]) -> list[WriteOutcome]:
        """Outcomes of a call cut short: written records carry the fallbacks they took
        (a healing round's call), counted like those of a whole round."""
        finished = [self._with_fallbacks(o) for o in outcomes]
        for outcome in finished:
            for fallback in outcome.fallbacks:
                self.meter.fallback(fallback.kind)
        return [*self.withdrawn, *finished]

    def _with_fallbacks(self, outcome: UpsertOutcome) -> WriteOutcome:
        if outcome.status not in ("created", "updated"):
            return WriteOutcome.of(outcome)
        return WriteOutcome.of(outcome, self.taken.get(outcome.external_id, ()))

    async def run(self) -> list[WriteOutcome]:
        """Withdrawals, then upserts; outcomes in the order of the items given."""
        gone = [item for item in self.all_items if item.withdraw]
        if gone:
            await self._withdraw(gone)
        if not self.items:
            return self.withdrawn
        upserted = await self._upsert()
        if not gone:
            return upserted
        by_id = {o.external_id: o for o in [*self.withdrawn, *upserted]}
        ext = self.client.settings.external_id_field
        return [by_id[str(self.writer.complete(item, {})[ext])] for item in self.all_items]

    async def _withdraw(self, gone: Sequence[Item]) -> None:
        records = [self.writer.complete(item, {}) for item in gone]
        calls_before = self.client.api_calls
        try:
            outcomes = await self.client.withdraw_events(
                records, deadline=self.writer.clock() + self.writer.attempt_deadline
            )
        except (RequestLimitExceeded, SalesforceUnavailable) as exc:
            self.withdrawn = [WriteOutcome.of(o) for o in exc.outcomes]
            exc.outcomes = []  # reported by `finished`, not twice
            raise
        finally:
            self.meter.api_calls("withdraw", self.client.api_calls - calls_before)
        self.withdrawn = [WriteOutcome.of(o) for o in outcomes]

    async def _upsert(self) -> list[WriteOutcome]:
        found = await self._lookup_related()
        records = [dict(self.writer.complete(item, found)) for item in self.items]
        calls_before = self.client.api_calls
        deadline = self.writer.clock() + self.writer.attempt_deadline
        try:
            outcomes = await self.client.upsert_events(records, deadline=deadline)
            return await self._heal(records, outcomes, deadline)
        finally:
            self.meter.api_calls("upsert", self.client.api_calls - calls_before)
            if self.client.remaining_api_calls is not None:
                self.meter.api_remaining(self.client.remaining_api_calls)

    async def _lookup_related(self) -> dict[str, tuple[str, str]]:
        emails: dict[str, str] = {}
        for item in self.items:
            email = item.lookup_email
            if email:
                emails[email] = item.customer_name or email
        if not emails:
            return {}
        calls_before = self.client.api_calls
        found = await self.client.resolve_related(
            emails,
            names=emails,
            deadline=self.writer.clock() + self.writer.attempt_deadline,
        )
        self.meter.api_calls("lookup", self.client.api_calls - calls_before)
        return {email: (record.sobject, record.id) for email, record in found.items()}

    async def _heal(
        self,
        records: Sequence[Mapping[str, object]],
        outcomes: list[UpsertOutcome],
        deadline: float,
    ) -> list[WriteOutcome]:
        """Rejections that heal: a record refused because of a reference is written
        again with the fallback values (each counted once it is written). What still
        fails stays rejected."""
        ext = self.client.settings.external_id_field
        current = {str(r[ext]): dict(r) for r in records}
        emails = {
            str(r[ext]): item.customer_email for r, item in zip(records, self.items, strict=True)
        }
        for _ in range(HEAL_ROUNDS):
            refused = [o for o in outcomes if o.status == "rejected" and o.external_id in current]
            if not refused:
                break
            healed = await self.client.heal(
                [(current[o.external_id], o.errors, emails[o.external_id]) for o in refused],
                deadline=deadline,
            )
            if not healed:
                break
            for booking, (record, fallbacks) in healed.items():
                current[booking] = record
                # A later round's fallback for a field replaces the earlier one.
                fields = {f.field for f in fallbacks}
                self.taken[booking] = [
                    *(f for f in self.taken.get(booking, []) if f.field not in fields),
                    *fallbacks,
                ]
            retried = await self.client.upsert_events(
                [record for record, _ in healed.values()], deadline=deadline
            )
            by_id = {o.external_id: o for o in retried}
            for booking in healed:
                again = by_id.get(booking)
                if again is not None and again.status in ("created", "updated"):
                    for fallback in self.taken[booking]:
                        self.meter.fallback(fallback.kind)
            outcomes = [by_id.get(o.external_id, o) for o in outcomes]
        return [self._with_fallbacks(o) for o in outcomes]
