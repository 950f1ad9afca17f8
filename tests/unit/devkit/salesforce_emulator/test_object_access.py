"""The integration user's object access and user permissions in the emulator come from
the project's permission sets (metadata.py): an object no permission set grants read on
is invisible as in Salesforce (describe 404 NOT_FOUND, SOQL INVALID_TYPE, an Event naming
one of its records INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY), and
`SELECT ... FROM UserPermissionAccess` answers EditEvent from them and Modify All Data
from the emulator's profile."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from devkit.salesforce_emulator import metadata
from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.org import Org
from devkit.salesforce_emulator.query import Query
from devkit.salesforce_emulator.schema import CASE, EVENT, RequestError
from devkit.salesforce_emulator.seed import seed_defaults
from devkit.salesforce_emulator.sobjects import SObjects
from devkit.salesforce_emulator.store import Store
from devkit.salesforce_emulator.tls_auth import load_credentials
from streams.commands.generate import pool_ids

PERMISSION_SET = Path(
    "force-app/main/default/permissionsets/Booking_Activity_Sync.permissionset-meta.xml"
)
CASE_READ = "<object>Case</object>"
VERSION = 62.0
PERMISSIONS_SOQL = "SELECT PermissionsModifyAllData, PermissionsEditEvent FROM UserPermissionAccess"


def _project(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    project = Path(shutil.copytree(metadata.DEFAULT_PROJECT, tmp_path / "salesforce"))
    path = project / PERMISSION_SET
    text = path.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return project


@pytest.fixture
def open_orgs() -> Iterator[list[Org]]:
    orgs: list[Org] = []
    yield orgs
    for org in orgs:
        org.store.close()


def _org(tmp_path: Path, project: Path, opened: list[Org], **options: Any) -> Org:
    loaded = metadata.load(project)
    org = Org(
        load_credentials(tmp_path, {}),
        Store(tmp_path / "org.sqlite3"),
        FaultState(Faults()),
        100_000,
        VERSION,
        loaded,
        **options,
    )
    opened.append(org)
    seed_defaults(org, SObjects(org))
    return org


def _body(response: web.Response) -> Any:
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


def _event(what_id: str) -> dict[str, object]:
    return {
        "Subject": "Intro call",
        "StartDateTime": "2026-11-24T09:30:00.000+0000",
        "EndDateTime": "2026-11-24T10:00:00.000+0000",
        "WhatId": what_id,
    }


def test_the_shipped_permission_set_grants_read_on_case_contact_and_lead() -> None:
    loaded = metadata.load()
    for name in ("Case", "Contact", "Lead", "Event", "User"):
        assert loaded.may_read(name), name
    assert loaded.has_user_permission("EditEvent")


def test_a_project_without_permission_sets_restricts_nothing() -> None:
    assert metadata.EMPTY.may_read("Case")
    assert metadata.EMPTY.has_user_permission("EditEvent")


async def test_an_object_without_read_is_invisible_as_in_salesforce(
    tmp_path: Path, open_orgs: list[Org]
) -> None:
    project = _project(tmp_path, (CASE_READ, "<object>Account</object>"))
    org = _org(tmp_path, project, open_orgs)
    assert not org.metadata.may_read("Case")
    assert org.metadata.may_read("case") is False
    sobjects = SObjects(org)

    with pytest.raises(RequestError) as described:
        await sobjects.describe(make_mocked_request("GET", "/"), VERSION, ["sobjects", "Case"])
    assert (described.value.status, described.value.error.code) == (404, "NOT_FOUND")
    listed = _body(await sobjects.describe_global(make_mocked_request("GET", "/"), VERSION, []))
    names = {s["name"] for s in listed["sobjects"]}
    assert "Case" not in names
    assert {"Event", "Contact", "Lead"} <= names

    with pytest.raises(RequestError) as queried:
        Query(org).run(VERSION, ["query"], {"q": "SELECT Id FROM Case"})
    assert (queried.value.status, queried.value.error.code) == (400, "INVALID_TYPE")

    case_id = pool_ids(CASE.prefix)[0]
    with org.store.transaction():
        record, errors = sobjects.apply(EVENT, _event(case_id), None)
    assert record is None
    assert [(e.code, e.fields) for e in errors] == [
        ("INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", ())
    ]
    assert errors[0].message == f"insufficient access rights on cross-reference id: {case_id}"


async def test_with_case_read_the_same_calls_succeed(tmp_path: Path, open_orgs: list[Org]) -> None:
    org = _org(tmp_path, metadata.DEFAULT_PROJECT, open_orgs)
    sobjects = SObjects(org)
    described = _body(
        await sobjects.describe(make_mocked_request("GET", "/"), VERSION, ["sobjects", "Case"])
    )
    assert described["queryable"]
    assert _body(Query(org).run(VERSION, ["query"], {"q": "SELECT Id FROM Case"}))["done"]
    with org.store.transaction():
        record, errors = sobjects.apply(EVENT, _event(pool_ids(CASE.prefix)[0]), None)
    assert errors == []
    assert record is not None


def test_user_permission_access_answers_the_context_users_permissions(
    tmp_path: Path, open_orgs: list[Org]
) -> None:
    org = _org(tmp_path, metadata.DEFAULT_PROJECT, open_orgs)
    (row,) = _body(Query(org).run(VERSION, ["query"], {"q": PERMISSIONS_SOQL}))["records"]
    assert row["attributes"]["type"] == "UserPermissionAccess"
    assert (row["PermissionsModifyAllData"], row["PermissionsEditEvent"]) == (True, True)
    # Any case in, canonical names out, as for sObject fields.
    lower = {"q": "select permissionseditevent from userpermissionaccess"}
    (row,) = _body(Query(org).run(VERSION, ["query"], lower))["records"]
    assert row == {"attributes": row["attributes"], "PermissionsEditEvent": True}

    org.modify_all_data = False
    (row,) = _body(Query(org).run(VERSION, ["query"], {"q": PERMISSIONS_SOQL}))["records"]
    assert row["PermissionsModifyAllData"] is False


def test_edit_event_follows_the_permission_sets(tmp_path: Path, open_orgs: list[Org]) -> None:
    project = _project(tmp_path, ("<name>EditEvent</name>", "<name>EditTask</name>"))
    org = _org(tmp_path, project, open_orgs, modify_all_data=False)
    (row,) = _body(Query(org).run(VERSION, ["query"], {"q": PERMISSIONS_SOQL}))["records"]
    assert (row["PermissionsModifyAllData"], row["PermissionsEditEvent"]) == (False, False)


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT PermissionsAuthorApex FROM UserPermissionAccess", "INVALID_FIELD"),
        (
            "SELECT PermissionsEditEvent FROM UserPermissionAccess WHERE Id = 'x'",
            "MALFORMED_QUERY",
        ),
    ],
)
def test_user_permission_access_beyond_what_is_modelled_fails_loudly(
    tmp_path: Path, open_orgs: list[Org], soql: str, code: str
) -> None:
    org = _org(tmp_path, metadata.DEFAULT_PROJECT, open_orgs)
    with pytest.raises(RequestError) as refused:
        Query(org).run(VERSION, ["query"], {"q": soql})
    assert refused.value.error.code == code
