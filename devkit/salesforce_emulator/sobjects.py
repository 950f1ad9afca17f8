"""sObject REST resources: describe, and one record's create, read, update, delete and
upsert by external id (`/services/data/vXX.X/sobjects/...`).

Also the one write path every writer shares (`SObjects.apply`: validation, the unique
external id, the UNABLE_TO_LOCK_ROW fault, system fields) and the one record rendering,
so collections, composite, query and the admin API answer with the same shapes.

An sObject the integration user may not read (metadata.py: no permission set grants
it) does not exist for it, as in Salesforce: its resources and describe answer 404
NOT_FOUND, describe global leaves it out, and a reference to one of its records is
INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY (schema.reference_errors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from devkit.salesforce_emulator.org import Org
from devkit.salesforce_emulator.responses import (
    error_response,
    json_response,
    not_found,
    read_json,
)
from devkit.salesforce_emulator.schema import (
    SOBJECTS,
    ApiError,
    RequestError,
    Rule,
    SObjectDef,
    describe,
    deserialize,
    now_text,
    reference_errors,
    resolve_sobject,
    validate,
)
from devkit.salesforce_emulator.store import Record

# From this version an upsert that updates answers 200 with a body (204 before).
UPSERT_200_MIN_VERSION = 46.0
# Records one call may write (sObject Collections; describe's maxBatchSize).
MAX_COLLECTION = 200


def render(
    sobject: SObjectDef,
    record: Mapping[str, object],
    version: float,
    fields: Sequence[str] | None = None,
) -> dict[str, object]:
    """A record as the API shows it: `attributes` (type, url), then `fields` (default: all)."""
    out: dict[str, object] = {
        "attributes": {
            "type": sobject.name,
            "url": f"/services/data/v{version:.1f}/sobjects/{sobject.name}/{record['Id']}",
        }
    }
    for name in fields if fields is not None else sobject.fields:
        out[name] = record.get(name)
    return out


def _location(sobject: SObjectDef, record: Mapping[str, object], version: float) -> str:
    """A create's `Location` header: the new record's resource."""
    return f"/services/data/v{version:.1f}/sobjects/{sobject.name}/{record['Id']}"


def sobject_named(name: str) -> SObjectDef:
    sobject = resolve_sobject(name)
    if sobject is None:
        raise RequestError(
            404, ApiError("NOT_FOUND", f"The requested resource does not exist: {name}")
        )
    return sobject


def external_id_field(sobject: SObjectDef, name: str) -> str:
    """The canonical name of `sobject`'s external id field `name`, or a 404."""
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


async def _record_body(request: web.Request, sobject: SObjectDef) -> dict[str, object]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RequestError(
            400,
            ApiError(
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {sobject.name} from START_ARRAY value",
            ),
        )
    return deserialize(sobject, body)


