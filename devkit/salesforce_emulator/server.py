"""A local stand-in for Salesforce's REST API, faithful to the wire contract: the web app
(which URL goes to which API area, and what every API call goes through), its
configuration, and starting it.

    python -m devkit salesforce-emulator --port 0 --data-dir DIR   (devkit/commands.py)

Serves HTTPS with a CA it creates (or reuses) in DIR and writes to DIR/ca.pem, then
prints one JSON line: {"url", "ca_file", "client_id", "client_secret", "username",
"password", "security_token", ...}. Data lives in DIR/emulator.sqlite3.

Orgs: the default org at the root, as above; named orgs (orgs.py, `--orgs a,b`, or
`POST /__admin/orgs`) each with their own records, credentials, tokens, limits, faults
and permissions. Org <name> logs in at URL/orgs/<name> (its token endpoint
/orgs/<name>/services/oauth2/token), and its token's `instance_url` is a port of its
own (https://HOST:ORG_PORT, which serves it at the root): simple-salesforce keeps only
the host and port of `instance_url`. Every route below also answers under
/orgs/<name>/ on the main port, for that org. A token of one org is refused by every
other (401 INVALID_SESSION_ID); a login to an org there is not answers 400
{"error": "invalid_client_id", ...}.

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
    DELETE .../composite/sobjects?ids=a,b             delete collection (<= 200)
    PATCH .../composite/sobjects/{T}/{extField}       upsert collection (<= 200, API >= 46)
Every API response carries `Sforce-Limit-Info: api-usage=USED/MAX`.

Admin API (not Salesforce, no auth, never counted as API calls), under /__admin/
(admin.py):
    GET  health                      GET  api-calls
    GET  records/{T}                 POST records/{T}   (seed data: validated, uncounted)
    GET  records/{T}?changed_after=N&limit=L&fields=A,B   what changed since change N
                                     (deleted ones with IsDeleted): {records, cursor, more}
    GET|PUT|POST faults              POST down {"for_s": 5, "mode": "503"|"close"}
    POST limits {"daily_limit": N}   POST expire-tokens      POST reset
    POST client-secret {"client_secret": "..."}: the old secret is refused from now on
    GET  writes/{T}                  every write of a field a PRIORVALUE rule guards:
                                     old and new value, written or refused
    GET|POST user-permissions        {"ModifyAllData": false}: the profile's Modify All
                                     Data (start: on, or off --without-modify-all-data)
The default org's reset also removes the orgs added since start. The orgs themselves,
on the main port only (orgs.py):
    POST /__admin/orgs {"name": "acme"}   201 {name, url (login URL), instance_url,
                                          ca_file, client_id, client_secret, username,
                                          password, security_token, ...}; a name is
                                          [a-z0-9-]{1,40} (else 400), 409 if it exists
    GET  /__admin/orgs                    {"orgs": [{name, url, instance_url, client_id,
                                          api_calls, daily_limit}]}
    GET  /__admin/orgs/{name}             as the POST answered      DELETE: remove it

Custom fields, validation rules and the integration user's access (permission sets)
come from the product's Salesforce DX project (`salesforce/`, or `--metadata DIR`), read
by metadata.py: the org enforces the same rules as a real org with that metadata
deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.admin import ROUTES as ADMIN_ROUTES
from devkit.salesforce_emulator.admin import Admin, AdminHandler
from devkit.salesforce_emulator.api import OrgApi
from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.org import Credentials, Org
from devkit.salesforce_emulator.orgs import Orgs, OrgTemplate
from devkit.salesforce_emulator.responses import error_response, json_response, not_found
from devkit.salesforce_emulator.schema import ApiError
from devkit.salesforce_emulator.store import Store
from devkit.salesforce_emulator.tls_auth import (
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
    # Named orgs to serve from the start (orgs.py), beside those in DIR/orgs.
    orgs: tuple[str, ...] = ()


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
    """The aiohttp app: the default org's API (`OrgApi`) at the root, the named orgs'
    (orgs.py) under /orgs/<name>/ and on their own ports; each request goes to its org."""

    def __init__(
        self, config: EmulatorConfig, credentials: Credentials, template: OrgTemplate
    ) -> None:
        metadata.deploy(template.metadata)
        org = Org(
            credentials,
            Store(config.data_dir / "emulator.sqlite3"),
            FaultState(config.faults),
            config.daily_limit,
            float(config.api_version),
            template.metadata,
            modify_all_data=config.modify_all_data,
        )
        self.org = org
        self.orgs = Orgs(OrgApi(org, config.token_ttl_s, template.jwt_key, config.faults), template)
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        router = app.router
        for prefix in ("", "/orgs/{org}"):
            router.add_post(
                f"{prefix}/services/oauth2/token",
                self._per_org(lambda api, r: api.oauth.token(r), _unknown_client),
            )
            versions = self._per_org(lambda api, r: api.versions(r), _not_found)
            router.add_get(f"{prefix}/services/data", versions)
            router.add_get(f"{prefix}/services/data/", versions)
            router.add_route(
                "*",
                prefix + r"/services/data/v{version:[0-9]+\.[0-9]}{tail:(/.*)?}",
                self._per_org(lambda api, r: api.api(r), _invalid_session),
            )
            for method, path, handler in ADMIN_ROUTES:
                router.add_route(
                    method, f"{prefix}/__admin/{path}", self._per_org(self._admin(handler), _no_org)
                )
        router.add_get("/__admin/orgs", self.orgs.list_handler)
        router.add_post("/__admin/orgs", self.orgs.create_handler)
        router.add_get("/__admin/orgs/{name}", self.orgs.show_handler)
        router.add_delete("/__admin/orgs/{name}", self.orgs.delete_handler)
        app.on_cleanup.append(self._close)
        return app

    def _per_org(
        self,
        handle: Callable[[OrgApi, web.Request], Awaitable[web.StreamResponse]],
        missing: Callable[[], web.Response],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            api = self.orgs.resolve(request)
            if api is None:
                return missing()
            return await handle(api, request)

        return handler

    def _admin(
        self, handler: AdminHandler
    ) -> Callable[[OrgApi, web.Request], Awaitable[web.StreamResponse]]:
        async def handle(api: OrgApi, request: web.Request) -> web.StreamResponse:
            if handler is Admin.reset and api is self.orgs.default:
                # The emulator as it started: orgs added since are removed too.
                await self.orgs.reset()
            return await handler(api.admin, request)

        return handle

    async def _close(self, _app: web.Application) -> None:
        self.orgs.close()
        self.org.store.close()


def _unknown_client() -> web.Response:
    """A login to an org there is not (or no longer): Salesforce knows no such client."""
    return json_response(
        {"error": "invalid_client_id", "error_description": "client identifier invalid"}, 400
    )


def _invalid_session() -> web.Response:
    return error_response(401, ApiError("INVALID_SESSION_ID", "Session expired or invalid"))


def _not_found() -> web.Response:
    return not_found()


def _no_org() -> web.Response:
    return json_response({"error": "no such org"}, 404)


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
    template = OrgTemplate(
        data_dir=config.data_dir,
        api_version=config.api_version,
        daily_limit=config.daily_limit,
        token_ttl_s=config.token_ttl_s,
        modify_all_data=config.modify_all_data,
        metadata=metadata.load(config.metadata_dir or metadata.DEFAULT_PROJECT),
        jwt_key=load_public_key(jwt_cert_file),
        ca_file=ca_file,
        jwt_private_key_file=jwt_key_file,
        jwt_certificate_file=jwt_cert_file,
    )
    emulator = Emulator(config, credentials, template)
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
    emulator.org.login_url = emulator.org.instance_url = url
    try:
        await emulator.orgs.serve(runner, context, config.host, url, config.orgs)
    except BaseException:
        await runner.cleanup()
        raise
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
