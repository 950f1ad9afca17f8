"""The /__admin/ API of one org: how tests, benches and the demo look at and steer it.

Not Salesforce: no auth, never counted as an API call. Records, the API-call count,
faults, outages, the daily limit, token expiry, the write log of fenced fields, the
integration user's Modify All Data, and a reset between tests. Served under /__admin/
for the default org and /orgs/<name>/__admin/ for a named one (server.py, `ROUTES`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

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
from devkit.salesforce_emulator.seed import SEED_MARK, seed_defaults
from devkit.salesforce_emulator.sobjects import SObjects, render
from devkit.salesforce_emulator.store import Record
from devkit.salesforce_emulator.tls_auth import OAuth


@dataclass(frozen=True)
class Admin:
    org: Org
    oauth: OAuth
    query: Query
    collections: Collections
    sobjects: SObjects
    # What a reset restores.
    start_faults: Faults
    start_daily_limit: int
    start_modify_all_data: bool = True

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"ok": True, "url": self.org.login_url})

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
        """Every live record of T; the default seed (seed.py) only with `?all=1`.
        `?changed_after=N` (with `limit`, `fields`): see `changes`."""
        sobject = self._sobject(request)
        version = self.org.max_version
        every = request.query.get("all") == "1"
        if "changed_after" in request.query:
            return self._changes(request, sobject, every)
        rows = [
            render(sobject, r, version)
            for r in self.org.store.all(sobject)
            if every or not r.get(SEED_MARK)
        ]
        return json_response({"totalSize": len(rows), "records": rows})

    def _changes(self, request: web.Request, sobject: SObjectDef, every: bool) -> web.Response:
        """What changed after change N (inserted, updated or deleted), oldest first, at
        most `limit` (default 10,000) records: a reader keeping a copy of a large org reads
        only what changed since its last read. A deleted record comes with
        `IsDeleted: true`; `fields=A,B` renders only those (and Id, IsDeleted). The
        answer's `cursor` is the next read's N; `more` says a read would find more now.
        A reset is not a change: a reader starts over from 0 after one."""
        try:
            after = int(request.query["changed_after"])
            limit = int(request.query.get("limit", "10000"))
        except ValueError:
            return json_response({"error": "changed_after and limit must be integers"}, 400)
        if limit < 1:
            return json_response({"error": "limit must be at least 1"}, 400)
        wanted = request.query.get("fields")
        fields = ["Id", "IsDeleted", *wanted.split(",")] if wanted else None
        changes = self.org.store.changes(sobject, after, limit)
        rows = [
            render(sobject, r, self.org.max_version, fields)
            for _, r in changes
            if every or not r.get(SEED_MARK)
        ]
        cursor = changes[-1][0] if changes else after
        return json_response({"records": rows, "cursor": cursor, "more": len(changes) == limit})

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
        """Seed records: validated as an API write, but not counted. A record may bring
        its own `Id` (of T's key prefix), e.g. the User ids bookings name as owners;
        `IsActive: false` makes an inactive User."""
        sobject = self._sobject(request)
        try:
            body = await read_json(request)
            raws = body["records"] if isinstance(body, dict) and "records" in body else [body]
            ids = [str(raw.pop("Id")) if raw.get("Id") else None for raw in raws]
            items: list[CollectionItem] = [
                (sobject, deserialize(sobject, raw), None, []) for raw in raws
            ]
        except (RequestError, TypeError, AttributeError) as exc:
            return json_response({"error": str(exc)}, 400)
        if any(i is not None and i[:3] != sobject.prefix for i in ids):
            return json_response({"error": f"an Id of {sobject.name} starts {sobject.prefix}"}, 400)
        if any(i is not None and self.org.store.get_any(i) is not None for i in ids):
            return json_response({"error": "a record with that Id exists"}, 400)
        results = []
        with self.org.store.transaction():
            for (_, changes, _, _), record_id in zip(items, ids, strict=True):
                record, errors = self.sobjects.apply(sobject, changes, None, record_id=record_id)
                results.append(
                    {"id": record["Id"], "success": True, "errors": []}
                    if record is not None
                    else {"success": False, "errors": [e.as_record_error() for e in errors]}
                )
        return json_response(results)

    def _record(self, request: web.Request) -> tuple[SObjectDef, Record]:
        sobject = self._sobject(request)
        record = self.org.store.get(sobject, request.match_info["id"])
        if record is None:
            raise web.HTTPNotFound(text=f"no live {sobject.name} {request.match_info['id']}")
        return sobject, record

    async def update(self, request: web.Request) -> web.Response:
        """Change fields of a record (`{"IsActive": false}` deactivates a User)."""
        sobject, record = self._record(request)
        try:
            changes = deserialize(sobject, await read_json(request))
        except (RequestError, TypeError, AttributeError) as exc:
            return json_response({"error": str(exc)}, 400)
        with self.org.store.transaction():
            written, errors = self.sobjects.apply(sobject, changes, record)
        if written is None:
            return json_response({"errors": [e.as_record_error() for e in errors]}, 400)
        return json_response(render(sobject, written, self.org.max_version))

    async def delete(self, request: web.Request) -> web.Response:
        """Delete a record (to the recycle bin): references to it answer ENTITY_IS_DELETED."""
        sobject, record = self._record(request)
        with self.org.store.transaction():
            self.org.store.delete(sobject, str(record["Id"]))
        return json_response({"deleted": record["Id"]})

    async def merge(self, request: web.Request) -> web.Response:
        """`{"master": id, "duplicates": [id, ...]}`: the duplicates are deleted with
        MasterRecordId = master, as a merge in Salesforce leaves them."""
        sobject = self._sobject(request)
        body = await read_json(request)
        master = self.org.store.get(sobject, str(body.get("master")))
        if master is None:
            return json_response({"error": "no live master record"}, 404)
        merged = []
        with self.org.store.transaction():
            for duplicate in body.get("duplicates", []):
                if self.org.store.delete(sobject, str(duplicate), MasterRecordId=master["Id"]):
                    merged.append(duplicate)
        return json_response({"master": master["Id"], "merged": merged})

    async def convert(self, request: web.Request) -> web.Response:
        """Convert a Lead: a new Contact with its name, email and phone (the body may
        name an existing `contact` instead); the Lead stays, IsConverted with
        ConvertedContactId, and can no longer be a new Event's WhoId."""
        lead_def = resolve_sobject("Lead")
        contact_def = resolve_sobject("Contact")
        assert lead_def is not None
        assert contact_def is not None
        lead = self.org.store.get(lead_def, request.match_info["id"])
        if lead is None or lead.get("IsConverted"):
            return json_response({"error": "no unconverted Lead with that id"}, 404)
        body = await read_json(request) if request.can_read_body else {}
        with self.org.store.transaction():
            contact_id = body.get("contact") if isinstance(body, dict) else None
            if contact_id is None:
                fields = {k: lead.get(k) for k in ("FirstName", "LastName", "Email", "Phone")}
                contact, errors = self.sobjects.apply(contact_def, fields, None)
                if contact is None:
                    return json_response({"errors": [e.as_record_error() for e in errors]}, 400)
                contact_id = contact["Id"]
            self.sobjects.apply(
                lead_def,
                {},
                lead,
                extra={"IsConverted": True, "ConvertedContactId": contact_id},
            )
        return json_response({"lead": lead["Id"], "contact": contact_id})

    async def remove_field(self, request: web.Request) -> web.Response:
        """Delete a deployed custom field, as an admin would in Setup (an org set up
        wrong); `POST deploy` brings the DX project's fields back. The sObject schema
        is the emulator's, not one org's: every org loses (and regains) the field."""
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

    async def user_permissions(self, request: web.Request) -> web.Response:
        """GET shows what UserPermissionAccess answers; POST `{"ModifyAllData": bool}`
        gives or takes the profile's Modify All Data (the others follow the project's
        permission sets)."""
        if request.method == "POST":
            body = await read_json(request)
            value = body.get("ModifyAllData") if isinstance(body, dict) else None
            if not isinstance(value, bool) or set(body) != {"ModifyAllData"}:
                return json_response({"error": 'expected {"ModifyAllData": true|false}'}, 400)
            self.org.modify_all_data = value
        return json_response(self.org.user_permissions())

    async def expire_tokens(self, request: web.Request) -> web.Response:
        return json_response({"expired": self.oauth.expire_all()})

    async def rotate_secret(self, request: web.Request) -> web.Response:
        """A new client secret, as an admin rotating the connected app's consumer secret:
        the old one is refused from now on (issued tokens stay valid, as in Salesforce;
        `expire-tokens` ends them). Kept in memory: a reset or a restart brings the stored one
        back."""
        body = await read_json(request)
        secret = body.get("client_secret") if isinstance(body, dict) else None
        if not isinstance(secret, str) or len(secret) < 16 or set(body) != {"client_secret"}:
            return json_response({"error": 'expected {"client_secret": "<16+ chars>"}'}, 400)
        self.org.credentials = replace(self.org.credentials, client_secret=secret)
        return json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        """Clear data, counters and faults; restore the start-up limit. Tokens stay valid."""
        self.restore()
        return json_response({"ok": True})

    def restore(self) -> None:
        """The org as it started: no records but the seed, no counted calls, no faults."""
        self.org.store.reset()
        metadata.deploy(self.org.metadata)
        seed_defaults(self.org, self.sobjects)
        self.org.reread_usage()
        self.query.forget_cursors()
        self.oauth.token_requests = 0
        self.org.faults.replace(self.start_faults)
        self.org.daily_limit = self.start_daily_limit
        self.org.modify_all_data = self.start_modify_all_data
        self.org.credentials = self.org.start_credentials


AdminHandler = Callable[[Admin, web.Request], Awaitable[web.Response]]

# (method, path under __admin/, handler): one table for every org's prefix.
ROUTES: tuple[tuple[str, str, AdminHandler], ...] = (
    ("GET", "health", Admin.health),
    ("GET", "api-calls", Admin.api_calls),
    ("GET", "records/{sobject}", Admin.records),
    ("POST", "records/{sobject}", Admin.insert),
    ("GET", "faults", Admin.faults),
    ("PUT", "faults", Admin.faults),
    ("POST", "faults", Admin.faults),
    ("POST", "down", Admin.down),
    ("POST", "limits", Admin.limits),
    ("GET", "user-permissions", Admin.user_permissions),
    ("POST", "user-permissions", Admin.user_permissions),
    ("POST", "expire-tokens", Admin.expire_tokens),
    ("POST", "client-secret", Admin.rotate_secret),
    ("POST", "reset", Admin.reset),
    ("GET", "writes/{sobject}", Admin.writes),
    ("DELETE", "fields/{sobject}/{field}", Admin.remove_field),
    ("POST", "deploy", Admin.deploy),
    ("PATCH", "records/{sobject}/{id}", Admin.update),
    ("DELETE", "records/{sobject}/{id}", Admin.delete),
    ("POST", "merge/{sobject}", Admin.merge),
    ("POST", "convert/{id}", Admin.convert),
)
