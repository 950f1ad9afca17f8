"""Who may read the worker's HTTP views, and what /health/ says (streams/worker/watch/web.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.worker.settings import Settings
from streams.worker.watch.web import (
    OPEN_PATHS,
    WriteHealth,
    authorized,
    is_loopback,
    web_access_problem,
)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "worker-1", "", None])
def test_not_loopback(host: str | None) -> None:
    assert not is_loopback(host)


def settings(**web: object) -> Settings:
    return Settings(_env_file=None, web=web)  # type: ignore[call-arg]


def test_a_non_loopback_bind_without_a_token_refuses_to_start() -> None:
    problem = web_access_problem(settings(bind="0.0.0.0"))
    assert problem is not None
    assert "ACTIVITY_SYNC_WEB_TOKEN" in problem
    assert "\n" not in problem
    assert web_access_problem(settings(), bind="0.0.0.0") is not None  # --web-bind


def test_a_token_or_loopback_or_no_web_server_may_start() -> None:
    assert web_access_problem(settings()) is None
    assert web_access_problem(settings(bind="0.0.0.0", token=SecretStr("t"))) is None
    assert web_access_problem(settings(bind="0.0.0.0", enabled=False)) is None


def test_the_booking_view_without_a_token_is_refused() -> None:
    # A token set: only the exact bearer header passes, from anywhere.
    assert not authorized(None, "s3cret", "127.0.0.1")
    assert not authorized("Bearer wrong", "s3cret", "127.0.0.1")
    assert not authorized("s3cret", "s3cret", "127.0.0.1")
    assert authorized("Bearer s3cret", "s3cret", "10.0.0.9")
    # No token set: loopback clients only.
    assert authorized(None, "", "127.0.0.1")
    assert not authorized(None, "", "10.0.0.9")
    assert not authorized("Bearer anything", "", "10.0.0.9")


def test_only_health_and_metrics_are_open() -> None:
    assert {"/health/", "/metrics/"} == OPEN_PATHS


def test_salesforce_health_follows_the_sinks_counters() -> None:
    health = WriteHealth()
    assert health.update({}, 0) == "ok"  # the start checked the login
    assert health.update({"UNEXPECTED": 3}, 0).startswith("failing")
    assert "UNEXPECTED" in health.state
    assert health.update({"UNEXPECTED": 3}, 0).startswith("failing")  # nothing new: same
    assert health.update({"UNEXPECTED": 4}, 200) == "ok"  # Salesforce answered records
    assert health.update({"UNEXPECTED": 4, "UNAVAILABLE": 2}, 200).startswith("failing")
