"""Async Salesforce client for the sink, built on simple-salesforce.

simple-salesforce is synchronous: every HTTP call runs in a worker thread
(`asyncio.to_thread`) so the event loop never blocks. Tokens come from the OAuth token
endpoint (`{login_url}/services/oauth2/token`, client-credentials or username-password
grant); simple-salesforce is then used in session-id mode, and rebuilt on a 401, because
its own logins only reach *.salesforce.com and it never re-authenticates a session id.

Failure policy of `upsert_events` (DESIGN.md §5):
- 401: fetch a new token and retry at once; a 401 straight after a fresh token counts
  as a whole-call failure (below).
- Whole-call failures (5xx, timeouts, connection errors): retry the call with
  exponential backoff and full jitter (retry_base_s doubling up to retry_cap_s) until the
  deadline; then raise `SalesforceUnavailable` (its `outcomes` lists what finished).
- Per-record UNABLE_TO_LOCK_ROW: retry only those records, same backoff; at the deadline
  they come back with status "retryable".
- Per-record errors of any other kind: status "rejected" with Salesforce's errors.
- A request-level 400 (the body failed to deserialize, e.g. an unknown field or a bad
  datetime in one record) fails every record of the call: the call is split in halves
  until the bad records are alone and rejected, so one bad record costs the others a few
  extra calls, never their write.
- 403 REQUEST_LIMIT_EXCEEDED: raise `RequestLimitExceeded` at once, so the caller pauses.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import quote_plus, urlencode

import orjson
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
)
from simple_salesforce.format import format_soql

from streams.salesforce.errors import (
    RequestLimitExceeded,
    SalesforceAuthenticationError,
    SalesforceRequestError,
    SalesforceUnavailable,
)
from streams.salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)

UpsertStatus = Literal["created", "updated", "retryable", "rejected"]
RETRYABLE_RECORD_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})
# Salesforce refuses URIs over 16,384 bytes; SOQL travels in the query string.
MAX_QUERY_CHARS = 12_000
MAX_IN_VALUES = 200
# A composite request may hold at most 5 query (or sObject Collections) subrequests.
MAX_COMPOSITE_QUERIES = 5
RELATED_SOBJECTS: tuple[Literal["Contact", "Lead"], ...] = ("Contact", "Lead")


class RecordError(NamedTuple):
    """One Salesforce error for one record: (statusCode, message, fields)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpsertOutcome:
    external_id: str
    status: UpsertStatus
    salesforce_id: str | None = None
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True)
class RelatedRecord:
    """The Contact or Lead an email belongs to (`created`: a Lead made by this client)."""

    sobject: Literal["Contact", "Lead"]
    id: str
    email: str
    created: bool = False


class _Retryable(Exception):
    """A whole-call failure worth retrying; carries a short reason for logs and errors."""


def _errors_from(content: object, key: str) -> list[RecordError]:
    """Parse Salesforce error lists: `statusCode` in results, `errorCode` at top level."""
    out: list[RecordError] = []
    if isinstance(content, list):
        for item in content:
            if isinstance(item, Mapping):
                fields = item.get("fields") or []
                out.append(
                    RecordError(
                        str(item.get(key) or item.get("errorCode") or item.get("statusCode")),
                        str(item.get("message", "")),
                        tuple(str(f) for f in fields) if isinstance(fields, list) else (),
                    )
                )
    return out


def _raise_if_untrusted(exc: Exception) -> None:
    """A certificate that fails verification is configuration, not a transient fault."""
    if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        raise SalesforceRequestError(
            "TLS certificate verification failed (set ca_file to the CA that signed it)"
        ) from None


