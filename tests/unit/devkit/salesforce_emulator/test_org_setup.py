"""The org setup in salesforce/ (the DX project an admin deploys) against the code: the
metadata XML is well-formed, every custom field a projection writes is defined (or, for
the ScheduleOnce preset, comes with that connector's managed package), the types and
lengths fit what the projection writes, the picklist equals the status list of the
fold, the permission set grants every field we write, and the emulator's Event schema
is exactly what the files say: a field that differs fails here."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import get_args

import pytest

from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.schema import EVENT, describe
from schemas import Related
from streams.core.projection import PRESETS, REASON_MAX
from streams.core.view import STATUSES
from streams.salesforce.related import RELATED_SOBJECTS

NS = "{http://soap.sforce.com/2006/04/metadata}"
SOURCE = metadata.DEFAULT_PROJECT / "force-app" / "main" / "default"
FIELDS = SOURCE / "objects" / "Activity" / "fields"
PERMISSION_SET = SOURCE / "permissionsets" / "Booking_Activity_Sync.permissionset-meta.xml"
# The connector's managed package brings these; our project does not define them.
MANAGED_NAMESPACE = "ScheduleOnce__"


def _fields() -> dict[str, ET.Element]:
    return {
        path.name.split(".", 1)[0]: ET.parse(path).getroot()
        for path in sorted(FIELDS.glob("*.field-meta.xml"))
    }


def _text(element: ET.Element, name: str) -> str | None:
    return element.findtext(f"{NS}{name}")


def test_every_metadata_file_is_well_formed_metadata() -> None:
    files = sorted(metadata.DEFAULT_PROJECT.glob("force-app/**/*-meta.xml"))
    assert len(files) >= 6
    for path in files:
        root = ET.parse(path).getroot()  # raises on malformed XML
        assert root.tag.startswith(NS), path
        kind = path.name.split(".")[-2].removesuffix("-meta")
        tags = {"field": "CustomField", "validationRule": "ValidationRule"}
        assert root.tag.removeprefix(NS) == tags.get(kind, "PermissionSet"), path
        full_name = _text(root, "fullName")
        if full_name is not None:
            assert full_name == path.name.split(".", 1)[0], path


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_custom_field_a_projection_writes_is_defined(preset: str) -> None:
    mapping = PRESETS[preset]
    defined = _fields()
    written = (
        mapping.external_id_field,
        mapping.status_field,
        mapping.reason_field,
        mapping.version_field,
    )
    for name in written:
        assert name.endswith("__c")
        if name.startswith(MANAGED_NAMESPACE):
            assert EVENT.resolve_field(name) is not None, name  # the package's field
        else:
            assert name in defined, f"{name} is not in {FIELDS}"


def test_the_fields_have_the_types_the_projection_needs() -> None:
    fields = _fields()
    booking = fields["Booking_Id__c"]
    assert (_text(booking, "type"), _text(booking, "length")) == ("Text", "255")
    assert (_text(booking, "externalId"), _text(booking, "unique")) == ("true", "true")
    reason = fields["Cancel_Reschedule_Reason__c"]
    assert (_text(reason, "type"), _text(reason, "length")) == ("Text", str(REASON_MAX))
    assert _text(fields["Projection_Version__c"], "type") == "Number"
    status = fields["Event_Status__c"]
    assert _text(status, "type") == "Picklist"
    value_set = status.find(f"{NS}valueSet")
    assert value_set is not None
    assert _text(value_set, "restricted") == "true"


def test_the_picklist_equals_the_status_list_in_code() -> None:
    status = _fields()["Event_Status__c"]
    values = [_text(v, "fullName") for v in status.iter(f"{NS}value")]
    assert tuple(values) == STATUSES


def test_the_permission_set_grants_every_field_we_write() -> None:
    root = ET.parse(PERMISSION_SET).getroot()
    editable = {
        _text(grant, "field")
        for grant in root.iter(f"{NS}fieldPermissions")
        if _text(grant, "editable") == "true" and _text(grant, "readable") == "true"
    }
    assert {f"Event.{name}" for name in _fields()} <= editable
    permissions = {
        _text(p, "name") for p in root.iter(f"{NS}userPermissions") if _text(p, "enabled") == "true"
    }
    assert {"ApiEnabled", "EditEvent"} <= permissions


def test_the_permission_set_grants_read_on_every_object_an_event_refers_to() -> None:
    """Issue 21, item 12: `related.type` may be Case (the Event's WhatId), yet the set
    granted no read on Case, so Salesforce refused those Events for want of access.
    Objects: every type the event contract's `related` allows, and those the sink
    looks customers up in by email."""
    related = set(get_args(Related.model_fields["type"].annotation))
    assert related  # the contract's Literal, not an empty guess
    needed = related | set(RELATED_SOBJECTS)
    root = ET.parse(PERMISSION_SET).getroot()
    readable = {
        _text(grant, "object")
        for grant in root.iter(f"{NS}objectPermissions")
        if _text(grant, "allowRead") == "true"
    }
    assert needed <= readable, f"no read on {sorted(needed - readable)}"


def test_the_permission_set_does_not_grant_modify_all_data() -> None:
    """Deliberately (README, 'A real Salesforce org'): sharing, or an admin's own grant,
    gives edit on Events of other owners; check-salesforce warns when neither is there."""
    root = ET.parse(PERMISSION_SET).getroot()
    enabled = {
        _text(p, "name") for p in root.iter(f"{NS}userPermissions") if _text(p, "enabled") == "true"
    }
    assert "ModifyAllData" not in enabled
    assert len(_text(root, "description") or "") <= 255  # Salesforce's limit for it


def test_the_emulator_serves_exactly_what_the_files_define() -> None:
    metadata.deploy(metadata.load())
    described = {f["name"]: f for f in describe(EVENT)["fields"]}  # type: ignore[index]
    for name, root in _fields().items():
        field = described[name]
        kind = _text(root, "type")
        assert (
            field["type"]
            == {"Text": "string", "Number": "double", "Picklist": "picklist"}[str(kind)]
        ), name
        if _text(root, "length"):
            assert field["length"] == int(str(_text(root, "length"))), name
        assert field["externalId"] == (_text(root, "externalId") == "true"), name
        assert field["unique"] == (_text(root, "unique") == "true"), name
        assert field["createable"], name
        assert field["updateable"], name
        values = [_text(v, "fullName") for v in root.iter(f"{NS}value")]
        assert [v["value"] for v in field["picklistValues"]] == values, name


def test_the_emulators_event_has_none_of_our_fields_of_its_own() -> None:
    """Ours come only from the files: removing one from the project removes it."""
    for name in _fields():
        assert name in EVENT.deployed
    assert metadata.remove_field("Event", "Event_Status__c")
    assert EVENT.resolve_field("Event_Status__c") is None
    metadata.deploy(metadata.load())
    assert EVENT.resolve_field("Event_Status__c") is not None


def test_a_field_without_field_access_is_read_only(tmp_path: Path) -> None:
    project = Path(shutil.copytree(metadata.DEFAULT_PROJECT, tmp_path / "salesforce"))
    path = project / PERMISSION_SET.relative_to(metadata.DEFAULT_PROJECT)
    granted = "<field>Event.Event_Status__c</field>"
    path.write_text(path.read_text().replace(granted, "<field>Event.Other__c</field>"))
    org = metadata.load(project)
    status = next(f for f in org.fields["Event"] if f.name == "Event_Status__c")
    assert not status.writable
