"""The resources that do several things in one API call: sObject Collections (create,
upsert by external id, delete by Id: up to 200 records, one transaction) and composite
(up to 25 subrequests).

The sink writes through collections and looks up related records through composite, so
their limits, per-record errors and allOrNone roll-backs follow Salesforce closely.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import web

from devkit.salesforce_emulator.org import MIN_API_VERSION, Org
from devkit.salesforce_emulator.responses import json_response, read_json
from devkit.salesforce_emulator.schema import (
    ApiError,
    RequestError,
    SObjectDef,
    deserialize,
    resolve_sobject,
    sobject_for_id,
)
from devkit.salesforce_emulator.sobjects import (
    MAX_COLLECTION,
    SObjects,
    external_id_field,
)
from devkit.salesforce_emulator.store import Record

COLLECTIONS_MIN_VERSION = 42.0
COLLECTIONS_UPSERT_MIN_VERSION = 46.0
COMPOSITE_MIN_VERSION = 38.0
COLLATE_MIN_VERSION = 48.0
MAX_SUBREQUESTS = 25
# Of a composite's subrequests, at most this many may be queries or sObject Collections.
MAX_COMPOSITE_HEAVY = 5
_HEAVY_KINDS = frozenset(
    {"query", "collections_create", "collections_upsert", "collections_delete"}
)
_SUBREQUEST_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
_SUBREQUEST_FIELDS = frozenset({"method", "url", "referenceId", "body", "httpHeaders"})
_INHERITED_HEADERS = frozenset({"accept", "authorization", "content-type"})
_REFERENCE_ID = re.compile(r"[A-Za-z0-9_]+")
_SUBREQUEST_URL = re.compile(r"/services/data/v([0-9]+\.[0-9])(/.*)?")

# One record of a collection: its sObject, its fields, the record it replaces (upsert)
# and the errors found before writing (then it is not written).
CollectionItem = tuple[SObjectDef, dict[str, object], Record | None, list[ApiError]]
# A GET resource a composite subrequest may run: (version, path parts, query parameters).
Runner = Callable[[float, list[str], Mapping[str, str]], web.Response]


class _RollBack(Exception):
    """Raised inside a transaction to undo an allOrNone collection."""


def _bad_input(message: str, code: str = "INVALID_API_INPUT") -> RequestError:
    return RequestError(400, ApiError(code, message))


# sObject Collections -----------------------------------------------------------------


class Collections:
    def __init__(self, org: Org, sobjects: SObjects) -> None:
        self.org = org
        self.sobjects = sobjects

    async def _body(
        self, request: web.Request, version: float, minimum: float
    ) -> tuple[bool, list[dict[str, Any]]]:
        if version < minimum:
            raise RequestError(404, ApiError("NOT_FOUND", "The requested resource does not exist"))
        body = await read_json(request)
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

    def run(
        self, all_or_none: bool, items: Sequence[CollectionItem], *, upsert: bool
    ) -> list[dict[str, object]]:
        """Apply each record in order, one transaction; allOrNone rolls everything back."""
        results: list[dict[str, object]] = []
        with contextlib.suppress(_RollBack), self.org.store.transaction():
            for sobject, changes, existing, early_errors in items:
                record, errors = (
                    (None, early_errors)
                    if early_errors
                    else self.sobjects.apply(sobject, changes, existing)
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

    async def create(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        """POST .../composite/sobjects."""
        all_or_none, records = await self._body(request, version, COLLECTIONS_MIN_VERSION)
        items = []
        for raw in records:
            sobject = self.sobjects.named(str(raw["attributes"]["type"]))
            changes = deserialize(sobject, raw)
            early = []
            if "Id" in changes:
                early.append(
                    ApiError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))
                )
            items.append((sobject, changes, None, early))
        return json_response(self.run(all_or_none, items, upsert=False))

    async def delete(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        """DELETE .../composite/sobjects?ids=a,b&allOrNone=false: each record to the
        recycle bin, one result per id in order; a deleted one answers
        ENTITY_IS_DELETED, an id of nothing INVALID_CROSS_REFERENCE_KEY."""
        if version < COLLECTIONS_MIN_VERSION:
            raise RequestError(404, ApiError("NOT_FOUND", "The requested resource does not exist"))
        ids = [value for value in request.query.get("ids", "").split(",") if value]
        if not ids:
            raise _bad_input("ids: required", "MISSING_ARGUMENT")
        if len(ids) > MAX_COLLECTION:
            raise _bad_input(
                "record limit reached. cannot submit more than 200 records into this call",
                "EXCEEDED_ID_LIMIT",
            )
        all_or_none = request.query.get("allOrNone", "false").lower() == "true"
        store = self.org.store
        results: list[dict[str, object]] = []
        with contextlib.suppress(_RollBack), store.transaction():
            for record_id in ids:
                sobject = sobject_for_id(record_id)
                error: ApiError | None = None
                if sobject is None or not self.org.metadata.may_read(sobject.name):
                    error = ApiError("MALFORMED_ID", f"malformed id {record_id}")
                elif store.get(sobject, record_id) is not None:
                    if self.org.faults.fire("unable_to_lock_row"):
                        error = ApiError(
                            "UNABLE_TO_LOCK_ROW",
                            "unable to obtain exclusive access to this record or 1 records: "
                            + record_id,
                        )
                    else:
                        store.delete(sobject, record_id)
                        results.append({"id": record_id, "success": True, "errors": []})
                        continue
                elif store.get(sobject, record_id, deleted=True) is not None:
                    error = ApiError("ENTITY_IS_DELETED", "entity is deleted")
                else:
                    error = ApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                results.append({"success": False, "errors": [error.as_record_error()]})
            if all_or_none and any(not r["success"] for r in results):
                raise _RollBack
            return json_response(results)
        rolled_back = ApiError(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was "
            "using AllOrNone header",
        )
        return json_response(
            [
                r
                if not r["success"]
                else {"success": False, "errors": [rolled_back.as_record_error()]}
                for r in results
            ]
        )

    async def upsert(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        """PATCH .../composite/sobjects/{T}/{extField}."""
        sobject = self.sobjects.named(parts[2])
        ext_field = external_id_field(sobject, parts[3])
        all_or_none, records = await self._body(request, version, COLLECTIONS_UPSERT_MIN_VERSION)
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
        existing = self.org.store.get_by_external_ids(sobject, values)
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
        return json_response(self.run(all_or_none, items, upsert=True))


# Composite -----------------------------------------------------------------------------


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


class Composite:
    """POST .../composite.

    `kind_of(method, parts)` names the resource a subrequest's path reaches (as the API
    counts it); `runners` are the kinds a subrequest may run, by kind.
    """

    def __init__(
        self, kind_of: Callable[[str, list[str]], str], runners: Mapping[str, Runner]
    ) -> None:
        self._kind_of = kind_of
        self._runners = runners

    async def handle(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        """POST .../composite: subrequests in order, one API call for all of them.

        Executed here: GET query (and its nextRecordsUrl pages) and GET sObject records
        (by id or external id). Any other resource answers a 400 INVALID_API_INPUT in its
        own subrequest result; references between subrequests (@{ref.field}) likewise.
        """
        if version < COMPOSITE_MIN_VERSION:
            raise RequestError(404, ApiError("NOT_FOUND", "The requested resource does not exist"))
        body = await read_json(request)
        subrequests = self._request(body, version)
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, object]] = []
        first_failure: int | None = None
        for index, sub in enumerate(subrequests):
            if all_or_none and first_failure is not None:
                break
            status, payload = self._run(sub)
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
        return json_response({"compositeResponse": results})

    def _request(self, body: object, version: float) -> list[_Subrequest]:
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
                kind = self._kind_of(str(method), parts)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        return _Subrequest(
            str(method), url, reference_id, item.get("body"), kind, sub_version, parts, params
        )

    def _run(self, sub: _Subrequest) -> tuple[int, object]:
        """(httpStatusCode, body) of one subrequest; errors are Salesforce error lists."""
        if sub.kind in (None, "other"):
            return 404, [
                ApiError("NOT_FOUND", "The requested resource does not exist").as_top_level()
            ]
        if "@{" in sub.url or "@{" in json.dumps(sub.body):
            message = "References between subrequests (@{...}) are not emulated"
            return 400, [ApiError("INVALID_API_INPUT", message).as_top_level()]
        runner = self._runners.get(sub.kind or "")
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
