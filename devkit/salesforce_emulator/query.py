"""The SOQL query resource (`query`, `queryAll`) and its result pages.

soql.py parses and the store filters; this module resolves object and field names the
way Salesforce does (any case in, canonical names out) and hands out results of more
than 2,000 rows in pages behind `nextRecordsUrl`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from aiohttp import web

from devkit.salesforce_emulator.org import Org
from devkit.salesforce_emulator.responses import json_response
from devkit.salesforce_emulator.schema import ApiError, RequestError, resolve_sobject
from devkit.salesforce_emulator.sobjects import render
from devkit.salesforce_emulator.soql import SoqlError
from devkit.salesforce_emulator.soql import parse as parse_soql
from devkit.salesforce_emulator.store import Record

# Rows per page, as Salesforce's default batch size.
QUERY_BATCH = 2000


class Query:
    def __init__(self, org: Org) -> None:
        self.org = org
        # Rows not yet handed out, by query locator.
        self._cursors: dict[str, list[Record]] = {}

    def forget_cursors(self) -> None:
        self._cursors.clear()

    async def handle(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        return self.run(version, parts, request.query)

    def run(self, version: float, parts: list[str], params: Mapping[str, str]) -> web.Response:
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
        rows = self.org.store.query(sobject, where, order, query.limit)
        rendered = [render(sobject, r, version, fields) for r in rows]
        return self._result(version, rendered)

    def _result(self, version: float, rows: list[Record], total: int | None = None) -> web.Response:
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
        return json_response(body)

    def _page(self, version: float, locator_and_offset: str) -> web.Response:
        locator = locator_and_offset.split("-", 1)[0]
        rows = self._cursors.pop(locator, None)
        if rows is None:
            raise RequestError(400, ApiError("INVALID_QUERY_LOCATOR", "invalid query locator"))
        return self._result(version, rows)