class SObjects:
    def __init__(self, org: Org) -> None:
        self.org = org

    def named(self, name: str) -> SObjectDef:
        """The sObject a path names, or a 404 when there is none this user may read."""
        sobject = sobject_named(name)
        if not self.org.metadata.may_read(sobject.name):
            raise RequestError(
                404, ApiError("NOT_FOUND", f"The requested resource does not exist: {name}")
            )
        return sobject

    # Writing ------------------------------------------------------------------------

    def apply(
        self,
        sobject: SObjectDef,
        changes: Mapping[str, object],
        existing: Record | None,
        *,
        record_id: str | None = None,
        extra: Mapping[str, object] | None = None,
        seeding: bool = False,
    ) -> tuple[Record | None, list[ApiError]]:
        """Validate and write one record. Returns the stored record or the errors.

        `record_id` and `extra` (read-only fields, markers) are the admin API's: a seed
        record with its own id, a converted Lead's fields; `seeding` skips injected faults."""
        store, faults, user_id = self.org.store, self.org.faults, self.org.credentials.user_id
        rules: list[Rule] = [
            *faults.validation_rules(),
            *self.org.metadata.rules_for(sobject.name),
        ]
        merged, errors = validate(sobject, changes, existing, rules=rules)
        if not errors:
            errors = reference_errors(sobject, changes, store.get_any, self.org.metadata.may_read)
        ext_field = sobject.external_id_field
        ext_value = changes.get(ext_field) if ext_field else None
        if ext_field and ext_value is not None and not errors:
            # The external id is unique: SQLite would refuse it too, but Salesforce names
            # the record holding the value.
            holder = store.get_by_external_ids(sobject, [str(ext_value)]).get(str(ext_value))
            if holder is not None and (existing is None or holder["Id"] != existing["Id"]):
                errors = [
                    ApiError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {ext_field} duplicates value on record with "
                        f"id: {holder['Id']}",
                        (ext_field,),
                    )
                ]
        if not errors and not seeding and faults.fire("unable_to_lock_row"):
            target = existing["Id"] if existing else ""
            errors = [
                ApiError(
                    "UNABLE_TO_LOCK_ROW",
                    f"unable to obtain exclusive access to this record or 1 records: {target}",
                )
            ]
        if errors:
            self._log_writes(sobject, merged, existing, errors)
            return None, errors
        now = now_text()
        merged["LastModifiedDate"] = now
        merged["SystemModstamp"] = now
        merged["LastModifiedById"] = user_id
        merged.update(extra or {})
        if existing is None:
            seq, new_id = store.new_id(sobject)
            merged["Id"] = record_id or new_id
            merged["IsDeleted"] = False
            merged["CreatedDate"] = now
            merged["CreatedById"] = user_id
            if "OwnerId" in sobject.fields and not merged.get("OwnerId"):
                merged["OwnerId"] = user_id
            if sobject.name == "Case":
                merged["CaseNumber"] = f"{store.ordinal(seq):08d}"
            store.insert(sobject, seq, merged)
        else:
            store.update(sobject, merged)
        self._log_writes(sobject, merged, existing, [])
        return merged, []

    def _log_writes(
        self,
        sobject: SObjectDef,
        merged: Mapping[str, object],
        existing: Record | None,
        errors: Sequence[ApiError],
    ) -> None:
        """The write log (/__admin/writes): each tracked field's old and new value of a
        write, or of an attempt a rule on that field refused."""
        metadata = self.org.metadata
        for field in metadata.tracked_fields(sobject.name):
            if errors:
                messages = {r.message for r in metadata.rules_for(sobject.name) if r.field == field}
                if not any(
                    e.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and e.message in messages
                    for e in errors
                ):
                    continue
                outcome = "refused"
            else:
                outcome = "written"
            ext_field = sobject.external_id_field
            self.org.store.log_write(
                (
                    now_text(),
                    sobject.name,
                    merged.get("Id") or (existing or {}).get("Id"),
                    merged.get(ext_field) if ext_field else None,
                    field,
                    existing.get(field) if existing is not None else None,
                    merged.get(field),
                    outcome,
                )
            )

    # Describe -----------------------------------------------------------------------

    async def describe_global(
        self, request: web.Request, version: float, _: list[str]
    ) -> web.Response:
        return json_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": MAX_COLLECTION,
                "sobjects": [
                    {"name": s.name, "keyPrefix": s.prefix, "queryable": True}
                    for s in SOBJECTS.values()
                    if self.org.metadata.may_read(s.name)
                ],
            }
        )

    async def sobject_info(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        sobject = self.named(parts[1])
        recent = self.org.store.all(sobject)[-10:]
        return json_response(
            {
                "objectDescribe": {"name": sobject.name, "keyPrefix": sobject.prefix},
                "recentItems": [render(sobject, r, version, ("Id",)) for r in recent],
            }
        )

    async def describe(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        return json_response(describe(self.named(parts[1])))

    # One record ---------------------------------------------------------------------

    async def create(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        sobject = self.named(parts[1])
        changes = await _record_body(request, sobject)
        with self.org.store.transaction():
            record, errors = self.apply(sobject, changes, None)
        if record is None:
            return error_response(400, *errors)
        response = json_response({"id": record["Id"], "success": True, "errors": []}, 201)
        response.headers["Location"] = _location(sobject, record, version)
        return response

    def _lookup(self, sobject: SObjectDef, parts: list[str]) -> tuple[Record | None, str | None]:
        """The record a 3- or 4-part sobjects path names, and the external id value."""
        if len(parts) == 4:
            ext_field = external_id_field(sobject, parts[2])
            found = self.org.store.get_by_external_ids(sobject, [parts[3]])
            return found.get(parts[3]), ext_field
        return self.org.store.get(sobject, parts[2]), None

    async def read(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        return self.read_record(version, parts, request.query)

    def read_record(
        self, version: float, parts: list[str], params: Mapping[str, str]
    ) -> web.Response:
        """GET by id or external id; also a composite subrequest."""
        sobject = self.named(parts[1])
        record, _ = self._lookup(sobject, parts)
        if record is None:
            return not_found()
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
        return json_response(render(sobject, record, version, fields))

    async def write_one(
        self, request: web.Request, version: float, parts: list[str]
    ) -> web.Response:
        """PATCH by id (update, 204) or by external id (upsert, 201/200/204)."""
        sobject = self.named(parts[1])
        existing, ext_field = self._lookup(sobject, parts)
        changes = await _record_body(request, sobject)
        if ext_field is None:
            if existing is None:
                return not_found()
            with self.org.store.transaction():
                record, errors = self.apply(sobject, changes, existing)
            return error_response(400, *errors) if record is None else web.Response(status=204)
        value = parts[3]
        if changes.get(ext_field, value) != value:
            return error_response(
                400,
                ApiError(
                    "INVALID_FIELD",
                    f"The external ID field {ext_field} in the body does not match the URL",
                ),
            )
        changes[ext_field] = value
        with self.org.store.transaction():
            record, errors = self.apply(sobject, changes, existing)
        if record is None:
            return error_response(400, *errors)
        body = {"id": record["Id"], "success": True, "errors": [], "created": existing is None}
        if existing is None:
            response = json_response(body, 201)
            response.headers["Location"] = _location(sobject, record, version)
            return response
        if version < UPSERT_200_MIN_VERSION:
            return web.Response(status=204)
        return json_response(body, 200)

    async def delete(self, request: web.Request, version: float, parts: list[str]) -> web.Response:
        sobject = self.named(parts[1])
        existing, _ = self._lookup(sobject, parts)
        if existing is None:
            return not_found()
        with self.org.store.transaction():
            self.org.store.delete(sobject, str(existing["Id"]))
        return web.Response(status=204)
