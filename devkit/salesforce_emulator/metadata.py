"""The org's own metadata, read from the Salesforce DX project the product ships
(`salesforce/` at the top of the checkout): custom fields and validation rules, so the
emulator enforces exactly what a deployed org enforces, from the same files.

Read: `sfdx-project.json`'s package directories, then every
`objects/<Object>/fields/<Field>.field-meta.xml` (custom fields of `Activity` are
fields of `Event`, as in Salesforce: type, length, external id, unique, the picklist's
values and whether it is restricted), `objects/<Object>/validationRules/<Rule>
.validationRule-meta.xml`, and of `permissionsets/*.permissionset-meta.xml` the field
permissions, the object permissions' `allowRead` and the enabled user permissions. The
emulator's integration user holds every permission set of the project:
- a custom field no permission set makes editable is read-only (describe's
  createable/updateable false), as for a user without the field's access;
- an object under object permissions (Contact, Lead, Case: every emulated sObject but
  Event, whose access is the EditEvent user permission, and User) that no permission set
  grants read on is invisible, as Salesforce hides it: its describe and resources answer
  404 NOT_FOUND, SOQL on it INVALID_TYPE, and an Event naming one of its records
  INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY (sobjects.py, query.py);
- the user permissions (EditEvent, ...) answer `SELECT ... FROM UserPermissionAccess`
  (org.py), beside Modify All Data, which the emulator's profile holds unless started
  with `--without-modify-all-data`.
A project without permission sets restricts nothing. Other metadata (layouts, ...) is
left alone.

A validation rule's formula is evaluated only in the shapes `_FORMULAS` lists: a
comparison of a field with its prior value (`FIELD < PRIORVALUE(FIELD)`, any operator),
bare or with both sides under `BLANKVALUE(..., NUMBER)` (the shipped fence: a blank
counts as that number, so blanking the field is refused too); any other formula, field
type or object fails loudly at load time rather than being skipped: an emulator that
silently ignored a rule would pass tests a real org fails.
"""

from __future__ import annotations

import json
import operator
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devkit.salesforce_emulator.schema import FieldDef, FieldKind, resolve_sobject

# The DX project in the checkout (devkit runs from a checkout, never installed).
DEFAULT_PROJECT = Path(__file__).resolve().parents[2] / "salesforce"

_NS = "{http://soap.sforce.com/2006/04/metadata}"
# Custom fields defined on Activity belong to Event (and Task, not emulated).
_OBJECT_ALIASES = {"Activity": ("Event",)}
_TYPES: dict[str, FieldKind] = {
    "Number": "double",
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Picklist": "picklist",
    "Email": "email",
}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
    "<>": operator.ne,
    "!=": operator.ne,
}
# Not under object permissions: activity access is the EditEvent user permission (and
# sharing), and every user may read Users.
_WITHOUT_OBJECT_PERMISSIONS = frozenset({"event", "user"})
_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_OP = r"(?P<op><=|>=|<>|!=|==|<|>|=)"
_NUMBER = r"-?\d+(?:\.\d+)?"
_FORMULAS = (
    re.compile(
        rf"\s*(?P<field>{_NAME})\s*{_OP}\s*PRIORVALUE\s*\(\s*(?P<prior>{_NAME})\s*\)\s*",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\s*BLANKVALUE\s*\(\s*(?P<field>{_NAME})\s*,\s*(?P<blank>{_NUMBER})\s*\)\s*{_OP}"
        rf"\s*BLANKVALUE\s*\(\s*PRIORVALUE\s*\(\s*(?P<prior>{_NAME})\s*\)\s*,"
        rf"\s*(?P<prior_blank>{_NUMBER})\s*\)\s*",
        re.IGNORECASE,
    ),
)


class MetadataError(Exception):
    """The DX project holds something the emulator cannot enforce faithfully."""


@dataclass(frozen=True)
class PriorValueRule:
    """An active validation rule comparing a field's new value with its prior value.

    Salesforce semantics: on insert PRIORVALUE is the value being inserted; a blank on
    either side makes the comparison blank, which does not fire the rule, unless the
    formula puts both sides under `BLANKVALUE(..., blank_as)`.
    """

    sobject: str
    name: str
    field: str
    op: str
    message: str
    display_field: str | None
    active: bool = True
    blank_as: float | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """The `fields` of the error Salesforce answers (the error display field)."""
        return (self.display_field,) if self.display_field else ()

    def violated(self, record: Mapping[str, object], prior: Mapping[str, object] | None) -> bool:
        if not self.active:
            return False
        new = record.get(self.field)
        old = new if prior is None else prior.get(self.field)
        if self.blank_as is not None:
            new = self.blank_as if new is None else new
            old = self.blank_as if old is None else old
        if new is None or old is None:
            return False
        return _COMPARISONS[self.op](new, old)


