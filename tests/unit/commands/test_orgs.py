"""`activity-sync orgs list`'s lines (streams/commands/orgs.py): each org with its secret
references, and with the workers' counts, how many bookings wait for each org,
registered or not."""

from __future__ import annotations

import io

import pytest

from streams.commands.orgs import print_registry
from streams.salesforce.org_registry import OrgConnection, OrgRegistry

ACME = OrgConnection(
    name="acme",
    login_url="https://acme.my.salesforce.com",
    client_id="acme-app",
    client_secret="env:ACME_SF_SECRET",
)


@pytest.mark.parametrize(
    ("waiting", "lines"),
    [
        (
            None,
            [
                "acme  https://acme.my.salesforce.com  client_credentials  client_id=acme-app  "
                "client_secret=env:ACME_SF_SECRET  fields=default",
            ],
        ),
        (
            {"acme": 2, "globex": 5, "default": 1, "initech": 0},
            [
                "acme  https://acme.my.salesforce.com  client_credentials  client_id=acme-app  "
                "client_secret=env:ACME_SF_SECRET  fields=default  waiting=2",
                "globex  not registered  waiting=5 (activity-sync orgs add globex)",
                "default (ACTIVITY_SYNC_SALESFORCE_*)  waiting=1",
            ],
        ),
        (
            {},
            [
                "acme  https://acme.my.salesforce.com  client_credentials  client_id=acme-app  "
                "client_secret=env:ACME_SF_SECRET  fields=default  waiting=0",
                "default (ACTIVITY_SYNC_SALESFORCE_*)  waiting=0",
            ],
        ),
    ],
)
def test_the_list_shows_how_many_bookings_wait_for_each_org(
    waiting: dict[str, int] | None, lines: list[str]
) -> None:
    out = io.StringIO()
    print_registry(OrgRegistry({"acme": ACME}), out, waiting)
    assert out.getvalue().splitlines() == lines
