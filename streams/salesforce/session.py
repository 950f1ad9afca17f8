"""The connection to one org: tokens, the HTTP session, retries and API-call accounting.

simple-salesforce is synchronous: every HTTP call runs in a worker thread
(streams/salesforce/call_threads.py, one pool for every org) so the event loop never
blocks. Tokens come from the OAuth token
endpoint (`{login_url}/services/oauth2/token`, client-credentials or username-password
grant); simple-salesforce is then used in session-id mode, and rebuilt on a 401, because
its own logins only reach *.salesforce.com and it never re-authenticates a session id.

Retry policy of `with_retries` (docs/architecture.md, "The sink's failure paths"):
- 401: fetch a new token and retry at once; a 401 straight after a fresh token counts
  as a whole-call failure (below).
- Whole-call failures (5xx, timeouts, connection errors): retry the call with
  exponential backoff and full jitter (retry_base_s doubling up to retry_cap_s) until the
  deadline; then raise `SalesforceUnavailable`.
- 403 REQUEST_LIMIT_EXCEEDED: raise `RequestLimitExceeded` at once, so the caller pauses.
- A request-level 400 (`SalesforceMalformedRequest`) reaches the caller, which knows
  what the body held; any other answer retrying cannot fix: `SalesforceRequestError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jwt
import orjson
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
)

from streams.salesforce import call_threads, http_session
from streams.salesforce.errors import (
    RequestLimitExceeded,
    SalesforceAuthenticationError,
    SalesforceRequestError,
    SalesforceUnavailable,
    SalesforceUntrusted,
)
from streams.salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)

# One try at an API call in a worker thread: `call(sf, timeout)`.
Call = Callable[[Salesforce, float], Any]


class RecordError(NamedTuple):
    """One Salesforce error for one record: (statusCode, message, fields)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()


class Retryable(Exception):
    """A whole-call failure worth retrying; carries a short reason for logs and errors."""


def errors_from(content: object, key: str) -> list[RecordError]:
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


JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce accepts an assertion whose exp is at most 3 minutes ahead.
JWT_LIFETIME_S = 180


def jwt_assertion(settings: SalesforceSettings, now: float | None = None) -> str:
    """The JWT bearer flow's assertion: iss = the connected app's consumer key, sub = the
    integration user's username, aud = the login host, signed RS256 with the private key
    in `private_key_file` (read on each login, so a rotated key is picked up)."""
    if settings.private_key_file is None:
        raise SalesforceAuthenticationError(
            "ACTIVITY_SYNC_SALESFORCE_AUTH=jwt needs ACTIVITY_SYNC_SALESFORCE_PRIVATE_KEY_FILE"
        )
    try:
        key = settings.private_key_file.read_bytes()
    except OSError as exc:
        raise SalesforceAuthenticationError(
            f"ACTIVITY_SYNC_SALESFORCE_PRIVATE_KEY_FILE: cannot read "
            f"{settings.private_key_file}: {exc.strerror or exc}"
        ) from None
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": settings.jwt_audience or settings.login_url,
        "exp": issued + JWT_LIFETIME_S,
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise SalesforceAuthenticationError(
            "ACTIVITY_SYNC_SALESFORCE_PRIVATE_KEY_FILE: not an RSA private key "
            f"({type(exc).__name__})"
        ) from None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _raise_if_untrusted(exc: Exception) -> None:
    """A certificate that fails verification is configuration, not a transient fault."""
    if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        raise SalesforceUntrusted(
            "TLS certificate verification failed: set ACTIVITY_SYNC_SALESFORCE_CA_FILE to "
            "the PEM file of the CA that signed it"
        ) from None


def describe_answer(status: object, content: object) -> str:
    """`HTTP STATUS ERROR_CODE: message` from an error answer's status and body, nothing
    more (no record payloads)."""
    errors = errors_from(content, "errorCode")
    detail = "; ".join(f"{e.status_code}: {e.message}" for e in errors) or "no error body"
    return f"HTTP {status} {detail}"


def describe(exc: SalesforceError) -> str:
    """`describe_answer` of a simple-salesforce exception."""
    return describe_answer(exc.status, exc.content)


