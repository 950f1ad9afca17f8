"""The emulator answers as Salesforce's REST API does, driven by simple-salesforce over HTTPS."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from streams.commands.generate import pool_id
from tests.fixtures import SalesforceEmulator

pytestmark = pytest.mark.integration

START = "2026-11-24T09:30:00.000Z"
END = "2026-11-24T10:00:00Z"
# Ids of the default seed (devkit/salesforce_emulator/seed.py): records that exist.
OWNER = pool_id("005", 1)


def event(booking_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "Booking_Id__c": booking_id,
        "Subject": f"Intro call {booking_id}",
        "StartDateTime": START,
        "EndDateTime": END,
        "Event_Status__c": "Scheduled",
        **fields,
    }


def http(emulator: SalesforceEmulator) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = emulator.ca_file
    return session


def token(emulator: SalesforceEmulator, **form: str) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        **form,
    }
    return http(emulator).post(f"{emulator.url}/services/oauth2/token", data=data, timeout=10)


def connect(emulator: SalesforceEmulator, version: str = "62.0") -> Salesforce:
    body = token(emulator).json()
    return Salesforce(
        instance_url=body["instance_url"],
        session_id=body["access_token"],
        version=version,
        session=http(emulator),
        object_pairs_hook=dict,
    )


def upsert_collection(sf: Salesforce, records: list[dict[str, Any]], **body: Any) -> Any:
    payload = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Event"}, **r} for r in records],
        **body,
    }
    return sf.restful("composite/sobjects/Event/Booking_Id__c", method="PATCH", json=payload)


# OAuth --------------------------------------------------------------------------------


def test_client_credentials_token_has_salesforce_shape(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    response = token(salesforce_emulator)
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    }
    assert body["instance_url"] == salesforce_emulator.url
    assert not body["instance_url"].endswith("/")
    assert body["token_type"] == "Bearer"
    assert body["issued_at"].isdigit()


def test_password_grant_needs_password_plus_security_token(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    good = token(
        salesforce_emulator,
        grant_type="password",
        username=salesforce_emulator.username,
        password=salesforce_emulator.password + salesforce_emulator.security_token,
    )
    assert good.status_code == 200
    assert "scope" not in good.json()
    bad = token(
        salesforce_emulator,
        grant_type="password",
        username=salesforce_emulator.username,
        password=salesforce_emulator.password,
    )
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "authentication failure"},
    )


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "unknown"}, "invalid_client_id"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
    ],
)
def test_oauth_errors_are_error_objects(
    salesforce_emulator: SalesforceEmulator, form: dict[str, str], error: str
) -> None:
    response = token(salesforce_emulator, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "error_description" in response.json()


def test_tls_is_verified_against_the_emulator_ca(salesforce_emulator: SalesforceEmulator) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"{salesforce_emulator.url}/services/oauth2/token", timeout=10)


def test_missing_or_expired_token_is_invalid_session(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    sf.limits()
    assert salesforce_emulator.expire_tokens() >= 1
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.limits()
    assert caught.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
    ]


# Records ------------------------------------------------------------------------------


def test_event_crud(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    created = sf.Event.create(event("b-1", OwnerId=OWNER))
    event_id = created["id"]
    assert created == {"id": event_id, "success": True, "errors": []}
    assert len(event_id) == 18
    assert event_id.startswith("00U")

    fetched = sf.Event.get(event_id)
    assert fetched["attributes"] == {
        "type": "Event",
        "url": f"/services/data/v62.0/sobjects/Event/{event_id}",
    }
    assert fetched["StartDateTime"] == "2026-11-24T09:30:00.000+0000"
    assert fetched["DurationInMinutes"] == 30
    assert fetched["OwnerId"] == OWNER
    assert sf.Event.get(event_id[:15])["Id"] == event_id

    assert sf.Event.update(event_id, {"Event_Status__c": "Canceled"}) == 204
    assert sf.Event.get_by_custom_id("Booking_Id__c", "b-1")["Event_Status__c"] == "Canceled"
    assert sf.Event.delete(event_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Event.get(event_id)


def test_a_reader_gets_only_what_changed_since_its_last_read(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    ids = [sf.Event.create(event(f"b-{n}", OwnerId=OWNER))["id"] for n in range(5)]
    # In pages of two: every record once, and the cursor past the last change.
    first, cursor = salesforce_emulator.changes("Event", 0, fields=["Booking_Id__c"], limit=2)
    assert [r["Booking_Id__c"] for r in first] == [f"b-{n}" for n in range(5)]
    assert set(first[0]) == {"attributes", "Id", "IsDeleted", "Booking_Id__c"}
    assert salesforce_emulator.changes("Event", cursor) == ([], cursor)

    sf.Event.update(ids[3], {"Event_Status__c": "Canceled"})
    sf.Event.delete(ids[1])
    changed, cursor = salesforce_emulator.changes("Event", cursor)
    assert [(r["Id"], r["Event_Status__c"], r["IsDeleted"]) for r in changed] == [
        (ids[3], "Canceled", False),
        (ids[1], "Scheduled", True),
    ]
    assert salesforce_emulator.changes("Event", cursor) == ([], cursor)
    answer = http(salesforce_emulator).get(
        f"{salesforce_emulator.url}/__admin/records/Event?changed_after=x", timeout=10
    )
    assert answer.status_code == 400


def test_upsert_by_external_id_twice_keeps_one_record(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    first = sf.Event.upsert("Booking_Id__c/b-1", event("b-1"), raw_response=True)
    second = sf.Event.upsert(
        "Booking_Id__c/b-1", {"Event_Status__c": "Rescheduled"}, raw_response=True
    )
    assert first.status_code == 201
    assert first.json() == {
        "id": first.json()["id"],
        "success": True,
        "errors": [],
        "created": True,
    }
    # API 46.0 and later answer an update by upsert with 200 and created: false.
    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["id"] == first.json()["id"]
    records = salesforce_emulator.records()
    assert [(r["Booking_Id__c"], r["Event_Status__c"]) for r in records] == [("b-1", "Rescheduled")]


def test_upsert_update_answers_204_before_api_46(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator, version="45.0")
    assert sf.Event.upsert("Booking_Id__c/b-1", event("b-1")) == 201
    assert sf.Event.upsert("Booking_Id__c/b-1", event("b-1")) == 204


def test_external_id_value_is_url_decoded(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    assert sf.Event.upsert("Booking_Id__c/" + "a%2Fb%20c", event("a/b c")) == 201
    assert [r["Booking_Id__c"] for r in salesforce_emulator.records()] == ["a/b c"]


def test_external_id_is_unique(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    first = sf.Event.create(event("b-1"))["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(event("b-1"))
    assert caught.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert first in caught.value.content[0]["message"]
    other = sf.Event.create(event("b-2"))["id"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Event.update(other, {"Booking_Id__c": "b-1"})
    assert sorted(r["Booking_Id__c"] for r in salesforce_emulator.records()) == ["b-1", "b-2"]


def test_upsert_by_a_field_that_is_not_an_external_id(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    with pytest.raises(SalesforceResourceNotFound):
        sf.Event.upsert("Subject/x", event("b-1"))


# Collections --------------------------------------------------------------------------


def test_collection_upsert_of_200_is_one_call(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    records = [event(f"b-{n}") for n in range(200)]
    first = upsert_collection(sf, records)
    assert [r["created"] for r in first] == [True] * 200
    assert all(r["success"] and r["errors"] == [] for r in first)
    second = upsert_collection(sf, [{**r, "Event_Status__c": "Completed"} for r in records])
    assert [r["created"] for r in second] == [False] * 200
    assert [r["id"] for r in second] == [r["id"] for r in first]
    assert len(salesforce_emulator.records()) == 200
    assert salesforce_emulator.api_calls()["by_kind"] == {"collections_upsert": 2}


def test_collection_over_200_records_is_refused(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        upsert_collection(sf, [event(f"b-{n}") for n in range(201)])
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert salesforce_emulator.records() == []


LEAD = pool_id("00Q", 1)
CONTACT = pool_id("003", 1)
CASE = pool_id("500", 1)


@pytest.mark.parametrize(
    ("fields", "status_code", "error_fields"),
    [
        ({"Subject": "x" * 256}, "STRING_TOO_LONG", ["Subject"]),
        ({"Location": "x" * 256}, "STRING_TOO_LONG", ["Location"]),
        ({"Description": "x" * 32001}, "STRING_TOO_LONG", ["Description"]),
        ({"Cancel_Reschedule_Reason__c": "x" * 256}, "STRING_TOO_LONG", None),
        ({"ScheduleOnce__Cancel_reschedule_reason__c": "x" * 256}, "STRING_TOO_LONG", None),
        ({"Event_Status__c": "Cancelled"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", None),
        (
            {"ScheduleOnce__Event_status__c": "Done"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            None,
        ),
        # An id of another object: FIELD_INTEGRITY_EXCEPTION; not an id: MALFORMED_ID.
        ({"OwnerId": "00Q5g0000000001AAA"}, "FIELD_INTEGRITY_EXCEPTION", ["OwnerId"]),
        ({"OwnerId": "005123"}, "MALFORMED_ID", ["OwnerId"]),
        ({"WhoId": CASE}, "FIELD_INTEGRITY_EXCEPTION", ["WhoId"]),
        ({"WhatId": LEAD}, "FIELD_INTEGRITY_EXCEPTION", ["WhatId"]),
        ({"OwnerId": "0055g00000000zzAAA"}, "INVALID_CROSS_REFERENCE_KEY", ["OwnerId"]),
        ({"WhoId": LEAD, "WhatId": CASE}, "FIELD_INTEGRITY_EXCEPTION", ["WhatId"]),
        ({"StartDateTime": None}, "REQUIRED_FIELD_MISSING", ["StartDateTime"]),
        (
            {"EndDateTime": None, "DurationInMinutes": None},
            "REQUIRED_FIELD_MISSING",
            ["EndDateTime"],
        ),
        ({"EndDateTime": "2026-11-24T09:00:00Z"}, "FIELD_INTEGRITY_EXCEPTION", ["EndDateTime"]),
    ],
)
def test_record_errors_fail_only_their_record(
    salesforce_emulator: SalesforceEmulator,
    fields: dict[str, Any],
    status_code: str,
    error_fields: list[str] | None,
) -> None:
    sf = connect(salesforce_emulator)
    results = upsert_collection(sf, [event("good-1"), event("bad", **fields), event("good-2")])
    assert [r["success"] for r in results] == [True, False, True]
    error = results[1]["errors"][0]
    assert set(error) == {"statusCode", "message", "fields"}
    assert error["statusCode"] == status_code
    expected_fields = error_fields if error_fields is not None else list(fields)
    assert error["fields"] == expected_fields
    assert sorted(r["Booking_Id__c"] for r in salesforce_emulator.records()) == [
        "good-1",
        "good-2",
    ]


@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({"WhoId": LEAD}, True),
        ({"WhoId": CONTACT, "WhatId": CASE}, True),
        ({"WhoId": CONTACT[:15]}, True),
        ({"EndDateTime": None, "DurationInMinutes": 45}, True),
        ({"Event_Status__c": "Rescheduled (Reassigned by User)"}, True),
        ({"Subject": "x" * 255, "Description": "y" * 32000}, True),
    ],
)
def test_valid_events_are_accepted(
    salesforce_emulator: SalesforceEmulator, fields: dict[str, Any], valid: bool
) -> None:
    sf = connect(salesforce_emulator)
    assert upsert_collection(sf, [event("b-1", **fields)])[0]["success"] is valid


def test_duration_sets_the_end(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    upsert_collection(sf, [event("b-1", EndDateTime=None, DurationInMinutes=45)])
    assert salesforce_emulator.records()[0]["EndDateTime"] == "2026-11-24T10:15:00.000+0000"


@pytest.mark.parametrize(
    ("record", "error_code"),
    [
        ({"Unknown__c": "x"}, "INVALID_FIELD"),
        ({"StartDateTime": "next tuesday"}, "JSON_PARSER_ERROR"),
        ({"DurationInMinutes": "long"}, "JSON_PARSER_ERROR"),
        ({"Subject": {"nested": True}}, "JSON_PARSER_ERROR"),
    ],
)
def test_undeserializable_record_fails_the_whole_request(
    salesforce_emulator: SalesforceEmulator, record: dict[str, Any], error_code: str
) -> None:
    sf = connect(salesforce_emulator)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        upsert_collection(sf, [event("good"), event("bad", **record)])
    assert caught.value.content[0]["errorCode"] == error_code
    assert salesforce_emulator.records() == []


def test_collection_delete_answers_per_id_in_order(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    ids = [r["id"] for r in upsert_collection(sf, [event("b-1"), event("b-2"), event("b-3")])]
    assert sf.Event.delete(ids[2]) == 204
    nothing = ids[0][:3] + "5g0" + "0" * 9  # well formed, no such record
    results = sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": ",".join([ids[0], ids[2], nothing, "bogus"]), "allOrNone": "false"},
    )
    assert results[0] == {"id": ids[0], "success": True, "errors": []}
    assert [r["success"] for r in results] == [True, False, False, False]
    assert [r["errors"][0]["statusCode"] for r in results[1:]] == [
        "ENTITY_IS_DELETED",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
    ]
    assert [r["Booking_Id__c"] for r in salesforce_emulator.records()] == ["b-2"]
    # allOrNone: one failure keeps every record.
    rolled = sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": f"{ids[1]},{ids[0]}", "allOrNone": "true"},
    )
    assert [r["errors"][0]["statusCode"] for r in rolled] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "ENTITY_IS_DELETED",
    ]
    assert [r["Booking_Id__c"] for r in salesforce_emulator.records()] == ["b-2"]
    assert salesforce_emulator.api_calls()["by_kind"]["collections_delete"] == 2


def test_all_or_none_rolls_back_every_record(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    results = upsert_collection(
        sf, [event("good"), event("bad", Event_Status__c="Nope")], allOrNone=True
    )
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert salesforce_emulator.records() == []


def test_same_external_id_twice_in_one_call(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    results = upsert_collection(sf, [event("dup"), event("dup"), event("other")])
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"


def test_lead_and_contact_required_fields(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "Ng"})
    assert caught.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert caught.value.content[0]["fields"] == ["Company"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.create({"FirstName": "Ada"})
    lead = sf.Lead.create({"LastName": "Ng", "Company": "Acme", "Email": "ng@example.com"})
    assert lead["id"].startswith("00Q")
    assert sf.Lead.get(lead["id"])["Status"] == "Open - Not Contacted"


def test_collection_create_of_mixed_types(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "LastName": "A", "Company": "C"},
                {"attributes": {"type": "Contact"}, "LastName": "B"},
                {"attributes": {"type": "Contact"}, "FirstName": "no last name"},
            ],
        },
    )
    assert [r["success"] for r in results] == [True, True, False]
    assert results[0]["id"].startswith("00Q")
    assert results[1]["id"].startswith("003")


# SOQL ---------------------------------------------------------------------------------


def test_query_quoting_with_quotes_and_backslashes(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    tricky = "o'brien\\x@example.com"
    sf.Contact.create({"LastName": "O'Brien", "Email": tricky})
    sf.Contact.create({"LastName": "Other", "Email": "o'brien@example.com"})
    soql = format_soql("SELECT Id, Email FROM Contact WHERE Email IN {}", [tricky, "none@x.io"])
    result = sf.query(soql)
    assert result["totalSize"] == 1
    assert result["done"] is True
    assert result["records"][0]["Email"] == tricky
    assert list(result["records"][0]) == ["attributes", "Id", "Email"]


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        ("SELECT LastName FROM Contact WHERE Email = 'ADA@EXAMPLE.COM'", ["Lovelace"]),
        ("select lastname from contact where email in ('ada@example.com')", ["Lovelace"]),
        ("SELECT LastName FROM Contact WHERE Email = null", ["NoMail"]),
        (
            "SELECT LastName FROM Contact WHERE Email != null ORDER BY LastName",
            ["Hopper", "Lovelace"],
        ),
        ("SELECT LastName FROM Contact ORDER BY LastName DESC LIMIT 2", ["NoMail", "Lovelace"]),
        ("SELECT LastName FROM Contact WHERE LastName LIKE 'Ho%'", ["Hopper"]),
        (
            "SELECT LastName FROM Contact WHERE Email NOT IN ('ada@example.com') AND Email != null",
            ["Hopper"],
        ),
    ],
)
def test_query_subset(
    salesforce_emulator: SalesforceEmulator, soql: str, expected: list[str]
) -> None:
    salesforce_emulator.insert(
        "Contact",
        {"LastName": "Lovelace", "Email": "ada@example.com"},
        {"LastName": "Hopper", "Email": "grace@example.com"},
        {"LastName": "NoMail"},
    )
    records = connect(salesforce_emulator).query(soql)["records"]
    assert [r["LastName"] for r in records] == expected


@pytest.mark.parametrize(
    ("soql", "error_code"),
    [
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'a' OR Email = 'b'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_query_errors(salesforce_emulator: SalesforceEmulator, soql: str, error_code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        connect(salesforce_emulator).query(soql)
    assert caught.value.content[0]["errorCode"] == error_code


def test_query_pages_after_2000_records(salesforce_emulator: SalesforceEmulator) -> None:
    salesforce_emulator.insert(
        "Contact", *({"LastName": f"n{i}", "Email": "same@example.com"} for i in range(2001))
    )
    sf = connect(salesforce_emulator)
    first = sf.query("SELECT Id FROM Contact")
    assert (first["totalSize"], first["done"], len(first["records"])) == (2001, False, 2000)
    assert len(sf.query_all("SELECT Id FROM Contact")["records"]) == 2001


# Composite ----------------------------------------------------------------------------


def composite(sf: Salesforce, *subrequests: dict[str, Any], **body: Any) -> Any:
    return sf.restful(
        "composite",
        method="POST",
        json={"allOrNone": False, "compositeRequest": list(subrequests), **body},
    )


def query_sub(ref: str, soql: str, version: str = "62.0") -> dict[str, Any]:
    url = f"/services/data/v{version}/query/?" + urlencode({"q": soql})
    return {"method": "GET", "url": url, "referenceId": ref}


def test_composite_answers_like_salesforce(salesforce_emulator: SalesforceEmulator) -> None:
    contact_ids = salesforce_emulator.insert(
        "Contact",
        {"LastName": "Lovelace", "Email": "ada@example.com"},
        {"LastName": "O'Brien", "Email": "o'brien\\x@example.com"},
    )
    (event_id,) = salesforce_emulator.insert("Event", event("b-1"))
    sf = connect(salesforce_emulator)
    tricky = format_soql(
        "SELECT Id, Email FROM Contact WHERE Email IN {}", ["o'brien\\x@example.com", "x@y.z"]
    )
    base = "/services/data/v62.0"
    result = composite(
        sf,
        query_sub("contacts", "SELECT Id, LastName FROM Contact ORDER BY LastName"),
        query_sub("tricky", tricky, version="58.0"),
        {
            "method": "GET",
            "url": f"{base}/sobjects/Contact/{contact_ids[0]}?fields=LastName",
            "referenceId": "byId",
        },
        {
            "method": "GET",
            "url": f"{base}/sobjects/Event/Booking_Id__c/b-1",
            "referenceId": "byExt",
        },
        query_sub("bad", "SELECT Id FROM Contact WHERE"),
        {
            "method": "GET",
            "url": f"{base}/sobjects/Contact/003000000000000AAA",
            "referenceId": "gone",
        },
        {
            "method": "POST",
            "url": f"{base}/sobjects/Lead",
            "referenceId": "write",
            "body": {"LastName": "L"},
        },
        {"method": "GET", "url": f"{base}/nowhere", "referenceId": "nowhere"},
        {
            "method": "POST",
            "url": f"{base}/query/?q=SELECT+Id+FROM+Lead",
            "referenceId": "postQuery",
        },
        collateSubrequests=False,
    )
    assert list(result) == ["compositeResponse"]
    answers = result["compositeResponse"]
    assert [a["referenceId"] for a in answers] == [
        "contacts", "tricky", "byId", "byExt", "bad", "gone", "write", "nowhere", "postQuery"
    ]  # fmt: skip
    for answer in answers:
        assert sorted(answer) == ["body", "httpHeaders", "httpStatusCode", "referenceId"]
        assert answer["httpHeaders"] == {}
    by_ref = {a["referenceId"]: a for a in answers}
    assert [a["httpStatusCode"] for a in answers] == [200, 200, 200, 200, 400, 404, 400, 404, 405]
    contacts = by_ref["contacts"]["body"]
    assert (contacts["totalSize"], contacts["done"]) == (2, True)
    assert [r["LastName"] for r in contacts["records"]] == ["Lovelace", "O'Brien"]
    assert contacts["records"][0]["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v62.0/sobjects/Contact/{contact_ids[0]}",
    }
    assert [r["Id"] for r in by_ref["tricky"]["body"]["records"]] == [contact_ids[1]]
    assert by_ref["tricky"]["body"]["records"][0]["attributes"]["url"].startswith(
        "/services/data/v58.0/"
    )
    assert list(by_ref["byId"]["body"]) == ["attributes", "LastName"]
    assert by_ref["byExt"]["body"]["Id"] == event_id
    for ref, code in [
        ("bad", "MALFORMED_QUERY"),
        ("gone", "NOT_FOUND"),
        ("write", "INVALID_API_INPUT"),
        ("nowhere", "NOT_FOUND"),
        ("postQuery", "METHOD_NOT_ALLOWED"),
    ]:
        (error,) = by_ref[ref]["body"]
        assert error["errorCode"] == code
        assert error["message"]
    # Subrequests are not API calls of their own; the unsupported write wrote nothing.
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 1}
    assert salesforce_emulator.records("Lead") == []
    # Each query subrequest answers what the query resource itself answers.
    assert contacts == sf.query("SELECT Id, LastName FROM Contact ORDER BY LastName")


def test_composite_all_or_none_halts_the_others(salesforce_emulator: SalesforceEmulator) -> None:
    salesforce_emulator.insert("Contact", {"LastName": "Lovelace", "Email": "ada@example.com"})
    sf = connect(salesforce_emulator)
    answers = composite(
        sf,
        query_sub("first", "SELECT Id FROM Contact"),
        query_sub("broken", "SELECT Nope FROM Contact"),
        query_sub("third", "SELECT Id FROM Contact"),
        allOrNone=True,
    )["compositeResponse"]
    assert [a["httpStatusCode"] for a in answers] == [400, 400, 400]
    codes = [a["body"][0]["errorCode"] for a in answers]
    assert codes == ["PROCESSING_HALTED", "INVALID_FIELD", "PROCESSING_HALTED"]


def test_composite_query_pages_continue_with_the_query_resource(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    salesforce_emulator.insert(
        "Contact", *({"LastName": f"n{i}", "Email": "same@example.com"} for i in range(2001))
    )
    sf = connect(salesforce_emulator)
    (answer,) = composite(sf, query_sub("all", "SELECT Id FROM Contact"))["compositeResponse"]
    page = answer["body"]
    assert (page["totalSize"], page["done"], len(page["records"])) == (2001, False, 2000)
    rest = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert (rest["done"], len(rest["records"])) == (True, 1)


@pytest.mark.parametrize(
    ("body", "error_code"),
    [
        (
            {"compositeRequest": [query_sub(f"q{n}", "SELECT Id FROM Lead") for n in range(6)]},
            "LIMIT_EXCEEDED",
        ),
        (
            {
                "compositeRequest": [
                    {
                        "method": "GET",
                        "url": f"/services/data/v62.0/sobjects/Lead/00Q{n:015d}",
                        "referenceId": f"r{n}",
                    }
                    for n in range(26)
                ]
            },
            "LIMIT_EXCEEDED",
        ),
        ({"compositeRequest": [query_sub("same", "SELECT Id FROM Lead")] * 2}, "INVALID_API_INPUT"),
        ({"compositeRequest": [query_sub("bad-ref", "SELECT Id FROM Lead")]}, "INVALID_API_INPUT"),
        ({"compositeRequest": [{"method": "GET", "referenceId": "nourl"}]}, "INVALID_API_INPUT"),
        (
            {
                "compositeRequest": [
                    {**query_sub("q", "SELECT Id FROM Lead"), "httpHeaders": {"Authorization": "x"}}
                ]
            },
            "INVALID_API_INPUT",
        ),
        ({"compositeRequest": []}, "INVALID_API_INPUT"),
        ({"requests": []}, "JSON_PARSER_ERROR"),
        (
            {"allOrNone": "yes", "compositeRequest": [query_sub("q", "SELECT Id FROM Lead")]},
            "JSON_PARSER_ERROR",
        ),
    ],
)
def test_composite_request_errors_fail_the_whole_call(
    salesforce_emulator: SalesforceEmulator, body: dict[str, Any], error_code: str
) -> None:
    sf = connect(salesforce_emulator)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite", method="POST", json=body)
    assert caught.value.content[0]["errorCode"] == error_code
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 1}


def test_composite_needs_api_38(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator, version="37.0")
    with pytest.raises(SalesforceResourceNotFound):
        composite(sf, query_sub("q", "SELECT Id FROM Lead", version="37.0"))


def test_faults_apply_to_the_composite_call_as_a_whole(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    salesforce_emulator.set_faults(http_503={"next": 1, "only": ["composite"]})
    with pytest.raises(SalesforceGeneralError) as caught:
        composite(
            sf, query_sub("a", "SELECT Id FROM Lead"), query_sub("b", "SELECT Id FROM Contact")
        )
    assert caught.value.status == 503
    answers = composite(sf, query_sub("a", "SELECT Id FROM Lead"))["compositeResponse"]
    assert answers[0]["httpStatusCode"] == 200
    salesforce_emulator.set_daily_limit(2)
    with pytest.raises(SalesforceRefusedRequest) as refused:
        composite(sf, query_sub("a", "SELECT Id FROM Lead"))
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 2}


# Limits, counting, faults -------------------------------------------------------------


def test_every_api_response_carries_limit_info(salesforce_emulator: SalesforceEmulator) -> None:
    session = http(salesforce_emulator)
    bearer = {"Authorization": "Bearer " + token(salesforce_emulator).json()["access_token"]}
    base = f"{salesforce_emulator.url}/services/data/v62.0"
    ok = session.get(f"{base}/limits", headers=bearer, timeout=10)
    missing = session.get(f"{base}/sobjects/Event/00U5g0000000001AAA", headers=bearer, timeout=10)
    assert ok.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    assert missing.status_code == 404
    assert missing.headers["Sforce-Limit-Info"] == "api-usage=2/100000"
    assert ok.json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 99999}
    # Admin requests are not Salesforce API calls.
    salesforce_emulator.records()
    assert salesforce_emulator.api_calls()["total"] == 2


def test_daily_limit_gives_request_limit_exceeded(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    salesforce_emulator.set_daily_limit(2)
    sf.limits()
    sf.limits()
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.limits()
    assert caught.value.status == 403
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert sf.api_usage["api-usage"].used == 2
    assert salesforce_emulator.total_api_calls() == 2


@pytest.mark.parametrize(
    ("faults", "exception", "status"),
    [
        ({"http_500": {"next": 1}}, SalesforceGeneralError, 500),
        ({"http_503": {"next": 1}}, SalesforceGeneralError, 503),
        ({"invalid_session": {"next": 1}}, SalesforceExpiredSession, 401),
        ({"request_limit_exceeded": {"next": 1}}, SalesforceRefusedRequest, 403),
        ({"down_for_s": 30}, SalesforceGeneralError, 503),
    ],
)
def test_request_faults_fire_then_clear(
    salesforce_emulator: SalesforceEmulator,
    faults: dict[str, Any],
    exception: type[Exception],
    status: int,
) -> None:
    sf = connect(salesforce_emulator)
    salesforce_emulator.set_faults(faults)
    with pytest.raises(exception) as caught:
        sf.limits()
    assert caught.value.status == status  # type: ignore[attr-defined]
    salesforce_emulator.set_faults(down_for_s=0)
    assert sf.limits()["DailyApiRequests"]["Max"] == 100000


def test_down_with_closed_connections(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    salesforce_emulator.down(30, mode="close")
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.limits()
    salesforce_emulator.down(0)
    assert sf.limits()


def test_record_faults_in_collections(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    salesforce_emulator.set_faults(
        unable_to_lock_row={"next": 2},
        validation_rules=[{"field": "Subject", "value": "forbidden", "message": "No."}],
    )
    results = upsert_collection(
        sf, [event("a"), event("b"), event("c"), event("d", Subject="forbidden")]
    )
    assert [r["success"] for r in results] == [False, False, True, False]
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert results[3]["errors"] == [
        {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "No.", "fields": ["Subject"]}
    ]


def test_probabilistic_faults_are_reproducible_with_a_seed(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    sf = connect(salesforce_emulator)
    outcomes = []
    for _ in range(2):
        salesforce_emulator.replace_faults({"seed": 7, "unable_to_lock_row": {"probability": 0.5}})
        results = upsert_collection(sf, [event(f"b-{n}") for n in range(40)])
        outcomes.append([r["success"] for r in results])
    assert outcomes[0] == outcomes[1]
    assert 5 < outcomes[0].count(False) < 35


def test_reset_clears_records_counters_and_faults(salesforce_emulator: SalesforceEmulator) -> None:
    sf = connect(salesforce_emulator)
    upsert_collection(sf, [event("b-1")])
    salesforce_emulator.set_faults(http_500={"next": 5})
    salesforce_emulator.reset()
    assert salesforce_emulator.records() == []
    assert salesforce_emulator.api_calls()["total"] == 0
    assert sf.limits()  # same token still valid, no fault left


# Process ------------------------------------------------------------------------------


def test_restart_keeps_records_ca_and_credentials(
    fresh_salesforce_emulator: SalesforceEmulator,
) -> None:
    emulator = fresh_salesforce_emulator
    sf = connect(emulator)
    upsert_collection(sf, [event(f"b-{n}") for n in range(3)])
    before = emulator.info
    emulator.restart()
    assert emulator.info["url"] == before["url"]
    assert emulator.info["client_secret"] == before["client_secret"]
    assert [r["Booking_Id__c"] for r in emulator.records()] == ["b-0", "b-1", "b-2"]
    # Tokens live in memory: the old one is gone, a new login works with the same CA.
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()
    sf = connect(emulator)
    results = upsert_collection(sf, [event("b-0"), event("b-3")])
    assert [r["created"] for r in results] == [False, True]
    assert len({r["Id"] for r in emulator.records()}) == 4
    assert emulator.api_calls()["by_kind"]["collections_upsert"] == 2
