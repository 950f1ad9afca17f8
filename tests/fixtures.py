"""Shared fixtures: the embedded broker, the Salesforce emulator and worker processes.

Each real part runs as its own process, as in production; fixtures start it on a free
port, wait until it answers and stop it afterwards.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Salesforce emulator
#
# One emulator process per test session (`salesforce_emulator_session`), reset before
# each test that asks for `salesforce_emulator`; `fresh_salesforce_emulator` gives a test
# its own process and data dir (for restarts and stops). Admin calls go to /__admin/ and
# are never counted as Salesforce API calls.
# ---------------------------------------------------------------------------------------
import json as _json
import select as _select
import subprocess as _subprocess
import sys as _sys
from collections.abc import Iterator as _Iterator
from pathlib import Path as _Path
from typing import Any as _Any

import pytest
import requests as _requests

from streams.salesforce.settings import SalesforceSettings

EMULATOR_START_TIMEOUT_S = 30.0


class SalesforceEmulator:
    """A running `python -m streams.salesforce.emulator` process and its admin API."""

    def __init__(self, data_dir: _Path, *extra_args: str) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.process: _subprocess.Popen[str] | None = None
        self.info: dict[str, _Any] = {}
        self._port = 0
        self._http = _requests.Session()
        self._http.trust_env = False  # REQUESTS_CA_BUNDLE must not replace our CA
        self.start()

    # Process control -------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stderr = open(self.data_dir / "emulator.stderr.log", "ab")  # noqa: SIM115
        self.process = _subprocess.Popen(
            [
                _sys.executable,
                "-m",
                "streams.salesforce.emulator",
                "--port",
                str(self._port),
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            stdout=_subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        assert self.process.stdout is not None
        ready, _, _ = _select.select([self.process.stdout], [], [], EMULATOR_START_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            log = (self.data_dir / "emulator.stderr.log").read_text()
            raise RuntimeError(f"Salesforce emulator did not start:\n{log[-3000:]}")
        self.info = _json.loads(line)
        # A restart binds the same port, so clients keep their login and instance URLs.
        self._port = int(self.url.rsplit(":", 1)[1])
        self._http.verify = self.ca_file

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except _subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._http.close()

    # Connection details ----------------------------------------------------------

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_file(self) -> str:
        return str(self.info["ca_file"])

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.info["client_secret"])

    @property
    def username(self) -> str:
        return str(self.info["username"])

    @property
    def password(self) -> str:
        return str(self.info["password"])

    @property
    def security_token(self) -> str:
        return str(self.info["security_token"])

    def settings(self, **overrides: _Any) -> SalesforceSettings:
        """Client settings for this emulator, with backoff short enough for tests."""
        values: dict[str, _Any] = {
            "login_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "ca_file": self.ca_file,
            "retry_base_s": 0.01,
            "retry_cap_s": 0.2,
            "timeout_s": 10.0,
        }
        values.update(overrides)
        return SalesforceSettings(**values)

    # Admin API -------------------------------------------------------------------

    def admin(self, method: str, path: str, body: object = None) -> _Any:
        response = self._http.request(method, f"{self.url}/__admin/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def records(self, sobject: str = "Event") -> list[dict[str, _Any]]:
        return list(self.admin("GET", f"records/{sobject}")["records"])

    def insert(self, sobject: str, *records: dict[str, _Any]) -> list[str]:
        """Seed records without spending API calls; returns their ids."""
        results = self.admin("POST", f"records/{sobject}", {"records": list(records)})
        assert all(r["success"] for r in results), results
        return [str(r["id"]) for r in results]

    def api_calls(self) -> dict[str, _Any]:
        return dict(self.admin("GET", "api-calls"))

    def total_api_calls(self) -> int:
        return int(self.api_calls()["total"])

    def set_faults(self, faults: dict[str, _Any] | None = None, **more: _Any) -> dict[str, _Any]:
        """Merge faults into the current ones, e.g. set_faults(http_503={"next": 2})."""
        return dict(self.admin("POST", "faults", {**(faults or {}), **more}))

    def replace_faults(self, faults: dict[str, _Any]) -> dict[str, _Any]:
        return dict(self.admin("PUT", "faults", faults))

    def down(self, for_s: float, mode: str = "503") -> None:
        self.admin("POST", "down", {"for_s": for_s, "mode": mode})

    def set_daily_limit(self, limit: int) -> None:
        self.admin("POST", "limits", {"daily_limit": limit})

    def expire_tokens(self) -> int:
        return int(self.admin("POST", "expire-tokens")["expired"])

    def reset(self) -> None:
        self.admin("POST", "reset")


@pytest.fixture(scope="session")
def salesforce_emulator_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> _Iterator[SalesforceEmulator]:
    emulator = SalesforceEmulator(tmp_path_factory.mktemp("salesforce-emulator"))
    yield emulator
    emulator.close()


@pytest.fixture
def salesforce_emulator(
    salesforce_emulator_session: SalesforceEmulator,
) -> SalesforceEmulator:
    """The shared emulator, emptied: no records, no counted calls, no faults."""
    if salesforce_emulator_session.process is None:
        salesforce_emulator_session.start()
    salesforce_emulator_session.reset()
    return salesforce_emulator_session


@pytest.fixture
def fresh_salesforce_emulator(tmp_path: _Path) -> _Iterator[SalesforceEmulator]:
    """An emulator process of the test's own, on its own data dir (restart/stop at will)."""
    emulator = SalesforceEmulator(tmp_path / "salesforce-emulator")
    yield emulator
    emulator.close()


@pytest.fixture
def salesforce_settings(salesforce_emulator: SalesforceEmulator) -> SalesforceSettings:
    return salesforce_emulator.settings()
