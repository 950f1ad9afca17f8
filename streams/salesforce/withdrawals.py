"""Withdrawals: the booking's Event deleted from an org the booking's view no longer names.

A projection made before all of a booking's events were folded may have written the
Event to an org that the complete set of events never puts it in (a move that an
earlier event, folded later, undid; docs/event-contract.md, "Which org the Event lives
in"). The sink withdraws it there: `EventWithdrawals.withdraw(records)`, each record
the external id and the withdrawing projection's version (`Projection_Version__c`):

- one SOQL query per 200 records finds the Events and their versions;
- an Event older than the record's version is deleted (to the recycle bin) with one
  sObject Collections delete per 200 Ids: status "deleted";
- no Event there: "deleted" too (nothing to withdraw: the common case, when the
  undone move was never written);
- an Event as new or newer: "fenced", as an upsert the version fence refuses (a later
  projection put the Event back in that org);
- per-record errors: ENTITY_IS_DELETED is "deleted", UNABLE_TO_LOCK_ROW "retryable"
  (tried again by the sink's next attempt), any other "rejected" with Salesforce's
  errors (the sink dead-letters it).
Whole-call failures are the session's (streams/salesforce/session.py): retried until
the deadline, then `SalesforceUnavailable` or `RequestLimitExceeded` with the outcomes
finished before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from streams.salesforce.errors import (
    RequestLimitExceeded,
    SalesforceRequestError,
    SalesforceUnavailable,
)
from streams.salesforce.fence import VERSION_FIELD
from streams.salesforce.session import RecordError, SalesforceSession, errors_from
from streams.salesforce.upserts import RETRYABLE_RECORD_CODES, UpsertOutcome

# Ids per SOQL `IN` and per Collections delete (the delete's limit).
CHUNK = 200
GONE_CODES = frozenset({"ENTITY_IS_DELETED"})


class EventWithdrawals:
    """Deletes of the configured sObject's Events by external id, fenced by version."""

    def __init__(self, session: SalesforceSession) -> None:
        self._session = session
        self.settings = session.settings

    async def withdraw(
        self, records: Sequence[Mapping[str, object]], *, deadline: float | None = None
    ) -> list[UpsertOutcome]:
        """Withdraw each record's Event (`{external id field: id, VERSION_FIELD: n}`);
        outcomes in input order. `deadline`: a `time.monotonic()` value (None: no end)."""
        ext = self.settings.external_id_field
        versions: dict[str, float] = {}
        for record in records:
            value, version = record.get(ext), record.get(VERSION_FIELD)
            if not isinstance(value, str) or not value or not isinstance(version, int | float):
                raise ValueError(f"a withdrawal needs {ext} and a numeric {VERSION_FIELD}")
            versions[value] = float(version)
        finished: dict[str, UpsertOutcome] = {}
        try:
            ids = list(versions)
            for start in range(0, len(ids), CHUNK):
                await self._withdraw_chunk(ids[start : start + CHUNK], versions, finished, deadline)
        except (RequestLimitExceeded, SalesforceUnavailable) as exc:
            exc.outcomes = list(finished.values())
            raise
        return [finished[str(record[ext])] for record in records]

    async def _withdraw_chunk(
        self,
        ids: list[str],
        versions: Mapping[str, float],
        finished: dict[str, UpsertOutcome],
        deadline: float | None,
    ) -> None:
        s = self.settings
        soql = format_soql(
            f"SELECT Id, {s.external_id_field}, {VERSION_FIELD} FROM {s.sobject} "
            f"WHERE {s.external_id_field} IN {{ids}}",
            ids=ids,
        )
        page = await self._session.query(soql, deadline)
        doomed: dict[str, str] = {}  # Salesforce Id -> external id
        for row in page.get("records", []):
            booking = str(row[s.external_id_field])
            held = row.get(VERSION_FIELD)
            if held is not None and float(held) >= versions[booking]:
                finished[booking] = UpsertOutcome(booking, "fenced", str(row["Id"]))
            else:
                doomed[str(row["Id"])] = booking
        standing = set(doomed.values())
        for booking in ids:
            if booking not in finished and booking not in standing:
                finished[booking] = UpsertOutcome(booking, "deleted")
        if not doomed:
            return
        params = {"ids": ",".join(doomed), "allOrNone": "false"}

        def delete(sf: Salesforce, timeout: float) -> Any:
            return self._session.restful(sf, "DELETE", "composite/sobjects", timeout, params=params)

        results = await self._session.with_retries(delete, deadline, "delete")
        if not isinstance(results, list) or len(results) != len(doomed):
            raise SalesforceRequestError("collections delete: unexpected response shape")
        for (salesforce_id, booking), item in zip(doomed.items(), results, strict=True):
            if item.get("success"):
                finished[booking] = UpsertOutcome(booking, "deleted", salesforce_id)
                continue
            errors = errors_from(item.get("errors"), "statusCode") or [
                RecordError("DELETE_FAILED", "the delete failed without an error")
            ]
            codes = {error.status_code for error in errors}
            if codes <= GONE_CODES:
                finished[booking] = UpsertOutcome(booking, "deleted", salesforce_id)
            elif codes <= RETRYABLE_RECORD_CODES:
                finished[booking] = UpsertOutcome(booking, "retryable", salesforce_id, errors)
            else:
                finished[booking] = UpsertOutcome(booking, "rejected", salesforce_id, errors)
