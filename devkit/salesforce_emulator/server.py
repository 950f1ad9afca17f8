"""A local stand-in for Salesforce's REST API, faithful to the wire contract.

    python -m devkit.salesforce_emulator.server --host 127.0.0.1 --port 0 --data-dir DIR \
        [--api-version 62.0] [--faults JSON] [--daily-limit N]

Serves HTTPS with a CA it creates (or reuses) in DIR and writes to DIR/ca.pem, then
prints one JSON line: {"url", "ca_file", "client_id", "client_secret", "username",
"password", "security_token", ...}. Data lives in DIR/emulator.sqlite3.

Salesforce API (what a real org answers, shapes from the REST API guide):
    POST /services/oauth2/token                       client_credentials | password grant
    GET  /services/data/                              versions
    GET  /services/data/vXX.X/limits                  DailyApiRequests
    GET  /services/data/vXX.X/query?q=SOQL            SOQL subset (see soql.py)
    POST /services/data/vXX.X/sobjects/{T}/           create
    GET|PATCH|DELETE .../sobjects/{T}/{id}            read / update / delete
    GET|PATCH|DELETE .../sobjects/{T}/{extField}/{v}  read / upsert / delete by external id
    GET  .../sobjects/{T}/describe
    POST  .../composite                               composite (<= 25 subrequests, <= 5
                                                      queries; GET query and GET record)
    POST  .../composite/sobjects                      create collection (<= 200)
    PATCH .../composite/sobjects/{T}/{extField}       upsert collection (<= 200, API >= 46)
Every API response carries `Sforce-Limit-Info: api-usage=USED/MAX`.

Admin API (not Salesforce, no auth, never counted as API calls), under /__admin/:
    GET  health                      GET  api-calls
    GET  records/{T}                 POST records/{T}   (seed data: validated, uncounted)
    GET|PUT|POST faults              POST down {"for_s": 5, "mode": "503"|"close"}
    POST limits {"daily_limit": N}   POST expire-tokens      POST reset
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import trustme
from aiohttp import web
from pydantic import ValidationError

from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.schema import (
    PREFIX_ORG,
    PREFIX_USER,
    SOBJECTS,
    ApiError,
    RequestError,
    SObjectDef,
    describe,
    deserialize,
    make_id,
    now_text,
    resolve_sobject,
    validate,
)
from devkit.salesforce_emulator.soql import SoqlError
from devkit.salesforce_emulator.soql import parse as parse_soql
from devkit.salesforce_emulator.store import Record, Store

MIN_API_VERSION = 20.0
COLLECTIONS_MIN_VERSION = 42.0
COLLECTIONS_UPSERT_MIN_VERSION = 46.0
UPSERT_200_MIN_VERSION = 46.0
MAX_COLLECTION = 200
COMPOSITE_MIN_VERSION = 38.0
COLLATE_MIN_VERSION = 48.0
MAX_SUBREQUESTS = 25
# Of a composite's subrequests, at most this many may be queries or sObject Collections.
MAX_COMPOSITE_HEAVY = 5
_HEAVY_KINDS = frozenset({"query", "collections_create", "collections_upsert"})
_SUBREQUEST_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
_SUBREQUEST_FIELDS = frozenset({"method", "url", "referenceId", "body", "httpHeaders"})
_INHERITED_HEADERS = frozenset({"accept", "authorization", "content-type"})
_REFERENCE_ID = re.compile(r"[A-Za-z0-9_]+")
_SUBREQUEST_URL = re.compile(r"/services/data/v([0-9]+\.[0-9])(/.*)?")
QUERY_BATCH = 2000
MAX_URI = 16_384
ENV_PREFIX = "ACTIVITY_SYNC_EMULATOR_"
_JSON = "application/json"


@dataclass
class EmulatorConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    api_version: str = "62.0"
    # The URL clients are told to use (token `instance_url`); defaults to https://host:port.
    public_url: str | None = None
    tls_names: tuple[str, ...] = ()
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    daily_limit: int = 100_000
    token_ttl_s: float = 7200.0
    faults: Faults = field(default_factory=Faults)


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    org_id: str
    user_id: str


@dataclass(frozen=True)
class RunningEmulator:
    url: str
    ca_file: Path
    credentials: Credentials
    api_version: str
    close: Callable[[], Awaitable[None]]

    def ready_line(self) -> dict[str, object]:
        return {
            "url": self.url,
            "ca_file": str(self.ca_file),
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
            "username": self.credentials.username,
            "password": self.credentials.password,
            "security_token": self.credentials.security_token,
            "api_version": self.api_version,
            "pid": os.getpid(),
        }


# TLS and credentials ------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def prepare_tls(data_dir: Path, names: Sequence[str]) -> tuple[ssl.SSLContext, Path]:
    """Create (or reuse) the CA and a server certificate for `names` in `data_dir`.

    Reusing them across restarts keeps clients that trust DIR/ca.pem working.
    """
    ca_file, ca_key = data_dir / "ca.pem", data_dir / "ca-key.pem"
    server_file, names_file = data_dir / "server.pem", data_dir / "server-names.json"
    if ca_file.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_file.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="activity-sync Salesforce emulator")
        _write_private(ca_key, ca.private_key_pem.bytes())
        ca_file.write_bytes(ca.cert_pem.bytes())
        server_file.unlink(missing_ok=True)
    wanted = sorted(set(names))
    current = json.loads(names_file.read_text()) if names_file.exists() else None
    if not server_file.exists() or current != wanted:
        leaf = ca.issue_cert(*wanted)
        _write_private(server_file, leaf.private_key_and_cert_chain_pem.bytes())
        names_file.write_text(json.dumps(wanted))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_file)
    return context, ca_file


def load_credentials(config: EmulatorConfig) -> Credentials:
    """Explicit config, then env (ACTIVITY_SYNC_EMULATOR_*), then DIR/credentials.json,
    generated on first start so a restart keeps them."""
    path = config.data_dir / "credentials.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    generated = {
        "client_id": "3MVG9emulator" + secrets.token_urlsafe(24).replace("-", "x"),
        "client_secret": secrets.token_hex(32),
        "username": "integration@activity-sync.emulator",
        "password": secrets.token_urlsafe(18),
        "security_token": secrets.token_urlsafe(18),
        "org_id": make_id(PREFIX_ORG, secrets.randbelow(62**6)),
        "user_id": make_id(PREFIX_USER, 1 + secrets.randbelow(62**6)),
    }
    values: dict[str, str] = {}
    for key, default in generated.items():
        explicit = getattr(config, key, None)
        env = os.environ.get(ENV_PREFIX + key.upper())
        values[key] = explicit or env or stored.get(key) or default
    if values != stored:
        _write_private(path, json.dumps(values, indent=2).encode())
    return Credentials(**values)


# Responses ----------------------------------------------------------------------


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=_JSON,
        charset="UTF-8",
    )


def _errors(status: int, *errors: ApiError) -> web.Response:
    return _json([e.as_top_level() for e in errors], status)


def _not_found() -> web.Response:
    return _errors(404, ApiError("NOT_FOUND", "The requested resource does not exist"))


def _method_not_allowed(method: str, allowed: str) -> web.Response:
    return _errors(
        405,
        ApiError(
            "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
        ),
    )


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


_Handler = Callable[[web.Request, float, list[str]], Awaitable[web.Response]]


class _RollBack(Exception):
    """Raised inside a transaction to undo an allOrNone collection."""


@dataclass(frozen=True)
class _Subrequest:
    """One validated composite subrequest; `kind` is None when no resource matches."""

    method: str
    url: str
    reference_id: str
    body: object
    kind: str | None
    version: float
    parts: list[str]
    params: dict[str, str]


def _bad_input(message: str, code: str = "INVALID_API_INPUT") -> RequestError:
    return RequestError(400, ApiError(code, message))


# The emulator -------------------------------------------------------------------


class Emulator:
    def __init__(self, config: EmulatorConfig, credentials: Credentials) -> None:
        self.config = config
        self.credentials = credentials
        self.max_version = float(config.api_version)
        self.store = Store(config.data_dir / "emulator.sqlite3")
        self.faults = FaultState(config.faults)
        self.daily_limit = config.daily_limit
        self.public_url = ""
        self._tokens: dict[str, float] = {}
        self._token_requests = 0
        self._usage_day = ""
        self._usage: dict[str, int] = {}
        self._cursors: dict[str, list[Record]] = {}
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/services/oauth2/token", self._token)
        app.router.add_get("/services/data", self._versions)
        app.router.add_get("/services/data/", self._versions)
        app.router.add_route(
            "*", r"/services/data/v{version:[0-9]+\.[0-9]}{tail:(/.*)?}", self._api
        )
        admin = "/__admin"
        app.router.add_get(f"{admin}/health", self._admin_health)
        app.router.add_get(f"{admin}/api-calls", self._admin_calls)
        app.router.add_get(f"{admin}/records/{{sobject}}", self._admin_records)
        app.router.add_post(f"{admin}/records/{{sobject}}", self._admin_insert)
        app.router.add_get(f"{admin}/faults", self._admin_faults)
        app.router.add_put(f"{admin}/faults", self._admin_faults)
        app.router.add_post(f"{admin}/faults", self._admin_faults)
        app.router.add_post(f"{admin}/down", self._admin_down)
        app.router.add_post(f"{admin}/limits", self._admin_limits)
        app.router.add_post(f"{admin}/expire-tokens", self._admin_expire)
        app.router.add_post(f"{admin}/reset", self._admin_reset)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        self.store.close()

    # Usage counting -------------------------------------------------------------

    def _usage_today(self) -> dict[str, int]:
        day = _today()
        if day != self._usage_day:
            self._usage_day = day
            self._usage = self.store.calls(day)
        return self._usage

    def _used(self) -> int:
        return sum(self._usage_today().values())

    def _count(self, kind: str) -> None:
        usage = self._usage_today()
        usage[kind] = usage.get(kind, 0) + 1
        self.store.count_call(self._usage_day, kind)

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self._used()}/{self.daily_limit}"}

    # Faults shared by the token endpoint and the API ------------------------------

    async def _outage(self, request: web.Request) -> web.StreamResponse | None:
        if self.faults.is_down():
            if self.faults.down_mode == "close" and request.transport is not None:
                request.transport.abort()
                raise asyncio.CancelledError
            return _errors(503, ApiError("SERVER_UNAVAILABLE", "Service Unavailable: org is down"))
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        return None

    # OAuth ----------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        outage = await self._outage(request)
        if outage is not None:
            return outage
        self._token_requests += 1
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, pwd = base64.b64decode(auth[6:]).decode().partition(":")
                params.setdefault("client_id", unquote(user))
                params.setdefault("client_secret", unquote(pwd))
        creds = self.credentials
        grant = params.get("grant_type")

        def oauth_error(error: str, description: str) -> web.Response:
            return _json({"error": error, "error_description": description}, 400)

        if grant not in ("client_credentials", "password"):
            return oauth_error("unsupported_grant_type", "grant type not supported")
        if not hmac.compare_digest(params.get("client_id", ""), creds.client_id):
            return oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(params.get("client_secret", ""), creds.client_secret):
            return oauth_error("invalid_client", "invalid client credentials")
        if grant == "password":
            expected = creds.password + creds.security_token
            if params.get("username") != creds.username or not hmac.compare_digest(
                params.get("password", ""), expected
            ):
                return oauth_error("invalid_grant", "authentication failure")
        token = f"{creds.org_id[:15]}!{secrets.token_urlsafe(48)}"
        self._tokens[token] = time.monotonic() + self.config.token_ttl_s
        issued_at = str(int(time.time() * 1000))
        identity = f"{self.public_url}/id/{creds.org_id}/{creds.user_id}"
        signature = base64.b64encode(
            hmac.new(
                creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        body: dict[str, object] = {
            "access_token": token,
            "instance_url": self.public_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if grant == "client_credentials":
            body["scope"] = "api"
        return _json(body)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme not in ("Bearer", "OAuth") or not token:
            return False
        expires = self._tokens.get(token.strip())
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._tokens[token.strip()]
            return False
        return True

    # API entry point ------------------------------------------------------------

    async def _versions(self, request: web.Request) -> web.StreamResponse:
        versions = []
        major = int(MIN_API_VERSION)
        while major <= int(self.max_version):
            version = f"{major}.0"
            versions.append(
                {"label": f"API {version}", "url": f"/services/data/v{version}", "version": version}
            )
            major += 1
        return _json(versions)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        outage = await self._outage(request)
        if outage is not None:
            return outage
        version = float(request.match_info["version"])
        if not MIN_API_VERSION <= version <= self.max_version:
            return _not_found()
        # The raw path keeps %2F inside an external-id value from splitting a segment.
        prefix = f"/services/data/v{request.match_info['version']}"
        raw_tail = request.raw_path.split("?", 1)[0][len(prefix) :]
        parts = [unquote(p) for p in raw_tail.split("/") if p]
        kind, handler = self._route(request.method, parts)
        if self.faults.fire("invalid_session", kind) or not self._authorized(request):
            return _errors(401, ApiError("INVALID_SESSION_ID", "Session expired or invalid"))
        if self.faults.fire("request_limit_exceeded", kind) or self._used() >= self.daily_limit:
            response = _errors(
                403, ApiError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            )
            response.headers.update(self._limit_header())
            return response
        self._count(kind)
        server_error: web.Response | None = None
        after_write = False
        if self.faults.fire("http_500", kind):
            server_error = _errors(
                500,
                ApiError(
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if you "
                    f"contact support: {secrets.randbelow(10**9)}-{secrets.randbelow(10**5)}",
                ),
            )
            after_write = self.faults.after_write("http_500")
        elif self.faults.fire("http_503", kind):
            server_error = _errors(
                503, ApiError("SERVER_UNAVAILABLE", "Service Unavailable: please retry later")
            )
            after_write = self.faults.after_write("http_503")
        if server_error is None or after_write:
            try:
                response = await handler(request, version, parts)
            except RequestError as exc:
                response = _errors(exc.status, exc.error)
        # after_write: the work is committed, yet the caller sees the error (as when a
        # response is lost); a client must not assume a failed call wrote nothing.
        if server_error is not None:
            response = server_error
        response.headers.update(self._limit_header())
        return response

    def _route(self, method: str, parts: list[str]) -> tuple[str, _Handler]:
        def handler(kind: str, allowed: Mapping[str, _Handler]) -> tuple[str, _Handler]:
            if method in allowed:
                return kind, allowed[method]

            async def not_allowed(*_: object) -> web.Response:
                return _method_not_allowed(method, ",".join(allowed))

            return kind, not_allowed

        async def missing(*_: object) -> web.Response:
            return _not_found()

        n = len(parts)
        if n == 0:
            return handler("resources", {"GET": self._resources})
        head = parts[0]
        if head == "limits" and n == 1:
            return handler("limits", {"GET": self._limits})
        if head in ("query", "queryAll") and n in (1, 2):
            return handler("query", {"GET": self._query})
        if head == "sobjects":
            if n == 1:
                return handler("describe", {"GET": self._describe_global})
            if n == 2:
                return handler("create", {"POST": self._create, "GET": self._sobject_info})
            if n == 3 and parts[2] == "describe":
                return handler("describe", {"GET": self._describe})
            if n in (3, 4):
                by_ext = n == 4
                kinds = {"GET": "read", "PATCH": "upsert" if by_ext else "update"}
                kind = kinds.get(method, "delete")
                return handler(
                    kind,
                    {"GET": self._read, "PATCH": self._write_one, "DELETE": self._delete},
                )
        if head == "composite" and n == 1:
            return handler("composite", {"POST": self._composite})
        if head == "composite" and n >= 2 and parts[1] == "sobjects":
            if n == 2:
                return handler("collections_create", {"POST": self._collection_create})
            if n == 4:
                return handler("collections_upsert", {"PATCH": self._collection_upsert})
        return "other", missing

    # Handlers: metadata -----------------------------------------------------------

    async def _resources(self, request: web.Request, version: float, _: list[str]) -> web.Response:
        base = f"/services/data/v{version:.1f}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return _json({name: f"{base}/{name}" for name in names})

    async def _limits(self, request: web.Request, version: float, _: list[str]) -> web.Response:
        remaining = max(0, self.daily_limit - self._used())
        return _json(
            {
                "DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            }
        )

    async def _describe_global(
        self, request: web.Request, version: float, _: list[str]
    ) -> web.Response:
        return _json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": MAX_COLLECTION,
                "sobjects": [
                    {"name": s.name, "keyPrefix": s.prefix, "queryable": True}
                    for s in SOBJECTS.values()
                ],
            }
        )

    def _sobject(self, name: str) -> SObjectDef:
        sobject = resolve_sobject(name)
        if sobject is None:
            raise RequestError(
                404, ApiError("NOT_FOUND", f"The requested resource does not exist: {name}")
            )
        return sobject

    async def _sobject_info(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        sobject = self._sobject(parts[1])
        recent = self.store.all(sobject)[-10:]
        return _json(
            {
                "objectDescribe": {"name": sobject.name, "keyPrefix": sobject.prefix},
                "recentItems": [self._render(sobject, r, version, ("Id",)) for r in recent],
            }
        )

    async def _describe(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        return _json(describe(self._sobject(parts[1])))

    # Rendering and writing ------------------------------------------------------------

    def _render(
        self,
        sobject: SObjectDef,
        record: Mapping[str, object],
        version: float,
        fields: Sequence[str] | None = None,
    ) -> dict[str, object]:
        out: dict[str, object] = {
            "attributes": {
                "type": sobject.name,
                "url": f"/services/data/v{version:.1f}/sobjects/{sobject.name}/{record['Id']}",
            }
        }
        for name in fields if fields is not None else sobject.fields:
            out[name] = record.get(name)
        return out

    def _apply(
        self,
        sobject: SObjectDef,
        changes: Mapping[str, object],
        existing: Record | None,
    ) -> tuple[Record | None, list[ApiError]]:
        """Validate and write one record. Returns the stored record or the errors."""
        merged, errors = validate(sobject, changes, existing, rules=self.faults.validation_rules())
        ext_field = sobject.external_id_field
        ext_value = changes.get(ext_field) if ext_field else None
        if ext_field and ext_value is not None and not errors:
            # The external id is unique: SQLite would refuse it too, but Salesforce names
            # the record holding the value.
            holder = self.store.get_by_external_ids(sobject, [str(ext_value)]).get(str(ext_value))
            if holder is not None and (existing is None or holder["Id"] != existing["Id"]):
                errors = [
                    ApiError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {ext_field} duplicates value on record with "
                        f"id: {holder['Id']}",
                        (ext_field,),
                    )
                ]
        if not errors and self.faults.fire("unable_to_lock_row"):
            target = existing["Id"] if existing else ""
            errors = [
                ApiError(
                    "UNABLE_TO_LOCK_ROW",
                    f"unable to obtain exclusive access to this record or 1 records: {target}",
                )
            ]
        if errors:
            return None, errors
        now = now_text()
        merged["LastModifiedDate"] = now
        merged["SystemModstamp"] = now
        merged["LastModifiedById"] = self.credentials.user_id
        if existing is None:
            seq, record_id = self.store.new_id(sobject)
            merged["Id"] = record_id
            merged["IsDeleted"] = False
            merged["CreatedDate"] = now
            merged["CreatedById"] = self.credentials.user_id
            if "OwnerId" in sobject.fields and not merged.get("OwnerId"):
                merged["OwnerId"] = self.credentials.user_id
            if sobject.name == "Case":
                merged["CaseNumber"] = f"{seq:08d}"
            self.store.insert(sobject, seq, merged)
        else:
            self.store.update(sobject, merged)
        return merged, []

    def _ext_field(self, sobject: SObjectDef, name: str) -> str:
        fdef = sobject.resolve_field(name)
        if fdef is None or not fdef.external_id:
            raise RequestError(
                404,
                ApiError(
                    "NOT_FOUND",
                    "Provided external ID field does not exist or is not accessible: " + name,
                ),
            )
        return fdef.name

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(
                400, ApiError("JSON_PARSER_ERROR", f"Unexpected character: {exc}")
            ) from None

    async def _record_body(self, request: web.Request, sobject: SObjectDef) -> dict[str, object]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise RequestError(
                400,
                ApiError(
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {sobject.name} from START_ARRAY value",
                ),
            )
        return deserialize(sobject, body)

    # Handlers: single records ------------------------------------------------------

    async def _create(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        sobject = self._sobject(parts[1])
        changes = await self._record_body(request, sobject)
        with self.store.transaction():
            record, errors = self._apply(sobject, changes, None)
        if record is None:
            return _errors(400, *errors)
        return _json({"id": record["Id"], "success": True, "errors": []}, 201)

    def _lookup(self, sobject: SObjectDef, parts: list[str]) -> tuple[Record | None, str | None]:
        """The record a 3- or 4-part sobjects path names, and the external id value."""
        if len(parts) == 4:
            ext_field = self._ext_field(sobject, parts[2])
            found = self.store.get_by_external_ids(sobject, [parts[3]])
            return found.get(parts[3]), ext_field
        return self.store.get(sobject, parts[2]), None

    async def _read(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        return self._read_record(version, parts, request.query)

    def _read_record(
        self, version: float, parts: list[str], params: Mapping[str, str]
    ) -> web.Response:
        sobject = self._sobject(parts[1])
        record, _ = self._lookup(sobject, parts)
        if record is None:
            return _not_found()
        fields = None
        if "fields" in params:
            fields = []
            for name in params["fields"].split(","):
                fdef = sobject.resolve_field(name.strip())
                if fdef is None:
                    raise RequestError(
                        400,
                        ApiError(
                            "INVALID_FIELD",
                            f"No such column '{name.strip()}' on entity '{sobject.name}'",
                        ),
                    )
                fields.append(fdef.name)
        return _json(self._render(sobject, record, version, fields))

    async def _write_one(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        """PATCH by id (update, 204) or by external id (upsert, 201/200/204)."""
        sobject = self._sobject(parts[1])
        existing, ext_field = self._lookup(sobject, parts)
        changes = await self._record_body(request, sobject)
        if ext_field is None:
            if existing is None:
                return _not_found()
            with self.store.transaction():
                record, errors = self._apply(sobject, changes, existing)
            return _errors(400, *errors) if record is None else web.Response(status=204)
        value = parts[3]
        if changes.get(ext_field, value) != value:
            return _errors(
                400,
                ApiError(
                    "INVALID_FIELD",
                    f"The external ID field {ext_field} in the body does not match the URL",
                ),
            )
        changes[ext_field] = value
        with self.store.transaction():
            record, errors = self._apply(sobject, changes, existing)
        if record is None:
            return _errors(400, *errors)
        body = {"id": record["Id"], "success": True, "errors": [], "created": existing is None}
        if existing is None:
            return _json(body, 201)
        if version < UPSERT_200_MIN_VERSION:
            return web.Response(status=204)
        return _json(body, 200)

    async def _delete(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        sobject = self._sobject(parts[1])
        existing, _ = self._lookup(sobject, parts)
        if existing is None:
            return _not_found()
        with self.store.transaction():
            self.store.delete(sobject, str(existing["Id"]))
        return web.Response(status=204)

    # Handlers: collections -------------------------------------------------------

    async def _collection_body(
        self, request: web.Request, version: float, minimum: float
    ) -> tuple[bool, list[dict[str, Any]]]:
        if version < minimum:
            raise RequestError(404, ApiError("NOT_FOUND", "The requested resource does not exist"))
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise RequestError(
                400, ApiError("JSON_PARSER_ERROR", "Expected a body with a 'records' list")
            )
        records = body["records"]
        if len(records) > MAX_COLLECTION:
            raise RequestError(
                400,
                ApiError(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
            )
        for record in records:
            attributes = record.get("attributes") if isinstance(record, dict) else None
            if not isinstance(attributes, dict) or not attributes.get("type"):
                raise RequestError(
                    400, ApiError("INVALID_TYPE", "Must send a concrete entity type.")
                )
        return bool(body.get("allOrNone", False)), records

    def _run_collection(
        self,
        all_or_none: bool,
        items: Sequence[tuple[SObjectDef, dict[str, object], Record | None, list[ApiError]]],
        *,
        upsert: bool,
    ) -> list[dict[str, object]]:
        """Apply each record in order, one transaction; allOrNone rolls everything back."""
        results: list[dict[str, object]] = []
        with contextlib.suppress(_RollBack), self.store.transaction():
            for sobject, changes, existing, early_errors in items:
                record, errors = (
                    (None, early_errors)
                    if early_errors
                    else self._apply(sobject, changes, existing)
                )
                if record is None:
                    results.append(
                        {"success": False, "errors": [e.as_record_error() for e in errors]}
                    )
                    continue
                result: dict[str, object] = {"id": record["Id"], "success": True, "errors": []}
                if upsert:
                    result["created"] = existing is None
                results.append(result)
            if all_or_none and any(not r["success"] for r in results):
                raise _RollBack
            return results
        rolled_back = ApiError(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was "
            "using AllOrNone header",
        )
        return [
            r if not r["success"] else {"success": False, "errors": [rolled_back.as_record_error()]}
            for r in results
        ]

    async def _collection_create(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        all_or_none, records = await self._collection_body(
            request, version, COLLECTIONS_MIN_VERSION
        )
        items = []
        for raw in records:
            sobject = self._sobject(str(raw["attributes"]["type"]))
            changes = deserialize(sobject, raw)
            early = []
            if "Id" in changes:
                early.append(
                    ApiError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))
                )
            items.append((sobject, changes, None, early))
        return _json(self._run_collection(all_or_none, items, upsert=False))

    async def _collection_upsert(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        sobject = self._sobject(parts[2])
        ext_field = self._ext_field(sobject, parts[3])
        all_or_none, records = await self._collection_body(
            request, version, COLLECTIONS_UPSERT_MIN_VERSION
        )
        parsed = []
        for raw in records:
            if resolve_sobject(str(raw["attributes"]["type"])) is not sobject:
                raise RequestError(
                    400,
                    ApiError(
                        "INVALID_TYPE",
                        f"The sObject type in the record must be {sobject.name}",
                    ),
                )
            parsed.append(deserialize(sobject, raw))
        values = [str(p[ext_field]) for p in parsed if p.get(ext_field) is not None]
        counts: dict[str, int] = {}
        for ext_value in values:
            counts[ext_value] = counts.get(ext_value, 0) + 1
        existing = self.store.get_by_external_ids(sobject, values)
        items = []
        for changes in parsed:
            value = changes.get(ext_field)
            early = []
            if value in (None, ""):
                early.append(ApiError("MISSING_ARGUMENT", f"{ext_field} not specified"))
            elif counts[str(value)] > 1:
                early.append(
                    ApiError("DUPLICATE_VALUE", f"Duplicate external id specified: {value}")
                )
            if "Id" in changes:
                early.append(
                    ApiError(
                        "INVALID_FIELD",
                        "Upsert by external id doesn't accept an Id in the record",
                        ("Id",),
                    )
                )
            items.append((sobject, changes, existing.get(str(value)), early))
        return _json(self._run_collection(all_or_none, items, upsert=True))

    # Handlers: composite ----------------------------------------------------------

    async def _composite(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        """POST .../composite: subrequests in order, one API call for all of them.

        Executed here: GET query (and its nextRecordsUrl pages) and GET sObject records
        (by id or external id). Any other resource answers a 400 INVALID_API_INPUT in its
        own subrequest result; references between subrequests (@{ref.field}) likewise.
        """
        if version < COMPOSITE_MIN_VERSION:
            raise RequestError(404, ApiError("NOT_FOUND", "The requested resource does not exist"))
        body = await self._body(request)
        subrequests = self._composite_request(body, version)
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, object]] = []
        first_failure: int | None = None
        for index, sub in enumerate(subrequests):
            if all_or_none and first_failure is not None:
                break
            status, payload = self._run_subrequest(sub)
            if status >= 400 and first_failure is None:
                first_failure = index
            results.append(
                {
                    "body": payload,
                    "httpHeaders": {},
                    "httpStatusCode": status,
                    "referenceId": sub.reference_id,
                }
            )
        if all_or_none and first_failure is not None:
            halted = ApiError(
                "PROCESSING_HALTED",
                "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            )
            results = [
                results[index]
                if index == first_failure
                else {
                    "body": [halted.as_top_level()],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": sub.reference_id,
                }
                for index, sub in enumerate(subrequests)
            ]
        return _json({"compositeResponse": results})

    def _composite_request(self, body: object, version: float) -> list[_Subrequest]:
        """Validate the whole request first: any problem fails it with one 400."""
        if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
            raise _bad_input("Expected a body with a 'compositeRequest' list", "JSON_PARSER_ERROR")
        known = {"allOrNone", "compositeRequest"}
        if version >= COLLATE_MIN_VERSION:
            known.add("collateSubrequests")
        for name, value in body.items():
            if name not in known:
                raise _bad_input(f'Unrecognized field "{name}"', "JSON_PARSER_ERROR")
            if name != "compositeRequest" and not isinstance(value, bool):
                raise _bad_input(f"{name} must be a boolean", "JSON_PARSER_ERROR")
        raw = body["compositeRequest"]
        if not raw:
            raise _bad_input("compositeRequest needs at least one subrequest")
        if len(raw) > MAX_SUBREQUESTS:
            raise _bad_input(
                f"A composite request can have at most {MAX_SUBREQUESTS} subrequests, "
                f"not {len(raw)}",
                "LIMIT_EXCEEDED",
            )
        subrequests: list[_Subrequest] = []
        seen: set[str] = set()
        for item in raw:
            sub = self._subrequest(item, version)
            if sub.reference_id in seen:
                raise _bad_input(
                    f"Duplicate ReferenceId provided in the request: {sub.reference_id}"
                )
            seen.add(sub.reference_id)
            subrequests.append(sub)
        heavy = sum(1 for sub in subrequests if sub.kind in _HEAVY_KINDS)
        if heavy > MAX_COMPOSITE_HEAVY:
            raise _bad_input(
                f"A composite request can have at most {MAX_COMPOSITE_HEAVY} query or sObject "
                f"Collections subrequests, not {heavy}",
                "LIMIT_EXCEEDED",
            )
        return subrequests

    def _subrequest(self, item: object, version: float) -> _Subrequest:
        if not isinstance(item, dict):
            raise _bad_input("Each subrequest must be a JSON object", "JSON_PARSER_ERROR")
        for name in item:
            if name not in _SUBREQUEST_FIELDS:
                raise _bad_input(f'Unrecognized field "{name}"', "JSON_PARSER_ERROR")
        method, url, reference_id = item.get("method"), item.get("url"), item.get("referenceId")
        if method not in _SUBREQUEST_METHODS:
            raise _bad_input(f"Invalid subrequest method: {method}")
        if not isinstance(url, str) or not url:
            raise _bad_input("Each subrequest needs a url")
        if not isinstance(reference_id, str) or not _REFERENCE_ID.fullmatch(reference_id):
            raise _bad_input(
                f"Invalid referenceId: {reference_id}; use only letters, numbers and '_'"
            )
        headers = item.get("httpHeaders", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _bad_input("httpHeaders must map header names to strings", "JSON_PARSER_ERROR")
        for name in headers:
            if name.lower() in _INHERITED_HEADERS:
                raise _bad_input(f"Subrequests inherit {name} from the composite request")
        split = urlsplit(url)
        match = _SUBREQUEST_URL.fullmatch(split.path)
        kind: str | None = None
        sub_version = version
        parts: list[str] = []
        if not split.scheme and not split.netloc and match is not None:
            sub_version = float(match[1])
            if MIN_API_VERSION <= sub_version <= version:
                parts = [unquote(p) for p in (match[2] or "").split("/") if p]
                kind, _ = self._route(str(method), parts)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        return _Subrequest(
            str(method), url, reference_id, item.get("body"), kind, sub_version, parts, params
        )

    def _run_subrequest(self, sub: _Subrequest) -> tuple[int, object]:
        """(httpStatusCode, body) of one subrequest; errors are Salesforce error lists."""
        if sub.kind in (None, "other"):
            return 404, [
                ApiError("NOT_FOUND", "The requested resource does not exist").as_top_level()
            ]
        if "@{" in sub.url or "@{" in json.dumps(sub.body):
            message = "References between subrequests (@{...}) are not emulated"
            return 400, [ApiError("INVALID_API_INPUT", message).as_top_level()]
        runners = {"query": self._run_query, "read": self._read_record}
        runner = runners.get(sub.kind or "")
        if runner is None or sub.method != "GET":
            if sub.kind == "query":
                error = ApiError(
                    "METHOD_NOT_ALLOWED", f"HTTP Method '{sub.method}' not allowed. Allowed are GET"
                )
                return 405, [error.as_top_level()]
            message = (
                f"The emulator runs only GET query and GET sObject record subrequests in a "
                f"composite request, not {sub.method} {sub.kind}"
            )
            return 400, [ApiError("INVALID_API_INPUT", message).as_top_level()]
        try:
            response = runner(sub.version, sub.parts, sub.params)
        except RequestError as exc:
            return exc.status, [exc.error.as_top_level()]
        raw = response.body
        payload = json.loads(raw) if isinstance(raw, bytes) and raw else None
        return response.status, payload

    # Handlers: query ------------------------------------------------------------

    async def _query(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        return self._run_query(version, parts, request.query)

    def _run_query(
        self, version: float, parts: list[str], params: Mapping[str, str]
    ) -> web.Response:
        if len(parts) == 2:
            return self._query_page(version, parts[1])
        text = params.get("q")
        if not text:
            raise RequestError(
                400, ApiError("MALFORMED_QUERY", "A query string has to be specified")
            )
        try:
            query = parse_soql(text)
        except SoqlError as exc:
            raise RequestError(400, ApiError("MALFORMED_QUERY", str(exc))) from None
        sobject = resolve_sobject(query.sobject)
        if sobject is None:
            raise RequestError(
                400,
                ApiError(
                    "INVALID_TYPE",
                    f"sObject type '{query.sobject}' is not supported. If you are attempting "
                    "to use a custom object, be sure to append the '__c' after the entity name.",
                ),
            )

        def canonical(name: str) -> str:
            fdef = sobject.resolve_field(name)
            if fdef is None:
                raise RequestError(
                    400,
                    ApiError(
                        "INVALID_FIELD", f"No such column '{name}' on entity '{sobject.name}'."
                    ),
                )
            return fdef.name

        fields = [canonical(f) for f in query.fields]
        where = [type(c)(canonical(c.field), c.op, c.value) for c in query.where]
        order = [type(o)(canonical(o.field), o.descending, o.nulls_last) for o in query.order_by]
        rows = self.store.query(sobject, where, order, query.limit)
        rendered = [self._render(sobject, r, version, fields) for r in rows]
        return self._query_result(version, rendered)

    def _query_result(
        self, version: float, rows: list[Record], total: int | None = None
    ) -> web.Response:
        body: dict[str, object] = {"totalSize": total if total is not None else len(rows)}
        if len(rows) > QUERY_BATCH:
            locator = f"01g{secrets.token_hex(6)}"
            self._cursors[locator] = rows[QUERY_BATCH:]
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/v{version:.1f}/query/{locator}-{QUERY_BATCH}"
            body["records"] = rows[:QUERY_BATCH]
        else:
            body["done"] = True
            body["records"] = rows
        return _json(body)

    def _query_page(self, version: float, locator_and_offset: str) -> web.Response:
        locator = locator_and_offset.split("-", 1)[0]
        rows = self._cursors.pop(locator, None)
        if rows is None:
            raise RequestError(400, ApiError("INVALID_QUERY_LOCATOR", "invalid query locator"))
        return self._query_result(version, rows)

    # Admin ----------------------------------------------------------------------

    async def _admin_health(self, request: web.Request) -> web.Response:
        return _json({"ok": True, "url": self.public_url})

    async def _admin_calls(self, request: web.Request) -> web.Response:
        by_kind = dict(sorted(self._usage_today().items()))
        return _json(
            {
                "day": self._usage_day,
                "total": sum(by_kind.values()),
                "by_kind": by_kind,
                "daily_limit": self.daily_limit,
                "token_requests": self._token_requests,
            }
        )

    def _admin_sobject(self, request: web.Request) -> SObjectDef:
        sobject = resolve_sobject(request.match_info["sobject"])
        if sobject is None:
            raise web.HTTPNotFound(text=f"unknown sobject {request.match_info['sobject']}")
        return sobject

    async def _admin_records(self, request: web.Request) -> web.Response:
        sobject = self._admin_sobject(request)
        version = self.max_version
        rows = [self._render(sobject, r, version) for r in self.store.all(sobject)]
        return _json({"totalSize": len(rows), "records": rows})

    async def _admin_insert(self, request: web.Request) -> web.Response:
        sobject = self._admin_sobject(request)
        try:
            body = await self._body(request)
            raws = body["records"] if isinstance(body, dict) and "records" in body else [body]
            items: list[tuple[SObjectDef, dict[str, object], Record | None, list[ApiError]]] = [
                (sobject, deserialize(sobject, raw), None, []) for raw in raws
            ]
        except (RequestError, TypeError, AttributeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(self._run_collection(True, items, upsert=False))

    async def _admin_faults(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            try:
                body = await request.json()
                if request.method == "PUT":
                    self.faults.replace(Faults.model_validate(body))
                else:
                    self.faults.merge(body)
            except (ValidationError, TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json(self.faults.snapshot())

    async def _admin_down(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.faults.merge(
                {"down_for_s": body.get("for_s", 3600.0), "down_mode": body.get("mode", "503")}
            )
        except ValidationError as exc:
            return _json({"error": str(exc)}, 400)
        return _json(self.faults.snapshot())

    async def _admin_limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        limit = body.get("daily_limit")
        if not isinstance(limit, int) or limit < 0:
            return _json({"error": "daily_limit must be a non-negative integer"}, 400)
        self.daily_limit = limit
        return await self._admin_calls(request)

    async def _admin_expire(self, request: web.Request) -> web.Response:
        expired = len(self._tokens)
        self._tokens.clear()
        return _json({"expired": expired})

    async def _admin_reset(self, request: web.Request) -> web.Response:
        """Clear data, counters and faults; restore the start-up limit. Tokens stay valid."""
        self.store.reset()
        self._usage_day = ""
        self._cursors.clear()
        self._token_requests = 0
        self.faults.replace(self.config.faults)
        self.daily_limit = self.config.daily_limit
        return _json({"ok": True})


# Running it -------------------------------------------------------------------


def _names(config: EmulatorConfig, public_url: str | None) -> list[str]:
    names = {"localhost", "127.0.0.1", "::1", *config.tls_names}
    if config.host not in ("0.0.0.0", "::", ""):
        names.add(config.host)
    if public_url:
        host = urlsplit(public_url).hostname
        if host:
            names.add(host)
    return sorted(names)


async def start_emulator(config: EmulatorConfig) -> RunningEmulator:
    """Start serving; returns once the port is bound. Call `close()` to stop."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    credentials = load_credentials(config)
    context, ca_file = prepare_tls(config.data_dir, _names(config, config.public_url))
    emulator = Emulator(config, credentials)
    # Salesforce accepts URIs up to 16,384 bytes (long SOQL in GET query?q=); aiohttp's
    # default request-line limit is 8,190.
    runner = web.AppRunner(
        emulator.app, access_log=None, handle_signals=False, max_line_size=MAX_URI + 32
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    host = config.host if config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    shown_host = f"[{host}]" if ":" in host else host
    url = (config.public_url or f"https://{shown_host}:{port}").rstrip("/")
    emulator.public_url = url
    return RunningEmulator(url, ca_file, credentials, config.api_version, runner.cleanup)


async def run_emulator(
    config: EmulatorConfig,
    ready: Callable[[RunningEmulator], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or cancellation); `ready` is called once listening."""
    running = await start_emulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # asyncio raises these off the main thread or where signals are unsupported
        # (Windows); the emulator then stops by cancellation only.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if ready is not None:
            ready(running)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await running.close()


def _parse_faults(text: str | None) -> Faults:
    if not text:
        return Faults()
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    return Faults.model_validate_json(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salesforce-emulator", description="Local Salesforce REST API emulator (HTTPS)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--api-version", default="62.0", help="newest API version served")
    parser.add_argument("--public-url", help="instance_url given to clients")
    parser.add_argument("--tls-name", action="append", default=[], help="extra cert name")
    parser.add_argument("--daily-limit", type=int, default=100_000)
    parser.add_argument("--token-ttl", type=float, default=7200.0, help="seconds")
    parser.add_argument("--faults", help='JSON, or @file, e.g. \'{"http_503": {"next": 2}}\'')
    for name in ("client-id", "client-secret", "username", "password", "security-token"):
        env = ENV_PREFIX + name.upper().replace("-", "_")
        parser.add_argument(f"--{name}", help=f"default: ${env}, else generated in DATA_DIR")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        api_version=args.api_version,
        public_url=args.public_url,
        tls_names=tuple(args.tls_name),
        client_id=args.client_id,
        client_secret=args.client_secret,
        username=args.username,
        password=args.password,
        security_token=args.security_token,
        daily_limit=args.daily_limit,
        token_ttl_s=args.token_ttl,
        faults=_parse_faults(args.faults),
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValidationError, OSError) as exc:
        parser.error(f"--faults: {exc}")

    def announce(running: RunningEmulator) -> None:
        sys.stdout.write(json.dumps(running.ready_line()) + "\n")
        sys.stdout.flush()

    asyncio.run(run_emulator(config, announce))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
