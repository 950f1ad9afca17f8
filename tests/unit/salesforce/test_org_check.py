"""The org checks (streams/salesforce/org_check.py) on describe answers, the field specs
of both mappings, and the JWT bearer flow's assertion."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from schemas import Related
from streams.core.projection import PRESETS
from streams.core.view import STATUSES
from streams.salesforce.errors import SalesforceAuthenticationError
from streams.salesforce.org_check import (
    ACCESS_HINT,
    OrgReport,
    check_fields,
    check_user_permissions,
)
from streams.salesforce.related import RELATED_SOBJECTS
from streams.salesforce.session import JWT_BEARER_GRANT, SalesforceSession, jwt_assertion
from streams.salesforce.settings import SalesforceSettings
from streams.worker.org_checks import READ_SOBJECTS, field_specs


def _field(name: str, kind: str, length: int = 0, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "length": length,
        "createable": True,
        "updateable": True,
        "externalId": False,
        "unique": False,
        "picklistValues": [],
        **more,
    }


def _ready() -> dict[str, dict[str, Any]]:
    return {
        "Booking_Id__c": _field("Booking_Id__c", "string", 255, externalId=True, unique=True),
        "Event_Status__c": _field(
            "Event_Status__c", "picklist", 255, picklistValues=[{"value": v} for v in STATUSES]
        ),
        "Cancel_Reschedule_Reason__c": _field("Cancel_Reschedule_Reason__c", "string", 255),
        "Projection_Version__c": _field("Projection_Version__c", "double"),
    }


def _check(fields: dict[str, dict[str, Any]]) -> OrgReport:
    report = OrgReport()
    check_fields(
        report, "Event", {"fields": list(fields.values())}, field_specs(PRESETS["default"])
    )
    return report


def test_a_ready_org_passes_one_line_per_field() -> None:
    report = _check(_ready())
    assert report.ok
    assert len(report.lines) == 4


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: f.pop("Event_Status__c"), "Event.Event_Status__c: missing"),
        (lambda f: f["Booking_Id__c"].update(unique=False), "not External ID and unique"),
        (lambda f: f["Cancel_Reschedule_Reason__c"].update(length=80), "length 80, needs 255"),
        (lambda f: f["Projection_Version__c"].update(type="string"), "type string, needs double"),
        (
            lambda f: f["Event_Status__c"].update(picklistValues=[{"value": "Scheduled"}]),
            "picklist lacks 'Rescheduled'",
        ),
        (
            lambda f: f["Event_Status__c"].update(updateable=False),
            "may not create and edit it; assign the permission set",
        ),
    ],
)
def test_each_problem_is_one_failing_line_with_a_hint(change: Any, words: str) -> None:
    fields = _ready()
    change(fields)
    report = _check(fields)
    assert not report.ok
    (failed,) = report.failures
    assert words in failed.text
    assert ";" in failed.text  # the hint follows


def test_the_oncehub_mapping_points_at_the_managed_package() -> None:
    specs = {s.name: s for s in field_specs(PRESETS["oncehub"])}
    assert "ScheduleOnce" in specs["ScheduleOnce__Event_status__c"].hint
    assert "deploy salesforce/" in specs["Projection_Version__c"].hint


def _row(edit_event: bool, modify_all_data: bool) -> dict[str, bool]:
    return {"PermissionsEditEvent": edit_event, "PermissionsModifyAllData": modify_all_data}


def test_the_user_permission_lines() -> None:
    """Edit Events missing fails; Modify All Data missing is a warning that fails
    nothing but names what to grant instead (issue 21, item 12)."""
    report = OrgReport()
    check_user_permissions(report, _row(True, True))
    assert [str(line) for line in report.lines] == [
        "ok   user permission Edit Events: granted",
        "ok   user permission Modify All Data: granted (Events of every owner)",
    ]
    report = OrgReport()
    check_user_permissions(report, _row(True, False))
    assert report.ok
    (warned,) = report.warnings
    assert str(warned).startswith("warn user permission Modify All Data: not granted; ")
    for words in ("owned by other users", "sharing", "role above", "controlled by parent"):
        assert words in warned.text
    report = OrgReport()
    check_user_permissions(report, _row(False, True))
    assert not report.ok
    (failed,) = report.failures
    assert str(failed) == f"FAIL user permission Edit Events: not granted; {ACCESS_HINT}"


def test_a_warning_passes_and_a_failure_does_not() -> None:
    report = OrgReport()
    report.add(True, "a")
    report.warn("b")
    assert report.ok
    assert [line.level for line in report.lines] == ["ok", "warn"]
    assert report.failures == []
    report.add(False, "c")
    assert not report.ok
    assert [str(line) for line in report.warnings] == ["warn b"]


def test_the_objects_to_read_follow_the_contract_and_the_lookup() -> None:
    """Every `related.type` of the event contract (WhoId or WhatId) and what the sink
    queries by email: nothing hard-coded here that could fall behind."""
    related = get_args(Related.model_fields["type"].annotation)
    assert set(READ_SOBJECTS) == {*related, *RELATED_SOBJECTS}
    assert "Case" in READ_SOBJECTS


def _key(tmp_path: Path) -> tuple[Path, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


def test_the_jwt_assertion_is_signed_for_the_login_host(tmp_path: Path) -> None:
    path, public = _key(tmp_path)
    settings = SalesforceSettings(
        auth="jwt",
        client_id="consumer-key",
        username="sync@acme.example",
        private_key_file=path,
        login_url="https://login.salesforce.com",
        _env_file=None,
    )
    claims = jwt.decode(
        jwt_assertion(settings, now=1000),
        public,
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
        options={"verify_exp": False},
    )
    assert claims == {
        "iss": "consumer-key",
        "sub": "sync@acme.example",
        "aud": "https://login.salesforce.com",
        "exp": 1180,
    }
    form = SalesforceSession(settings)._token_form()
    assert form["grant_type"] == JWT_BEARER_GRANT
    assert "client_secret" not in form


def test_jwt_needs_a_username_and_a_readable_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PRIVATE_KEY_FILE"):
        SalesforceSettings(auth="jwt", username="u", _env_file=None)
    settings = SalesforceSettings(
        auth="jwt", username="u", private_key_file=tmp_path / "none.key", _env_file=None
    )
    with pytest.raises(SalesforceAuthenticationError, match="cannot read"):
        jwt_assertion(settings)
