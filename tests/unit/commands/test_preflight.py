"""A worker's start-up checks that need no network (streams/commands/preflight.py): the
web port, and Salesforce settings that cannot work. Each is a `UsageError` (exit 2)
naming what to set."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from streams.commands.base import UsageError
from streams.commands.preflight import check_salesforce_settings, check_web_port
from streams.salesforce.settings import SalesforceSettings
from streams.worker.settings import Settings

SF = "ACTIVITY_SYNC_SALESFORCE_"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def worker(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_a_port_in_use_is_named(busy_port: int) -> None:
    with pytest.raises(UsageError) as taken:
        check_web_port(worker(web_port=busy_port))
    assert taken.value.exit_code == 2
    assert f"ACTIVITY_SYNC_WEB_PORT={busy_port}" in str(taken.value)
    assert "in use" in str(taken.value)
    with pytest.raises(UsageError):
        check_web_port(worker(), port=busy_port)  # --web-port


def test_a_free_port_or_no_web_server_passes(busy_port: int) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        free = spare.getsockname()[1]
    check_web_port(worker(web_port=free))
    check_web_port(worker(web_port=busy_port, web_enabled=False))


def salesforce(**values: Any) -> SalesforceSettings:
    return SalesforceSettings(_env_file=None, **values)


CONFIGURED = {"client_id": "activity-sync", "client_secret": "s3cret"}


@pytest.mark.parametrize(
    ("values", "named", "not_named"),
    [
        ({}, (f"{SF}LOGIN_URL", f"{SF}CLIENT_ID"), ()),
        ({"login_url": "https://acme.my.salesforce.com"}, (f"{SF}CLIENT_ID",), (f"{SF}LOGIN_URL",)),
        ({"client_id": "activity-sync"}, (f"{SF}CLIENT_SECRET",), ()),
        ({**CONFIGURED, "ca_file": "/nonexistent/ca.pem"}, (f"{SF}CA_FILE", "No such file"), ()),
        ({**CONFIGURED, "ca_file": "NOT_PEM"}, (f"{SF}CA_FILE", "no PEM certificate"), ()),
    ],
)
def test_salesforce_settings_that_cannot_work_are_named(
    values: dict[str, Any], named: tuple[str, ...], not_named: tuple[str, ...], tmp_path: Path
) -> None:
    if values.get("ca_file") == "NOT_PEM":
        der = tmp_path / "ca.der"
        der.write_bytes(b"\x30\x82\x01\x0a binary, not PEM")
        values = {**values, "ca_file": der}
    with pytest.raises(UsageError) as refused:
        check_salesforce_settings(salesforce(**values))
    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert "\n" not in message
    assert all(word in message for word in named), message
    assert not any(word in message for word in not_named), message


@pytest.mark.parametrize(
    "values",
    [
        CONFIGURED,
        {**CONFIGURED, "ca_file": certifi.where()},
        # JWT bearer: the consumer key and a key file, no secret.
        {"client_id": "k", "auth": "jwt", "username": "u@x", "private_key_file": "key.pem"},
    ],
)
def test_salesforce_settings_that_can_work_pass(values: dict[str, Any]) -> None:
    check_salesforce_settings(salesforce(**values))
