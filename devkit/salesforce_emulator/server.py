"""A local stand-in for Salesforce's REST API, faithful to the wire contract: the web app
(which URL goes to which API area, and what every API call goes through), its
configuration, and starting it.

    python -m devkit salesforce-emulator --port 0 --data-dir DIR   (devkit/commands.py)

Serves HTTPS with a CA it creates (or reuses) in DIR and writes to DIR/ca.pem, then
prints one JSON line: {"url", "ca_file", "client_id", "client_secret", "username",
"password", "security_token", ...}. Data lives in DIR/emulator.sqlite3.

Salesforce API (what a real org answers, shapes from the REST API guide):
    POST /services/oauth2/token                       client_credentials | password | JWT bearer
                                                      (tls_auth.py)
    GET  /services/data/                              versions
    GET  /services/data/vXX.X/limits                  DailyApiRequests
    GET  /services/data/vXX.X/query?q=SOQL            SOQL subset (query.py, soql.py), and
                                                      SELECT Permissions... FROM
                                                      UserPermissionAccess
    POST /services/data/vXX.X/sobjects/{T}/           create (sobjects.py)
    GET|PATCH|DELETE .../sobjects/{T}/{id}            read / update / delete
    GET|PATCH|DELETE .../sobjects/{T}/{extField}/{v}  read / upsert / delete by external id
    GET  .../sobjects/{T}/describe
    POST  .../composite                               composite (<= 25 subrequests, <= 5
                                                      queries; GET query and GET record)
                                                      (composite.py)
    POST  .../composite/sobjects                      create collection (<= 200)
    PATCH .../composite/sobjects/{T}/{extField}       upsert collection (<= 200, API >= 46)
Every API response carries `Sforce-Limit-Info: api-usage=USED/MAX`.

Admin API (not Salesforce, no auth, never counted as API calls), under /__admin/
(admin.py):
    GET  health                      GET  api-calls
    GET  records/{T}                 POST records/{T}   (seed data: validated, uncounted)
    GET|PUT|POST faults              POST down {"for_s": 5, "mode": "503"|"close"}
    POST limits {"daily_limit": N}   POST expire-tokens      POST reset
    GET  writes/{T}                  every write of a field a PRIORVALUE rule guards:
                                     old and new value, written or refused
    GET|POST user-permissions        {"ModifyAllData": false}: the profile's Modify All
                                     Data (start: on, or off --without-modify-all-data)

Custom fields, validation rules and the integration user's access (permission sets)
come from the product's Salesforce DX project (`salesforce/`, or `--metadata DIR`), read
by metadata.py: the org enforces the same rules as a real org with that metadata
deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from aiohttp import web

from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.admin import Admin
from devkit.salesforce_emulator.composite import Collections, Composite
from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.org import MIN_API_VERSION, Credentials, Org
from devkit.salesforce_emulator.query import Query
from devkit.salesforce_emulator.responses import (
    Handler,
    error_response,
    json_response,
    method_not_allowed,
    not_found,
)
from devkit.salesforce_emulator.schema import ApiError, RequestError
from devkit.salesforce_emulator.seed import seed_defaults
from devkit.salesforce_emulator.sobjects import SObjects
from devkit.salesforce_emulator.store import Store
from devkit.salesforce_emulator.tls_auth import (
    OAuth,
    load_credentials,
    load_public_key,
    prepare_jwt,
    prepare_tls,
    provided_secrets,
)

MAX_URI = 16_384


@dataclass
class EmulatorConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    api_version: str = "62.0"
    # The URL clients are told to use (token `instance_url`); defaults to https://host:port.
    public_url: str | None = None
    tls_names: tuple[str, ...] = ()
    # Credentials: None takes $ACTIVITY_SYNC_EMULATOR_<NAME>, else DIR/credentials.json.
    client_id: str | None = None
    client_secret: str | None = None
    # Where an explicit client_secret came from (the ready line names it instead of it).
    client_secret_origin: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    daily_limit: int = 100_000
    token_ttl_s: float = 7200.0
    faults: Faults = field(default_factory=Faults)
    # The Salesforce DX project whose custom fields and validation rules the org has
    # (devkit/salesforce_emulator/metadata.py); None: the checkout's salesforce/.
    metadata_dir: Path | None = None
    # The connected app's certificate (or public key) verifying JWT bearer assertions;
    # None: one made in the data dir, its private key DIR/jwt-key.pem.
    jwt_certificate: Path | None = None
    # The integration user's profile holds Modify All Data (org.py); False: it does not,
    # and check-salesforce warns that only sharing lets it update others' Events.
    modify_all_data: bool = True


@dataclass(frozen=True)
class RunningEmulator:
    url: str
    ca_file: Path
    credentials: Credentials
    api_version: str
    close: Callable[[], Awaitable[None]]
    jwt_private_key_file: Path | None = None
    jwt_certificate_file: Path | None = None
    # Secrets the emulator was given (name -> where from): the ready line leaves them out.
    provided_secrets: Mapping[str, str] = field(default_factory=dict)

    def ready_line(self) -> dict[str, object]:
        """What to give the worker. A secret the emulator generated is printed (it is in
        its data dir only); one it was given is not (`docker compose logs` would show
        it): `<name>_from` says where it came from instead."""
        line: dict[str, object] = {
            "url": self.url,
            "ca_file": str(self.ca_file),
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
            "username": self.credentials.username,
            "password": self.credentials.password,
            "security_token": self.credentials.security_token,
            "api_version": self.api_version,
            "jwt_private_key_file": str(self.jwt_private_key_file or ""),
            "jwt_certificate_file": str(self.jwt_certificate_file or ""),
            "pid": os.getpid(),
        }
        for name, origin in self.provided_secrets.items():
            del line[name]
            line[f"{name}_from"] = origin
        return line


class Emulator:
    """The aiohttp app: one object per API area around the one `Org`."""

    def __init__(
        self, config: EmulatorConfig, credentials: Credentials, jwt_key: object = None
    ) -> None:
        org_metadata = metadata.load(config.metadata_dir or metadata.DEFAULT_PROJECT)
        metadata.deploy(org_metadata)
        self.org = Org(
            credentials,
            Store(config.data_dir / "emulator.sqlite3"),
            FaultState(config.faults),
            config.daily_limit,
            float(config.api_version),
            org_metadata,
            modify_all_data=config.modify_all_data,
        )
        self.oauth = OAuth(self.org, config.token_ttl_s, jwt_key)
        self.sobjects = SObjects(self.org)
        self.query = Query(self.org)
        self.collections = Collections(self.org, self.sobjects)
        self.composite = Composite(
            lambda method, parts: self._route(method, parts)[0],
            {"query": self.query.run, "read": self.sobjects.read_record},
        )
        self.admin = Admin(
            self.org,
            self.oauth,
            self.query,
            self.collections,
            self.sobjects,
            config.faults,
            config.daily_limit,
            config.modify_all_data,
        )
        seed_defaults(self.org, self.sobjects)
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/services/oauth2/token", self.oauth.token)
        app.router.add_get("/services/data", self._versions)
        app.router.add_get("/services/data/", self._versions)
        app.router.add_route(
            "*", r"/services/data/v{version:[0-9]+\.[0-9]}{tail:(/.*)?}", self._api
        )
        self.admin.add_routes(app.router)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        self.org.store.close()

    # API entry point ------------------------------------------------------------

    async def _versions(self, request: web.Request) -> web.StreamResponse:
        versions = []
        major = int(MIN_API_VERSION)
        while major <= int(self.org.max_version):
            version = f"{major}.0"
            versions.append(
                {"label": f"API {version}", "url": f"/services/data/v{version}", "version": version}
            )
            major += 1
        return json_response(versions)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        """Every /services/data/vXX.X/ call: outage, version, session, daily limit, the
        injected 5xx faults and the usage count, then the resource's handler."""
        org = self.org
        outage = await org.outage(request)
        if outage is not None:
            return outage
        version = float(request.match_info["version"])
        if not MIN_API_VERSION <= version <= org.max_version:
            return not_found()
        # The raw path keeps %2F inside an external-id value from splitting a segment.
        prefix = f"/services/data/v{request.match_info['version']}"
        raw_tail = request.raw_path.split("?", 1)[0][len(prefix) :]
        parts = [unquote(p) for p in raw_tail.split("/") if p]
        kind, handler = self._route(request.method, parts)
        if org.faults.fire("invalid_session", kind) or not self.oauth.authorized(request):
            return error_response(401, ApiError("INVALID_SESSION_ID", "Session expired or invalid"))
        if org.faults.fire("request_limit_exceeded", kind) or org.used() >= org.daily_limit:
            response = error_response(
                403, ApiError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            )
            response.headers.update(org.limit_header())
            return response
        org.count(kind)
        server_error: web.Response | None = None
        after_write = False
        if org.faults.fire("http_500", kind):
            server_error = error_response(
                500,
                ApiError(
                    "UNKNOWN_EXCEPTION",
                    "An unexpected error occurred. Please include this ErrorId if you "
                    f"contact support: {secrets.randbelow(10**9)}-{secrets.randbelow(10**5)}",
                ),
            )
            after_write = org.faults.after_write("http_500")
        elif org.faults.fire("http_503", kind):
            server_error = error_response(
                503, ApiError("SERVER_UNAVAILABLE", "Service Unavailable: please retry later")
            )
            after_write = org.faults.after_write("http_503")
        if server_error is None or after_write:
            try:
                response = await handler(request, version, parts)
            except RequestError as exc:
                response = error_response(exc.status, exc.error)
        # after_write: the work is committed, yet the caller sees the error (as when a
        # response is lost); a client must not assume a failed call wrote nothing.
        if server_error is not None:
            response = server_error
        response.headers.update(org.limit_header())
        return response

    def _route(self, method: str, parts: list[str]) -> tuple[str, Handler]:
        """The resource `parts` names, as the API counts it ("kind"), and its handler."""

        def handler(kind: str, allowed: Mapping[str, Handler]) -> tuple[str, Handler]:
            if method in allowed:
                return kind, allowed[method]

            async def not_allowed(*_: object) -> web.Response:
                return method_not_allowed(method, ",".join(allowed))

            return kind, not_allowed

        async def missing(*_: object) -> web.Response:
            return not_found()

        sobjects = self.sobjects
        n = len(parts)
        if n == 0:
            return handler("resources", {"GET": self._resources})
        head = parts[0]
        if head == "limits" and n == 1:
            return handler("limits", {"GET": self._limits})
        if head in ("query", "queryAll") and n in (1, 2):
            return handler("query", {"GET": self.query.handle})
        if head == "sobjects":
            if n == 1:
                return handler("describe", {"GET": sobjects.describe_global})
            if n == 2:
                return handler("create", {"POST": sobjects.create, "GET": sobjects.sobject_info})
            if n == 3 and parts[2] == "describe":
                return handler("describe", {"GET": sobjects.describe})
            if n in (3, 4):
                by_ext = n == 4
                kinds = {"GET": "read", "PATCH": "upsert" if by_ext else "update"}
                kind = kinds.get(method, "delete")
                return handler(
                    kind,
                    {"GET": sobjects.read, "PATCH": sobjects.write_one, "DELETE": sobjects.delete},
                )
        if head == "composite" and n == 1:
            return handler("composite", {"POST": self.composite.handle})
        if head == "composite" and n >= 2 and parts[1] == "sobjects":
            if n == 2:
                return handler("collections_create", {"POST": self.collections.create})
            if n == 4:
                return handler("collections_upsert", {"PATCH": self.collections.upsert})
        return "other", missing

    async def _resources(self, request: web.Request, version: float, _: list[str]) -> web.Response:
        base = f"/services/data/v{version:.1f}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return json_response({name: f"{base}/{name}" for name in names})

    async def _limits(self, request: web.Request, version: float, _: list[str]) -> web.Response:
        remaining = max(0, self.org.daily_limit - self.org.used())
        return json_response(
            {
                "DailyApiRequests": {"Max": self.org.daily_limit, "Remaining": remaining},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            }
        )


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
    explicit = {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "username": config.username,
        "password": config.password,
        "security_token": config.security_token,
    }
    credentials = load_credentials(config.data_dir, explicit)
    origins = {"client_secret": config.client_secret_origin or "given at start"}
    context, ca_file = prepare_tls(config.data_dir, _names(config, config.public_url))
    jwt_key_file, jwt_cert_file = prepare_jwt(config.data_dir, config.jwt_certificate)
    emulator = Emulator(config, credentials, load_public_key(jwt_cert_file))
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
    emulator.org.public_url = url
    return RunningEmulator(
        url,
        ca_file,
        credentials,
        config.api_version,
        runner.cleanup,
        jwt_key_file,
        jwt_cert_file,
        provided_secrets(explicit, origins),
    )


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
