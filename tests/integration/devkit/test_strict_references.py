"""The strict emulator: an Event's references must exist, be live and of the right
object, with Salesforce's error codes; Users can be inactive, records deleted, merged
and Leads converted (admin API); a create answers with `Location`; queries honour
`Sforce-Query-Options: batchSize`."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from devkit.salesforce_emulator.process import SalesforceEmulator
from streams.commands.generate import pool_id

pytestmark = pytest.mark.integration

OWNER = pool_id("005", 1)


def _event(booking: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Event"},
        "Booking_Id__c": booking,
        "StartDateTime": "2026-11-24T09:30:00Z",
        "EndDateTime": "2026-11-24T10:00:00Z",
        "OwnerId": OWNER,
        **fields,
    }


def _api(emulator: SalesforceEmulator) -> tuple[requests.Session, str]:
    settings = emulator.settings()
    token = requests.post(
        f"{emulator.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        },
        verify=emulator.ca_file,
        timeout=10,
    ).json()
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = emulator.ca_file
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    return session, f"{emulator.url}/services/data/v62.0"


def _upsert(emulator: SalesforceEmulator, *records: dict[str, Any]) -> list[dict[str, Any]]:
    session, base = _api(emulator)
    answer = session.patch(
        f"{base}/composite/sobjects/Event/Booking_Id__c",
        json={"allOrNone": False, "records": list(records)},
        timeout=10,
    )
    answer.raise_for_status()
    result: list[dict[str, Any]] = answer.json()
    return result


def _code(result: dict[str, Any]) -> tuple[str, list[str]]:
    (error,) = result["errors"]
    return error["statusCode"], error["fields"]


def test_each_reference_problem_has_its_code(salesforce_emulator: SalesforceEmulator) -> None:
    sf = salesforce_emulator
    (inactive,) = sf.insert(
        "User", {"Username": "gone@x.io", "LastName": "Gone", "IsActive": False}
    )
    contact, merged, deleted = sf.insert(
        "Contact", {"LastName": "A"}, {"LastName": "B"}, {"LastName": "C"}
    )
    (lead,) = sf.insert("Lead", {"LastName": "L", "Company": "X", "Email": "l@x.io"})
    sf.merge("Contact", contact, merged)
    sf.delete("Contact", deleted)
    converted_to = sf.convert_lead(lead)
    results = _upsert(
        sf,
        _event("b-1", OwnerId=inactive),
        _event("b-2", OwnerId=pool_id("005", 49)[:-3] + "zzz"),
        _event("b-3", WhoId=merged),
        _event("b-4", WhoId=deleted),
        _event("b-5", WhoId=lead),
        _event("b-6", WhatId=pool_id("00Q", 1)),
        _event("b-7", WhoId=converted_to, WhatId=pool_id("500", 2)),
    )
    assert [_code(r) if not r["success"] else "ok" for r in results] == [
        ("INACTIVE_OWNER_OR_USER", ["OwnerId"]),
        ("INVALID_CROSS_REFERENCE_KEY", ["OwnerId"]),
        ("ENTITY_IS_DELETED", ["WhoId"]),
        ("ENTITY_IS_DELETED", ["WhoId"]),
        ("FIELD_INTEGRITY_EXCEPTION", ["WhoId"]),
        ("FIELD_INTEGRITY_EXCEPTION", ["WhatId"]),
        "ok",
    ]
    contacts = {c["Id"]: c for c in sf.records("Contact")}
    assert set(contacts) == {contact, converted_to}
    assert contacts[converted_to]["Email"] == "l@x.io"


def test_a_create_has_a_location_and_a_missing_end_names_end(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    session, base = _api(salesforce_emulator)
    body = _event("b-9")
    body.pop("attributes")
    created = session.post(f"{base}/sobjects/Event/", json=body, timeout=10)
    assert created.status_code == 201
    assert (
        created.headers["Location"] == f"/services/data/v62.0/sobjects/Event/{created.json()['id']}"
    )
    body.pop("EndDateTime")
    body["Booking_Id__c"] = "b-10"
    refused = session.post(f"{base}/sobjects/Event/", json=body, timeout=10)
    assert refused.json()[0]["fields"] == ["EndDateTime"]


def test_query_batch_size_header(salesforce_emulator: SalesforceEmulator) -> None:
    salesforce_emulator.insert("Contact", *({"LastName": f"N{n}"} for n in range(450)))
    session, base = _api(salesforce_emulator)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = session.get(
        f"{base}/query", params={"q": "SELECT Id FROM Contact"}, headers=headers, timeout=10
    ).json()
    assert (first["totalSize"], len(first["records"]), first["done"]) == (450, 200, False)
    second = session.get(f"{salesforce_emulator.url}{first['nextRecordsUrl']}", timeout=10).json()
    assert len(second["records"]) == 200
