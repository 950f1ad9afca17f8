"""A worker's start-up checks that need no network (streams/commands/preflight.py): the
web port, and Salesforce settings that cannot work. Each is a `UsageError` (exit 2)
naming what to set."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from aiokafka.errors import NodeNotReadyError

from streams.commands import preflight
from streams.commands.base import UsageError, UserError
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
        check_web_port(worker(web={"port": busy_port}))
    assert taken.value.exit_code == 2
    assert f"ACTIVITY_SYNC_WEB_PORT={busy_port}" in str(taken.value)
    assert "in use" in str(taken.value)
    with pytest.raises(UsageError):
        check_web_port(worker(), port=busy_port)  # --web-port


def test_a_free_port_or_no_web_server_passes(busy_port: int) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        free = spare.getsockname()[1]
    check_web_port(worker(web={"port": free}))
    check_web_port(worker(web={"port": busy_port, "enabled": False}))


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


class Metadata:
    """An admin client whose metadata request goes, like aiokafka's, to a random node
    of the cluster's metadata: the first `down` requests reach a node that is down."""

    def __init__(self, partitions: int, down: int) -> None:
        self.partitions, self.down, self.requests = partitions, down, 0

    async def describe_topics(self) -> list[dict[str, Any]]:
        self.requests += 1
        if self.requests <= self.down:
            raise NodeNotReadyError("Attempt to send a request to node which is not ready")
        parts = [{"partition": n} for n in range(self.partitions)]
        return [{"topic": "booking-events", "error_code": 0, "partitions": parts}]


def fake_admin(client: Metadata) -> Any:
    @contextlib.asynccontextmanager
    async def admin(*_: Any, **__: Any) -> AsyncIterator[Metadata]:
        yield client

    return admin


@pytest.mark.parametrize("partitions", [4, 8])
async def test_a_broker_down_at_start_does_not_stop_the_partition_check(
    monkeypatch: pytest.MonkeyPatch, partitions: int
) -> None:
    """A worker restarted while one Kafka node is down (chaos: the leader killed at 0.10,
    a worker restarted at 0.15) asked that node for the topics' metadata and exited with
    NodeNotReadyError's traceback; another node answers."""
    client = Metadata(partitions, down=2)
    monkeypatch.setattr(preflight, "admin", fake_admin(client))
    monkeypatch.setattr(preflight, "METADATA_RETRY_S", 0.01, raising=False)
    settings = worker(broker={"partitions": 4})
    if partitions == 4:
        await preflight.check_partitions(settings, timeout_s=5.0)
    else:  # a wrong count is still found
        with pytest.raises(UsageError, match="ACTIVITY_SYNC_PARTITIONS=4"):
            await preflight.check_partitions(settings, timeout_s=5.0)
    assert client.requests == 3


async def test_metadata_no_node_answers_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "admin", fake_admin(Metadata(4, down=1_000)))
    monkeypatch.setattr(preflight, "METADATA_RETRY_S", 0.01, raising=False)
    with pytest.raises(UserError, match="the topic metadata"):
        await preflight.check_partitions(worker(), timeout_s=0.2)


def test_a_data_dir_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(UsageError) as refused:
        preflight.check_data_dir(worker(store={"data_dir": blocker / "worker"}))
    message = str(refused.value)
    assert refused.value.exit_code == 2
    assert message.startswith(f"ACTIVITY_SYNC_DATA_DIR={blocker / 'worker'}: ")
    assert "not a directory" in message
    assert "\n" not in message


def test_a_data_dir_without_write_permission_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    monkeypatch.chdir(app)
    # As the image's user sees its root-owned WORKDIR (root here could write anyway).
    monkeypatch.setattr(preflight.os, "access", lambda path, mode: Path(path) != app)
    with pytest.raises(UsageError) as refused:
        preflight.check_data_dir(worker(store={"data_dir": Path("var/worker")}))
    assert str(refused.value) == (
        f"ACTIVITY_SYNC_DATA_DIR=var/worker ({app}/var/worker): cannot create it in {app} "
        "(permission denied); set ACTIVITY_SYNC_DATA_DIR to a directory this user can write"
    )
    preflight.check_data_dir(worker(store={"data_dir": tmp_path / "data" / "worker"}))  # creatable
