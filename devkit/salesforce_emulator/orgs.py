"""The named orgs one emulator hosts beside the default one, and which org a request is for.

Each named org is a whole org of its own: records (its own SQLite file, ids from a block
of its own, so an id of one org names nothing in another), credentials (client id and
secret, username, password, security token: never the start-up ones), tokens, API-call
count and daily limit, faults and outages, the integration user's permissions. The
sObject schema (deployed custom fields, metadata.py) is the emulator's, shared by all.

Addresses. A named org logs in by path: its login URL is `URL/orgs/<name>`, so its token
endpoint is `/orgs/<name>/services/oauth2/token`. Its token answer's `instance_url` is
its own port on the emulator's host, `https://HOST:ORG_PORT`, not `URL/orgs/<name>`:
simple-salesforce (session-id mode, as streams/salesforce/session.py uses it) keeps only
the host and port of `instance_url`, so a path there would be dropped and every API call
would reach the default org. Salesforce gives each org a host of its own (My Domain); a
port is the local stand-in, under the one certificate. The org's port serves it at the
root (`/services/...`, `/__admin/...`); the main port serves it under `/orgs/<name>/`
too (API and admin API).

Cheap at scale: an org is a SQLite connection, a listening socket on the one event loop
and a few objects: no thread, no process (200 orgs: docs/salesforce.md).

On disk: DIR/orgs/<name>/{org.json, credentials.json, emulator.sqlite3}. Orgs found
there are served again after a restart, on their port when it is free (else a new one:
clients log in again by path, as after any restart, since tokens live in memory).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from devkit.salesforce_emulator.api import OrgApi
from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.metadata import OrgMetadata
from devkit.salesforce_emulator.org import Credentials, Org
from devkit.salesforce_emulator.responses import json_response, read_json
from devkit.salesforce_emulator.schema import PREFIX_USER, make_id
from devkit.salesforce_emulator.seed import seed_defaults
from devkit.salesforce_emulator.sobjects import SObjects
from devkit.salesforce_emulator.store import Store
from devkit.salesforce_emulator.tls_auth import load_credentials

# The integration user of the seed template (a stand-in no pool id equals): each new org's
# copy names its own integration user instead.
_TEMPLATE_USER = make_id(PREFIX_USER, 62**9 - 1)
NAME = re.compile(r"[a-z0-9-]{1,40}")
NAME_RULE = "an org name is 1 to 40 characters of a-z, 0-9 and -"
# Record ids come from a store's sequence: org N's ids start at N * ID_BLOCK (the default
# org's block is 0), far below make_id's 62**9 range.
ID_BLOCK = 10**12


def valid_name(name: object) -> bool:
    return isinstance(name, str) and NAME.fullmatch(name) is not None


def instance_url(base_url: str, port: int) -> str:
    """`base_url`'s scheme and host with `port`: where a named org's API calls go."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


