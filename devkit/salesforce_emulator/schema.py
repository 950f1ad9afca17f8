"""The emulated org's data model: sObject definitions, record ids and field validation.

Pure (no I/O): the emulator server and its store call into it. Error codes, messages
and the split between request-level and record-level errors follow Salesforce's REST
API: a body that cannot be deserialized (unknown field, wrong JSON type, bad datetime)
fails the whole request; a record that deserializes but breaks a rule fails alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from streams.core.view import STATUSES

FieldKind = Literal[
    "id",
    "string",
    "textarea",
    "datetime",
    "int",
    "double",
    "reference",
    "picklist",
    "email",
    "boolean",
]

# The ScheduleOnce package's status picklist holds the statuses the fold gives; our own
# Event_Status__c comes from the DX project (salesforce/, metadata.py).
EVENT_STATUSES: tuple[str, ...] = STATUSES

# Key prefixes of the objects an id field may point at.
PREFIX_USER = "005"
PREFIX_LEAD = "00Q"
PREFIX_CONTACT = "003"
PREFIX_CASE = "500"
PREFIX_EVENT = "00U"
PREFIX_ACCOUNT = "001"
PREFIX_OPPORTUNITY = "006"
PREFIX_ORG = "00D"

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_CHARS = re.compile(r"^[A-Za-z0-9]+$")
# Salesforce checks only the broad shape of an address; quotes and backslashes in the
# local part are legal (RFC 5322 quoted forms), which the SOQL-quoting tests rely on.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def id_checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitive (18 chars)."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for pos, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << pos
        suffix += _CHECKSUM_CHARS[bits]
    return suffix


def make_id(prefix: str, sequence: int) -> str:
    """An 18-character id: key prefix, pod "5g", a reserved "0", 9 base-62 digits, checksum."""
    digits = ""
    n = sequence
    while n:
        n, rem = divmod(n, 62)
        digits = _BASE62[rem] + digits
    id15 = prefix + "5g0" + digits.rjust(9, "0")
    if len(id15) != 15:
        raise ValueError(f"id sequence {sequence} out of range")
    return id15 + id_checksum(id15)


def is_well_formed_id(value: str, prefixes: tuple[str, ...]) -> bool:
    return (
        len(value) in (15, 18)
        and _ID_CHARS.match(value) is not None
        and (not prefixes or value[:3] in prefixes)
    )


def format_datetime(value: datetime) -> str:
    """Salesforce's output form: milliseconds and a +0000 offset."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_datetime(value: str) -> datetime | None:
    """Parse the ISO-8601 forms Salesforce accepts; a missing offset means UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # "+0000" (Salesforce's own output) → "+00:00" for fromisoformat.
    match = re.match(r"^(.*[T ].*)([+-])(\d{2})(\d{2})$", text)
    if match and ":" not in match.group(0)[-5:]:
        text = f"{match.group(1)}{match.group(2)}{match.group(3)}:{match.group(4)}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@dataclass(frozen=True)
class FieldDef:
    name: str
    kind: FieldKind
    label: str
    length: int | None = None
    writable: bool = True
    required: bool = False
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    picklist: tuple[str, ...] = ()
    scale: int = 0  # digits after the point of a "double" (Salesforce Number) field
    unique: bool = False
    # A restricted picklist refuses values outside `picklist`; an unrestricted one not.
    restricted: bool = True


@dataclass(frozen=True)
class SObjectDef:
    name: str
    prefix: str
    fields: Mapping[str, FieldDef]
    defaults: Mapping[str, object] = field(default_factory=dict)
    # Fields added by a metadata deployment (define_field), not the emulator's own.
    deployed: set[str] = field(default_factory=set, compare=False)

    @property
    def external_id_field(self) -> str | None:
        return next((f.name for f in self.fields.values() if f.external_id), None)

    def define_field(self, fdef: FieldDef) -> None:
        """Add (or replace) a custom field: a metadata deployment (metadata.py)."""
        fields = self.fields
        assert isinstance(fields, dict)
        for existing in [n for n in fields if n.lower() == fdef.name.lower()]:
            del fields[existing]
        fields[fdef.name] = fdef
        self.deployed.add(fdef.name)

    def remove_field(self, name: str) -> bool:
        """Remove a deployed custom field (the emulator's own fields stay)."""
        fields = self.fields
        assert isinstance(fields, dict)
        found = [n for n in fields if n.lower() == name.lower() and n in self.deployed]
        for existing in found:
            del fields[existing]
            self.deployed.discard(existing)
        return bool(found)

    def resolve_field(self, name: str) -> FieldDef | None:
        """Field names are case-insensitive in SOQL and REST bodies alike."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((f for f in self.fields.values() if f.name.lower() == lowered), None)


def _system_fields() -> list[FieldDef]:
    return [
        FieldDef("Id", "id", "Record ID", 18, writable=False),
        FieldDef("IsDeleted", "string", "Deleted", writable=False),
        FieldDef("CreatedDate", "datetime", "Created Date", writable=False),
        FieldDef("CreatedById", "reference", "Created By ID", 18, writable=False),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", writable=False),
        FieldDef("LastModifiedById", "reference", "Last Modified By ID", 18, writable=False),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", writable=False),
    ]


def _sobject(
    name: str, prefix: str, fields: list[FieldDef], defaults: Mapping[str, object] | None = None
) -> SObjectDef:
    all_fields = _system_fields() + fields
    return SObjectDef(name, prefix, {f.name: f for f in all_fields}, dict(defaults or {}))


EVENT = _sobject(
    "Event",
    PREFIX_EVENT,
    [
        FieldDef("Subject", "string", "Subject", 255),
        FieldDef("StartDateTime", "datetime", "Start Date Time"),
        FieldDef("EndDateTime", "datetime", "End Date Time"),
        FieldDef("ActivityDateTime", "datetime", "Due Date Time", writable=False),
        FieldDef("DurationInMinutes", "int", "Duration"),
        FieldDef("OwnerId", "reference", "Assigned To ID", 18, reference_to=(PREFIX_USER,)),
        FieldDef("WhoId", "reference", "Name ID", 18, reference_to=(PREFIX_CONTACT, PREFIX_LEAD)),
        FieldDef(
            "WhatId",
            "reference",
            "Related To ID",
            18,
            reference_to=(PREFIX_CASE, PREFIX_ACCOUNT, PREFIX_OPPORTUNITY),
        ),
        FieldDef("Location", "string", "Location", 255),
        FieldDef("Description", "textarea", "Description", 32000),
        # Booking_Id__c, Event_Status__c, Cancel_Reschedule_Reason__c and
        # Projection_Version__c are ours: deployed from salesforce/ (metadata.py). The
        # ScheduleOnce connector's fields below come with its managed package.
        FieldDef(
            "ScheduleOnce__Event_status__c",
            "picklist",
            "Event status",
            255,
            picklist=EVENT_STATUSES,
        ),
        FieldDef(
            "ScheduleOnce__Cancel_reschedule_reason__c",
            "string",
            "Cancel/reschedule reason",
            255,
        ),
    ],
)

LEAD = _sobject(
    "Lead",
    PREFIX_LEAD,
    [
        FieldDef("FirstName", "string", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", 80, required=True),
        FieldDef("Name", "string", "Full Name", 121, writable=False),
        FieldDef("Company", "string", "Company", 255, required=True),
        FieldDef("Email", "email", "Email", 80),
        FieldDef("Phone", "string", "Phone", 40),
        FieldDef("Status", "string", "Status", 40),
        FieldDef("LeadSource", "string", "Lead Source", 40),
        FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to=(PREFIX_USER,)),
        FieldDef("IsConverted", "boolean", "Converted", writable=False),
        FieldDef(
            "ConvertedContactId",
            "reference",
            "Converted Contact ID",
            18,
            writable=False,
            reference_to=(PREFIX_CONTACT,),
        ),
        FieldDef(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            18,
            writable=False,
            reference_to=(PREFIX_LEAD,),
        ),
    ],
    {"Status": "Open - Not Contacted"},
)

CONTACT = _sobject(
    "Contact",
    PREFIX_CONTACT,
    [
        FieldDef("FirstName", "string", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", 80, required=True),
        FieldDef("Name", "string", "Full Name", 121, writable=False),
        FieldDef("Email", "email", "Email", 80),
        FieldDef("Phone", "string", "Business Phone", 40),
        FieldDef("AccountId", "reference", "Account ID", 18, reference_to=(PREFIX_ACCOUNT,)),
        FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to=(PREFIX_USER,)),
        FieldDef(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            18,
            writable=False,
            reference_to=(PREFIX_CONTACT,),
        ),
    ],
)

CASE = _sobject(
    "Case",
    PREFIX_CASE,
    [
        FieldDef("CaseNumber", "string", "Case Number", 30, writable=False),
        FieldDef("Subject", "string", "Subject", 255),
        FieldDef("Description", "textarea", "Description", 32000),
        FieldDef("Status", "string", "Status", 40),
        FieldDef("Origin", "string", "Case Origin", 40),
        FieldDef("ContactId", "reference", "Contact ID", 18, reference_to=(PREFIX_CONTACT,)),
        FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to=(PREFIX_USER,)),
    ],
    {"Status": "New"},
)

USER = _sobject(
    "User",
    PREFIX_USER,
    [
        FieldDef("Username", "string", "Username", 80, required=True),
        FieldDef("FirstName", "string", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", 80, required=True),
        FieldDef("Name", "string", "Full Name", 121, writable=False),
        FieldDef("Email", "email", "Email", 128),
        FieldDef("IsActive", "boolean", "Active"),
    ],
    {"IsActive": True},
)

SOBJECTS: Mapping[str, SObjectDef] = {s.name: s for s in (EVENT, LEAD, CONTACT, CASE, USER)}


def resolve_sobject(name: str) -> SObjectDef | None:
    found = SOBJECTS.get(name)
    if found is not None:
        return found
    return next((s for s in SOBJECTS.values() if s.name.lower() == name.lower()), None)


def sobject_for_id(record_id: str) -> SObjectDef | None:
    return next((s for s in SOBJECTS.values() if record_id[:3] == s.prefix), None)


@dataclass(frozen=True)
class ApiError:
    """One Salesforce error: `errorCode` at request level, `statusCode` inside results."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_top_level(self) -> dict[str, object]:
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}

    def as_record_error(self) -> dict[str, object]:
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


