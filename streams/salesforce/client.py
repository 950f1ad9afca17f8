"""Async Salesforce client for the sink, built on simple-salesforce: the facade.

`SalesforceClient` is what callers use (the sink, the bench, the tests); the work is in
three modules, one concern each:
- `session.py`: tokens (fetch, refresh on a 401), the HTTP session and its CA, retries
  with backoff until a deadline, API-call counting and `Sforce-Limit-Info`.
- `upserts.py`: Event upserts by external id with sObject Collections, per-record
  outcomes, lock retries and the bisection of a request-level 400.
- `related.py`: SOQL, the Contact/Lead lookup by email (batched, Composite, cached) and
  Lead creation.
- `withdrawals.py`: Events deleted from an org the booking's view no longer names.

The failure policy is docs/architecture.md, "The sink's failure paths", spelled out in
each module's docstring.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import requests
from simple_salesforce.format import format_soql

from streams.salesforce.healing import Fallback, heal_record, refused_references
from streams.salesforce.related import RelatedLookup, RelatedRecord
from streams.salesforce.session import RecordError, SalesforceSession
from streams.salesforce.settings import SalesforceSettings
from streams.salesforce.upserts import EventUpserts, UpsertOutcome
from streams.salesforce.withdrawals import EventWithdrawals


class SalesforceClient:
    """One org connection. Safe to share between tasks; close it with `close()`."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._session = SalesforceSession(settings, session=session, rng=rng)
        self._upserts = EventUpserts(self._session)
        self._related = RelatedLookup(self._session)
        self._withdrawals = EventWithdrawals(self._session)

    def __repr__(self) -> str:
        return (
            f"SalesforceClient(login_url={self.settings.login_url!r}, "
            f"auth={self.settings.auth!r}, api_version={self.settings.api_version!r})"
        )

    async def __aenter__(self) -> SalesforceClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._session.close()

    # Metrics -----------------------------------------------------------------

    @property
    def api_calls(self) -> int:
        """Data API requests made by this client (token requests not included)."""
        return self._session.api_calls

    @property
    def token_requests(self) -> int:
        return self._session.token_requests

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, max) daily API requests from the last `Sforce-Limit-Info` header."""
        return self._session.api_usage

    @property
    def remaining_api_calls(self) -> int | None:
        return self._session.remaining_api_calls

    # Calls ---------------------------------------------------------------------

    async def connect(self, *, deadline: float | None = None) -> None:
        """Authenticate now (otherwise the first call does), retrying like any call."""
        await self._session.connect(deadline=deadline)

    def backoff(self, attempt: int) -> float:
        """The delay before retry `attempt`: full jitter, `retry_base_s` doubling up to
        `retry_cap_s` (what the client waits between its own retries)."""
        return self._session.backoff(attempt)

    async def upsert_events(
        self, records: Sequence[Mapping[str, object]], *, deadline: float | None = None
    ) -> list[UpsertOutcome]:
        """Upsert `records` (Salesforce field dicts) by the external id field; see
        `EventUpserts.upsert`. `deadline`: a `time.monotonic()` value (None: no end)."""
        return await self._upserts.upsert(records, deadline=deadline)

    async def withdraw_events(
        self, records: Sequence[Mapping[str, object]], *, deadline: float | None = None
    ) -> list[UpsertOutcome]:
        """Delete each record's Event unless it is as new as the record's version (the
        external id and `Projection_Version__c`); see `EventWithdrawals.withdraw`."""
        return await self._withdrawals.withdraw(records, deadline=deadline)

    async def resolve_related(
        self,
        emails: Iterable[str],
        *,
        names: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, RelatedRecord]:
        """The Contact, else the Lead, of each email (case-insensitive), cached; with
        `create_missing_leads`, a new Lead for an email with neither. See
        `RelatedLookup.resolve`."""
        return await self._related.resolve(emails, names=names, deadline=deadline)

    async def owners_on_events(
        self, external_ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, str]:
        """The OwnerId of each existing Event, by external id (one SOQL query per 200)."""
        s = self.settings
        owners: dict[str, str] = {}
        ids = list(dict.fromkeys(external_ids))
        for start in range(0, len(ids), 200):
            soql = format_soql(
                f"SELECT {s.external_id_field}, OwnerId FROM {s.sobject} "
                f"WHERE {s.external_id_field} IN {{ids}}",
                ids=ids[start : start + 200],
            )
            page = await self._session.query(soql, deadline)
            for row in page.get("records", []):
                if row.get("OwnerId"):
                    owners[str(row[s.external_id_field])] = str(row["OwnerId"])
        return owners

    async def read_event(
        self,
        external_id_field: str,
        external_id: str,
        fields: Sequence[str],
        *,
        deadline: float | None = None,
    ) -> dict[str, Any] | None:
        """The Event whose `external_id_field` is `external_id`, as Salesforce holds it:
        `fields` and its Id (one SOQL query; the id quoted by simple-salesforce's
        `format_soql`, the field names are the settings' own); None when there is none."""
        names = ", ".join(dict.fromkeys(["Id", *fields]))
        soql = format_soql(
            f"SELECT {names} FROM {self.settings.sobject} "
            f"WHERE {external_id_field} = {{external_id}} LIMIT 1",
            external_id=external_id,
        )
        page = await self._session.query(soql, deadline)
        for row in page.get("records", []):
            return {name: value for name, value in row.items() if name != "attributes"}
        return None

    async def heal(
        self,
        refusals: Sequence[tuple[Mapping[str, object], Sequence[RecordError], str | None]],
        *,
        deadline: float | None = None,
    ) -> dict[str, tuple[dict[str, object], list[Fallback]]]:
        """For records Salesforce refused because of a reference (streams/salesforce/
        healing.py): (record, its errors, the customer's email) -> by external id, the
        record to write instead and the fallbacks taken. Records that cannot heal are
        left out."""
        ext = self.settings.external_id_field
        refused = [
            (record, errors, email, refused_references(errors))
            for record, errors, email in refusals
        ]
        refused = [r for r in refused if r[3] is not None]
        if not refused:
            return {}
        owners: dict[str, str] = {}
        owner_ids = [str(r[0][ext]) for r in refused if r[3] and "OwnerId" in r[3]]
        if owner_ids:
            owners = await self.owners_on_events(owner_ids, deadline=deadline)
        emails = [r[2] for r in refused if r[2] and r[3] and "WhoId" in r[3]]
        found: dict[str, RelatedRecord] = {}
        if emails:
            self._related.forget(emails)
            found = await self._related.resolve(emails, deadline=deadline)
        found_by_key = {k.strip().lower(): v for k, v in found.items()}
        healed: dict[str, tuple[dict[str, object], list[Fallback]]] = {}
        for record, errors, email, _ in refused:
            booking = str(record[ext])
            who = found_by_key.get(email.strip().lower()) if email else None
            result = heal_record(
                record,
                errors,
                owner_on_event=owners.get(booking),
                fallback_owner_id=self.settings.fallback_owner_id or None,
                integration_user_id=self._session.user_id,
                who_found=who.id if who is not None else None,
            )
            if result is not None:
                healed[booking] = result
        return healed
