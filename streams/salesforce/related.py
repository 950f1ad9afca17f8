"""Related records: the Contact or Lead an email belongs to, for an Event's WhoId.

Batched SOQL (`WHERE Email IN (...)`, values escaped by simple-salesforce's
`format_soql`) in Composite calls, an LRU cache of hits and (for a shorter time) misses,
and, when configured, Leads created for emails with neither. Calls go through the
session's retries (streams/salesforce/session.py).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus, urlencode

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest
from simple_salesforce.format import format_soql

from streams.salesforce.errors import SalesforceRequestError, SalesforceUnavailable
from streams.salesforce.session import (
    Retryable,
    SalesforceSession,
    describe,
    describe_answer,
    errors_from,
)

log = logging.getLogger(__name__)

# Salesforce refuses URIs over 16,384 bytes; SOQL travels in the query string.
MAX_QUERY_CHARS = 12_000
MAX_IN_VALUES = 200
# A composite request may hold at most 5 query (or sObject Collections) subrequests.
MAX_COMPOSITE_QUERIES = 5
RELATED_SOBJECTS: tuple[Literal["Contact", "Lead"], ...] = ("Contact", "Lead")


@dataclass(frozen=True)
class RelatedRecord:
    """The Contact or Lead an email belongs to (`created`: a Lead made by this client)."""

    sobject: Literal["Contact", "Lead"]
    id: str
    email: str
    created: bool = False


class RelatedLookup:
    """SOQL queries and the email -> Contact/Lead lookup, with its cache."""

    def __init__(self, session: SalesforceSession) -> None:
        self._session = session
        self.settings = session.settings
        # email key -> (record, expiry); record None: a remembered miss (shorter TTL).
        self._related: OrderedDict[str, tuple[RelatedRecord | None, float]] = OrderedDict()

    async def _query_page(self, path: str, deadline: float | None) -> Mapping[str, Any]:
        def call(sf: Salesforce, timeout: float) -> Any:
            return self._session.restful(sf, "GET", path, timeout)

        try:
            page = await self._session.with_retries(call, deadline, "query")
        except SalesforceMalformedRequest as exc:
            raise SalesforceRequestError(f"query rejected: {describe(exc)}") from None
        if not isinstance(page, Mapping):
            raise SalesforceRequestError("query: unexpected response shape")
        return page

    async def _all_rows(
        self, page: Mapping[str, Any], deadline: float | None
    ) -> list[dict[str, Any]]:
        """The rows of a first query page and of every page after it."""
        rows: list[dict[str, Any]] = list(page.get("records", []))
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            path = "query/" + str(page["nextRecordsUrl"]).rsplit("/query/", 1)[1]
            page = await self._query_page(path, deadline)
            rows.extend(page.get("records", []))
        return rows

    def _composite_queries(
        self, sf: Salesforce, timeout: float, soqls: Sequence[str]
    ) -> list[Mapping[str, Any]]:
        """First pages of up to 5 SOQL queries in one Composite call (one API call).

        A subrequest answering 5xx fails the call as a whole (retried like any call);
        any other subrequest error is the query's fault and raises SalesforceRequestError.
        """
        if not 0 < len(soqls) <= MAX_COMPOSITE_QUERIES:
            raise ValueError(f"1 to {MAX_COMPOSITE_QUERIES} queries per composite call")
        base = f"/services/data/v{self.settings.api_version}/query/?"
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "url": base + urlencode({"q": soql}), "referenceId": f"q{n}"}
                for n, soql in enumerate(soqls)
            ],
        }
        try:
            result = self._session.restful(sf, "POST", "composite", timeout, body=body)
        except SalesforceMalformedRequest as exc:
            raise SalesforceRequestError(f"composite rejected: {describe(exc)}") from None
        answers = result.get("compositeResponse") if isinstance(result, Mapping) else None
        if not isinstance(answers, list) or len(answers) != len(soqls):
            raise SalesforceRequestError("composite: unexpected response shape")
        by_ref = {a.get("referenceId"): a for a in answers if isinstance(a, Mapping)}
        pages: list[Mapping[str, Any]] = []
        for n in range(len(soqls)):
            answer = by_ref.get(f"q{n}")
            if answer is None:
                raise SalesforceRequestError(f"composite: no result for subrequest q{n}")
            status = answer.get("httpStatusCode")
            page = answer.get("body")
            if not isinstance(status, int) or status >= 300 or not isinstance(page, Mapping):
                described = describe_answer(status, page)
                if isinstance(status, int) and status >= 500:
                    raise Retryable(f"composite subrequest {described}")
                raise SalesforceRequestError(f"query rejected: {described}")
            pages.append(page)
        return pages

    def forget(self, emails: Iterable[str]) -> None:
        """Drop cached lookups (found or missed) of `emails`: looked up afresh next time,
        e.g. after Salesforce refused the cached Contact (merged, deleted)."""
        for email in emails:
            self._related.pop(email.strip().lower(), None)

    async def resolve(
        self,
        emails: Iterable[str],
        *,
        names: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, RelatedRecord]:
        """Find the Contact, else the Lead, for each email (case-insensitive).

        Batched SOQL (`WHERE Email IN (...)`, values escaped by simple-salesforce's
        `format_soql`): the Contact and Lead queries for up to 2 batches of 200 emails go
        in one Composite call, so 400 new emails cost one API call. Results are cached
        (LRU, `related_cache_ttl_s`), and so are misses (`related_miss_ttl_s`). With
        `create_missing_leads`, an email with neither gets a new Lead named from
        `names[email]` (else the address's local part). Emails without a match are absent
        from the result.
        """
        wanted: dict[str, list[str]] = {}
        for email in emails:
            key = email.strip().lower()
            if key:
                wanted.setdefault(key, []).append(email)
        found: dict[str, RelatedRecord] = {}
        known_misses: set[str] = set()
        now = time.monotonic()
        for key in list(wanted):
            cached = self._related.get(key)
            if cached is not None and cached[1] > now:
                self._related.move_to_end(key)
                if cached[0] is None:
                    known_misses.add(key)
                else:
                    found[key] = cached[0]
        lookup = [k for k in wanted if k not in found and k not in known_misses]
        looked_up = await self._find_by_email(RELATED_SOBJECTS, lookup, deadline)
        found.update(looked_up)
        missing = [k for k in lookup if k not in found]
        if missing and self.settings.create_missing_leads:
            created = await self._create_leads(missing, wanted, names or {}, deadline)
            found.update(created)
            missing = [k for k in missing if k not in created]
        self._remember({k: found[k] for k in lookup if k in found})
        self._remember_misses(missing)
        return {
            original: found[key]
            for key, originals in wanted.items()
            if key in found
            for original in originals
        }

    def _email_batches(self, keys: Sequence[str]) -> list[list[str]]:
        batches: list[list[str]] = []
        current: list[str] = []
        size = 0
        for key in keys:
            cost = len(quote_plus(format_soql("{}", key))) + 3
            if current and (len(current) >= MAX_IN_VALUES or size + cost > MAX_QUERY_CHARS):
                batches.append(current)
                current, size = [], 0
            current.append(key)
            size += cost
        if current:
            batches.append(current)
        return batches

    async def _find_by_email(
        self,
        sobjects: Sequence[Literal["Contact", "Lead"]],
        keys: Sequence[str],
        deadline: float | None,
    ) -> dict[str, RelatedRecord]:
        """The record of each key among `sobjects`, the first sObject winning.

        One Composite call per group of batches: a batch needs one query per sObject, at
        most 5 queries a call (Contact and Lead: 2 batches of <= 200 emails a call).
        """
        batches = self._email_batches(keys)
        per_call = max(1, MAX_COMPOSITE_QUERIES // len(sobjects))
        by_sobject: dict[str, dict[str, RelatedRecord]] = {s: {} for s in sobjects}
        for start in range(0, len(batches), per_call):
            group = batches[start : start + per_call]
            targets = [(sobject, batch) for batch in group for sobject in sobjects]
            soqls = [
                format_soql(
                    "SELECT Id, Email FROM {:literal} WHERE Email IN {} ORDER BY CreatedDate ASC",
                    sobject,
                    batch,
                )
                for sobject, batch in targets
            ]

            def call(sf: Salesforce, timeout: float, soqls: list[str] = soqls) -> Any:
                return self._composite_queries(sf, timeout, soqls)

            pages = await self._session.with_retries(call, deadline, "related lookup")
            for (sobject, batch), page in zip(targets, pages, strict=True):
                wanted = set(batch)
                found = by_sobject[sobject]
                for row in await self._all_rows(page, deadline):
                    email = str(row.get("Email") or "")
                    key = email.lower()
                    # The oldest record wins when several share an address.
                    if key in wanted and key not in found:
                        found[key] = RelatedRecord(sobject, str(row["Id"]), email)
        result: dict[str, RelatedRecord] = {}
        for sobject in reversed(sobjects):
            result.update(by_sobject[sobject])
        return result

    async def _create_leads(
        self,
        keys: Sequence[str],
        wanted: Mapping[str, list[str]],
        names: Mapping[str, str],
        deadline: float | None,
    ) -> dict[str, RelatedRecord]:
        """Create Leads in collections of 200. A POST is not idempotent, so a failed call
        is never re-sent blindly: the Leads are looked up again first."""
        created: dict[str, RelatedRecord] = {}
        by_key = {k.lower(): v for k, v in names.items()}
        todo = list(keys)
        attempt = 0
        while todo:
            batch = todo[:MAX_IN_VALUES]
            records = [self._lead_fields(key, wanted[key][0], by_key) for key in batch]
            body = {"allOrNone": False, "records": records}

            def call(sf: Salesforce, timeout: float, body: object = body) -> Any:
                return self._session.restful(sf, "POST", "composite/sobjects", timeout, body=body)

            try:
                results = await self._session.call_once(call, deadline)
            except (Retryable, SalesforceExpiredSession):
                if not await self._session.sleep_or_give_up(attempt, deadline):
                    raise SalesforceUnavailable(
                        "lead creation: giving up at the deadline"
                    ) from None
                attempt += 1
                again = await self._find_by_email(("Lead",), batch, deadline)
                created.update(again)
                todo = [k for k in todo if k not in again]
                continue
            for key, item in zip(batch, results, strict=True):
                if isinstance(item, Mapping) and item.get("success"):
                    email = wanted[key][0]
                    created[key] = RelatedRecord("Lead", str(item["id"]), email, created=True)
                else:
                    errors = item.get("errors") if isinstance(item, Mapping) else None
                    codes = [e.status_code for e in errors_from(errors, "statusCode")]
                    log.warning("salesforce lead creation rejected: %s", ",".join(codes))
            todo = todo[len(batch) :]
        return created

    def _lead_fields(self, key: str, email: str, names: Mapping[str, str]) -> dict[str, object]:
        name = " ".join((names.get(key) or "").split())
        first, _, last = name.rpartition(" ")
        if not last:
            last = email.split("@", 1)[0]
        fields: dict[str, object] = {
            "attributes": {"type": "Lead"},
            "LastName": last[:80],
            "Company": self.settings.lead_company[:255],
            "Email": email,
        }
        if first:
            fields["FirstName"] = first[:40]
        return fields

    def _remember(self, found: Mapping[str, RelatedRecord]) -> None:
        expires = time.monotonic() + self.settings.related_cache_ttl_s
        self._cache({key: (record, expires) for key, record in found.items()})

    def _remember_misses(self, keys: Iterable[str]) -> None:
        """Emails with neither Contact nor Lead, kept for the shorter `related_miss_ttl_s`
        so the same booking's next events do not look them up again."""
        ttl = self.settings.related_miss_ttl_s
        if ttl > 0:
            expires = time.monotonic() + ttl
            self._cache({key: (None, expires) for key in keys})

    def _cache(self, entries: Mapping[str, tuple[RelatedRecord | None, float]]) -> None:
        if self.settings.related_cache_size == 0:
            return
        for key, entry in entries.items():
            self._related[key] = entry
            self._related.move_to_end(key)
        while len(self._related) > self.settings.related_cache_size:
            self._related.popitem(last=False)
