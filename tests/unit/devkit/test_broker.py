"""The dev kit's port picking (devkit/broker.py `free_port`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devkit import broker


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def ephemeral_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ip_local_port_range"
    monkeypatch.setattr(broker, "EPHEMERAL_RANGE", path)
    return path


def test_a_free_port_is_below_the_ephemeral_range_and_free(ephemeral_range: Path) -> None:
    # An outgoing connection is given a port of the ephemeral range: one picked there
    # can be taken before the server that was told it binds it.
    ephemeral_range.write_text("40000\t60999\n")
    ports = {broker.free_port() for _ in range(20)}
    assert all(broker.LOWEST_FREE_PORT <= port < 40000 for port in ports)
    assert all(bindable(port) for port in ports)
    assert len(ports) > 1  # picked at random, not the first free one each time


def test_a_port_in_use_is_never_given(
    ephemeral_range: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        # The first pick is the busy port; the ones after it are random again.
        picks = [busy]
        pick = broker.random.randrange
        monkeypatch.setattr(
            broker.random, "randrange", lambda low, high: picks.pop() if picks else pick(low, high)
        )
        assert broker.free_port() != busy
        assert picks == []


@pytest.mark.parametrize("content", ["", "garbage", "1024 65535"])
def test_an_unreadable_or_unusual_range_still_gives_a_free_port(
    ephemeral_range: Path, content: str
) -> None:
    if content:
        ephemeral_range.write_text(content)
    assert bindable(broker.free_port())
