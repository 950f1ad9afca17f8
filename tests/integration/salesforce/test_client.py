"""The sink's Salesforce client against the running emulator, over HTTPS."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from streams.salesforce import (
    RelatedRecord,
    RequestLimitExceeded,
    SalesforceClient,
    SalesforceSettings,
    SalesforceUnavailable,
    UpsertOutcome,
)
from streams.salesforce.errors import SalesforceAuthenticationError, SalesforceRequestError
from tests.factories import salesforce_event
from tests.fixtures import SalesforceEmulator

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(salesforce_settings: SalesforceSettings) -> AsyncIterator[SalesforceClient]:
    async with SalesforceClient(salesforce_settings) as sf_client:
        yield sf_client


def statuses(outcomes: list[UpsertOutcome]) -> list[str]:
    return [o.status for o in outcomes]


# Upserts ------------------------------------------------------------------------------


async def test_create_then_update_is_one_record(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    created = await client.upsert_events([salesforce_event("b-1")])
    updated = await client.upsert_events([salesforce_event("b-1", Event_Status__c="Canceled")])
    assert statuses(created) == ["created"]
    assert statuses(updated) == ["updated"]
    assert created[0].salesforce_id == updated[0].salesforce_id
    assert created[0].salesforce_id is not None
    assert created[0].salesforce_id.startswith("00U")
    records = salesforce_emulator.records()
    assert [(r["Booking_Id__c"], r["Event_Status__c"]) for r in records] == [("b-1", "Canceled")]


@pytest.mark.parametrize(("count", "calls"), [(1, 1), (200, 1), (201, 2), (450, 3)])
async def test_one_collection_call_per_200_records(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator, count: int, calls: int
) -> None:
    outcomes = await client.upsert_events([salesforce_event(f"b-{n}") for n in range(count)])
    assert [o.external_id for o in outcomes] == [f"b-{n}" for n in range(count)]
    assert statuses(outcomes) == ["created"] * count
    assert client.api_calls == calls
    assert salesforce_emulator.api_calls()["by_kind"] == {"collections_upsert": calls}
    assert len(salesforce_emulator.records()) == count


async def test_limit_info_is_exposed(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    assert client.remaining_api_calls is None
    await client.upsert_events([salesforce_event("b-1")])
    await client.upsert_events([salesforce_event("b-2")])
    assert client.api_usage == (2, 100_000)
    assert client.remaining_api_calls == 99_998


async def test_same_booking_twice_in_one_batch_last_wins(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    outcomes = await client.upsert_events(
        [
            salesforce_event("b-1"),
            salesforce_event("b-2"),
            salesforce_event("b-1", Event_Status__c="Completed"),
        ]
    )
    assert statuses(outcomes) == ["created", "created", "updated"]
    assert client.api_calls == 2
    by_id = {r["Booking_Id__c"]: r["Event_Status__c"] for r in salesforce_emulator.records()}
    assert by_id == {"b-1": "Completed", "b-2": "Scheduled"}


async def test_records_need_the_external_id(client: SalesforceClient) -> None:
    with pytest.raises(ValueError, match="Booking_Id__c"):
        await client.upsert_events([{"Subject": "no booking id"}])


async def test_validation_errors_reject_only_their_records(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.set_faults(
        validation_rules=[{"field": "Location", "value": "Mars", "message": "Earth only"}]
    )
    outcomes = await client.upsert_events(
        [
            salesforce_event("ok-1"),
            salesforce_event("mars", Location="Mars"),
            salesforce_event("bad-status", Event_Status__c="Cancelled"),
            salesforce_event("ok-2"),
        ]
    )
    assert statuses(outcomes) == ["created", "rejected", "rejected", "created"]
    assert [(e.status_code, e.message, e.fields) for e in outcomes[1].errors] == [
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Earth only", ("Location",))
    ]
    assert outcomes[2].errors[0].status_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert client.api_calls == 1
    assert sorted(r["Booking_Id__c"] for r in salesforce_emulator.records()) == ["ok-1", "ok-2"]


async def test_request_level_400_is_bisected_to_the_bad_record(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    records = [salesforce_event(f"b-{n}") for n in range(16)]
    records[5]["StartDateTime"] = "not a date"
    outcomes = await client.upsert_events(records)
    assert [o.external_id for o in outcomes if o.status == "rejected"] == ["b-5"]
    assert outcomes[5].errors[0].status_code == "JSON_PARSER_ERROR"
    assert len(salesforce_emulator.records()) == 15
    # 1 + 2 halves + 2 quarters + 2 eighths + 2 sixteenths: a few calls, not 16.
    assert client.api_calls == 9


# Faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "calls", "logins"),
    [
        ({"http_500": {"next": 2}}, 3, 1),
        ({"http_503": {"next": 3}}, 4, 1),
        ({"invalid_session": {"next": 1}}, 2, 2),
        # Each 401 costs a login; one straight after a fresh login backs off first.
        ({"invalid_session": {"next": 3}}, 4, 4),
    ],
)
async def test_whole_call_failures_are_retried(
    client: SalesforceClient,
    salesforce_emulator: SalesforceEmulator,
    faults: dict[str, Any],
    calls: int,
    logins: int,
) -> None:
    salesforce_emulator.set_faults(faults)
    outcomes = await client.upsert_events([salesforce_event(f"b-{n}") for n in range(5)])
    assert statuses(outcomes) == ["created"] * 5
    assert client.api_calls == calls
    assert client.token_requests == logins
    assert len(salesforce_emulator.records()) == 5


async def test_lock_errors_retry_only_those_records(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.set_faults(unable_to_lock_row={"next": 3})
    outcomes = await client.upsert_events([salesforce_event(f"b-{n}") for n in range(10)])
    assert statuses(outcomes) == ["created"] * 10
    assert client.api_calls == 2
    # The emulator counted one 10-record call, then one for the 3 locked records: an
    # update of the 7 written would have made them "updated".
    assert len(salesforce_emulator.records()) == 10
    assert {r["LastModifiedDate"] == r["CreatedDate"] for r in salesforce_emulator.records()} == {
        True
    }


async def test_persistent_locks_come_back_retryable_at_the_deadline(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.set_faults(unable_to_lock_row={"next": 1_000_000})
    started = time.monotonic()
    # Long enough that one request always fits (a cold emulator answered a first
    # request in > 0.5 s once on CI), short enough to see the client stop retrying.
    outcomes = await client.upsert_events([salesforce_event("b-1")], deadline=started + 2.0)
    # Locks forever: a client past its deadline would retry on until the test's timeout.
    assert time.monotonic() - started < 60.0
    assert statuses(outcomes) == ["retryable"]
    assert outcomes[0].errors[0].status_code == "UNABLE_TO_LOCK_ROW"
    assert client.api_calls > 1


async def test_request_limit_exceeded_raises_at_once(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    await client.upsert_events([salesforce_event("first")])
    salesforce_emulator.set_daily_limit(1)
    with pytest.raises(RequestLimitExceeded) as caught:
        await client.upsert_events([salesforce_event("b-1")])
    assert "REQUEST_LIMIT_EXCEEDED" in str(caught.value)
    assert client.api_calls == 2


async def test_request_limit_keeps_outcomes_of_earlier_chunks(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.set_daily_limit(1)
    with pytest.raises(RequestLimitExceeded) as caught:
        await client.upsert_events([salesforce_event(f"b-{n}") for n in range(250)])
    assert len(caught.value.outcomes) == 200
    assert statuses(caught.value.outcomes) == ["created"] * 200


async def test_latency_past_the_deadline_raises_unavailable(
    fresh_salesforce_emulator: SalesforceEmulator,
) -> None:
    # An answer 60 s late: a client that waited for it instead of its deadline takes 60 s.
    # An emulator of the test's own: it would still apply the upsert after this test.
    emulator = fresh_salesforce_emulator
    emulator.set_faults(latency_ms=60_000)
    async with SalesforceClient(emulator.settings()) as client:
        started = time.monotonic()
        with pytest.raises(SalesforceUnavailable):
            await client.upsert_events([salesforce_event("b-1")], deadline=started + 0.5)
        assert time.monotonic() - started < 30.0


async def test_slow_but_within_deadline_succeeds(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    await client.upsert_events([salesforce_event("warm-up")])
    salesforce_emulator.set_faults(latency_ms=200)
    started = time.monotonic()
    outcomes = await client.upsert_events([salesforce_event("b-1")], deadline=started + 5)
    assert statuses(outcomes) == ["created"]
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("mode", ["503", "close"])
async def test_outage_is_ridden_out_without_a_deadline(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator, mode: str
) -> None:
    await client.upsert_events([salesforce_event("before")])
    salesforce_emulator.down(0.7, mode=mode)
    started = time.monotonic()
    outcomes = await client.upsert_events([salesforce_event("during")])
    assert statuses(outcomes) == ["created"]
    assert time.monotonic() - started >= 0.6
    assert client.api_calls > 2


async def test_outage_past_the_deadline_raises_unavailable(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.down(30)
    with pytest.raises(SalesforceUnavailable, match="503"):
        await client.upsert_events([salesforce_event("b-1")], deadline=time.monotonic() + 0.3)


async def test_token_expiry_mid_run(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    for batch in range(4):
        if batch == 2:
            salesforce_emulator.expire_tokens()
        outcomes = await client.upsert_events(
            [salesforce_event(f"b-{batch}-{n}") for n in range(50)]
        )
        assert statuses(outcomes) == ["created"] * 50
    assert client.token_requests == 2
    assert len(salesforce_emulator.records()) == 200


async def test_emulator_restart_mid_run(fresh_salesforce_emulator: SalesforceEmulator) -> None:
    emulator = fresh_salesforce_emulator
    async with SalesforceClient(emulator.settings()) as sf_client:
        assert statuses(await sf_client.upsert_events([salesforce_event("b-1")])) == ["created"]
        emulator.restart()
        outcomes = await sf_client.upsert_events([salesforce_event("b-1"), salesforce_event("b-2")])
        assert statuses(outcomes) == ["updated", "created"]
        assert sf_client.token_requests == 2
    assert len(emulator.records()) == 2


# Authentication, TLS, secrets ----------------------------------------------------------


async def test_password_grant(salesforce_emulator: SalesforceEmulator) -> None:
    settings = salesforce_emulator.settings(
        auth="password",
        username=salesforce_emulator.username,
        password=salesforce_emulator.password,
        security_token=salesforce_emulator.security_token,
    )
    async with SalesforceClient(settings) as sf_client:
        assert statuses(await sf_client.upsert_events([salesforce_event("b-1")])) == ["created"]


async def test_tls_without_the_emulator_ca_fails(salesforce_emulator: SalesforceEmulator) -> None:
    async with SalesforceClient(salesforce_emulator.settings(ca_file=None)) as sf_client:
        with pytest.raises(SalesforceRequestError, match="certificate verification failed"):
            await sf_client.upsert_events([salesforce_event("b-1")])
    assert salesforce_emulator.records() == []


async def test_credentials_never_leak(
    salesforce_emulator: SalesforceEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [
        salesforce_emulator.client_secret,
        salesforce_emulator.password,
        salesforce_emulator.security_token,
    ]
    good = salesforce_emulator.settings(
        password=salesforce_emulator.password, security_token=salesforce_emulator.security_token
    )
    wrong = "wrong-" + salesforce_emulator.client_secret
    texts = [repr(good), str(good), str(good.model_dump())]
    async with SalesforceClient(good) as sf_client:
        texts.append(repr(sf_client))
        salesforce_emulator.set_faults(http_503={"next": 1}, invalid_session={"next": 1})
        await sf_client.upsert_events([salesforce_event("b-1")])
        salesforce_emulator.down(30)
        with pytest.raises(SalesforceUnavailable) as unavailable:
            await sf_client.upsert_events(
                [salesforce_event("b-2")], deadline=time.monotonic() + 0.2
            )
        texts.append(str(unavailable.value))
    async with SalesforceClient(salesforce_emulator.settings(client_secret=wrong)) as bad:
        salesforce_emulator.down(0)
        with pytest.raises(SalesforceAuthenticationError) as refused:
            await bad.upsert_events([salesforce_event("b-3")])
        texts += [str(refused.value), repr(refused.value)]
    assert "invalid_client" in str(refused.value)
    texts += [record.getMessage() for record in caplog.records]
    assert any("retry" in text for text in texts)  # the logs were captured
    for text in texts:
        for secret in [*secrets, wrong]:
            assert secret not in text


def test_settings_from_environment_and_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "client_secret"
    secret_file.write_text("s3cr3t-from-file\n")
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_LOGIN_URL", "https://example.my.salesforce.com/")
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_CLIENT_ID", "3MVGabc")
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_CREATE_MISSING_LEADS", "true")
    settings = SalesforceSettings()
    assert settings.login_url == "https://example.my.salesforce.com"
    assert settings.client_secret.get_secret_value() == "s3cr3t-from-file"
    assert settings.create_missing_leads is True
    assert "s3cr3t" not in repr(settings)
    monkeypatch.setenv("ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET", "from-env")
    assert SalesforceSettings().client_secret.get_secret_value() == "from-env"


# Reading one Event (activity-sync status) ---------------------------------------------


async def test_withdrawals_delete_only_events_older_than_the_withdrawal(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    await client.upsert_events(
        [
            salesforce_event("older", Projection_Version__c=2),
            salesforce_event("newer", Projection_Version__c=7),
            salesforce_event("unversioned"),
            salesforce_event("other", Projection_Version__c=1),
        ]
    )
    before = client.api_calls
    withdrawn = ["older", "newer", "unversioned", "never-written"]
    outcomes = await client.withdraw_events(
        [{"Booking_Id__c": b, "Projection_Version__c": 5} for b in withdrawn]
    )
    assert statuses(outcomes) == ["deleted", "fenced", "deleted", "deleted"]
    assert [o.external_id for o in outcomes] == withdrawn
    assert client.api_calls - before == 2  # one query, one Collections delete
    assert sorted(r["Booking_Id__c"] for r in salesforce_emulator.records()) == ["newer", "other"]
    # Nothing left to withdraw: the query alone.
    again = await client.withdraw_events([{"Booking_Id__c": "older", "Projection_Version__c": 5}])
    assert statuses(again) == ["deleted"]
    assert client.api_calls - before == 3


async def test_a_locked_withdrawal_comes_back_retryable_at_the_deadline(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    await client.upsert_events([salesforce_event("b-1", Projection_Version__c=1)])
    salesforce_emulator.set_faults(unable_to_lock_row={"next": 1_000_000})
    locked = await client.withdraw_events(
        [{"Booking_Id__c": "b-1", "Projection_Version__c": 3}], deadline=time.monotonic() + 2.0
    )
    assert statuses(locked) == ["retryable"]
    assert locked[0].errors[0].status_code == "UNABLE_TO_LOCK_ROW"
    assert [r["Booking_Id__c"] for r in salesforce_emulator.records()] == ["b-1"]


async def test_read_event_returns_what_salesforce_holds_or_none(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    tricky = "b-o'brien\\1"  # quoted by format_soql, never spliced into the query
    await client.upsert_events(
        [salesforce_event(tricky, Projection_Version__c=3), salesforce_event("b-2")]
    )
    fields = ["Projection_Version__c", "Event_Status__c", "Subject", "LastModifiedDate"]
    found = await client.read_event("Booking_Id__c", tricky, fields)
    assert found is not None
    assert set(found) == {"Id", *fields}  # no `attributes`
    assert found["Id"].startswith("00U")
    assert found["Projection_Version__c"] == 3
    assert found["Subject"] == f"Intro call {tricky}"
    assert await client.read_event("Booking_Id__c", "b-nobody", fields) is None
    assert salesforce_emulator.api_calls()["by_kind"].get("query") == 2


# Related records ---------------------------------------------------------------------


async def test_contact_is_preferred_over_lead(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    (contact,) = salesforce_emulator.insert("Contact", {"LastName": "C", "Email": "both@x.io"})
    lead_ids = salesforce_emulator.insert(
        "Lead",
        {"LastName": "L", "Company": "Acme", "Email": "both@x.io"},
        {"LastName": "L", "Company": "Acme", "Email": "Lead.Only@X.io"},
    )
    found = await client.resolve_related(["both@x.io", "lead.only@x.io", "nobody@x.io"])
    assert found == {
        "both@x.io": RelatedRecord("Contact", contact, "both@x.io"),
        "lead.only@x.io": RelatedRecord("Lead", lead_ids[1], "Lead.Only@X.io"),
    }
    # Contact and Lead queries travel in one Composite call.
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 1}
    assert salesforce_emulator.records("Lead")[1]["Id"] == lead_ids[1]


async def test_emails_with_quotes_and_backslashes(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    tricky = ["o'brien@x.io", "back\\slash@x.io", 'quote"d@x.io', "x')OR(Email!='@x.io"]
    ids = salesforce_emulator.insert(
        "Contact", *({"LastName": "T", "Email": email} for email in tricky)
    )
    salesforce_emulator.insert("Contact", {"LastName": "Decoy", "Email": "decoy@x.io"})
    found = await client.resolve_related(tricky)
    assert {email: record.id for email, record in found.items()} == dict(
        zip(tricky, ids, strict=True)
    )


async def test_related_lookups_are_batched_and_cached(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    emails = [f"person{n}@example.com" for n in range(450)]
    salesforce_emulator.insert(
        "Contact", *({"LastName": f"P{n}", "Email": e} for n, e in enumerate(emails))
    )
    first = await client.resolve_related(emails)
    assert len(first) == 450
    # 200 + 200 emails (Contact and Lead queries) in one Composite call, 50 in another.
    assert client.api_calls == 2
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 2}
    again = await client.resolve_related(reversed(emails))
    assert again == first
    assert client.api_calls == 2


async def test_missing_leads_are_created_when_enabled(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    settings = salesforce_emulator.settings(create_missing_leads=True, lead_company="Bookings")
    async with SalesforceClient(settings) as sf_client:
        found = await sf_client.resolve_related(
            ["ada@x.io", "solo@x.io"], names={"ada@x.io": "Ada King Lovelace"}
        )
        again = await sf_client.resolve_related(["ADA@x.io"])
    leads = {lead["Email"]: lead for lead in salesforce_emulator.records("Lead")}
    assert set(leads) == {"ada@x.io", "solo@x.io"}
    assert (leads["ada@x.io"]["FirstName"], leads["ada@x.io"]["LastName"]) == (
        "Ada King",
        "Lovelace",
    )
    assert (leads["solo@x.io"]["LastName"], leads["solo@x.io"]["Company"]) == ("solo", "Bookings")
    assert found["ada@x.io"] == RelatedRecord("Lead", leads["ada@x.io"]["Id"], "ada@x.io", True)
    assert again["ADA@x.io"].id == leads["ada@x.io"]["Id"]


async def test_no_leads_are_created_by_default(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    assert await client.resolve_related(["nobody@x.io"]) == {}
    assert salesforce_emulator.records("Lead") == []


@pytest.mark.parametrize("after_write", [False, True])
async def test_failed_lead_creation_is_not_resent_blindly(
    salesforce_emulator: SalesforceEmulator, after_write: bool
) -> None:
    settings = salesforce_emulator.settings(create_missing_leads=True)
    salesforce_emulator.set_faults(
        http_503={"next": 1, "only": ["collections_create"], "after_write": after_write}
    )
    async with SalesforceClient(settings) as sf_client:
        found = await sf_client.resolve_related(["new@x.io"])
    (lead,) = salesforce_emulator.records("Lead")
    assert found["new@x.io"] == RelatedRecord("Lead", lead["Id"], "new@x.io", not after_write)
    # Contact and Lead lookups (one Composite call), the failed create, a second Lead
    # lookup, then a create only when the first one really wrote nothing.
    expected = {"composite": 2, "collections_create": 2 if not after_write else 1}
    assert salesforce_emulator.api_calls()["by_kind"] == expected


async def test_400_emails_cost_one_api_call(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    tricky = "o'brien\\\"quoted\\\\@x.io"
    emails = [f"c{n}@x.io" for n in range(100)]  # Contacts only
    emails += [f"l{n}@x.io" for n in range(100)]  # Leads only
    emails += [f"b{n}@x.io" for n in range(50)]  # both: the Contact wins
    emails += [f"n{n}@x.io" for n in range(149)]  # neither
    emails.append(tricky)
    assert len(emails) == 400
    contacts = [e for e in emails if e[0] in "cb"]
    contact_ids = salesforce_emulator.insert(
        "Contact", *({"LastName": "C", "Email": e.upper()} for e in [*contacts, tricky])
    )
    # A later duplicate Contact never beats the oldest one.
    salesforce_emulator.insert("Contact", {"LastName": "Late", "Email": "c0@x.io"})
    leads = [e for e in emails if e[0] in "lb"]
    lead_ids = salesforce_emulator.insert(
        "Lead", *({"LastName": "L", "Company": "Acme", "Email": e} for e in leads)
    )
    found = await client.resolve_related(emails)
    expected = {
        **{e: RelatedRecord("Lead", i, e) for e, i in zip(leads, lead_ids, strict=True)},
        **{
            e: RelatedRecord("Contact", i, e.upper())
            for e, i in zip([*contacts, tricky], contact_ids, strict=True)
        },
    }
    assert found == expected
    assert client.api_calls == 1
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 1}
    # Found records and misses alike are cached.
    assert await client.resolve_related(emails) == expected
    assert client.api_calls == 1


async def test_misses_are_cached_then_expire(salesforce_emulator: SalesforceEmulator) -> None:
    settings = salesforce_emulator.settings(related_miss_ttl_s=0.5)
    async with SalesforceClient(settings) as sf_client:
        assert await sf_client.resolve_related(["later@x.io"]) == {}
        (contact,) = salesforce_emulator.insert("Contact", {"LastName": "C", "Email": "later@x.io"})
        # The booking's next events do not look the address up again...
        assert await sf_client.resolve_related(["later@x.io", "LATER@x.io"]) == {}
        assert sf_client.api_calls == 1
        await asyncio.sleep(0.6)
        # ...until the miss expires.
        found = await sf_client.resolve_related(["later@x.io"])
        assert found == {"later@x.io": RelatedRecord("Contact", contact, "later@x.io")}
        assert sf_client.api_calls == 2


async def test_miss_caching_can_be_disabled(salesforce_emulator: SalesforceEmulator) -> None:
    async with SalesforceClient(salesforce_emulator.settings(related_miss_ttl_s=0)) as sf_client:
        for _ in range(3):
            assert await sf_client.resolve_related(["nobody@x.io"]) == {}
        assert sf_client.api_calls == 3


async def test_created_lead_replaces_the_miss_and_rejected_ones_stay_misses(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    salesforce_emulator.set_faults(
        validation_rules=[{"sobject": "Lead", "field": "Email", "value": "bad@x.io"}]
    )
    settings = salesforce_emulator.settings(create_missing_leads=True)
    async with SalesforceClient(settings) as sf_client:
        found = await sf_client.resolve_related(["new@x.io", "bad@x.io"])
        (lead,) = salesforce_emulator.records("Lead")
        assert found == {"new@x.io": RelatedRecord("Lead", lead["Id"], "new@x.io", True)}
        again = await sf_client.resolve_related(["new@x.io", "bad@x.io"])
        assert again == found
    # One lookup and one create; the second resolve was answered from the cache.
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 1, "collections_create": 1}


async def test_oldest_record_wins_past_one_query_page(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    ids = salesforce_emulator.insert(
        "Contact", *({"LastName": f"n{i}", "Email": "same@x.io"} for i in range(2001))
    )
    found = await client.resolve_related(["same@x.io", "other@x.io"])
    assert found == {"same@x.io": RelatedRecord("Contact", ids[0], "same@x.io")}
    # The Composite call, then the second page of the Contact query.
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": 1, "query": 1}


@pytest.mark.parametrize(
    ("faults", "calls", "logins", "counted"),
    [
        ({"http_500": {"next": 2, "only": ["composite"]}}, 3, 1, 3),
        ({"http_503": {"next": 3, "only": ["composite"]}}, 4, 1, 4),
        # A refused session is not an API call for Salesforce's counter.
        ({"invalid_session": {"next": 1, "only": ["composite"]}}, 2, 2, 1),
        ({"invalid_session": {"next": 3, "only": ["composite"]}}, 4, 4, 1),
        ({"http_503": {"next": 1, "after_write": True}}, 2, 1, 2),
    ],
)
async def test_failed_related_lookups_are_retried(
    client: SalesforceClient,
    salesforce_emulator: SalesforceEmulator,
    faults: dict[str, Any],
    calls: int,
    logins: int,
    counted: int,
) -> None:
    (contact,) = salesforce_emulator.insert("Contact", {"LastName": "C", "Email": "c@x.io"})
    salesforce_emulator.set_faults(faults)
    found = await client.resolve_related(["c@x.io", "nobody@x.io"])
    assert found == {"c@x.io": RelatedRecord("Contact", contact, "c@x.io")}
    assert client.api_calls == calls
    assert client.token_requests == logins
    assert salesforce_emulator.api_calls()["by_kind"] == {"composite": counted}


async def test_related_lookup_limit_and_outage(
    client: SalesforceClient, salesforce_emulator: SalesforceEmulator
) -> None:
    salesforce_emulator.set_faults(request_limit_exceeded={"next": 1, "only": ["composite"]})
    with pytest.raises(RequestLimitExceeded):
        await client.resolve_related(["a@x.io"])
    assert client.api_calls == 1
    salesforce_emulator.down(30)
    started = time.monotonic()
    with pytest.raises(SalesforceUnavailable, match="related lookup"):
        await client.resolve_related(["a@x.io"], deadline=started + 0.3)
    salesforce_emulator.down(0)
    salesforce_emulator.set_faults(latency_ms=60_000)  # a client that waits takes 60 s
    with pytest.raises(SalesforceUnavailable):
        await client.resolve_related(["a@x.io"], deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 30.0
    # Nothing failed was cached as a miss.
    salesforce_emulator.set_faults(latency_ms=0)
    (contact,) = salesforce_emulator.insert("Contact", {"LastName": "C", "Email": "a@x.io"})
    assert (await client.resolve_related(["a@x.io"]))["a@x.io"].id == contact
