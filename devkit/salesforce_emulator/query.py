"""The SOQL query resource (`query`, `queryAll`) and its result pages.

soql.py parses and the store filters; this module resolves object and field names the
way Salesforce does (any case in, canonical names out) and hands out results of more
than 2,000 rows in pages behind `nextRecordsUrl`.

An object the integration user may not read (metadata.py: no permission set grants it)
is INVALID_TYPE, as in Salesforce, where it does not exist for that user. Besides the
emulated sObjects it answers `SELECT Permissions<Name>, ... FROM UserPermissionAccess`,
the context user's effective user permissions (those `Org.user_permissions` models),
one row.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from aiohttp import web

from devkit.salesforce_emulator.org import Org
from devkit.salesforce_emulator.responses import json_response
from devkit.salesforce_emulator.schema import ApiError, RequestError, resolve_sobject
from devkit.salesforce_emulator.sobjects import render
from devkit.salesforce_emulator.soql import Query as SoqlQuery
from devkit.salesforce_emulator.soql import SoqlError
from devkit.salesforce_emulator.soql import parse as parse_soql
from devkit.salesforce_emulator.store import Record

# Rows per page, as Salesforce's default batch size; the `Sforce-Query-Options:
# batchSize=N` header asks for 200 to 2,000 (a hint: Salesforce may answer more).
QUERY_BATCH = 2000
MIN_BATCH = 200
USER_PERMISSION_ACCESS = "UserPermissionAccess"
# The Id Salesforce gives the one row of UserPermissionAccess (it is no stored record).
_USER_PERMISSION_ACCESS_ID = "000000000000000AAA"


def batch_size(header: str | None) -> int:
    """The page size a `Sforce-Query-Options` header asks for (default 2,000)."""
    for option in (header or "").split(","):
        name, _, value = option.strip().partition("=")
        if name.strip().lower() == "batchsize":
            try:
                return max(MIN_BATCH, min(QUERY_BATCH, int(value)))
            except ValueError:
                raise RequestError(
                    400, ApiError("INVALID_HEADER_TYPE", f"batchSize must be a number: {value}")
                ) from None
    return QUERY_BATCH


class Query:
    def __init__(self, org: Org) -> None:
        self.org = org
        # Rows not yet handed out, and the page size, by query locator.
        self._cursors: dict[str, tuple[list[Record], int]] = {}

    def forget_cursors(self) -> None:
        self._cursors.clear()

    async def handle(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        batch = batch_size(request.headers.get("Sforce-Query-Options"))
        return self.run(version, parts, request.query, batch)

    def run(
        self,
        version: float,
        parts: list[str],
        params: Mapping[str, str],
        batch: int = QUERY_BATCH,
    ) -> web.Response:
        """A query (`?q=`) or a next page (`query/LOCATOR-OFFSET`); also a composite
        subrequest."""
        if len(parts) == 2:
            return self._page(version, parts[1])
        text = params.get("q")
        if not text:
            raise RequestError(
                400, ApiError("MALFORMED_QUERY", "A query string has to be specified")
            )
        try:
            query = parse_soql(text)
        except SoqlError as exc:
            raise RequestError(400, ApiError("MALFORMED_QUERY", str(exc))) from None
        if query.sobject.lower() == USER_PERMISSION_ACCESS.lower():
            return self._user_permissions(version, query)
        sobject = resolve_sobject(query.sobject)
        if sobject is None or not self.org.metadata.may_read(sobject.name):
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
        rows = self.org.store.query(sobject, where, order, query.limit)
        rendered = [render(sobject, r, version, fields) for r in rows]
        return self._result(version, rendered, batch=batch)

    def _user_permissions(self, version: float, query: SoqlQuery) -> web.Response:
        if query.where or query.order_by:
            raise RequestError(
                400,
                ApiError(
                    "MALFORMED_QUERY",
                    f"the emulator answers {USER_PERMISSION_ACCESS} without WHERE or ORDER BY",
                ),
            )
        # Canonical names out, whatever the case in the query (as for sObjects).
        held: dict[str, tuple[str, object]] = {
            f"permissions{name}".lower(): (f"Permissions{name}", value)
            for name, value in self.org.user_permissions().items()
        }
        held["id"] = ("Id", _USER_PERMISSION_ACCESS_ID)
        row: dict[str, object] = {
            "attributes": {
                "type": USER_PERMISSION_ACCESS,
                "url": f"/services/data/v{version:.1f}/sobjects/{USER_PERMISSION_ACCESS}/"
                + _USER_PERMISSION_ACCESS_ID,
            }
        }
        for name in query.fields:
            if name.lower() not in held:
                raise RequestError(
                    400,
                    ApiError(
                        "INVALID_FIELD",
                        f"No such column '{name}' on entity '{USER_PERMISSION_ACCESS}'.",
                    ),
                )
            canonical, value = held[name.lower()]
            row[canonical] = value
        return self._result(version, [row] if query.limit != 0 else [])

    def _result(
        self,
        version: float,
        rows: list[Record],
        total: int | None = None,
        batch: int = QUERY_BATCH,
        offset: int = 0,
    ) -> web.Response:
        body: dict[str, object] = {"totalSize": total if total is not None else len(rows)}
        if len(rows) > batch:
            locator = f"01g{secrets.token_hex(6)}"
            self._cursors[locator] = (rows[batch:], batch)
            body["done"] = False
            body["nextRecordsUrl"] = (
                f"/services/data/v{version:.1f}/query/{locator}-{offset + batch}"
            )
            body["records"] = rows[:batch]
        else:
            body["done"] = True
            body["records"] = rows
        return json_response(body)

    def _page(self, version: float, locator_and_offset: str) -> web.Response:
        locator, _, offset = locator_and_offset.partition("-")
        cursor = self._cursors.pop(locator, None)
        if cursor is None:
            raise RequestError(400, ApiError("INVALID_QUERY_LOCATOR", "invalid query locator"))
        rows, batch = cursor
        return self._result(version, rows, batch=batch, offset=int(offset or 0))