class SalesforceSession:
    """Tokens, the HTTP session and the retry loop shared by upserts and lookups."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._session = session or http_session.Session()
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
        # The integration user's id, from the token answer's identity URL.
        self.user_id: str | None = None

    def close(self) -> None:
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

    def _token_form(self) -> dict[str, str]:
        """The token request's form for the configured flow (secrets included)."""
        s = self.settings
        if s.auth == "jwt":
            # JWT bearer flow: an assertion signed with the connected app's private key
            # (its certificate is uploaded to the app); no client secret travels.
            return {"grant_type": JWT_BEARER_GRANT, "assertion": jwt_assertion(s)}
        form = {"grant_type": s.auth, "client_id": s.client_id}
        form["client_secret"] = s.client_secret.get_secret_value()
        if s.auth == "password":
            form["username"] = s.username
            form["password"] = s.password.get_secret_value() + s.security_token.get_secret_value()
        return form

    def _fetch_token(self, timeout: float) -> Salesforce:
        s = self.settings
        form = self._token_form()
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
            raise Retryable(f"token endpoint unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise Retryable(f"token endpoint HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            # A JWT refused is often the clock or the audience: the OAuth error says which.
            # OAuth errors are {"error", "error_description"}; neither echoes secrets.
            raise SalesforceAuthenticationError(
                f"token request refused: HTTP {response.status_code} "
                f"{body.get('error', 'unknown_error')}: {body.get('error_description', '')}"
            )
        identity = str(body.get("id", ""))
        # The identity URL ends with /id/<org id>/<user id>: the integration user.
        self.user_id = identity.rstrip("/").rsplit("/", 1)[-1] if "/id/" in identity else None
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
            self._sf = await call_threads.run(self._fetch_token, self._timeout(deadline))
            return self._sf

    async def connect(self, *, deadline: float | None = None) -> None:
        """Authenticate now (otherwise the first call does), retrying like any call."""
        await self.with_retries(lambda sf, timeout: None, deadline, "connect")

    # Calls ---------------------------------------------------------------------

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.settings.timeout_s
        return max(0.001, min(self.settings.timeout_s, deadline - time.monotonic()))

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(retry_cap_s, retry_base_s * 2^attempt)]."""
        ceiling = min(self.settings.retry_cap_s, self.settings.retry_base_s * 2**attempt)
        return self._rng.uniform(0, ceiling)

    async def sleep_or_give_up(self, attempt: int, deadline: float | None) -> bool:
        """Back off before another attempt; False when that would pass the deadline."""
        delay = self.backoff(attempt)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    def restful(
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
            raise Retryable(type(exc).__name__) from None
        except SalesforceGeneralError as exc:
            if exc.status >= 500:
                raise Retryable(describe(exc)) from None
            raise SalesforceRequestError(describe(exc), status=exc.status) from None
        except SalesforceError as exc:
            errors = errors_from(exc.content, "errorCode")
            if exc.status == 403 and any(e.status_code == "REQUEST_LIMIT_EXCEEDED" for e in errors):
                raise RequestLimitExceeded(describe(exc)) from None
            if isinstance(exc, (SalesforceExpiredSession, SalesforceMalformedRequest)):
                raise
            raise SalesforceRequestError(describe(exc), status=exc.status) from None
        usage = sf.api_usage.get("api-usage")
        if usage is not None:
            self._usage = (int(usage.used), int(usage.total))
        return result

    def get_json(self, sf: Salesforce, url: str, timeout: float) -> Any:
        """A GET of a resource outside the versioned API (e.g. `/services/data/`, the
        versions served), with `restful`'s error mapping."""
        with self._counter_lock:
            self._api_calls += 1
        try:
            response = self._session.get(
                url, headers=sf.headers, timeout=timeout, verify=self._verify
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            _raise_if_untrusted(exc)
            raise Retryable(type(exc).__name__) from None
        if response.status_code == 401:
            raise SalesforceExpiredSession(url, 401, "versions", response.content)
        if response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise SalesforceRequestError(describe_answer(response.status_code, _json(response)))
        return _json(response)

    async def query(self, soql: str, deadline: float | None) -> dict[str, Any]:
        """One SOQL query (its first page), with `with_retries`' policy."""

        def call(sf: Salesforce, timeout: float) -> Any:
            return self.restful(sf, "GET", "query", timeout, params={"q": soql})

        page: dict[str, Any] = await self.with_retries(call, deadline, "query")
        return page

    async def with_retries(self, call: Call, deadline: float | None, what: str) -> Any:
        """Run `call(sf, timeout)` in a thread, retrying whole-call failures until deadline."""
        attempt = 0
        while True:
            fresh_token = self._sf is None
            try:
                sf = await self._current(deadline)
                try:
                    return await call_threads.run(call, sf, self._timeout(deadline))
                except SalesforceExpiredSession:
                    if fresh_token:
                        raise
                # The token expired: log in again and retry at once, just this once.
                fresh_token = True
                sf = await self._reauthenticate(sf, deadline)
                return await call_threads.run(call, sf, self._timeout(deadline))
            except SalesforceExpiredSession:
                # Refused straight after a new login: back off like any failure, and start
                # over with yet another token.
                reason = "HTTP 401 INVALID_SESSION_ID with a fresh token"
                self._sf = None
            except Retryable as exc:
                reason = str(exc)
            if not await self.sleep_or_give_up(attempt, deadline):
                raise SalesforceUnavailable(f"{what}: giving up at the deadline: {reason}")
            log.warning("salesforce %s failed (%s); retry %d", what, reason, attempt + 1)
            attempt += 1

    async def call_once(self, call: Call, deadline: float | None) -> Any:
        """One try of `call(sf, timeout)`, for a request that must not be re-sent blindly.

        Raises `Retryable` or `SalesforceExpiredSession` (the token is dropped, so the
        next call logs in again) for the caller to decide what to do next.
        """
        sf = await self._current(deadline)
        try:
            return await call_threads.run(call, sf, self._timeout(deadline))
        except SalesforceExpiredSession:
            self._sf = None
            raise
