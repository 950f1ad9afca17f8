"""One org's Salesforce API: its API areas around its `Org`, and the entry point every
`/services/data/vXX.X/` call of that org goes through (outage, version, session, daily
limit, injected faults, usage count, then the resource's handler).

server.py routes each request to the org it names (orgs.py); this module never asks
which org it is.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from urllib.parse import unquote

from aiohttp import web

from devkit.salesforce_emulator.admin import Admin
from devkit.salesforce_emulator.composite import Collections, Composite
from devkit.salesforce_emulator.faults import Faults
from devkit.salesforce_emulator.org import MIN_API_VERSION, Org
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
from devkit.salesforce_emulator.tls_auth import OAuth


class OrgApi:
    """One object per API area around one `Org`; `start_faults` (and the org's daily
    limit and Modify All Data as given) are what a reset restores."""

    def __init__(self, org: Org, token_ttl_s: float, jwt_key: object, start_faults: Faults) -> None:
        self.org = org
        self.oauth = OAuth(org, token_ttl_s, jwt_key)
        self.sobjects = SObjects(org)
        self.query = Query(org)
        self.collections = Collections(org, self.sobjects)
        self.composite = Composite(
            lambda method, parts: self._route(method, parts)[0],
            {"query": self.query.run, "read": self.sobjects.read_record},
        )
        self.admin = Admin(
            org,
            self.oauth,
            self.query,
            self.collections,
            self.sobjects,
            start_faults,
            org.daily_limit,
            org.modify_all_data,
        )
        seed_defaults(org, self.sobjects)

    def close(self) -> None:
        self.org.store.close()

    # API entry point ------------------------------------------------------------

    async def versions(self, request: web.Request) -> web.StreamResponse:
        versions = []
        major = int(MIN_API_VERSION)
        while major <= int(self.org.max_version):
            version = f"{major}.0"
            versions.append(
                {"label": f"API {version}", "url": f"/services/data/v{version}", "version": version}
            )
            major += 1
        return json_response(versions)

    async def api(self, request: web.Request) -> web.StreamResponse:
        """Every /services/data/vXX.X/ call: outage, version, session, daily limit, the
        injected 5xx faults and the usage count, then the resource's handler."""
        org = self.org
        outage = await org.outage(request)
        if outage is not None:
            return outage
        version = float(request.match_info["version"])
        if not MIN_API_VERSION <= version <= org.max_version:
            return not_found()
        # The raw path keeps %2F inside an external-id value from splitting a segment; a
        # named org's path starts /orgs/<name>, which cannot hold this prefix.
        prefix = f"/services/data/v{request.match_info['version']}"
        raw_tail = request.raw_path.split("?", 1)[0].split(prefix, 1)[1]
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
                kind = "collections_delete" if method == "DELETE" else "collections_create"
                return handler(
                    kind, {"POST": self.collections.create, "DELETE": self.collections.delete}
                )
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
