"""One emulator process, several orgs (devkit/salesforce_emulator/orgs.py): each with its own
records, credentials, API-call count and daily limit, faults and outages, reached by the
login URL `URL/orgs/<name>`, driven by the app's client and by simple-salesforce itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceResourceNotFound,
)

from devkit.salesforce_emulator.process import OrgAdmin, OrgHandle
from streams.commands.generate import pool_id
from streams.salesforce import RequestLimitExceeded, SalesforceClient
from streams.salesforce.errors import SalesforceAuthenticationError
from tests.factories import salesforce_event
from tests.fixtures import SalesforceEmulator

pytestmark = pytest.mark.integration


def http(org: OrgAdmin) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the emulator's CA
    session.verify = org.ca_file
    return session


def token(org: OrgAdmin) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": org.client_id,
        "client_secret": org.client_secret,
    }
    return http(org).post(f"{org.url}/services/oauth2/token", data=form, timeout=10)


def connect(org: OrgAdmin, access_token: str | None = None) -> Salesforce:
    """simple-salesforce as the app uses it: session-id mode on the token's instance_url
    (`access_token` instead of the org's own: another org's token)."""
    body = token(org).json()
    return Salesforce(
        instance_url=body["instance_url"],
        session_id=access_token or body["access_token"],
        version="62.0",
        session=http(org),
        object_pairs_hook=dict,
    )


def client(org: OrgAdmin, **settings: Any) -> SalesforceClient:
    return SalesforceClient(org.settings(**settings))


@pytest.fixture
def orgs(salesforce_emulator: SalesforceEmulator) -> tuple[OrgHandle, OrgHandle]:
    """Two orgs beside the default one (the next reset removes them)."""
    return salesforce_emulator.add_org("acme"), salesforce_emulator.add_org("globex")


@pytest.fixture
async def acme_client(orgs: tuple[OrgHandle, OrgHandle]) -> AsyncIterator[SalesforceClient]:
    async with client(orgs[0]) as sf_client:
        yield sf_client


# Addresses and credentials ------------------------------------------------------------


def test_an_org_answers_its_login_url_and_credentials(
    salesforce_emulator: SalesforceEmulator, orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    acme, globex = orgs
    assert acme.url == f"{salesforce_emulator.url}/orgs/acme"
    body = token(acme).json()
    # simple-salesforce keeps only the host and port of instance_url: an org's own port.
    assert body["instance_url"] == acme.instance_url
    assert not body["instance_url"].endswith("/")
    assert body["instance_url"] not in (salesforce_emulator.url, globex.instance_url)
    # Its integration user, and the default seed (the pools generated bookings name) made
    # by that user, as in any org.
    user_id = body["id"].rsplit("/", 1)[1]
    sf = connect(acme)
    assert sf.User.get(user_id)["Username"] == acme.username
    assert sf.User.get(pool_id("005", 1))["CreatedById"] == user_id
    credentials = ("client_id", "client_secret", "username", "password", "security_token")
    for name in credentials:
        values = {getattr(o, name) for o in (salesforce_emulator, acme, globex)}
        assert len(values) == 3, name
    assert [o["name"] for o in salesforce_emulator.orgs()] == ["acme", "globex"]
    assert salesforce_emulator.org("acme").client_secret == acme.client_secret


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param({}, id="client-credentials"),
        pytest.param({"auth": "password"}, id="password"),
        pytest.param({"auth": "jwt"}, id="jwt-bearer"),
    ],
)
async def test_the_apps_client_logs_in_to_an_org_by_its_login_url(
    salesforce_emulator: SalesforceEmulator,
    orgs: tuple[OrgHandle, OrgHandle],
    flow: dict[str, str],
) -> None:
    acme, globex = orgs
    login = {
        "password": {
            "username": acme.username,
            "password": acme.password,
            "security_token": acme.security_token,
        },
        "jwt": {"username": acme.username, "private_key_file": acme.jwt_private_key_file},
    }.get(flow.get("auth", ""), {})
    async with client(acme, **flow, **login) as sf_client:
        outcomes = await sf_client.upsert_events([salesforce_event("b-1")])
    assert [o.status for o in outcomes] == ["created"]
    assert [r["Booking_Id__c"] for r in acme.records()] == ["b-1"]
    assert globex.records() == []
    assert salesforce_emulator.records() == []


def test_a_token_of_one_org_is_refused_by_another(
    salesforce_emulator: SalesforceEmulator, orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    acme, globex = orgs
    acme_token = token(acme).json()["access_token"]
    for other in (globex, salesforce_emulator):
        with pytest.raises(SalesforceExpiredSession) as refused:
            connect(other, acme_token).query("SELECT Id FROM Event")
        assert refused.value.status == 401
        assert refused.value.content == [
            {
                "message": "Session expired or invalid",
                "errorCode": "INVALID_SESSION_ID",
                "fields": [],
            }
        ]
    # Under the main port's /orgs/<name>/ path too.
    answer = http(globex).get(
        f"{globex.url}/services/data/v62.0/limits",
        headers={"Authorization": f"Bearer {acme_token}"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert connect(acme).query("SELECT Id FROM Event")["totalSize"] == 0


# Records ------------------------------------------------------------------------------


async def test_records_written_to_one_org_are_not_in_another(
    salesforce_emulator: SalesforceEmulator,
    orgs: tuple[OrgHandle, OrgHandle],
    acme_client: SalesforceClient,
) -> None:
    acme, globex = orgs
    created = await acme_client.upsert_events([salesforce_event("b-1"), salesforce_event("b-2")])
    acme_id = created[0].salesforce_id
    assert acme_id is not None
    sf_acme, sf_globex = connect(acme), connect(globex)
    assert sf_acme.Event.get_by_custom_id("Booking_Id__c", "b-1")["Id"] == acme_id
    for read in (
        lambda: sf_globex.Event.get_by_custom_id("Booking_Id__c", "b-1"),
        lambda: sf_globex.Event.get(acme_id),
    ):
        with pytest.raises(SalesforceResourceNotFound):
            read()
    assert sf_globex.query("SELECT Id FROM Event")["totalSize"] == 0
    # The external id is unique per org: globex holds its own b-1, a record of its own id.
    assert sf_globex.Event.upsert("Booking_Id__c/b-1", salesforce_event("b-1")) == 201
    globex_id = sf_globex.Event.get_by_custom_id("Booking_Id__c", "b-1")["Id"]
    assert globex_id != acme_id
    with pytest.raises(SalesforceResourceNotFound):
        sf_acme.Event.get(globex_id)
    assert sorted(r["Booking_Id__c"] for r in acme.records()) == ["b-1", "b-2"]
    assert [r["Id"] for r in globex.records()] == [globex_id]
    assert salesforce_emulator.records() == []


# Limits, faults, outages ---------------------------------------------------------------


async def test_the_daily_limit_of_one_org_leaves_another_writing(
    salesforce_emulator: SalesforceEmulator,
    orgs: tuple[OrgHandle, OrgHandle],
    acme_client: SalesforceClient,
) -> None:
    acme, globex = orgs
    await acme_client.upsert_events([salesforce_event("b-1")])
    used = acme.total_api_calls()
    acme.set_daily_limit(used)
    with pytest.raises(RequestLimitExceeded):
        await acme_client.upsert_events([salesforce_event("b-2")])
    async with client(globex) as globex_client:
        outcomes = await globex_client.upsert_events([salesforce_event("b-2")])
        assert [o.status for o in outcomes] == ["created"]
        assert globex_client.api_usage == (globex.total_api_calls(), 100_000)
    for org, status, usage in (
        (acme, 403, f"api-usage={used}/{used}"),
        (globex, 200, f"api-usage={globex.total_api_calls() + 1}/100000"),
    ):
        answer = http(org).get(
            f"{org.instance_url}/services/data/v62.0/limits",
            headers={"Authorization": f"Bearer {token(org).json()['access_token']}"},
            timeout=10,
        )
        assert (answer.status_code, answer.headers["Sforce-Limit-Info"]) == (status, usage)
    assert [r["Booking_Id__c"] for r in acme.records()] == ["b-1"]
    assert salesforce_emulator.total_api_calls() == 0


FAULTS: list[Any] = [
    pytest.param(lambda org: org.down(60), 503, "SERVER_UNAVAILABLE", id="outage"),
    pytest.param(
        lambda org: org.set_faults(http_500={"next": 3}), 500, "UNKNOWN_EXCEPTION", id="http-500"
    ),
    pytest.param(
        lambda org: org.set_faults(request_limit_exceeded={"next": 3}),
        403,
        "REQUEST_LIMIT_EXCEEDED",
        id="limit-fault",
    ),
    pytest.param(
        lambda org: org.set_faults(invalid_session={"next": 3}),
        401,
        "INVALID_SESSION_ID",
        id="session-fault",
    ),
]


@pytest.mark.parametrize(("inject", "status", "code"), FAULTS)
def test_a_fault_of_one_org_leaves_another_answering(
    salesforce_emulator: SalesforceEmulator,
    orgs: tuple[OrgHandle, OrgHandle],
    inject: Callable[[OrgAdmin], object],
    status: int,
    code: str,
) -> None:
    acme, globex = orgs
    sf_acme, sf_globex = connect(acme), connect(globex)
    inject(acme)
    with pytest.raises(SalesforceError) as failed:
        sf_acme.query("SELECT Id FROM Event")
    assert failed.value.status == status
    assert failed.value.content[0]["errorCode"] == code
    for other in (sf_globex, connect(salesforce_emulator)):
        assert other.query("SELECT Id FROM Event")["totalSize"] == 0
    assert globex.set_faults() == salesforce_emulator.set_faults()  # neither has faults


# Removing an org ----------------------------------------------------------------------


async def test_a_removed_org_refuses_logins_as_salesforce_does(
    salesforce_emulator: SalesforceEmulator, orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    acme, globex = orgs
    assert token(acme).status_code == 200
    salesforce_emulator.remove_org("acme")
    refused = token(acme)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "invalid_client_id", "error_description": "client identifier invalid"},
    )
    with pytest.raises(SalesforceAuthenticationError, match="invalid_client_id"):
        async with client(acme) as sf_client:
            await sf_client.connect()
    with pytest.raises(requests.ConnectionError):  # its own port is closed
        http(acme).get(f"{acme.instance_url}/services/data/", timeout=10)
    assert [o["name"] for o in salesforce_emulator.orgs()] == ["globex"]
    assert connect(globex).query("SELECT Id FROM Event")["totalSize"] == 0
    # The name is free again: a new org of that name starts empty, with new credentials.
    again = salesforce_emulator.add_org("acme")
    assert again.client_secret != acme.client_secret
    assert again.records() == []


# The admin API --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "Acme"}, 400),
        ({"name": "acme_1"}, 400),
        ({"name": ""}, 400),
        ({"name": "a" * 41}, 400),
        ({"name": 7}, 400),
        ({}, 400),
        ({"name": "acme"}, 409),
        ({"name": "a" * 40}, 201),
        ({"name": "0-9"}, 201),
    ],
)
def test_org_names_are_checked(
    salesforce_emulator: SalesforceEmulator,
    orgs: tuple[OrgHandle, OrgHandle],
    body: dict[str, Any],
    status: int,
) -> None:
    answer = http(salesforce_emulator).post(
        f"{salesforce_emulator.url}/__admin/orgs", json=body, timeout=10
    )
    assert answer.status_code == status, answer.text


def test_a_reset_of_the_emulator_removes_the_orgs_added_since_start(
    salesforce_emulator: SalesforceEmulator, orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    acme, _ = orgs
    acme.insert("Event", salesforce_event("b-1"))
    acme.reset()  # the org's own reset: its records only
    assert acme.records() == []
    assert len(salesforce_emulator.orgs()) == 2
    salesforce_emulator.reset()
    assert salesforce_emulator.orgs() == []


def test_orgs_survive_a_restart_and_cost_no_thread_or_process(
    fresh_salesforce_emulator: SalesforceEmulator,
) -> None:
    emulator = fresh_salesforce_emulator
    assert emulator.process is not None
    proc = Path(f"/proc/{emulator.process.pid}")

    def threads() -> int:
        return int((proc / "status").read_text().split("Threads:")[1].split()[0])

    def children() -> list[str]:
        return (proc / "task" / proc.name / "children").read_text().split()

    before = threads()
    acme = emulator.add_org("acme")
    for n in range(30):
        emulator.add_org(f"org-{n}")
    assert (threads(), children()) == (before, [])
    acme.insert("Event", salesforce_event("b-1"))
    emulator.restart()
    again = emulator.org("acme")
    assert (again.url, again.instance_url, again.client_secret) == (
        acme.url,
        acme.instance_url,
        acme.client_secret,
    )
    assert [r["Booking_Id__c"] for r in again.records()] == ["b-1"]
    assert len(emulator.orgs()) == 31
    assert connect(again).query("SELECT Id FROM Event")["totalSize"] == 1
    assert (emulator.data_dir / "orgs" / "acme" / "emulator.sqlite3").is_file()
