"""The pure pieces of the chaos run (bench/chaos.py): where the workers find a
registered org's secret, and which bookings any org has wrong."""

from __future__ import annotations

from bench.chaos import secret_variable, wrong_bookings
from devkit.verification import Comparison
from streams.salesforce.org_registry import OrgConnection


def test_each_org_s_secret_has_a_variable_an_env_reference_can_name() -> None:
    assert secret_variable("globex") == "CHAOS_SF_SECRET_GLOBEX"
    assert secret_variable("org-2") == "CHAOS_SF_SECRET_ORG_2"
    # The registry takes it as a reference (a name it refuses would fail `orgs add`).
    reference = f"env:{secret_variable('org-2')}"
    connection = OrgConnection(
        name="org-2", login_url="https://127.0.0.1:8443", client_id="x", client_secret=reference
    )
    assert connection.references() == {"client_secret": reference}


def test_a_booking_wrong_in_two_orgs_is_looked_into_once() -> None:
    comparisons = {
        "default": Comparison(lost=["b-2"], stale=["b-1"]),
        "globex": Comparison(unexpected=["b-1"], duplicate=["b-3"]),
        "initech": Comparison(),
    }
    assert wrong_bookings(comparisons) == ["b-2", "b-1", "b-3"]
    assert wrong_bookings({"default": Comparison()}) == []
