"""Event upserts by external id with sObject Collections, and what came of each record.

Failure policy of `EventUpserts.upsert` (docs/architecture.md, "The sink's failure
paths"), on top of the session's retries (streams/salesforce/session.py):
- Whole calls that keep failing until the deadline: `SalesforceUnavailable`, whose
  `outcomes` lists what finished; `RequestLimitExceeded` likewise.
- Per-record UNABLE_TO_LOCK_ROW: retry only those records, same backoff; at the deadline
  they come back with status "retryable", also when the deadline cuts a retry's request
  short.
- Per-record refusal by the version fence (streams/salesforce/fence.py): status
  "fenced", Salesforce already has a newer projection.
- Per-record errors of any other kind: status "rejected" with Salesforce's errors.
- A request-level 400 (the body failed to deserialize, e.g. an unknown field or a bad
  datetime in one record) fails every record of the call: the call is split in halves
  until the bad records are alone and rejected, so one bad record costs the others a few
  extra calls, never their write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from streams.salesforce.errors import (
    RequestLimitExceeded,
    SalesforceRequestError,
    SalesforceUnavailable,
)
from streams.salesforce.fence import is_fence_refusal
from streams.salesforce.session import RecordError, SalesforceSession, errors_from

log = logging.getLogger(__name__)

# "fenced": refused by the version fence (streams/salesforce/fence.py), Salesforce
# already has a newer projection of the booking; done, not an error to dead-letter.
# "deleted": a withdrawal's (streams/salesforce/withdrawals.py): no Event stands there.
UpsertStatus = Literal["created", "updated", "deleted", "fenced", "retryable", "rejected"]
RETRYABLE_RECORD_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})


@dataclass(frozen=True)
class UpsertOutcome:
    external_id: str
    status: UpsertStatus
    salesforce_id: str | None = None
    errors: list[RecordError] = field(default_factory=list)


def outcome_of(external_id: str, item: object) -> UpsertOutcome:
    """One record's outcome from its item in a Collections answer."""
    if not isinstance(item, Mapping):
        raise SalesforceRequestError("collections upsert: unexpected result item")
    if item.get("success"):
        written: UpsertStatus = "created" if item.get("created") else "updated"
        return UpsertOutcome(external_id, written, str(item.get("id")))
    errors = errors_from(item.get("errors"), "statusCode")
    retryable = bool(errors) and all(e.status_code in RETRYABLE_RECORD_CODES for e in errors)
    status: UpsertStatus = "rejected"
    if retryable:
        status = "retryable"
    elif is_fence_refusal(errors):
        status = "fenced"
    return UpsertOutcome(
        external_id,
        status,
        str(item["id"]) if item.get("id") else None,
        errors,
    )


class EventUpserts:
    """Upserts of the configured sObject by the configured external id field."""

    def __init__(self, session: SalesforceSession) -> None:
        self._session = session
        self.settings = session.settings

    async def upsert(
        self, records: Sequence[Mapping[str, object]], *, deadline: float | None = None
    ) -> list[UpsertOutcome]:
        """Upsert `records` (Salesforce field dicts) by the external id field.

        One sObject Collections call per <= batch_size records; outcomes come back in
        input order. `deadline` is a `time.monotonic()` value (None: retry forever).
        The same external id twice goes into separate calls, in input order, so the
        last one wins as it would one by one.
        """
        ext_field = self.settings.external_id_field
        ids: list[str] = []
        for record in records:
            value = record.get(ext_field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"every record needs a non-empty string {ext_field}")
            ids.append(value)
        outcomes: list[UpsertOutcome | None] = [None] * len(records)
        try:
            for chunk in self._chunks(ids):
                await self._upsert_chunk(records, ids, chunk, outcomes, deadline)
        except (RequestLimitExceeded, SalesforceUnavailable) as exc:
            exc.outcomes = [o for o in outcomes if o is not None]
            raise
        return [o for o in outcomes if o is not None]

    def _chunks(self, ids: Sequence[str]) -> list[list[int]]:
        chunks: list[list[int]] = []
        current: list[int] = []
        seen: set[str] = set()
        for index, value in enumerate(ids):
            if len(current) >= self.settings.batch_size or value in seen:
                chunks.append(current)
                current, seen = [], set()
            current.append(index)
            seen.add(value)
        if current:
            chunks.append(current)
        return chunks

    async def _upsert_chunk(
        self,
        records: Sequence[Mapping[str, object]],
        ids: Sequence[str],
        indices: list[int],
        outcomes: list[UpsertOutcome | None],
        deadline: float | None,
    ) -> None:
        s = self.settings
        path = f"composite/sobjects/{s.sobject}/{s.external_id_field}"
        pending = indices
        attempt = 0
        while True:
            body = {
                "allOrNone": False,
                "records": [{**records[i], "attributes": {"type": s.sobject}} for i in pending],
            }

            def call(sf: Salesforce, timeout: float, body: object = body) -> Any:
                return self._session.restful(sf, "PATCH", path, timeout, body=body)

            try:
                results = await self._session.with_retries(call, deadline, "upsert")
            except SalesforceMalformedRequest as exc:
                await self._split_rejected(records, ids, pending, outcomes, deadline, exc)
                return
            except SalesforceUnavailable:
                if attempt == 0:
                    raise
                # A retry of locked records found no answer before the deadline (e.g. a
                # request cut short by it): they stay "retryable", as Salesforce last
                # answered. Sending an upsert by external id again is safe.
                return
            if not isinstance(results, list) or len(results) != len(pending):
                raise SalesforceRequestError("collections upsert: unexpected response shape")
            retry: list[int] = []
            codes: set[str] = set()
            for index, item in zip(pending, results, strict=True):
                outcome = outcome_of(ids[index], item)
                outcomes[index] = outcome
                if outcome.status == "retryable":
                    retry.append(index)
                    codes.update(e.status_code for e in outcome.errors)
            if not retry:
                return
            if not await self._session.sleep_or_give_up(attempt, deadline):
                return
            log.warning(
                "salesforce upsert: %d records failed with %s; retry %d",
                len(retry),
                ",".join(sorted(codes)),
                attempt + 1,
            )
            attempt += 1
            pending = retry

    async def _split_rejected(
        self,
        records: Sequence[Mapping[str, object]],
        ids: Sequence[str],
        pending: list[int],
        outcomes: list[UpsertOutcome | None],
        deadline: float | None,
        exc: SalesforceMalformedRequest,
    ) -> None:
        """A request-level 400: reject a lone record, else bisect to find the bad ones."""
        if len(pending) == 1:
            errors = errors_from(exc.content, "errorCode") or [
                RecordError("MALFORMED_REQUEST", "HTTP 400 without an error body")
            ]
            outcomes[pending[0]] = UpsertOutcome(ids[pending[0]], "rejected", None, errors)
            return
        middle = len(pending) // 2
        for half in (pending[:middle], pending[middle:]):
            await self._upsert_chunk(records, ids, half, outcomes, deadline)