class RequestError(Exception):
    """Fails the whole request (HTTP status plus a top-level error list)."""

    def __init__(self, status: int, error: ApiError) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


def invalid_field(sobject: SObjectDef, name: str) -> RequestError:
    return RequestError(
        400,
        ApiError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}"),
    )


def _parser_error(value: object, kind: str) -> RequestError:
    shown = value if isinstance(value, str) else type(value).__name__
    return RequestError(
        400,
        ApiError(
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {kind} from VALUE_STRING value {shown} "
            "or request may be missing a required field",
        ),
    )


def deserialize(sobject: SObjectDef, body: Mapping[str, object]) -> dict[str, object]:
    """Map a JSON record onto the object's fields, as Salesforce's deserializer does.

    Returns canonical field names with typed values (datetimes normalised to
    Salesforce's output form). Raises RequestError for what fails the whole request.
    """
    out: dict[str, object] = {}
    for raw_name, value in body.items():
        if raw_name == "attributes":
            continue
        fdef = sobject.resolve_field(raw_name)
        if fdef is None:
            raise invalid_field(sobject, raw_name)
        if value is None:
            out[fdef.name] = None
            continue
        if isinstance(value, (dict, list)):
            raise _parser_error(value, fdef.kind)
        if fdef.kind == "boolean":
            if not isinstance(value, bool):
                raise _parser_error(value, "boolean")
            out[fdef.name] = value
        elif fdef.kind == "datetime":
            if not isinstance(value, str):
                raise _parser_error(value, "datetime")
            parsed = parse_datetime(value)
            if parsed is None:
                raise _parser_error(value, "datetime")
            out[fdef.name] = format_datetime(parsed)
        elif fdef.kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise _parser_error(value, "int")
            try:
                number = float(value)
            except ValueError:
                raise _parser_error(value, "int") from None
            if number != int(number):
                raise _parser_error(value, "int")
            out[fdef.name] = int(number)
        elif fdef.kind == "double":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise _parser_error(value, "double")
            try:
                number = round(float(value), fdef.scale)
            except ValueError:
                raise _parser_error(value, "double") from None
            out[fdef.name] = int(number) if fdef.scale == 0 else number
        else:
            # Text-like fields take JSON numbers and booleans as their string form.
            if isinstance(value, bool):
                out[fdef.name] = "true" if value else "false"
            else:
                out[fdef.name] = str(value)
    return out


