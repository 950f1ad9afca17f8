"""The /__admin/ API: how tests, benches and the demo look at and steer the emulator.

Not Salesforce: no auth, never counted as an API call. Records, the API-call count,
faults, outages, the daily limit, token expiry, the write log of fenced fields, and a
reset between tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.composite import CollectionItem, Collections
from devkit.salesforce_emulator.faults import Faults
from devkit.salesforce_emulator.org import Org
from devkit.salesforce_emulator.query import Query
from devkit.salesforce_emulator.responses import json_response, read_json
from devkit.salesforce_emulator.schema import (
    RequestError,
    SObjectDef,
    deserialize,
    resolve_sobject,
)
from devkit.salesforce_emulator.sobjects import render
from devkit.salesforce_emulator.tls_auth import OAuth


@dataclass(frozen=True)
class Admin:
    org: Org
    oauth: OAuth
    query: Query
    collections: Collections
    # What a reset restores.
    start_faults: Faults
    start_daily_limit: int

    def add_routes(self, router: web.UrlDispatcher) -> None:
        prefix = "/__admin"
        router.add_get(f"{prefix}/health", self.health)
        router.add_get(f"{prefix}/api-calls", self.api_calls)
        router.add_get(f"{prefix}/records/{{sobject}}", self.records)
        router.add_post(f"{prefix}/records/{{sobject}}", self.insert)
        router.add_get(f"{prefix}/faults", self.faults)
        router.add_put(f"{prefix}/faults", self.faults)
        router.add_post(f"{prefix}/faults", self.faults)
        router.add_post(f"{prefix}/down", self.down)
        router.add_post(f"{prefix}/limits", self.limits)
        router.add_post(f"{prefix}/expire-tokens", self.expire_tokens)
        router.add_post(f"{prefix}/reset", self.reset)
        router.add_get(f"{prefix}/writes/{{sobject}}", self.writes)
        router.add_delete(f"{prefix}/fields/{{sobject}}/{{field}}", self.remove_field)
        router.add_post(f"{prefix}/deploy", self.deploy)

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"ok": True, "url": self.org.public_url})

    async def api_calls(self, request: web.Request) -> web.Response:
        by_kind = dict(sorted(self.org.usage_today().items()))
        return json_response(
            {
                "day": self.org.usage_day,
                "total": sum(by_kind.values()),
                "by_kind": by_kind,
                "daily_limit": self.org.daily_limit,
                "token_requests": self.oauth.token_requests,
            }
        )

    def _sobject(self, request: web.Request) -> SObjectDef:
        sobject = resolve_sobject(request.match_info["sobject"])
        if sobject is None:
            raise web.HTTPNotFound(text=f"unknown sobject {request.match_info['sobject']}")
        return sobject

    async def records(self, request: web.Request) -> web.Response:
        sobject = self._sobject(request)
        version = self.org.max_version
        rows = [render(sobject, r, version) for r in self.org.store.all(sobject)]
        return json_response({"totalSize": len(rows), "records": rows})

    async def writes(self, request: web.Request) -> web.Response:
        """The write log: `?after=SEQ` for entries after that one."""
        sobject = self._sobject(request)
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return json_response({"error": "after must be an integer"}, 400)
        rows = self.org.store.writes(sobject.name, after)
        return json_response({"totalSize": len(rows), "records": rows})

    async def insert(self, request: web.Request) -> web.Response:
        """Seed records: validated as an API write, but not counted."""
        sobject = self._sobject(request)
        try:
            body = await read_json(request)
            raws = body["records"] if isinstance(body, dict) and "records" in body else [body]
            items: list[CollectionItem] = [
                (sobject, deserialize(sobject, raw), None, []) for raw in raws
            ]
        except (RequestError, TypeError, AttributeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(self.collections.run(True, items, upsert=False))

    async def remove_field(self, request: web.Request) -> web.Response:
        """Delete a deployed custom field, as an admin would in Setup (an org set up
        wrong); `POST deploy` brings the DX project's fields back."""
        sobject = self._sobject(request)
        removed = metadata.remove_field(sobject.name, request.match_info["field"])
        if not removed:
            return json_response({"error": "no such deployed field"}, 404)
        return json_response({"removed": request.match_info["field"]})

    async def deploy(self, request: web.Request) -> web.Response:
        """Deploy the DX project's custom fields again (as `sf project deploy start`)."""
        metadata.deploy(self.org.metadata)
        return json_response({"ok": True})

    async def faults(self, request: web.Request) -> web.Response:
        """GET shows the faults, PUT replaces them, POST merges into them."""
        if request.method != "GET":
            try:
                body = await request.json()
                if request.method == "PUT":
                    self.org.faults.replace(Faults.model_validate(body))
                else:
                    self.org.faults.merge(body)
            except (ValidationError, TypeError, ValueError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(self.org.faults.snapshot())

    async def down(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.org.faults.merge(
                {"down_for_s": body.get("for_s", 3600.0), "down_mode": body.get("mode", "503")}
            )
        except ValidationError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(self.org.faults.snapshot())

    async def limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        limit = body.get("daily_limit")
        if not isinstance(limit, int) or limit < 0:
            return json_response({"error": "daily_limit must be a non-negative integer"}, 400)
        self.org.daily_limit = limit
        return await self.api_calls(request)

    async def expire_tokens(self, request: web.Request) -> web.Response:
        return json_response({"expired": self.oauth.expire_all()})

    async def reset(self, request: web.Request) -> web.Response:
        """Clear data, counters and faults; restore the start-up limit. Tokens stay valid."""
        self.org.store.reset()
        metadata.deploy(self.org.metadata)
        self.org.reread_usage()
        self.query.forget_cursors()
        self.oauth.token_requests = 0
        self.org.faults.replace(self.start_faults)
        self.org.daily_limit = self.start_daily_limit
        return json_response({"ok": True})
