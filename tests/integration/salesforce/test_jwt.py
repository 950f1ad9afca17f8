"""The JWT bearer flow (ACTIVITY_SYNC_SALESFORCE_AUTH=jwt) against the emulator, which
verifies the assertion as Salesforce does: signed by the connected app's certificate's
key, iss = the consumer key, sub = the username, aud = the login URL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from devkit.salesforce_emulator.process import SalesforceEmulator
from streams.core.projection import project
from streams.salesforce import SalesforceAuthenticationError, SalesforceClient
from streams.salesforce.settings import SalesforceSettings
from tests.factories import fold_dicts, scheduled

pytestmark = pytest.mark.integration


def jwt_settings(emulator: SalesforceEmulator, **overrides: Any) -> SalesforceSettings:
    values: dict[str, Any] = {
        "auth": "jwt",
        "username": emulator.username,
        "private_key_file": Path(emulator.jwt_private_key_file),
        "client_secret": "",
        **overrides,
    }
    return emulator.settings(**values)


async def test_a_worker_logs_in_with_a_signed_assertion_and_writes(
    salesforce_emulator: SalesforceEmulator,
) -> None:
    settings = jwt_settings(salesforce_emulator)
    projection = project(fold_dicts([scheduled(booking_id="jwt-1")]))
    assert projection is not None
    async with SalesforceClient(settings) as client:
        await client.connect(deadline=time.monotonic() + 30)
        outcomes = await client.upsert_events([projection.fields])
    assert [o.status for o in outcomes] == ["created"]
    assert [r["Booking_Id__c"] for r in salesforce_emulator.records("Event")] == ["jwt-1"]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("key", "invalid_grant: invalid assertion"),
        ("client_id", "invalid_client_id"),
        ("username", "invalid_grant: user hasn't approved this consumer"),
        ("audience", "invalid_grant: audience is invalid"),
    ],
)
async def test_an_assertion_the_org_cannot_trust_is_refused(
    salesforce_emulator: SalesforceEmulator, tmp_path: Path, change: str, refusal: str
) -> None:
    overrides: dict[str, Any] = {}
    if change == "key":  # signed by a key whose certificate the app does not hold
        rsa = trustme.KeyType.RSA
        other = trustme.CA(key_type=rsa).issue_cert("someone-else", key_type=rsa)
        key = tmp_path / "other-key.pem"
        key.write_bytes(other.private_key_pem.bytes())
        overrides["private_key_file"] = key
    elif change == "client_id":
        overrides["client_id"] = "3MVG9someone-else"
    elif change == "username":
        overrides["username"] = "someone@else.example"
    else:
        overrides["jwt_audience"] = "https://login.salesforce.com"
    settings = jwt_settings(salesforce_emulator, **overrides)
    async with SalesforceClient(settings) as client:
        with pytest.raises(SalesforceAuthenticationError, match=refusal):
            await client.connect(deadline=time.monotonic() + 30)