class Rule(Protocol):
    """A custom validation rule: FIELD_CUSTOM_VALIDATION_EXCEPTION with `message` when
    `violated` by the record as it would be written (`prior`: as stored, None on insert)."""

    @property
    def sobject(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def fields(self) -> tuple[str, ...]: ...

    def violated(
        self, record: Mapping[str, object], prior: Mapping[str, object] | None
    ) -> bool: ...


@dataclass(frozen=True)
class ValidationRule:
    """A fault-injected validation rule: rejects records whose `field` equals `value`."""

    sobject: str
    field: str
    value: object
    message: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def violated(self, record: Mapping[str, object], prior: Mapping[str, object] | None) -> bool:
        return record.get(self.field) == self.value


def validate(
    sobject: SObjectDef,
    changes: Mapping[str, object],
    existing: Mapping[str, object] | None,
    *,
    rules: Sequence[Rule] = (),
) -> tuple[dict[str, object], list[ApiError]]:
    """Apply `changes` (output of `deserialize`) over `existing` and check the result.

    Returns the merged record (without system fields) and the record-level errors.
    """
    errors: list[ApiError] = []
    readonly = [name for name in changes if not sobject.fields[name].writable]
    if readonly:
        errors.append(
            ApiError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                tuple(readonly),
            )
        )
        return {}, errors

    merged: dict[str, object] = dict(existing or {})
    if existing is None:
        for name, default in sobject.defaults.items():
            merged.setdefault(name, default)
    merged.update(changes)

    for name, value in changes.items():
        fdef = sobject.fields[name]
        if value is None:
            continue
        text = str(value)
        if fdef.kind == "reference" and not is_well_formed_id(text, ()):
            errors.append(
                ApiError(
                    "MALFORMED_ID", f"{fdef.label}: id value of incorrect type: {text}", (name,)
                )
            )
        elif fdef.kind == "reference" and not is_well_formed_id(text, fdef.reference_to):
            # A real id of another object: Salesforce knows the id, not its fit.
            errors.append(
                ApiError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"field integrity exception: unknown ({fdef.label}: id value of "
                    f"incorrect type: {text})",
                    (name,),
                )
            )
        elif fdef.kind == "picklist" and fdef.restricted and text not in fdef.picklist:
            errors.append(
                ApiError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{fdef.label}: bad value for restricted picklist field: {text}",
                    (name,),
                )
            )
        elif fdef.kind in ("string", "textarea", "email", "picklist") and (
            fdef.length is not None and len(text) > fdef.length
        ):
            errors.append(
                ApiError(
                    "STRING_TOO_LONG",
                    f"{fdef.label}: data value too large: {text[:40]}... "
                    f"(max length={fdef.length})",
                    (name,),
                )
            )
        elif fdef.kind == "email" and not _EMAIL.match(text):
            errors.append(
                ApiError(
                    "INVALID_EMAIL_ADDRESS", f"{fdef.label}: invalid email address: {text}", (name,)
                )
            )

    if sobject.name == "Event":
        errors.extend(_event_rules(merged, changes))
    missing = [
        f.name for f in sobject.fields.values() if f.required and merged.get(f.name) in (None, "")
    ]
    if missing:
        errors.append(
            ApiError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                tuple(missing),
            )
        )
    for rule in rules:
        if rule.sobject == sobject.name and rule.violated(merged, existing):
            errors.append(ApiError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, rule.fields))
    if sobject.name in ("Lead", "Contact", "User"):
        first, last = merged.get("FirstName"), merged.get("LastName")
        merged["Name"] = " ".join(str(p) for p in (first, last) if p)
    return merged, errors