def _describe(exc: SalesforceError) -> str:
    """`STATUS ERROR_CODE: message` from a simple-salesforce exception, nothing more."""
    errors = _errors_from(exc.content, "errorCode")
    detail = "; ".join(f"{e.status_code}: {e.message}" for e in errors) or "no error body"
    return f"HTTP {exc.status} {detail}"


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
        self._session = session or requests.Session()
        if settings.ca_file is not None:
            # requests lets REQUESTS_CA_BUNDLE override Session.verify, so the CA is also
            # passed on every request (per-request verify wins over the environment).
            self._session.verify = str(settings.ca_file)
        self._verify: str | bool = str(settings.ca_file) if settings.ca_file else True
        self._rng = rng or random.Random()
        self._sf: Salesforce | None = None
        self._auth_lock = asyncio.Lock()
        self._api_calls = 0
        self._counter_lock = threading.Lock()
        self._token_requests = 0
        self._usage: tuple[int, int] | None = None
        # email key -> (record, expiry); record None: a remembered miss (shorter TTL).
        self._related: OrderedDict[str, tuple[RelatedRecord | None, float]] = OrderedDict()

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
        return self._api_calls

    @property
    def token_requests(self) -> int:
        return self._token_requests

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, max) daily API requests from the last `Sforce-Limit-Info` header."""
        return self._usage

    @property
    def remaining_api_calls(self) -> int | None:
        return None if self._usage is None else max(0, self._usage[1] - self._usage[0])

    # Authentication ------------------------------------------------------------

    def _fetch_token(self, timeout: float) -> Salesforce:
        s = self.settings
        form = {"grant_type": s.auth, "client_id": s.client_id}
        form["client_secret"] = s.client_secret.get_secret_value()
        if s.auth == "password":
            form["username"] = s.username
            form["password"] = s.password.get_secret_value() + s.security_token.get_secret_value()
        self._token_requests += 1
        try:
            response = self._session.post(
                f"{s.login_url}/services/oauth2/token",
                data=form,
                headers={"Accept": "application/json"},
                timeout=timeout,
                verify=self._verify,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            _raise_if_untrusted(exc)
            raise _Retryable(f"token endpoint unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise _Retryable(f"token endpoint HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            # OAuth errors are {"error", "error_description"}; neither echoes secrets.
            raise SalesforceAuthenticationError(
                f"token request refused: HTTP {response.status_code} "
                f"{body.get('error', 'unknown_error')}: {body.get('error_description', '')}"
            )
        return Salesforce(
            instance_url=str(body["instance_url"]).rstrip("/"),
            session_id=str(body["access_token"]),
            version=s.api_version,
            session=self._session,
            object_pairs_hook=dict,
        )

    async def _current(self, deadline: float | None) -> Salesforce:
        if self._sf is not None:
            return self._sf
        return await self._reauthenticate(None, deadline)

    async def _reauthenticate(self, stale: Salesforce | None, deadline: float | None) -> Salesforce:
        async with self._auth_lock:
            # Another task may have refreshed the token while this one waited.
            if self._sf is not None and self._sf is not stale:
                return self._sf
            self._sf = await asyncio.to_thread(self._fetch_token, self._timeout(deadline))
            return self._sf

    async def connect(self, *, deadline: float | None = None) -> None:
        """Authenticate now (otherwise the first call does), retrying like any call."""
        await self._with_retries(lambda sf, timeout: None, deadline, "connect")

    # Calls ---------------------------------------------------------------------

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.settings.timeout_s
        return max(0.001, min(self.settings.timeout_s, deadline - time.monotonic()))

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        ceiling = min(self.settings.retry_cap_s, self.settings.retry_base_s * 2**attempt)
        return self._rng.uniform(0, ceiling)

    async def _sleep_or_give_up(self, attempt: int, deadline: float | None) -> bool:
        """Back off before another attempt; False when that would pass the deadline."""
        delay = self._backoff(attempt)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    def _restful(
        self,
        sf: Salesforce,
        method: str,
        path: str,
        timeout: float,
        *,
        body: object = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One API request (in a worker thread). Maps errors to retry decisions."""
        with self._counter_lock:
            self._api_calls += 1
        kwargs: dict[str, Any] = {"timeout": timeout, "verify": self._verify}
        if body is not None:
            kwargs["data"] = orjson.dumps(body)
        try:
            result = sf.restful(path, params, method, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            _raise_if_untrusted(exc)
            raise _Retryable(type(exc).__name__) from None
        except SalesforceGeneralError as exc:
            if exc.status >= 500:
                raise _Retryable(_describe(exc)) from None
            raise SalesforceRequestError(_describe(exc)) from None
        except SalesforceError as exc:
            errors = _errors_from(exc.content, "errorCode")
            if exc.status == 403 and any(e.status_code == "REQUEST_LIMIT_EXCEEDED" for e in errors):
                raise RequestLimitExceeded(_describe(exc)) from None
            if isinstance(exc, (SalesforceExpiredSession, SalesforceMalformedRequest)):
                raise
            raise SalesforceRequestError(_describe(exc)) from None
        usage = sf.api_usage.get("api-usage")
        if usage is not None:
            self._usage = (int(usage.used), int(usage.total))
        return result

    async def _with_retries(self, call: Any, deadline: float | None, what: str) -> Any:
        """Run `call(sf, timeout)` in a thread, retrying whole-call failures until deadline."""
        attempt = 0
        while True:
            fresh_token = self._sf is None
            try:
                sf = await self._current(deadline)
                try:
                    return await asyncio.to_thread(call, sf, self._timeout(deadline))
                except SalesforceExpiredSession:
                    if fresh_token:
                        raise
                # The token expired: log in again and retry at once, just this once.
                fresh_token = True
                sf = await self._reauthenticate(sf, deadline)
                return await asyncio.to_thread(call, sf, self._timeout(deadline))
            except SalesforceExpiredSession:
                # Refused straight after a new login: back off like any failure, and start
                # over with yet another token.
                reason = "HTTP 401 INVALID_SESSION_ID with a fresh token"
                self._sf = None
            except _Retryable as exc:
                reason = str(exc)
            if not await self._sleep_or_give_up(attempt, deadline):
                raise SalesforceUnavailable(f"{what}: giving up at the deadline: {reason}")
            log.warning("salesforce %s failed (%s); retry %d", what, reason, attempt + 1)
            attempt += 1

    # Upserts -------------------------------------------------------------------

    async def upsert_events(
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
                return self._restful(sf, "PATCH", path, timeout, body=body)

            try:
                results = await self._with_retries(call, deadline, "upsert")
            except SalesforceMalformedRequest as exc:
                await self._split_rejected(records, ids, pending, outcomes, deadline, exc)
                return
            if not isinstance(results, list) or len(results) != len(pending):
                raise SalesforceRequestError("collections upsert: unexpected response shape")
            retry: list[int] = []
            codes: set[str] = set()
            for index, item in zip(pending, results, strict=True):
                outcome = self._outcome(ids[index], item)
                outcomes[index] = outcome
                if outcome.status == "retryable":
                    retry.append(index)
                    codes.update(e.status_code for e in outcome.errors)
            if not retry:
                return
            if not await self._sleep_or_give_up(attempt, deadline):
                return
            log.warning(
                "salesforce upsert: %d records failed with %s; retry %d",
                len(retry),
                ",".join(sorted(codes)),
                attempt + 1,
            )
            attempt += 1
            pending = retry

    def _outcome(self, external_id: str, item: object) -> UpsertOutcome:
        if not isinstance(item, Mapping):
            raise SalesforceRequestError("collections upsert: unexpected result item")
        if item.get("success"):
            status: UpsertStatus = "created" if item.get("created") else "updated"
            return UpsertOutcome(external_id, status, str(item.get("id")))
        errors = _errors_from(item.get("errors"), "statusCode")
        retryable = bool(errors) and all(e.status_code in RETRYABLE_RECORD_CODES for e in errors)
        return UpsertOutcome(
            external_id,
            "retryable" if retryable else "rejected",
            str(item["id"]) if item.get("id") else None,
            errors,
        )

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
            errors = _errors_from(exc.content, "errorCode") or [
                RecordError("MALFORMED_REQUEST", "HTTP 400 without an error body")
            ]
            outcomes[pending[0]] = UpsertOutcome(ids[pending[0]], "rejected", None, errors)
            return
        middle = len(pending) // 2
        for half in (pending[:middle], pending[middle:]):
            await self._upsert_chunk(records, ids, half, outcomes, deadline)

    # Related records -------------------------------------------------------------

    async def query(self, soql: str, *, deadline: float | None = None) -> list[dict[str, Any]]:
        """All records a SOQL query returns, following `nextRecordsUrl` pages."""
        page = await self._query_page("query/", {"q": soql}, deadline)
        return await self._all_rows(page, deadline)

    async def _query_page(
        self, path: str, params: dict[str, str] | None, deadline: float | None
    ) -> Mapping[str, Any]:
        def call(sf: Salesforce, timeout: float) -> Any:
            return self._restful(sf, "GET", path, timeout, params=params)

        try:
            page = await self._with_retries(call, deadline, "query")
        except SalesforceMalformedRequest as exc:
            raise SalesforceRequestError(f"query rejected: {_describe(exc)}") from None
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
            page = await self._query_page(path, None, deadline)
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
            result = self._restful(sf, "POST", "composite", timeout, body=body)
        except SalesforceMalformedRequest as exc:
            raise SalesforceRequestError(f"composite rejected: {_describe(exc)}") from None
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
                errors = _errors_from(page, "errorCode")
                detail = "; ".join(f"{e.status_code}: {e.message}" for e in errors)
                described = f"HTTP {status} {detail or 'no error body'}"
                if isinstance(status, int) and status >= 500:
                    raise _Retryable(f"composite subrequest {described}")
                raise SalesforceRequestError(f"query rejected: {described}")
            pages.append(page)
        return pages

    async def resolve_related(
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

            pages = await self._with_retries(call, deadline, "related lookup")
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
                return self._restful(sf, "POST", "composite/sobjects", timeout, body=body)

            try:
                sf = await self._current(deadline)
                results = await asyncio.to_thread(call, sf, self._timeout(deadline))
            except (_Retryable, SalesforceExpiredSession) as exc:
                if isinstance(exc, SalesforceExpiredSession):
                    self._sf = None
                if not await self._sleep_or_give_up(attempt, deadline):
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
                    codes = [e.status_code for e in _errors_from(errors, "statusCode")]
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
