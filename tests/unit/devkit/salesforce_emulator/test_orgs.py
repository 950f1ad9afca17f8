"""Several orgs in one emulator (orgs.py): names, which org a request is for, the URLs an
org is given, and the pieces that keep orgs apart (id blocks, a store copied from the seed
template, credentials of their own, faults that do not share counters)."""

from __future__ import annotations

from pathlib import Path

import pytest
from simple_salesforce.api import Salesforce

from devkit.salesforce_emulator.faults import Faults, FaultState
from devkit.salesforce_emulator.orgs import ID_BLOCK, instance_url, org_of, valid_name
from devkit.salesforce_emulator.schema import CASE, CONTACT, make_id
from devkit.salesforce_emulator.store import Store
from devkit.salesforce_emulator.tls_auth import ENV_PREFIX, load_credentials


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("acme", True),
        ("a", True),
        ("org-7", True),
        ("-", True),
        ("a" * 40, True),
        ("a" * 41, False),
        ("", False),
        ("Acme", False),
        ("acme_1", False),
        ("acme.io", False),
        ("acme/x", False),
        ("ünicode", False),
        ("acme\n", False),
        (7, False),
        (None, False),
    ],
)
def test_org_names(name: object, valid: bool) -> None:
    assert valid_name(name) is valid


@pytest.mark.parametrize(
    ("path_org", "port_org", "org"),
    [
        (None, None, ""),  # the main port's root: the default org
        ("acme", None, "acme"),  # the main port's /orgs/acme/...
        (None, "acme", "acme"),  # acme's own port
        ("globex", "acme", None),  # another org's path on acme's port
        ("acme", "acme", None),
    ],
)
def test_which_org_a_request_is_for(path_org: str | None, port_org: str | None, org: str) -> None:
    assert org_of(path_org, port_org) == org


@pytest.mark.parametrize(
    ("base", "port", "url"),
    [
        ("https://127.0.0.1:8443", 41000, "https://127.0.0.1:41000"),
        ("https://salesforce:8443", 41000, "https://salesforce:41000"),
        ("https://[::1]:8443", 41000, "https://[::1]:41000"),
        ("https://emulator.example", 41000, "https://emulator.example:41000"),
    ],
)
def test_an_orgs_instance_url_is_its_own_port_on_the_emulators_host(
    base: str, port: int, url: str
) -> None:
    assert instance_url(base, port) == url


def test_simple_salesforce_keeps_only_host_and_port_of_instance_url() -> None:
    """Why a named org is served on a port of its own, not under /orgs/<name>: the API
    calls of a session-id client built from the token answer drop the path."""
    sf = Salesforce(instance_url="https://127.0.0.1:8443/orgs/acme", session_id="t")
    assert sf.base_url == "https://127.0.0.1:8443/services/data/v59.0/"


def test_each_org_makes_ids_from_its_own_block(tmp_path: Path) -> None:
    stores = [Store(tmp_path / f"{n}.sqlite3", n * ID_BLOCK) for n in range(3)]
    made = []
    for store in stores:
        with store.transaction():
            seq, record_id = store.new_id(CASE)
            store.insert(CASE, seq, {"Id": record_id})
        made.append((record_id, store.ordinal(seq)))
    assert len({record_id for record_id, _ in made}) == 3
    assert [ordinal for _, ordinal in made] == [1, 1, 1]  # CaseNumber 00000001 in each
    assert stores[1].get_any(made[2][0]) is None
    # The last block is still in make_id's range.
    make_id(CASE.prefix, 13_000 * ID_BLOCK)


def test_a_store_copied_from_a_template_names_its_own_user(tmp_path: Path) -> None:
    template = Store(":memory:")
    stand_in, own = make_id("005", 9), make_id("005", 10)
    with template.transaction():
        seq, contact_id = template.new_id(CONTACT)
        template.insert(CONTACT, seq, {"Id": contact_id, "OwnerId": stand_in})
        template.insert(CONTACT, seq + 1, {"Id": stand_in[:3] + "x" * 15})
    copy = Store(tmp_path / "org.sqlite3", ID_BLOCK, copy_of=template)
    with copy.transaction():
        copy.replace_id(stand_in, own)
        copy.purge(stand_in[:3] + "x" * 15)
    assert copy.get_any(contact_id) == {"Id": contact_id, "OwnerId": own}
    assert copy.present([contact_id, stand_in[:3] + "x" * 15]) == {contact_id}
    assert copy.new_id(CONTACT)[0] == ID_BLOCK + 1
    assert template.get_any(contact_id) == {"Id": contact_id, "OwnerId": stand_in}


def test_a_named_orgs_credentials_are_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "CLIENT_SECRET", "start-up-s3cret")
    (tmp_path / "default").mkdir()
    (tmp_path / "acme").mkdir()
    default = load_credentials(tmp_path / "default", {"client_id": "given"})
    acme = load_credentials(tmp_path / "acme", {"client_id": "given"}, org="acme")
    assert (default.client_id, default.client_secret) == ("given", "start-up-s3cret")
    assert acme.client_id != "given"
    assert acme.client_secret != "start-up-s3cret"
    assert acme.username == "integration@acme.activity-sync.emulator"
    assert load_credentials(tmp_path / "acme", {}, org="acme") == acme  # kept on disk


def test_faults_given_are_not_counted_down_by_an_org() -> None:
    """Each org's FaultState starts from the faults given; firing must not use up the
    given ones (a reset restores them, another org starts from them)."""
    given = Faults.model_validate({"http_503": {"next": 1}})
    first, second = FaultState(given), FaultState(given)
    assert first.fire("http_503")
    assert not first.fire("http_503")
    assert second.fire("http_503")
    assert given.http_503.next == 1