def _event_rules(merged: dict[str, object], changes: Mapping[str, object]) -> list[ApiError]:
    """Event timing: Start required, End or Duration required, kept consistent."""
    errors: list[ApiError] = []
    start_text = merged.get("StartDateTime")
    start = parse_datetime(str(start_text)) if start_text else None
    end_text = merged.get("EndDateTime")
    end = parse_datetime(str(end_text)) if end_text else None
    duration = merged.get("DurationInMinutes")
    missing = []
    if start is None:
        missing.append("StartDateTime")
    if end is None and duration is None:
        missing.append("EndDateTime")
    if missing:
        errors.append(
            ApiError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                tuple(missing),
            )
        )
    elif start is not None:
        # Whichever of End and Duration the caller set wins; the other follows.
        end_given = "EndDateTime" in changes or "DurationInMinutes" not in changes
        if end is not None and (end_given or duration is None):
            minutes = int((end - start).total_seconds() // 60)
            merged["DurationInMinutes"] = minutes
        else:
            assert isinstance(duration, int)
            minutes = duration
            end = start + timedelta(minutes=minutes)
            merged["EndDateTime"] = format_datetime(end)
        if minutes < 0:
            errors.append(
                ApiError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "End Date Time: End time can't be before start time",
                    ("EndDateTime",),
                )
            )
        elif minutes > 14 * 24 * 60:
            errors.append(
                ApiError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "End Date Time: Event duration can't exceed 14 days",
                    ("EndDateTime",),
                )
            )
        merged["ActivityDateTime"] = format_datetime(start)
    who = merged.get("WhoId")
    if isinstance(who, str) and who.startswith(PREFIX_LEAD) and merged.get("WhatId"):
        errors.append(
            ApiError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: You can't associate a lead with a related-to record",
                ("WhatId",),
            )
        )
    return errors


