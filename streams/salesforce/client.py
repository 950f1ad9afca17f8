"""Async Salesforce client for the sink, built on simple-salesforce: the facade.

`SalesforceClient` is what callers use (the sink, the bench, the tests); the work is in
three modules, one concern each:
- `session.py`: tokens (fetch, refresh on a 401), the HTTP session and its CA, retries
  with backoff until a deadline, API-call counting and `Sforce-Limit-Info`.
- `upserts.py`: Event upserts by external id with sObject Collections, per-record
  outcomes, lock retries and the bisection of a request-level 400.
- `related.py`: SOQL, the Contact/Lead lookup by email (batched, Composite, cached) and
  Lead creation.

The failure policy is docs/architecture.md, "The sink's failure paths", spelled out in
each module's docstring.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

import requests

from streams.salesforce.related import RelatedLookup, RelatedRecord
from streams.salesforce.session import SalesforceSession
from streams.salesforce.settings import SalesforceSettings
from streams.salesforce.upserts import EventUpserts, UpsertOutcome


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
