"""The org registry's records (streams/salesforce/org_registry.py): secrets only by
reference, a record that round-trips, tombstones, and settings that take nothing of the
default org's credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

import schemas
from streams.salesforce.org_registry import (
    ORG_NAME_PATTERN,
    BadOrgRecord,
    OrgConnection,
    OrgSecretError,
    decode,
    encode,
    registry,
    resolve,
    tombstone,
)
from streams.salesforce.settings import SalesforceSettings

ACME: dict[str, Any] = {
    "name": "acme",
    "login_url": "https://acme.my.salesforce.com/",
    "client_id": "3MVG9-acme",
    "client_secret": "env:ACME_SF_SECRET",
}


def acme(**changes: Any) -> OrgConnection:
    return OrgConnection(**{**ACME, **changes})


def test_a_record_round_trips_and_a_tombstone_removes() -> None:
    added = acme(fallback_owner_id="005000000000001AAA", field_mapping="oncehub")
    key, value = encode(added)
    assert key == b"acme"
    assert decode(key, value) == added
    assert decode(*tombstone("acme")) is None
    records = [encode(added), encode(acme(name="globex")), tombstone("acme"), (b"x", b"{}")]
    found = registry(records)
    assert list(found.orgs) == ["globex"]
    assert found.unreadable == ["format: Field required"]


def test_the_login_url_loses_its_trailing_slash() -> None:
    assert acme().login_url == "https://acme.my.salesforce.com"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"client_secret": "s3cr3t-value"}, "must be a reference"),
        ({"client_secret": "env:NOT A NAME"}, "must be a reference"),
        ({"client_secret": "file:relative/path"}, "must be a reference"),
        ({"name": "Acme"}, "pattern"),
        ({"name": "default"}, "the deployment's own org"),
        ({"name": "a" * 41}, "pattern"),
        ({"login_url": "http://acme.my.salesforce.com"}, "https://"),
        ({"client_secret": None}, "needs client_secret"),
        ({"auth": "password"}, "needs username, password"),
        ({"auth": "jwt"}, "needs username, private_key_file"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_a_bad_connection_is_refused_without_echoing_it(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        acme(**changes)
    assert words in str(refused.value)
    assert "s3cr3t-value" not in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        (b"acme", b"not json", "(record)"),
        (b"acme", b'{"format":2,"org":{}}', "format"),
        (b"acme", b'{"format":1,"org":{"name":"acme"}}', "org.login_url"),
        (b"globex", encode(acme())[1], "differs from the org's name"),
    ],
)
def test_a_record_that_is_not_a_connection_says_why(key: bytes, value: bytes, words: str) -> None:
    with pytest.raises(BadOrgRecord) as bad:
        decode(key, value)
    assert words in bad.value.reason


def test_references_resolve_from_the_environment_or_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    assert resolve("env:ACME_SF_SECRET", {"ACME_SF_SECRET": "from-env"}) == "from-env"
    assert resolve(f"file:{secret}") == "from-a-file"
    with pytest.raises(OrgSecretError, match="env:ACME_SF_SECRET: the variable is not set"):
        resolve("env:ACME_SF_SECRET", {})
    with pytest.raises(OrgSecretError, match="cannot read it"):
        resolve(f"file:{tmp_path / 'missing'}")


def test_the_secret_digest_follows_a_secret_rotated_in_place_and_never_shows_it(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("first-secret\n")
    connection = acme(client_secret=f"file:{secret}")
    before = connection.secret_digest()
    assert connection.secret_digest() == before
    secret.write_text("second-secret\n")  # the same reference, a new value
    after = connection.secret_digest()
    assert after != before
    assert "secret" not in before + after
    with pytest.raises(OrgSecretError, match="env:ACME_SF_SECRET"):
        acme().secret_digest({})


def test_settings_take_the_org_s_connection_and_only_the_default_org_s_tuning() -> None:
    default = SalesforceSettings(
        login_url="https://default.my.salesforce.com",
        client_id="default-client",
        client_secret=SecretStr("default-secret"),
        username="integration@default.example",
        security_token=SecretStr("default-token"),
        fallback_owner_id="005DEFAULT000000AAA",
        timeout_s=12.0,
        batch_size=50,
    )
    settings = acme().settings(default, {"ACME_SF_SECRET": "acme-secret"})
    assert settings.login_url == "https://acme.my.salesforce.com"
    assert settings.client_id == "3MVG9-acme"
    assert settings.client_secret.get_secret_value() == "acme-secret"
    # Nothing of the default org's credentials or owner carries over.
    assert settings.username == ""
    assert settings.security_token.get_secret_value() == ""
    assert settings.fallback_owner_id == ""
    # Its tuning does.
    assert (settings.timeout_s, settings.batch_size) == (12.0, 50)
    with pytest.raises(OrgSecretError, match="env:ACME_SF_SECRET"):
        acme().settings(default, {})


def test_the_registry_names_orgs_as_the_event_contract_does() -> None:
    # Two copies (streams/salesforce imports no schemas): an org a page names must be
    # one the registry can hold, and the other way round.
    assert ORG_NAME_PATTERN == schemas.ORG_NAME_PATTERN