def describe(sobject: SObjectDef) -> dict[str, object]:
    """A trimmed `sobjects/{name}/describe` body: enough to discover fields and limits."""
    fields = []
    for f in sobject.fields.values():
        fields.append(
            {
                "name": f.name,
                "label": f.label,
                "type": f.kind,
                "scale": f.scale,
                "length": f.length or 0,
                "createable": f.writable,
                "updateable": f.writable,
                "nillable": not f.required,
                "externalId": f.external_id,
                "unique": f.unique,
                "idLookup": f.external_id or f.name == "Id",
                "referenceTo": [s.name for s in SOBJECTS.values() if s.prefix in f.reference_to],
                "restrictedPicklist": f.kind == "picklist" and f.restricted,
                "picklistValues": [
                    {"active": True, "defaultValue": False, "label": v, "value": v}
                    for v in f.picklist
                ],
            }
        )
    return {
        "name": sobject.name,
        "label": sobject.name,
        "keyPrefix": sobject.prefix,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "fields": fields,
    }


def reference_errors(
    sobject: SObjectDef,
    changes: Mapping[str, object],
    lookup: Callable[[str], Mapping[str, object] | None],
    may_read: Callable[[str], bool] = lambda _: True,
) -> list[ApiError]:
    """The references a write names must exist and be usable, as an org checks them:
    `lookup(id)` is the record with that id, deleted ones included (None: no such id);
    `may_read(sobject)` whether the user may read that object at all.

    - a record of an object the user may not read (no object permission):
      INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY, which names no field;
    - no such record (or an object the emulator does not hold): INVALID_CROSS_REFERENCE_KEY;
    - deleted, or merged into another (then deleted): ENTITY_IS_DELETED;
    - an inactive User as OwnerId: INACTIVE_OWNER_OR_USER;
    - a converted Lead as WhoId: FIELD_INTEGRITY_EXCEPTION (the emulator's wording).
    Ids of the wrong shape or object are `validate`'s (MALFORMED_ID, FIELD_INTEGRITY_EXCEPTION).
    """
    errors: list[ApiError] = []
    for name, value in changes.items():
        fdef = sobject.fields.get(name)
        if fdef is None or fdef.kind != "reference" or not fdef.writable or value is None:
            continue
        text = str(value)
        if not is_well_formed_id(text, fdef.reference_to):
            continue  # validate() reported it
        target_type = sobject_for_id(text)
        if target_type is not None and not may_read(target_type.name):
            errors.append(
                ApiError(
                    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
                    f"insufficient access rights on cross-reference id: {text}",
                )
            )
            continue
        target = lookup(text)
        if target is None:
            errors.append(
                ApiError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {fdef.label}: {text}",
                    (name,),
                )
            )
        elif target.get("IsDeleted"):
            errors.append(ApiError("ENTITY_IS_DELETED", "entity is deleted", (name,)))
        elif target.get("IsActive") is False:
            errors.append(
                ApiError(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{text}] as owner of "
                    f"{sobject.name.lower()}",
                    (name,),
                )
            )
        elif target.get("IsConverted") and name == "WhoId":
            errors.append(
                ApiError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{fdef.label}: a converted lead cannot be a new WhoId: {text}",
                    (name,),
                )
            )
    return errors


def now_text() -> str:
    return format_datetime(datetime.now(UTC))