def org_of(path_org: str | None, port_org: str | None) -> str | None:
    """Which org a request is for ("": the default), from the org its path names
    (`/orgs/<name>/...`) and the org whose own port it came to: the port's org, else the
    path's, else the default. None: a path naming an org on another org's port."""
    if port_org is not None:
        return None if path_org is not None else port_org
    return "" if path_org is None else path_org


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), or to a free port if that one is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for wanted in dict.fromkeys((port, 0)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        # A restart binds the org's port again while old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", wanted))
        except OSError:
            sock.close()
            if wanted == 0:
                raise
            continue
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable: port 0 binds or raises")


@dataclass(frozen=True)
class OrgTemplate:
    """What every named org starts with (the start-up options but the faults: `--faults`
    configures the default org; a named org's are set over its admin API)."""

    data_dir: Path
    api_version: str
    daily_limit: int
    token_ttl_s: float
    modify_all_data: bool
    metadata: OrgMetadata
    jwt_key: object
    ca_file: Path
    jwt_private_key_file: Path | None
    jwt_certificate_file: Path


@dataclass
class _Served:
    api: OrgApi
    site: web.BaseSite | None
    port: int
    block: int


class Orgs:
    """The default org and the named ones; which one a request is for; `/__admin/orgs`."""

    def __init__(self, default: OrgApi, template: OrgTemplate) -> None:
        self.default = default
        self._template = template
        self._root = template.data_dir / "orgs"
        self._orgs: dict[str, _Served] = {}
        self._by_port: dict[int, str] = {}
        # Orgs there were at start: a reset of the emulator keeps (and resets) them.
        self._started: set[str] = set()
        self._seeded: Store | None = None
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self._host = ""
        self._base_url = ""

    # Serving -------------------------------------------------------------------------

    async def serve(
        self,
        runner: web.AppRunner,
        ssl_context: ssl.SSLContext,
        host: str,
        base_url: str,
        start: Iterable[str] = (),
    ) -> None:
        """Serve the orgs in DIR/orgs, and create the `start` ones that are missing."""
        self._runner, self._ssl, self._host, self._base_url = runner, ssl_context, host, base_url
        if self._root.is_dir():
            for path in sorted(self._root.iterdir()):
                if valid_name(path.name) and (path / "org.json").is_file():
                    saved = json.loads((path / "org.json").read_text())
                    await self._open(path.name, int(saved["block"]), int(saved["port"]))
        for name in start:
            if name not in self._orgs:
                await self.create(name)
        self._started = set(self._orgs)

    def names(self) -> list[str]:
        return sorted(self._orgs)

    def get(self, name: str) -> OrgApi | None:
        served = self._orgs.get(name)
        return served.api if served is not None else None

    def resolve(self, request: web.Request) -> OrgApi | None:
        """The org a request is for (`org_of`); None for an org there is not."""
        name = org_of(request.match_info.get("org"), self._by_port.get(_local_port(request)))
        if name is None:
            return None
        return self.default if name == "" else self.get(name)

    def on_main_port(self, request: web.Request) -> bool:
        return _local_port(request) not in self._by_port

    async def create(self, name: str) -> OrgApi:
        if not valid_name(name):
            raise ValueError(NAME_RULE)
        if name in self._orgs:
            raise KeyError(name)
        blocks = {served.block for served in self._orgs.values()}
        block = next(n for n in range(1, len(blocks) + 2) if n not in blocks)
        shutil.rmtree(self._root / name, ignore_errors=True)  # a deleted org's leftovers
        return await self._open(name, block, 0, new=True)

    def _seed_template(self) -> Store:
        """An in-memory store holding the default seed (seed.py) but its integration
        user, made once: a new org's store starts as a copy of it."""
        if self._seeded is None:
            store = Store(":memory:")
            stand_in = Credentials("", "", "", "", "", "", _TEMPLATE_USER)
            org = Org(
                stand_in,
                store,
                FaultState(Faults()),
                0,
                float(self._template.api_version),
                self._template.metadata,
            )
            seed_defaults(org, SObjects(org))
            store.purge(_TEMPLATE_USER)
            self._seeded = store
        return self._seeded

    async def _open(self, name: str, block: int, port: int, *, new: bool = False) -> OrgApi:
        t = self._template
        path = self._root / name
        path.mkdir(parents=True, exist_ok=True)
        credentials = load_credentials(path, {}, org=name)
        store = Store(
            path / "emulator.sqlite3",
            block * ID_BLOCK,
            copy_of=self._seed_template() if new else None,
        )
        if new:
            with store.transaction():
                store.replace_id(_TEMPLATE_USER, credentials.user_id)
        org = Org(
            credentials,
            store,
            FaultState(Faults()),
            t.daily_limit,
            float(t.api_version),
            t.metadata,
            modify_all_data=t.modify_all_data,
            name=name,
        )
        api = OrgApi(org, t.token_ttl_s, t.jwt_key, Faults())
        served = _Served(api, None, 0, block)
        # Registered before the first await: a second create of the name is refused.
        self._orgs[name] = served
        try:
            assert self._runner is not None, "serve() first"
            sock = _listen(self._host, port)
            served.port = sock.getsockname()[1]
            served.site = web.SockSite(self._runner, sock, ssl_context=self._ssl)
            await served.site.start()
        except BaseException:
            del self._orgs[name]
            api.close()
            raise
        self._by_port[served.port] = name
        org.login_url = f"{self._base_url}/orgs/{name}"
        org.instance_url = instance_url(self._base_url, served.port)
        (path / "org.json").write_text(json.dumps({"block": block, "port": served.port}))
        return api

    async def delete(self, name: str) -> bool:
        """Remove an org and everything it held: its port closes, its login fails."""
        served = self._orgs.pop(name, None)
        if served is None:
            return False
        self._by_port.pop(served.port, None)
        self._started.discard(name)
        if served.site is not None:
            await served.site.stop()
        served.api.close()
        shutil.rmtree(self._root / name, ignore_errors=True)
        return True

    async def reset(self) -> None:
        """The orgs as at start: those added since are removed, the others reset."""
        for name in [n for n in self._orgs if n not in self._started]:
            await self.delete(name)
        for served in self._orgs.values():
            served.api.admin.restore()

    def close(self) -> None:
        """Close every named org's store (their sites stop with the runner)."""
        for served in self._orgs.values():
            served.api.close()

    # Descriptions ----------------------------------------------------------------------

    def describe(self, name: str, *, secrets: bool) -> dict[str, object]:
        """An org's addresses, and with `secrets` its credentials: the fields of the
        emulator's ready line, so a client is configured the same way for any org."""
        served = self._orgs[name]
        org = served.api.org
        out: dict[str, object] = {
            "name": name,
            "url": org.login_url,
            "instance_url": org.instance_url,
            "client_id": org.credentials.client_id,
            "username": org.credentials.username,
            "api_calls": org.used(),
            "daily_limit": org.daily_limit,
        }
        if secrets:
            t = self._template
            out.update(
                ca_file=str(t.ca_file),
                client_secret=org.credentials.client_secret,
                password=org.credentials.password,
                security_token=org.credentials.security_token,
                api_version=t.api_version,
                jwt_private_key_file=str(t.jwt_private_key_file or ""),
                jwt_certificate_file=str(t.jwt_certificate_file),
            )
        return out

    # /__admin/orgs -----------------------------------------------------------------------

    async def list_handler(self, request: web.Request) -> web.Response:
        if not self.on_main_port(request):
            return _no_org()
        return json_response({"orgs": [self.describe(n, secrets=False) for n in self.names()]})

    async def create_handler(self, request: web.Request) -> web.Response:
        """`{"name": "acme"}` -> 201 with its login URL and credentials."""
        if not self.on_main_port(request):
            return _no_org()
        body = await read_json(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not valid_name(name):
            return json_response({"error": NAME_RULE}, 400)
        assert isinstance(name, str)
        try:
            await self.create(name)
        except KeyError:
            return json_response({"error": f"org {name} exists"}, 409)
        except OSError as exc:
            return json_response({"error": f"cannot serve org {name}: {exc}"}, 500)
        return json_response(self.describe(name, secrets=True), 201)

    async def show_handler(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not valid_name(name):
            return json_response({"error": NAME_RULE}, 400)
        if name not in self._orgs or not self.on_main_port(request):
            return _no_org()
        return json_response(self.describe(name, secrets=True))

    async def delete_handler(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not valid_name(name):
            return json_response({"error": NAME_RULE}, 400)
        if not self.on_main_port(request) or not await self.delete(name):
            return _no_org()
        return json_response({"deleted": name})


def _no_org() -> web.Response:
    return json_response({"error": "no such org"}, 404)


def _local_port(request: web.Request) -> int:
    """The port the request came to (bound, whatever the Host header says)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    with contextlib.suppress(TypeError, IndexError):
        return int(sockname[1])  # type: ignore[index]
    return 0