@dataclass(frozen=True)
class OrgMetadata:
    fields: Mapping[str, tuple[FieldDef, ...]]  # sObject -> custom fields
    rules: tuple[PriorValueRule, ...]
    project: Path | None = None
    # Objects (lower case) some permission set grants read on; None: the project has no
    # permission sets, and object access is not restricted.
    readable: frozenset[str] | None = None
    # User permissions some permission set enables (EditEvent, ApiEnabled, ...).
    user_permissions: frozenset[str] = frozenset()

    def may_read(self, sobject: str) -> bool:
        """Whether the integration user may see `sobject` (describe, query, references)."""
        name = sobject.lower()
        if self.readable is None or name in _WITHOUT_OBJECT_PERMISSIONS:
            return True
        return name in self.readable

    def has_user_permission(self, name: str) -> bool:
        """Whether a permission set enables the user permission `name` (any, when the
        project has no permission sets: nothing is restricted then)."""
        return self.readable is None or name in self.user_permissions

    def rules_for(self, sobject: str) -> tuple[PriorValueRule, ...]:
        return tuple(r for r in self.rules if r.sobject == sobject and r.active)

    def tracked_fields(self, sobject: str) -> tuple[str, ...]:
        """Fields whose every write the emulator logs (those a PRIORVALUE rule guards,
        active or not): a field history, for runs that check nothing went backwards."""
        return tuple(dict.fromkeys(r.field for r in self.rules if r.sobject == sobject))


EMPTY = OrgMetadata({}, ())


def _text(element: ET.Element, name: str, default: str | None = None) -> str | None:
    found = element.find(f"{_NS}{name}")
    if found is None or found.text is None:
        return default
    return found.text.strip()


def _flag(element: ET.Element, name: str) -> bool:
    return (_text(element, name, "false") or "false").lower() == "true"


def _root(path: Path, tag: str) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise MetadataError(f"{path}: {exc}") from None
    if root.tag != f"{_NS}{tag}":
        raise MetadataError(f"{path}: expected a <{tag}> in the metadata namespace")
    return root


def _objects(folder: str, path: Path) -> tuple[str, ...]:
    names = _OBJECT_ALIASES.get(folder, (folder,))
    for name in names:
        if resolve_sobject(name) is None:
            raise MetadataError(f"{path}: the emulator has no sObject {name}")
    return names


def load_field(path: Path) -> FieldDef:
    root = _root(path, "CustomField")
    name = _text(root, "fullName") or path.name.split(".", 1)[0]
    kind_name = _text(root, "type")
    kind = _TYPES.get(kind_name or "")
    if kind is None:
        raise MetadataError(f"{path}: field type {kind_name!r} is not emulated")
    label = _text(root, "label") or name
    length = _text(root, "length")
    picklist: tuple[str, ...] = ()
    restricted = True
    if kind == "picklist":
        value_set = root.find(f"{_NS}valueSet")
        restricted = value_set is not None and _flag(value_set, "restricted")
        picklist = tuple(
            (value.findtext(f"{_NS}fullName") or "").strip()
            for value in root.iter(f"{_NS}value")
            if value.find(f"{_NS}fullName") is not None
        )
    return FieldDef(
        name,
        kind,
        label,
        int(length) if length else (32_000 if kind_name == "LongTextArea" else None),
        required=_flag(root, "required"),
        external_id=_flag(root, "externalId"),
        picklist=picklist,
        scale=int(_text(root, "scale", "0") or 0),
        unique=_flag(root, "unique"),
        restricted=restricted,
    )


@dataclass(frozen=True)
class Grants:
    """What one permission set grants: `Object.Field` names it makes editable
    (`Activity.X` is `Event.X`), objects it grants read on and user permissions it
    enables (object names lower case)."""

    editable: frozenset[str]
    readable: frozenset[str]
    user_permissions: frozenset[str]


def load_permission_set(path: Path) -> Grants:
    root = _root(path, "PermissionSet")
    editable: set[str] = set()
    for grant in root.iter(f"{_NS}fieldPermissions"):
        name = _text(grant, "field") or ""
        if _flag(grant, "editable") and "." in name:
            folder, field_name = name.split(".", 1)
            for sobject in _OBJECT_ALIASES.get(folder, (folder,)):
                editable.add(f"{sobject}.{field_name}".lower())
    readable = {
        (_text(grant, "object") or "").lower()
        for grant in root.iter(f"{_NS}objectPermissions")
        if _flag(grant, "allowRead")
    }
    enabled = {
        _text(grant, "name") or ""
        for grant in root.iter(f"{_NS}userPermissions")
        if _flag(grant, "enabled")
    }
    return Grants(frozenset(editable), frozenset(readable - {""}), frozenset(enabled - {""}))


def load_rule(path: Path, sobject: str) -> PriorValueRule:
    root = _root(path, "ValidationRule")
    name = _text(root, "fullName") or path.name.split(".", 1)[0]
    formula = _text(root, "errorConditionFormula") or ""
    match = next((m for f in _FORMULAS if (m := f.fullmatch(formula))), None)
    groups = match.groupdict() if match else {}
    if (
        match is None
        or match["field"].lower() != match["prior"].lower()
        or groups.get("blank") != groups.get("prior_blank")
    ):
        raise MetadataError(
            f"{path}: cannot evaluate the formula {formula!r}; the emulator evaluates only "
            "FIELD <op> PRIORVALUE(FIELD) and BLANKVALUE(FIELD, N) <op> "
            "BLANKVALUE(PRIORVALUE(FIELD), N)"
        )
    blank = groups.get("blank")
    message = _text(root, "errorMessage")
    if not message:
        raise MetadataError(f"{path}: a validation rule needs an errorMessage")
    return PriorValueRule(
        sobject=sobject,
        name=name,
        field=match["field"],
        op=match["op"],
        message=message,
        display_field=_text(root, "errorDisplayField"),
        active=_flag(root, "active"),
        blank_as=float(blank) if blank is not None else None,
    )


def package_directories(project: Path) -> list[Path]:
    config = project / "sfdx-project.json"
    try:
        loaded = json.loads(config.read_text())
        paths = [project / str(entry["path"]) for entry in loaded["packageDirectories"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MetadataError(f"{config}: not a Salesforce DX project ({exc})") from None
    return paths


def load(project: Path = DEFAULT_PROJECT) -> OrgMetadata:
    """Every custom field, validation rule and permission set grant of the DX project at
    `project`."""
    fields: dict[str, list[FieldDef]] = {}
    rules: list[PriorValueRule] = []
    editable: set[str] = set()
    readable: set[str] = set()
    user_permissions: set[str] = set()
    permission_sets = 0
    for directory in package_directories(project):
        for path in sorted(directory.glob("**/permissionsets/*.permissionset-meta.xml")):
            grants = load_permission_set(path)
            editable |= grants.editable
            readable |= grants.readable
            user_permissions |= grants.user_permissions
            permission_sets += 1
        for path in sorted(directory.glob("**/objects/*/fields/*.field-meta.xml")):
            field = load_field(path)
            for sobject in _objects(path.parent.parent.name, path):
                fields.setdefault(sobject, []).append(field)
        for path in sorted(
            directory.glob("**/objects/*/validationRules/*.validationRule-meta.xml")
        ):
            for sobject in _objects(path.parent.parent.name, path):
                rules.append(load_rule(path, sobject))
    if permission_sets:
        # Without field access the integration user cannot write the field.
        fields = {
            name: [
                f if f"{name}.{f.name}".lower() in editable else replace(f, writable=False)
                for f in defs
            ]
            for name, defs in fields.items()
        }
    custom = {k: tuple(v) for k, v in fields.items()}
    checked = tuple(replace(rule, field=_field_name(custom, rule)) for rule in rules)
    return OrgMetadata(
        custom,
        checked,
        project,
        readable=frozenset(readable) if permission_sets else None,
        user_permissions=frozenset(user_permissions),
    )


def _field_name(custom: Mapping[str, tuple[FieldDef, ...]], rule: PriorValueRule) -> str:
    """The canonical name of the field a rule compares (names are case-insensitive)."""
    for fdef in custom.get(rule.sobject, ()):
        if fdef.name.lower() == rule.field.lower():
            return fdef.name
    sobject = resolve_sobject(rule.sobject)
    found = sobject.resolve_field(rule.field) if sobject is not None else None
    if found is None or (sobject is not None and found.name in sobject.deployed):
        raise MetadataError(
            f"validation rule {rule.name}: {rule.sobject} has no field {rule.field}"
        )
    return found.name


def deploy(metadata: OrgMetadata) -> None:
    """Add the custom fields to the emulated sObjects, as a deployment adds them to an
    org (the metadata's definition replaces an emulator default of the same name)."""
    for name, defs in metadata.fields.items():
        sobject = resolve_sobject(name)
        assert sobject is not None  # checked by load
        for fdef in defs:
            sobject.define_field(fdef)


def remove_field(sobject_name: str, field_name: str) -> bool:
    """Delete a deployed custom field (an admin deleting it in Setup): False if absent."""
    sobject = resolve_sobject(sobject_name)
    if sobject is None:
        return False
    return sobject.remove_field(field_name)
